import { readFileSync } from 'node:fs';
import chalk, { chalkStderr } from 'chalk';
import yargs, { type Argv, type CommandModule } from 'yargs';
import { AuthError, KubeError, LockError, ManifestError, RegistryError, UnavailableError, UsageError } from '../errors.ts';
import { InvalidSettingError } from '../core/errors.ts';
import { InvalidReferenceError } from '../reference.ts';
import type { CliContext } from './context.ts';
import { ExitCode, exitCodeHelp } from './exit-codes.ts';
import { interruptedLine } from './interrupt.ts';
import { copyOptions, restoreOptions, syncOptions } from './options.ts';

// src/cli/main.ts and dist/cli/main.js sit at the same depth below the package root.
const packageVersion: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

type Args = Record<string, unknown>;
/** A command's complete, validate and run: resolves to its exit code. */
type CommandRun = (argv: Args, context: CliContext) => Promise<number>;

/**
 * The commands, in --help order: what each takes and says in --help. Each handler loads its command
 * (cli/commands/: complete, validate, run) with one import, so --help and a usage error load none.
 */
export function commands(context: CliContext): CommandModule[] {
  const declare = <U>({ run, ...command }: Omit<CommandModule<object, U>, 'handler'> & { run: () => Promise<CommandRun> }): CommandModule => ({
    ...command,
    handler: async (argv) => {
      context.exitCode = await (await run())(argv as Args, context);
    },
  });
  return [
    declare({
      command: 'sync',
      describe: "Back up every image the cluster's workloads run and point the workloads at the copies",
      builder: (yargs: Argv) => yargs
        .options(syncOptions)
        .example('$0 sync --backup registry.example.com/mirror --dry-run', 'print the plan; change nothing')
        .example('$0 sync --backup registry.example.com/mirror -n shop -o json', 'back up and patch the shop namespace; JSON report')
        .epilogue('Exit codes: 0 nothing to do or all done, 1 the run completed but some images or workloads failed or are lost, 2 usage, configuration, credentials or RBAC error, 3 changes pending (only with --dry-run --exit-code), 4 another sync or restore holds the run lock, 5 the API server or the backup registry unreachable or refusing every request, or the backup out of storage or read-only, 70 internal error (a bug: please report it), 130 interrupted.\n\nManual: docs/sync.md (how a run works, every option, exit codes); -o json|yaml: docs/json.md; as a CronJob: docs/cronjob.md.'),
      run: async () => (await import('./commands/sync.ts')).sync,
    }),
    declare({
      command: 'restore',
      describe: 'Put back the original images that sync recorded, and remove its annotation',
      builder: (yargs: Argv) => yargs.options(restoreOptions)
        .example('$0 restore --dry-run', 'show what would be restored')
        .example('$0 restore -n shop', 'restore the shop namespace')
        .epilogue('Exit codes: 0 done or nothing to do, 1 some workloads failed (each named), 2 usage, configuration or RBAC error, 4 a sync or restore holds the run lock, 5 the API server unreachable or failing, 70 internal error, 130 interrupted.\n\nManual: docs/sync.md#image-clone-restore.'),
      run: async () => (await import('./commands/restore.ts')).restore,
    }),
    declare({
      command: 'copy [source] [target]',
      describe: 'Copy images (every platform, every digest kept) from one registry to another',
      builder: (yargs: Argv) => yargs
        .positional('source', { type: 'string', describe: 'Image to copy, e.g. docker.io/library/nginx:1.27' })
        .positional('target', { type: 'string', describe: 'Where to put it, e.g. registry.example.com/mirror/nginx:1.27' })
        .options(copyOptions)
        .example('$0 copy nginx:1.27 registry.example.com/mirror/nginx:1.27', 'copy every platform of nginx:1.27')
        .example('$0 copy --from-file pairs.txt', 'copy many images in one run ("SOURCE TARGET" per line)')
        .example('$0 copy --insecure-registry localhost:5000 alpine:3 localhost:5000/alpine:3', 'copy into a local plain-HTTP registry')
        .epilogue('Exit codes: 0 copied or already present, 1 some images failed (each named), 2 usage or credentials error, 70 internal error, 130 interrupted (nothing half-copied is tagged).\n\nManual: docs/copy.md.'),
      run: async () => (await import('./commands/copy.ts')).copy,
    }),
  ];
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
  skipHelpCache(cli);
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
 * yargs renders a command's whole --help after starting its handler, in case the program shows help
 * later. This CLI never does after a command has started, and the rendering was a tenth of a dry run's
 * CPU (about 70 ms). yargs 18 has no option for it, so its internal hook is emptied when it is there.
 */
function skipHelpCache(cli: Argv): void {
  const usage = (cli as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } })
    .getInternalMethods?.().getUsageInstance?.();
  if (typeof usage?.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
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
    return reportError(err, args.includes('--debug'), (text) => process.stderr.write(text));
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}

function interrupted(signal: AbortSignal): number {
  process.stderr.write(interruptedLine(signal));
  return ExitCode.interrupted;
}

/** Writes the error's one line (or, for a bug, everything that helps to report it) and returns its exit code. */
export function reportError(err: unknown, debug: boolean, write: (text: string) => void): number {
  const code = exitCodeOf(err);
  if (code === undefined) {
    // Not an error we anticipated: a bug, so show everything that helps to report it.
    write(`image-clone: internal error (a bug in image-clone; please report it with this output): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return ExitCode.internal;
  }
  const { message, stack } = err as Error;
  write(`${chalkStderr.red('image-clone:')} ${debug && stack ? stack : message}\n`);
  if (err instanceof UsageError || err instanceof InvalidSettingError) write("Run 'image-clone --help' for usage.\n");
  return code;
}

/** The documented exit code of an error the user can act on; undefined for anything else (a bug). */
function exitCodeOf(err: unknown): number | undefined {
  if (err instanceof UsageError || err instanceof InvalidSettingError || err instanceof InvalidReferenceError || err instanceof AuthError) return ExitCode.usage;
  if (err instanceof LockError) return ExitCode.locked;
  // Refused credentials or a missing RBAC rule are configuration; anything else that stops the
  // run (unreachable, 5xx after retries) means it could not go on: not "completed with failures".
  if (err instanceof KubeError) return err.status === 401 || err.status === 403 || err.status === 407 ? ExitCode.usage : ExitCode.unavailable;
  if (err instanceof UnavailableError || err instanceof RegistryError) return ExitCode.unavailable;
  if (err instanceof ManifestError) return ExitCode.failed;
  return undefined;
}
