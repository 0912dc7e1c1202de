// What the integration (and node) tests set up: the harness with its admin clients, a registry
// config and the --insecure-registry flags; namespaces of a test's own, deleted when it ends; the
// workload objects they create, each kind made one way; a pod status as a kubelet would report it;
// a gate that holds a proxied request until the test opens it.
import type { TestContext } from 'node:test';
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type KubernetesObject, type KubernetesObjectApi } from '@kubernetes/client-node';
import { harnessEnv } from '../harness/harness.ts';
import { adminKubeConfig, insecureFlags, kubeClients, serviceAccountToken, writeRegistryConfig, type KubeClients } from './helpers.ts';

/**
 * The harness's env.json, its admin clients, a namespace maker, a registry config holding the
 * admin logins of `registryConfig` (by default of every registry that has one), and the
 * `--insecure-registry` flags for every harness registry.
 */
export async function harnessFixtures(options: { registryConfig?: string[] } = {}) {
  const env = await harnessEnv();
  const kube = kubeClients(adminKubeConfig(env));
  return {
    env, kube, namespaces: new Namespaces(kube.core),
    registryConfig: await writeRegistryConfig(env, options.registryConfig), insecure: insecureFlags(env.registries),
  };
}

/** The parts of a node:test context a namespace needs to be deleted when its test ends. */
type Scope = Pick<TestContext, 'after'>;

/**
 * Namespaces named PREFIX-xxxxx (generateName): one made for a test is deleted when that test ends;
 * one made in a before() hook, by deleteAll() in the file's after().
 */
export class Namespaces {
  /** Every namespace made and not deleted yet. */
  readonly names: string[] = [];
  readonly #core: CoreV1Api;

  constructor(core: CoreV1Api) {
    this.#core = core;
  }

  async create(prefix: string, t?: Scope): Promise<string> {
    const name = (await this.#core.createNamespace({ body: { metadata: { generateName: `${prefix}-` } } })).metadata!.name!;
    this.names.push(name);
    t?.after(() => this.delete(name));
    return name;
  }

  async delete(name: string): Promise<void> {
    const at = this.names.indexOf(name);
    if (at >= 0) this.names.splice(at, 1);
    await this.#core.deleteNamespace({ name }).catch(() => {});
  }

  async deleteAll(): Promise<void> {
    for (const name of [...this.names]) await this.delete(name);
  }
}

type Doc = Record<string, any>;

/** One container named `app` running this image, or containers given in full. */
type Containers = string | Array<{ name: string; image: string }>;

export interface WorkloadOptions {
  /** The app label its selector matches and its pods carry (default: its name). */
  app?: string;
  /** spec.replicas, set only when given (otherwise the API server's default, 1). */
  replicas?: number;
  /** Labels, annotations: the object's metadata besides its name. */
  metadata?: Doc;
  /** More of the workload's own spec (suspend, backoffLimit, schedule, ...). */
  spec?: Doc;
  /** More of the pod spec (initContainers, restartPolicy, imagePullSecrets, ...). */
  pod?: Doc;
}

const containerList = (containers: Containers) => typeof containers === 'string' ? [{ name: 'app', image: containers }] : containers;

/** A pod template labelled app=APP. */
export const podTemplate = (app: string, containers: Containers, pod: Doc = {}) => ({
  metadata: { labels: { app } },
  spec: { containers: containerList(containers), ...pod },
});

/** What every controller of pods has: a name, replicas if asked for, a selector app=APP, a pod template. */
function controller(apiVersion: string, kind: string, name: string, containers: Containers, o: WorkloadOptions, selector?: Doc) {
  const app = o.app ?? name;
  return {
    apiVersion, kind, metadata: { name, ...o.metadata },
    spec: { ...(o.replicas === undefined ? {} : { replicas: o.replicas }), selector: selector ?? { matchLabels: { app } }, template: podTemplate(app, containers, o.pod), ...o.spec },
  };
}

export const deployment = (name: string, containers: Containers, o: WorkloadOptions = {}) => controller('apps/v1', 'Deployment', name, containers, o);
export const statefulSet = (name: string, containers: Containers, o: WorkloadOptions = {}) => controller('apps/v1', 'StatefulSet', name, containers, { ...o, spec: { serviceName: name, ...o.spec } });
export const daemonSet = (name: string, containers: Containers, o: WorkloadOptions = {}) => controller('apps/v1', 'DaemonSet', name, containers, o);
export const replicaSet = (name: string, containers: Containers, o: WorkloadOptions = {}) => controller('apps/v1', 'ReplicaSet', name, containers, o);
export const replicationController = (name: string, containers: Containers, o: WorkloadOptions = {}) => controller('v1', 'ReplicationController', name, containers, o, { app: o.app ?? name });

/** A CronJob at 03:00 whose pods restart OnFailure unless `pod` says otherwise. */
export const cronJob = (name: string, containers: Containers, o: WorkloadOptions = {}) => ({
  apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name, ...o.metadata },
  spec: { schedule: '0 3 * * *', ...o.spec, jobTemplate: { spec: { template: podTemplate(name, containers, { restartPolicy: 'OnFailure', ...o.pod }) } } },
});

