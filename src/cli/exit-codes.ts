/** The exit codes image-clone documents in --help and docs/sync.md. */
export const ExitCode = {
  /** Success: everything done, or nothing to do. */
  ok: 0,
  /** The run completed, but some items failed or are lost. */
  failed: 1,
  /** Usage, configuration, credentials or permission error: the run could not start. */
  usage: 2,
  /** With --dry-run --exit-code: the plan has changes to make. */
  changesPending: 3,
  /** Another sync holds the run lock: nothing was done. */
  locked: 4,
  /** The run could not start or go on: the API server or backup registry unreachable or refusing every request. */
  unavailable: 5,
  /** An error image-clone did not anticipate: a bug (EX_SOFTWARE, as sysexits.h numbers it). */
  internal: 70,
  /** Stopped by SIGINT (128 + 2, as shells report it). */
  interrupted: 130,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const exitCodeHelp = [
  'Exit codes:',
  `  ${ExitCode.ok}  success`,
  `  ${ExitCode.failed}  some items failed or are lost`,
  `  ${ExitCode.usage}  usage, configuration, credentials or permission (RBAC) error`,
  `  ${ExitCode.changesPending}  changes pending (sync --dry-run --exit-code)`,
  `  ${ExitCode.locked}  another sync or restore is running (it holds the run lock); nothing was done`,
  `  ${ExitCode.unavailable}  could not start or go on: the API server or the backup registry unreachable or refusing every request, or the backup out of storage or read-only`,
  `  ${ExitCode.internal}  internal error: a bug in image-clone (please report it, with the output of --debug)`,
  `  ${ExitCode.interrupted}  interrupted (SIGINT or SIGTERM)`,
].join('\n');
