// Kubernetes Events (events.k8s.io/v1) on the workloads a run acted on, as one series per
// situation: the Event's name is derived from the workload, the reason and the note, so the same
// situation on the next night finds its Event and adds one to its series instead of making another.
// Needs only create and patch on events (a patch that changes nothing reads the series' count).
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { ApiException, EventsV1Api, PatchStrategy, V1MicroTime, setHeaderOptions, type EventsV1Event, type KubeConfig } from '@kubernetes/client-node';
import { apiProxy } from './kubeconfig.ts';
import { kubeError, withRetry } from './api-failures.ts';

export interface WorkloadEvent {
  regarding: { apiVersion: string; kind: string; namespace: string; name: string; uid: string };
  type: 'Normal' | 'Warning';
  reason: string;
  /** At most 1 kB (the API's limit); longer notes are cut. */
  note: string;
}

export const reportingController = 'image-clone';

/** The Event's name: the workload's name and a hash of what makes the situation (kind, reason, note). */
export function eventName(e: WorkloadEvent): string {
  const { kind, namespace, name, uid } = e.regarding;
  const hash = createHash('sha256').update(`${kind}\n${namespace}\n${name}\n${uid}\n${e.reason}\n${e.note}`).digest('hex').slice(0, 16);
  return `${name.slice(0, 200)}.${hash}`;
}

export class EventRecorder {
  readonly #api: EventsV1Api;
  readonly #instance: string;
  readonly #proxy: string | undefined;

  constructor(kc: KubeConfig, instance = `image-clone-${hostname()}`.slice(0, 128)) {
    this.#api = kc.makeApiClient(EventsV1Api);
    this.#instance = instance;
    this.#proxy = apiProxy(kc);
  }

  /** Records the event: a new Event, or one more in the series of the same one. Throws a KubeError. */
  async record(e: WorkloadEvent, now = new Date()): Promise<'created' | 'repeated'> {
    const name = eventName(e);
    const { namespace } = e.regarding;
    const body: EventsV1Event = {
      metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'image-clone' } },
      eventTime: new V1MicroTime(now.getTime()),
      reportingController, reportingInstance: this.#instance, action: 'Sync',
      type: e.type, reason: e.reason, note: e.note.length > 1024 ? `${e.note.slice(0, 1021)}...` : e.note, regarding: e.regarding,
    };
    try {
      await withRetry(() => this.#api.createNamespacedEvent({ namespace, body }));
      return 'created';
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 409)) throw kubeError(err, `create events in ${namespace}`, this.#proxy);
    }
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    try {
      const current = await withRetry(() => this.#api.patchNamespacedEvent({ name, namespace, body: {} }, merge));
      const series = { count: (current.series?.count ?? 1) + 1, lastObservedTime: new V1MicroTime(now.getTime()) };
      await withRetry(() => this.#api.patchNamespacedEvent({ name, namespace, body: { series } }, merge));
      return 'repeated';
    } catch (err) {
      throw kubeError(err, `patch events in ${namespace}`, this.#proxy);
    }
  }
}
