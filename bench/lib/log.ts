// The progress log every benchmark writes to stderr: [bench:NAME  12s] message.

export function makeLog(name: string): (s: string) => void {
  const started = Date.now();
  return (s) => process.stderr.write(`[bench:${name} ${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${s}\n`);
}
