// The timed pair bench:plan and bench:sync's no-op part repeat: `kubectl get ... -A -o json`
// listing every workload, then one image-clone run, each with the list requests the API server
// saw from it (audit log).
import type { Harness } from '../../test/harness/harness.ts';
import { listRequestsBy, readAuditFrom } from './audit-log.ts';
import { runImageClone, type CliRun } from './image-clone-runs.ts';
import { kubectlList, type ListRun } from './kubectl.ts';
import { loadAverage } from './proc.ts';
import { fileSize } from './registry-trace.ts';

export interface TimedPair {
  /** NaN times and no items when kubectl is missing. */
  kubectl: ListRun;
  cli: CliRun;
  kubectlServer: ReturnType<typeof listRequestsBy>;
  cliServer: ReturnType<typeof listRequestsBy>;
  /** Load average before the pair. */
  load: string;
}

const notRun: ListRun = { run: { code: -1, stdout: '', stderr: '', wallMs: NaN, userS: NaN, sysS: NaN, maxRssKiB: NaN }, items: 0, byKind: {} };

/** kubectl's listing (unless `kubectl` is undefined), then image-clone with `args`. */
export async function timedPair(h: Harness, kubectl: string | undefined, kubeHome: string, args: string[], env: NodeJS.ProcessEnv): Promise<TimedPair> {
  const load = await loadAverage();
  let kubectlRun: ListRun | undefined;
  let a0 = await fileSize(h.env.auditLog);
  let kubectlServer = listRequestsBy([], /./);
  if (kubectl) {
    kubectlRun = await kubectlList(kubectl, h.env.kubeconfig, kubeHome);
    kubectlServer = listRequestsBy((await readAuditFrom(h.env.auditLog, a0)).events, /^kubectl/);
  }
  a0 = await fileSize(h.env.auditLog);
  const cli = await runImageClone(h, args, { env });
  const cliServer = listRequestsBy((await readAuditFrom(h.env.auditLog, a0)).events, /^(?!kubectl|kube-)/);
  return { kubectl: kubectlRun ?? notRun, cli, kubectlServer, cliServer, load };
}
