// Progress on stderr: a spinner with live text on a terminal, nothing but log lines elsewhere
// (CronJob logs and CI get one plain line per event, no spinner frames or escape codes).
import { createRequire } from 'node:module';
import { chalkStderr } from 'chalk';
import type { Ora } from 'ora';

// ora (and what it loads) is for terminals only: loaded when a spinner starts, not by every run
// (40 ms of a process's start-up, bench:startup). Node >= 22.12 requires an ES module synchronously.
const require = createRequire(import.meta.url);

export interface Progress {
  /** A spinner shows the live status (else update() shows nothing). */
  interactive: boolean;
  /** Live status; shown only by the spinner. */
  update(text: string): void;
  /** A line that stays (warnings, retries, events). */
  log(line: string): void;
  stop(): void;
}

export function createProgress(options: { stream: NodeJS.WriteStream; interactive: boolean; text: string }): Progress {
  if (!options.interactive) {
    return {
      interactive: false,
      update() {},
      log: (line) => void options.stream.write(`${line}\n`),
      stop() {},
    };
  }
  // ora colours its spinner through its own chalk, which ignores NO_COLOR: follow ours instead.
  const { default: ora } = require('ora') as typeof import('ora');
  const spinner: Ora = ora({ text: options.text, stream: options.stream, discardStdin: false, color: chalkStderr.level > 0 ? 'cyan' : false }).start();
  return {
    interactive: true,
    update: (text) => {
      spinner.text = text;
    },
    log: (line) => {
      spinner.clear();
      options.stream.write(`${line}\n`);
      spinner.render();
    },
    stop: () => spinner.stop(),
  };
}
