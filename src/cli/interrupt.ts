// SIGINT and SIGTERM: every command stops at the next safe point and exits 130 with one line.
// Reads (listing, resolving) are abandoned at once; copies abort (nothing half-done is tagged);
// patches already sent finish (each is atomic), the others are not sent; the run lock is released.

/**
 * Resolves as `work` does, or rejects with the signal's reason as soon as it aborts. Only for work
 * that writes nothing (listing, resolving): it is abandoned, not undone.
 */
export function unlessInterrupted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The one line an interrupted command ends with. */
export function interruptedLine(signal: AbortSignal): string {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'interrupted';
  return `image-clone: ${reason}: stopped; nothing half-done was tagged or patched, and the next run goes on from here\n`;
}
