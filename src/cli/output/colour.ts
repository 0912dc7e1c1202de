// Colour by meaning, from chalk only: off when the stream is not a terminal, with NO_COLOR, or with
// --no-color (chalk's own detection, plus NO_COLOR in main.ts). Tables measure text without it.
import chalk, { chalkStderr } from 'chalk';

const good = new Set(['copied', 'present', 'patched', 'restored', 'unchanged']);
const pending = new Set(['copy', 'patch', 'would restore']);
const bad = new Set(['error', 'failed', 'lost']);

/** An action or result word, coloured for stdout: green done, cyan to do, red failed, yellow left alone. */
export function outcome(word: string): string {
  if (good.has(word)) return chalk.green(word);
  if (pending.has(word)) return chalk.cyan(word);
  if (bad.has(word)) return chalk.red(word);
  return chalk.yellow(word);
}

/** A log line's level, coloured for stderr. */
export function level(kind: 'warn' | 'error', text: string): string {
  return kind === 'error' ? chalkStderr.red(text) : chalkStderr.yellow(text);
}
