// Small text helpers shared by every layer.

/** The first line of an error's message: what one report or log line has room for. */
export function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
