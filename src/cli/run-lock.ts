// The run lock around every command that writes workloads (sync and restore take the same one, so
// they never interleave). A dry run writes nothing and takes none; --no-lock takes none either.
import type { KubeConfig } from '@kubernetes/client-node';
import { acquireLock } from '../kube/lock.ts';

export interface RunLockOptions {
  /** False for a dry run or --no-lock. */
  enabled: boolean;
  /** image-clone's own namespace, where the Lease lives. */
  namespace: string;
  warn: (line: string) => void;
  /** Called if the lock is lost mid-run (another holder took it over): the run should stop. */
  onLost?: (why: string) => void;
}

/** Runs `run` holding the run lock (when enabled), and releases it however `run` ends. */
export async function withRunLock<T>(kc: KubeConfig, options: RunLockOptions, run: () => Promise<T>): Promise<T> {
  const lock = options.enabled
    ? await acquireLock(kc, { namespace: options.namespace, ...(options.onLost ? { onLost: options.onLost } : {}) })
    : undefined;
  if (options.enabled && !lock) {
    options.warn(`namespace ${options.namespace} does not exist, so this run holds no lock; install manifests/, or pass --own-namespace if image-clone lives elsewhere`);
  }
  try {
    return await run();
  } finally {
    await lock?.release();
  }
}
