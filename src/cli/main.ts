import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { UsageError } from '../errors.ts';
import { ExitCode, exitCodeHelp } from './exit-codes.ts';

// src/cli/main.ts and dist/cli/main.js sit at the same depth below the package root.
const packageVersion: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

function parser(args: string[]): Argv<{ debug: boolean | undefined }> {
  return yargs(args)
    .scriptName('image-clone')
    .usage('$0 <command> [options]\n\nBack up the container images a Kubernetes cluster runs into your own registry.')
    .option('debug', { type: 'boolean', describe: 'Show stack traces and debug details on errors' })
    .version(packageVersion)
    .alias('version', 'V')
    .help()
    .alias('help', 'h')
    .epilogue(exitCodeHelp)
    .strict()
    // Parser complaints become UsageErrors; errors thrown by command handlers pass through as they are.
    .fail((message, err) => {
      throw err ?? new UsageError(readableParserMessage(message, args));
    })
    .exitProcess(false)
    .wrap(Math.min(100, process.stdout.columns ?? 80));
}

/**
 * yargs names an unknown flag in both spellings ("such-flag, suchFlag"), without its dashes and
 * with `--no-` already stripped; name each unknown flag once, as typed.
 */
function readableParserMessage(message: string, args: string[]): string {
  const unknown = /^Unknown arguments?: (.*)$/.exec(message);
  if (!unknown) return message;
  const names = unknown[1]!.split(', ').filter((name) => !/[A-Z]/.test(name));
  const typed = names.map((name) => {
    if (args.includes(name)) return `'${name}'`; // a positional word, not a flag
    return args.find((arg) => arg === `--no-${name}`) ?? (name.length === 1 ? `-${name}` : `--${name}`);
  });
  const what = typed.every((t) => t.startsWith("'")) ? 'command' : 'option';
  return `unknown ${what}${typed.length === 1 ? '' : 's'} ${typed.join(', ')}`;
}

/** Runs the CLI and resolves to its exit code; never exits the process itself. */
export async function main(args: string[]): Promise<number> {
  const cli = parser(args);
  try {
    const argv = await cli.parseAsync();
    if (argv.help || argv.version) return ExitCode.ok;
    // No command was given: say how to get going rather than doing nothing silently.
    process.stderr.write(`${await cli.getHelp()}\n`);
    return ExitCode.usage;
  } catch (err) {
    return reportError(err, args.includes('--debug'));
  }
}

function reportError(err: unknown, debug: boolean): number {
  if (err instanceof UsageError) {
    process.stderr.write(`image-clone: ${debug ? err.stack : err.message}\nRun 'image-clone --help' for usage.\n`);
    return ExitCode.usage;
  }
  // Not an error we anticipated: a bug, so show everything that helps to report it.
  process.stderr.write(`image-clone: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return ExitCode.usage;
}
