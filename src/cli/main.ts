import { readFileSync } from 'node:fs';
import chalk, { chalkStderr } from 'chalk';
import yargs, { type Argv, type CommandModule } from 'yargs';
import { AuthError, InvalidReferenceError, KubeError, LockError, ManifestError, RegistryError, UnavailableError, UsageError } from '../errors.ts';
import { copyCommand } from './commands/copy.ts';
import { restoreCommand } from './commands/restore.ts';
import { syncCommand } from './commands/sync.ts';
import type { CliContext } from './context.ts';
import { ExitCode, exitCodeHelp } from './exit-codes.ts';
import { interruptedLine } from './interrupt.ts';

// src/cli/main.ts and dist/cli/main.js sit at the same depth below the package root.
const packageVersion: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

/** The commands, in --help order. */
export function commands(context: CliContext): CommandModule[] {
  return [syncCommand(context), restoreCommand(context), copyCommand(context)];
}

/**
 * The whole command line's parser. `mapCommand` lets a test swap a command's handler (to see what
 * it was given) while keeping the real options and parser settings.
 */
export function parser(args: string[], context: CliContext, mapCommand: (command: CommandModule) => CommandModule = (c) => c): Argv {
  const cli = yargs(args)
    .scriptName('image-clone')
    .usage('$0 <command> [options]\n\nBack up the container images a Kubernetes cluster runs into your own registry.');
  for (const command of commands(context)) cli.command(mapCommand(command));
  return cli
    .option('debug', { type: 'boolean', describe: 'Show stack traces and debug details on errors' })
    // chalk reads --color/--no-color from argv itself; declared so that strict parsing accepts them.
    .option('color', { type: 'boolean', describe: 'Colour output on a terminal (--no-color, or NO_COLOR=1, turns it off)' })
    .version(packageVersion)
    .alias('version', 'V')
    .help()
    .alias('help', 'h')
    .epilogue(`${exitCodeHelp}\n\nOptions can also be set as IMAGE_CLONE_<OPTION> environment variables, e.g. IMAGE_CLONE_CONCURRENCY=4.\n\nManual: README.md and docs/: sync.md, copy.md, cronjob.md, json.md, guarantees.md.`)
    .strict()
    // Parser complaints become UsageErrors; errors thrown by command handlers pass through as they are.
    .fail((message, err) => {
      // yargs reports some parser complaints (a missing option value) as a YError rather than a message.
      if (!err || err.name === 'YError') throw new UsageError(readableParserMessage(message ?? err?.message ?? 'invalid arguments', args));
      throw err;
    })
    .exitProcess(false)
    .wrap(Math.min(100, process.stdout.columns ?? 80));
}

/**
 * yargs names an unknown flag in both spellings ("such-flag, suchFlag"), without its dashes and
 * with `--no-` already stripped; name each unknown flag once, as typed.
 */
function readableParserMessage(message: string, args: string[]): string {
  // "Invalid values:\n  Argument: output, Given: "xml", Choices: "table", "json"" -> one line.
  const invalid = /Argument: (\S+), Given: (.*), Choices: (.*)$/m.exec(message);
  if (invalid) return `--${invalid[1]} must be one of ${invalid[3]}, not ${invalid[2]}`;
  // A repeatable option at the end of the line, with its value missing.
  const missing = /^Not enough arguments following: (\S+)$/.exec(message);
  if (missing) return `${missing[1]!.length === 1 ? '-' : '--'}${missing[1]} needs a value`;
  const unknown = /^Unknown arguments?: (.*)$/.exec(message);
  if (!unknown) return message.replace(/\s*\n\s*/g, ' ');
  const names = unknown[1]!.split(', ').filter((name) => !/[A-Z]/.test(name));
  const typed = names.map((name) => {
    if (args.includes(name)) return `'${name}'`; // a positional word, not a flag
    return args.find((arg) => arg === `--no-${name}`) ?? (name.length === 1 ? `-${name}` : `--${name}`);
  });
  // After a command, a stray word is an argument the command does not take (often a second value given to a one-value option).
  const afterCommand = args.some((arg) => ['sync', 'restore', 'copy'].includes(arg));
  const what = typed.every((t) => t.startsWith("'")) ? (afterCommand ? 'argument' : 'command') : 'option';
  return `unknown ${what}${typed.length === 1 ? '' : 's'} ${typed.join(', ')}`;
}

/** Runs the CLI and resolves to its exit code; never exits the process itself. */
export async function main(args: string[]): Promise<number> {
  // chalk deliberately ignores NO_COLOR (https://no-color.org); we honour it.
  if (process.env.NO_COLOR && !process.env.FORCE_COLOR) chalk.level = chalkStderr.level = 0;
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => abort.abort(new Error(`interrupted by ${signal}`));
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const context: CliContext = {
    version: packageVersion,
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    // A terminal that reports no width (some pseudo-terminals) sends ora's redraw into an endless loop.
    interactive: Boolean(process.stderr.isTTY) && (process.stderr.columns ?? 0) > 0 && process.env.TERM !== 'dumb' && !process.env.CI,
    signal: abort.signal,
    exitCode: ExitCode.ok,
  };
  const cli = parser(args, context);
  try {
    const argv = await cli.parseAsync();
    if (abort.signal.aborted) return interrupted(abort.signal);
    if (argv.help || argv.version || argv._.length) return context.exitCode;
    // No command was given: say how to get going rather than doing nothing silently.
    process.stderr.write(`${await cli.getHelp()}\n`);
    return ExitCode.usage;
  } catch (err) {
    if (abort.signal.aborted) return interrupted(abort.signal);
    return reportError(err, args.includes('--debug'));
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}

function interrupted(signal: AbortSignal): number {
  process.stderr.write(interruptedLine(signal));
  return ExitCode.interrupted;
}

function reportError(err: unknown, debug: boolean): number {
  const code = exitCodeOf(err);
  if (code === undefined) {
    // Not an error we anticipated: a bug, so show everything that helps to report it.
    process.stderr.write(`image-clone: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return ExitCode.usage;
  }
  const { message, stack } = err as Error;
  process.stderr.write(`${chalkStderr.red('image-clone:')} ${debug && stack ? stack : message}\n`);
  if (err instanceof UsageError) process.stderr.write("Run 'image-clone --help' for usage.\n");
  return code;
}

/** The documented exit code of an error the user can act on; undefined for anything else (a bug). */
function exitCodeOf(err: unknown): number | undefined {
  if (err instanceof UsageError || err instanceof InvalidReferenceError || err instanceof AuthError) return ExitCode.usage;
  if (err instanceof LockError) return ExitCode.locked;
  // Refused credentials or a missing RBAC rule are configuration; anything else that stops the
  // run (unreachable, 5xx after retries) means it could not go on: not "completed with failures".
  if (err instanceof KubeError) return err.status === 401 || err.status === 403 || err.status === 407 ? ExitCode.usage : ExitCode.unavailable;
  if (err instanceof UnavailableError || err instanceof RegistryError) return ExitCode.unavailable;
  if (err instanceof ManifestError) return ExitCode.failed;
  return undefined;
}
