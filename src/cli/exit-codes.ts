/** The exit codes image-clone documents in --help and docs/sync.md. */
export const ExitCode = {
  /** Success: everything done, or nothing to do. */
  ok: 0,
  /** The run completed, but some items failed or are lost. */
  failed: 1,
  /** Usage or configuration error, or an internal error: the run could not start or finish. */
  usage: 2,
  /** With --dry-run --exit-code: the plan has changes to make. */
  changesPending: 3,
  /** Another sync holds the run lock: nothing was done. */
  locked: 4,
  /** The run could not start or go on: the API server or backup registry unreachable or refusing every request. */
  unavailable: 5,
  /** Stopped by SIGINT (128 + 2, as shells report it). */
  interrupted: 130,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const exitCodeHelp = [
  'Exit codes:',
  `  ${ExitCode.ok}  success`,
  `  ${ExitCode.failed}  some items failed or are lost`,
  `  ${ExitCode.usage}  usage, configuration, credentials or internal error`,
  `  ${ExitCode.changesPending}  changes pending (sync --dry-run --exit-code)`,
  `  ${ExitCode.locked}  another sync or restore is running (it holds the run lock); nothing was done`,
  `  ${ExitCode.unavailable}  could not start or go on: the API server or the backup registry unreachable or refusing every request, or the backup out of storage or read-only`,
  `  ${ExitCode.interrupted}  interrupted (SIGINT or SIGTERM)`,
].join('\n');
