// The core's own errors. It knows values, not where they came from: the CLI maps these to exit codes
// and names the option (or variable, or config-file key) that gave the value.

/** A value the core cannot use: a backup location, a custom kind's GROUP/KIND=PATH. One line. */
export class InvalidSettingError extends Error {
  override name = 'InvalidSettingError';
  /** What is wrong, without naming the value (for callers that say where it came from). */
  readonly problem: string;

  /** `subject`: the value as the message names it, e.g. `custom kind example.com/WebApp`. */
  constructor(subject: string, problem: string) {
    super(`${subject}: ${problem}`);
    this.problem = problem;
  }
}
