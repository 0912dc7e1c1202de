// The cluster of bench:scale (issue 15, section 5): 10,000 workloads of every kind over 1,000
// images, and pods added in batches (5,000, then up to 20,000, then 50,000) owned by those
// workloads, in an API server without workload controllers (kubeharness --controllers
// serviceaccount), so that nothing changes the objects between runs and the pods need no
// controller to exist: the benchmark creates them itself, with ownerReferences as the controllers
// would set them (Deployment -> ReplicaSet -> Pod, StatefulSet/DaemonSet/Job/ReplicaSet/
// ReplicationController -> Pod). Objects are POSTed over keep-alive HTTPS connections, many in
// flight: the client must not be what limits the rate.
import { Agent, request } from 'node:https';
import { pool, sleep } from './concurrency.ts';
import { kinds, loadKubeConfig, workloadObject, type ClusterShape, type Kind } from './workloads.ts';

/** A kind that owns pods directly (Deployments through their ReplicaSet). */
const podOwners = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'ReplicaSet', 'ReplicationController'] as const satisfies readonly Kind[];

const collection: Record<Kind | 'Namespace' | 'ServiceAccount', (ns: string) => string> = {
  Namespace: () => '/api/v1/namespaces',
  ServiceAccount: (ns) => `/api/v1/namespaces/${ns}/serviceaccounts`,
  Deployment: (ns) => `/apis/apps/v1/namespaces/${ns}/deployments`,
  StatefulSet: (ns) => `/apis/apps/v1/namespaces/${ns}/statefulsets`,
  DaemonSet: (ns) => `/apis/apps/v1/namespaces/${ns}/daemonsets`,
  ReplicaSet: (ns) => `/apis/apps/v1/namespaces/${ns}/replicasets`,
  CronJob: (ns) => `/apis/batch/v1/namespaces/${ns}/cronjobs`,
  Job: (ns) => `/apis/batch/v1/namespaces/${ns}/jobs`,
  ReplicationController: (ns) => `/api/v1/namespaces/${ns}/replicationcontrollers`,
  Pod: (ns) => `/api/v1/namespaces/${ns}/pods`,
};

const apiVersionOf = (kind: Kind) => (kind === 'ReplicationController' || kind === 'Pod' ? 'v1' : kind === 'Job' || kind === 'CronJob' ? 'batch/v1' : 'apps/v1');

/** A minimal Kubernetes REST client: POST a JSON object, DELETE a collection; keep-alive, client certificates from the kubeconfig. */
export class FastClient {
  readonly #server: URL;
  readonly #options: Record<string, unknown>;
  readonly #agent: Agent;
  requests = 0;

  private constructor(server: string, options: Record<string, unknown>, inFlight: number) {
    this.#server = new URL(server);
    this.#options = options;
    this.#agent = new Agent({ keepAlive: true, maxSockets: inFlight });
  }

  static async fromKubeconfig(kubeconfig: string, inFlight: number): Promise<FastClient> {
    const kc = loadKubeConfig(kubeconfig);
    const options: Record<string, unknown> = {};
    await kc.applyToHTTPSOptions(options as never);
    return new FastClient(kc.getCurrentCluster()!.server, options, inFlight);
  }

