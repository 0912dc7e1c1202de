// Waiting for the shared machine to calm down before a timed run (every benchmark; bench:copy also
// measures the other load during each run and throws disturbed runs away).
import { sleep } from './concurrency.ts';
import { systemCpu } from './proc.ts';

/**
 * Waits (up to maxMs) until the whole machine is mostly idle: under `busyShare` of all cores busy
 * over a 5 s sample (/proc/stat; `sampleMs` for a shorter one). Other benchmarks or builds on a 2-core machine would otherwise
 * skew the timed runs. Returns the last sample's busy share and how long it waited.
 */
export async function waitForQuietMachine(log: (s: string) => void, options: { busyShare?: number; maxMs?: number; sampleMs?: number } = {}): Promise<{ busy: number; waitedMs: number; quiet: boolean }> {
  const limit = options.busyShare ?? 0.3;
  const deadline = Date.now() + (options.maxMs ?? 300_000);
  const t0 = Date.now();
  let warned = false;
  for (;;) {
    const a = systemCpu();
    await sleep(options.sampleMs ?? 5000);
    const b = systemCpu();
    const busy = (b.busyS - a.busyS) / Math.max(b.totalS - a.totalS, 1e-9);
    if (busy <= limit) return { busy, waitedMs: Date.now() - t0, quiet: true };
    if (Date.now() > deadline) {
      log(`the machine is still ${(busy * 100).toFixed(0)}% busy after ${((Date.now() - t0) / 1000).toFixed(0)} s: timing anyway (see the load column)`);
      return { busy, waitedMs: Date.now() - t0, quiet: false };
    }
    if (!warned) {
      warned = true;
      log(`the machine is ${(busy * 100).toFixed(0)}% busy (other processes): waiting up to ${((options.maxMs ?? 300_000) / 1000).toFixed(0)} s for it to calm down before timing`);
    }
  }
}
