// Progress on stderr: a spinner with live text on a terminal, nothing but log lines elsewhere
// (CronJob logs and CI get one plain line per event, no spinner frames or escape codes).
import { chalkStderr } from 'chalk';
import ora, { type Ora } from 'ora';

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