/** A Job whose pod restarts Never unless `pod` says otherwise. */
export const job = (name: string, containers: Containers, o: WorkloadOptions = {}) => ({
  apiVersion: 'batch/v1', kind: 'Job', metadata: { name, ...o.metadata },
  spec: { ...o.spec, template: podTemplate(name, containers, { restartPolicy: 'Never', ...o.pod }) },
});

/** A bare Pod (no labels unless `metadata` has them). */
export const pod = (name: string, containers: Containers, o: Pick<WorkloadOptions, 'metadata' | 'pod'> = {}) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, ...o.metadata },
  spec: { containers: containerList(containers), ...o.pod },
});

/** Creates one of the objects above in `namespace`, through the API for any kind. */
export async function createIn(objects: KubernetesObjectApi, namespace: string, doc: Doc): Promise<void> {
  await objects.create({ ...doc, metadata: { ...doc.metadata, namespace } } as KubernetesObject);
}

/**
 * Writes into a pod's status what a kubelet would after the pull: Running, its container `app`
 * running `image` as `imageID` (no kubelet runs in the harness, so the test says it); `more`: other
 * status fields (ephemeralContainerStatuses, ...).
 */
export async function reportRunning(core: CoreV1Api, namespace: string, name: string, image: string, imageID: string, more: Doc = {}): Promise<void> {
  await core.patchNamespacedPodStatus({ name, namespace, body: {
    status: { phase: 'Running', containerStatuses: [{ name: 'app', image, imageID, ready: true, restartCount: 0, started: true, state: { running: {} } }], ...more },
  } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

export interface Gate {
  /** Resolves when open() is called: give it to the proxy as its gate. */
  until: Promise<void>;
  open(): void;
  /** Resolves when the proxy holds a request: onHeld is the proxy's onEligible. */
  held: Promise<void>;
  onHeld(): void;
}

/** A gate for a fault or API proxy: it holds requests until open(), and says when the first arrives. */
export function gate(): Gate {
  let open!: () => void;
  let onHeld!: () => void;
  const until = new Promise<void>((resolve) => (open = resolve));
  const held = new Promise<void>((resolve) => (onHeld = resolve));
  return { until, open, held, onHeld };
}

/**
 * A ServiceAccount `name` in `namespace` allowed everything (a ClusterRoleBinding NAMESPACE-NAME to
 * cluster-admin), and a token for it from the TokenRequest API.
 */
export async function clusterAdminToken(kube: KubeClients, namespace: string, name: string, expirationSeconds?: number): Promise<string> {
  await kube.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  await kube.rbac.createClusterRoleBinding({ body: {
    metadata: { name: `${namespace}-${name}` }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'ServiceAccount', name, namespace }],
  } });
  return serviceAccountToken(kube.core, namespace, name, expirationSeconds);
}
