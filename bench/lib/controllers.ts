// Waiting for kube-controller-manager to make its objects (ReplicaSets, pods) and stop writing,
// after a cluster is created or patched.
import type { Harness } from '../../test/harness/harness.ts';
import { readAuditFrom } from './audit-log.ts';
import { sleep } from './concurrency.ts';
import { countObjects, kinds, loadKubeConfig, typedClients, type Kind } from './workloads.ts';

const writeVerbs = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

export interface SettleResult {
  ms: number;
  counts: Record<Kind, number>;
  /** Writes the controllers made while we waited (from the audit log). */
  controllerWrites: number;
  reachedExpected: boolean;
}

/**
 * Waits until the objects the controllers make exist (counts reach `expected`) and the controllers
 * have stopped writing: no create/update/patch/delete in the audit log (leases and events aside)
 * for `quietMs`. The kube-controller-manager's client is rate limited (20 requests/s per
 * controller by default), so thousands of Deployments take it a while.
 */
export async function waitForControllers(h: Harness, expected: Partial<Record<Kind, number>>, log: (s: string) => void, options: { quietMs?: number; timeoutMs?: number; auditOffset?: number } = {}): Promise<SettleResult> {
  const api = typedClients(loadKubeConfig(h.env.kubeconfig));
  const quietMs = options.quietMs ?? 3000;
  const deadline = Date.now() + (options.timeoutMs ?? 900_000);
  const started = performance.now();
  let offset = options.auditOffset ?? 0;
  let lastWrite = Date.now();
  let writes = 0;
  let counts = await countObjects(api);
  let lastReport = 0;
  for (;;) {
    const { events, next } = await readAuditFrom(h.env.auditLog, offset);
    offset = next;
    const w = events.filter((e) => e.stage === 'ResponseComplete' && e.verb && writeVerbs.has(e.verb) && e.objectRef?.resource !== 'leases' && e.objectRef?.resource !== 'events');
    if (w.length) {
      writes += w.length;
      lastWrite = Date.now();
    }
    counts = await countObjects(api);
    const reached = Object.entries(expected).every(([k, n]) => counts[k as Kind] >= (n ?? 0));
    if (reached && Date.now() - lastWrite >= quietMs) return { ms: performance.now() - started, counts, controllerWrites: writes, reachedExpected: true };
    if (Date.now() > deadline) return { ms: performance.now() - started, counts, controllerWrites: writes, reachedExpected: reached };
    if (Date.now() - lastReport > 15_000) {
      lastReport = Date.now();
      log(`  waiting for the controllers: ${kinds.map((k) => `${k} ${counts[k]}${expected[k] !== undefined ? `/${expected[k]}` : ''}`).join(', ')}; ${writes} controller writes so far`);
    }
    await sleep(1000);
  }
}
