// Errors the user can act on. They are printed as one line without a stack (unless --debug) and
// mapped to a documented exit code by the CLI; anything else is a bug and shows its stack.

/** Bad flags, arguments or configuration: the run could not start (exit 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}
