/** What a command handler may touch of the process: passed in, so the CLI stays testable. */
export interface CliContext {
  version: string;
  env: Record<string, string | undefined>;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  /** stderr is a terminal that takes a spinner. */
  interactive: boolean;
  /** Aborted on SIGINT/SIGTERM: in-flight requests stop, nothing half-done is tagged. */
  signal: AbortSignal;
  /** Set by the handler. */
  exitCode: number;
}