  /** One request; resolves with the status and parsed body. Retries 429, 5xx and broken connections. */
  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    for (let attempt = 0; ; attempt++) {
      this.requests++;
      try {
        const r = await new Promise<{ status: number; body: any }>((resolve, reject) => {
          const req = request({
            ...this.#options, agent: this.#agent, method, host: this.#server.hostname, port: this.#server.port, path,
            headers: { accept: 'application/json', ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}) },
          }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let parsed: any = text;
              try {
                parsed = JSON.parse(text);
              } catch {
                // not JSON: kept as text
              }
              resolve({ status: res.statusCode ?? 0, body: parsed });
            });
            res.on('error', reject);
          });
          req.on('error', reject);
          req.end(data);
        });
        if ((r.status === 429 || r.status >= 500) && attempt < 6) {
          await sleep(200 * 2 ** attempt);
          continue;
        }
        return r;
      } catch (err) {
        if (attempt >= 6) throw err;
        await sleep(200 * 2 ** attempt);
      }
    }
  }

  /** Creates `object` (409 counts as done, returning the existing one's uid by a GET). Returns its uid. */
  async create(kind: Kind | 'Namespace' | 'ServiceAccount', object: { metadata: { name: string; namespace?: string } }): Promise<string> {
    const path = collection[kind](object.metadata.namespace ?? '');
    const r = await this.call('POST', path, object);
    if (r.status === 409) {
      const got = await this.call('GET', `${path}/${object.metadata.name}`);
      if (got.status === 200) return got.body.metadata.uid as string;
    }
    if (r.status !== 201 && r.status !== 200) throw new Error(`create ${kind} ${object.metadata.namespace ?? ''}/${object.metadata.name}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    return r.body.metadata.uid as string;
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** One pod-owning object: what a pod of it references, and the pod template's image. */
interface Owner {
  namespace: string;
  /** The object pods name as their controller (for a Deployment: its ReplicaSet). */
  ref: { apiVersion: string; kind: string; name: string; uid: string; controller: true; blockOwnerDeletion: true };
  image: string;
  podLabels: Record<string, string>;
}

export interface ScaleCluster {
  namespaces: string[];
  workloads: number;
  byKind: Record<Kind, number>;
  owners: Owner[];
  /** Pods created so far, by batch. */
  podBatches: number[];
  createMs: number;
}

export const batchLabel = 'bench.image-clone.io/pod-batch';

/**
 * Creates the namespaces (with their default ServiceAccount: no controller makes it here), the
 * workloads of `shape` (workload j runs images[j mod images]), and for every Deployment the
 * ReplicaSet its controller would have made. No pods yet (addPods).
 */
export async function createScaleCluster(client: FastClient, shape: ClusterShape, images: string[], inFlight: number, log: (s: string) => void): Promise<ScaleCluster> {
  const started = performance.now();
  const namespaces = Array.from({ length: shape.namespaces }, (_, i) => `${shape.namespacePrefix}-${String(i + 1).padStart(3, '0')}`);
  await pool(namespaces, inFlight, async (name) => {
    await client.create('Namespace', { metadata: { name } });
    await client.create('ServiceAccount', { metadata: { name: 'default', namespace: name } });
  });
  const jobs: Array<{ kind: Kind; object: any; image: string }> = [];
  let j = 0;
  for (const ns of namespaces) {
    for (const kind of kinds) {
      for (let n = 1; n <= shape.perNamespace[kind]; n++) {
        const image = images[j++ % images.length]!;
        // Replicas as the pods will be (about 5 each); nothing acts on them without controllers.
        jobs.push({ kind, image, object: workloadObject(kind, `${kind.toLowerCase()}-${n}`, ns, image, { replicas: kind === 'Deployment' ? 5 : 0, suspendJobs: true }) });
      }
    }
  }
  const owners: Owner[] = [];
  let done = 0;
  await pool(jobs, inFlight, async ({ kind, object, image }) => {
    const { name, namespace } = object.metadata as { name: string; namespace: string };
    const uid = await client.create(kind, object);
    if (++done % 2000 === 0) log(`  created ${done}/${jobs.length} workloads (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    if (!(podOwners as readonly string[]).includes(kind)) return;
    const podLabels: Record<string, string> = { app: name };
    if (kind === 'Deployment') {
      // The ReplicaSet the deployment controller would make: owned by the Deployment, pod-template-hash in its name and labels.
      const hash = `h${(uid.replace(/-/g, '').slice(0, 8))}`;
      const rs = workloadObject('ReplicaSet', `${name}-${hash}`, namespace, image, { replicas: 5, suspendJobs: true }) as any;
      rs.metadata.labels = { ...rs.metadata.labels, 'pod-template-hash': hash };
      rs.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'Deployment', name, uid, controller: true, blockOwnerDeletion: true }];
      rs.spec.selector.matchLabels['pod-template-hash'] = hash;
      rs.spec.template.metadata.labels['pod-template-hash'] = hash;
      const rsUid = await client.create('ReplicaSet', rs);
      owners.push({ namespace, image, podLabels: { app: name, 'pod-template-hash': hash }, ref: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.metadata.name, uid: rsUid, controller: true, blockOwnerDeletion: true } });
      return;
    }
    if (kind === 'Job') podLabels['batch.kubernetes.io/controller-uid'] = uid;
    owners.push({ namespace, image, podLabels, ref: { apiVersion: apiVersionOf(kind), kind, name, uid, controller: true, blockOwnerDeletion: true } });
  });
  // A stable order (creation finished out of order): pods go round-robin over the owners.
  owners.sort((a, b) => (a.namespace + a.ref.name).localeCompare(b.namespace + b.ref.name));
  const byKind = Object.fromEntries(kinds.map((k) => [k, shape.namespaces * shape.perNamespace[k]])) as Record<Kind, number>;
  return { namespaces, workloads: jobs.length, byKind, owners, podBatches: [], createMs: performance.now() - started };
}

/**
 * Adds pods until `total` owned pods exist (bare Pods, which are workloads, not counted), as
 * batch number podBatches.length + 1: pod k belongs to owner k mod owners, so every workload
 * that has pods gets about as many. Returns the time it took.
 */
export async function addPods(client: FastClient, cluster: ScaleCluster, total: number, inFlight: number, log: (s: string) => void): Promise<number> {
  const started = performance.now();
  const have = cluster.podBatches.reduce((a, b) => a + b, 0);
  const batch = cluster.podBatches.length + 1;
  const indexes = Array.from({ length: Math.max(0, total - have) }, (_, i) => have + i);
  let done = 0;
  await pool(indexes, inFlight, async (k) => {
    const owner = cluster.owners[k % cluster.owners.length]!;
    const pod = workloadObject('Pod', `${owner.ref.name}-p${k}`, owner.namespace, owner.image, { replicas: 0, suspendJobs: true }) as any;
    pod.metadata.labels = { ...owner.podLabels, [batchLabel]: String(batch) };
    pod.metadata.ownerReferences = [owner.ref];
    if (owner.ref.kind === 'Job') pod.spec.restartPolicy = 'Never';
    await client.create('Pod', pod);
    if (++done % 5000 === 0) log(`  created ${done}/${indexes.length} pods (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  });
  cluster.podBatches.push(indexes.length);
  return performance.now() - started;
}

/** Deletes the pods of the last batch (deletecollection per namespace: pods on no node go at once). */
export async function removeLastPodBatch(client: FastClient, cluster: ScaleCluster, inFlight: number): Promise<number> {
  const started = performance.now();
  const batch = cluster.podBatches.length;
  await pool(cluster.namespaces, inFlight, async (ns) => {
    const r = await client.call('DELETE', `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(`${batchLabel}=${batch}`)}`);
    if (r.status !== 200) throw new Error(`delete pods of batch ${batch} in ${ns}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
  });
  cluster.podBatches.pop();
  return performance.now() - started;
}
