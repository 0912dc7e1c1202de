// A run lock: a coordination.k8s.io Lease in image-clone's namespace, so that two syncs (a laptop
// and the CronJob) never run at once. The holder renews it while it runs; a lease whose holder
// died is taken over once its duration has passed since the last renewal.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ApiException, CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { LockError } from '../errors.ts';
import { apiProxy } from './kubeconfig.ts';
import { kubeError } from './api-failures.ts';

export const leaseName = 'image-clone-sync';

/**
 * Lease times are MicroTime, which the API server parses with exactly six fractional digits; the
 * client would send a Date with three, so we send the string (the serializer passes strings on).
 */
function microTime(date: Date): Date {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;
}

/** A fresh spec each write: fields read back as Dates would be sent with three digits again. */
function leaseSpec(holder: string | undefined, duration: number, acquired: Date | undefined, renewed: Date | undefined) {
  return {
    ...(holder ? { holderIdentity: holder } : {}),
    leaseDurationSeconds: duration,
    ...(acquired ? { acquireTime: microTime(acquired) } : {}),
    ...(renewed ? { renewTime: microTime(renewed) } : {}),
  };
}

export interface LockOptions {
  namespace: string;
  durationSeconds?: number;
  /** Told when the lock is lost while running (renewal failed): the run must stop. */
  onLost?: (why: string) => void;
  now?: () => Date;
}

export interface HeldLock {
  holder: string;
  release(): Promise<void>;
}

/**
 * Takes the lock, or throws LockError naming who holds it. Resolves to undefined when the
 * namespace does not exist (image-clone is not installed in this cluster): nothing to coordinate with.
 */
export async function acquireLock(kc: KubeConfig, options: LockOptions): Promise<HeldLock | undefined> {
  const api = kc.makeApiClient(CoordinationV1Api);
  const proxy = apiProxy(kc);
  const { namespace } = options;
  const duration = options.durationSeconds ?? 60;
  const now = options.now ?? (() => new Date());
  const holder = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const doing = `take the run lock (Lease ${namespace}/${leaseName})`;
  const acquired = now();
  const spec = () => leaseSpec(holder, duration, acquired, now());

  let lease: V1Lease | undefined;
  try {
    lease = await api.readNamespacedLease({ name: leaseName, namespace });
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 404)) throw kubeError(err, doing, proxy);
  }
  try {
    if (!lease) {
      lease = await api.createNamespacedLease({ namespace, body: { metadata: { name: leaseName, namespace }, spec: spec() } });
    } else {
      const current = lease.spec ?? {};
      const renewed = current.renewTime ? new Date(current.renewTime).getTime() : 0;
      const expires = renewed + (current.leaseDurationSeconds ?? duration) * 1000;
      if (current.holderIdentity && expires > now().getTime()) {
        const ago = Math.max(0, Math.round((now().getTime() - renewed) / 1000));
        throw new LockError(`another sync is running: ${current.holderIdentity} holds the run lock (Lease ${namespace}/${leaseName}, renewed ${ago}s ago); try again when it ends, or after ${Math.ceil((expires - now().getTime()) / 1000)}s if it died`);
      }
      // Free, or its holder stopped renewing: take it over. The resourceVersion makes this a compare-and-swap.
      lease = await api.replaceNamespacedLease({ name: leaseName, namespace, body: { metadata: lease.metadata, spec: spec() } });
    }
  } catch (err) {
    if (err instanceof LockError) throw err;
    if (err instanceof ApiException && err.code === 404 && !lease) return undefined; // no such namespace
    if (err instanceof ApiException && err.code === 409) throw new LockError(`another sync took the run lock (Lease ${namespace}/${leaseName}) at the same moment; try again later`);
    throw kubeError(err, doing, proxy);
  }

  let current = lease;
  let stopped = false;
  const renew = async () => {
    try {
      current = await api.replaceNamespacedLease({ name: leaseName, namespace, body: { metadata: current.metadata, spec: spec() } });
    } catch (err) {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      options.onLost?.(`lost the run lock (Lease ${namespace}/${leaseName}): ${kubeError(err, 'renew it', proxy).message}`);
    }
  };
  const timer = setInterval(renew, (duration * 1000) / 3);
  timer.unref();
  return {
    holder,
    async release() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      // Give it up at once, so the next run need not wait for it to expire.
      await api.replaceNamespacedLease({ name: leaseName, namespace, body: { metadata: current.metadata, spec: leaseSpec(undefined, duration, undefined, undefined) } }).catch(() => {});
    },
  };
}
