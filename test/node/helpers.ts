// Shared by the node tests (test/node/, run with `with-harness.ts --node`): pods that really run on
// the harness's node, containerd's own view of its images, and registries of a test's own.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import type { BatchV1Api, CoreV1Api, V1Job, V1Pod } from '@kubernetes/client-node';
import { harnessEnv, repoRoot, type HarnessEnv, type HarnessRegistry } from '../harness/harness.ts';
import { nodeAddress, trustRegistryHost } from '../harness/node.ts';
import { adminKubeConfig, kubeClients, waitUntil } from '../integration/helpers.ts';

export type NodeEnv = HarnessEnv & { node: NonNullable<HarnessEnv['node']> };

/** env.json of a harness started with its node; fails clearly when the node is not there. */
export async function nodeEnv(): Promise<NodeEnv> {
  const env = await harnessEnv();
  if (!env.node) throw new Error('this test needs the harness node: run it with `node test/harness/with-harness.ts --node ...` (npm run test:node)');
  return env as NodeEnv;
}

/** The digest in an imageID (`host/repo@sha256:...`, or a bare `sha256:...`). */
export const digestOf = (imageId: string | undefined) => /(sha256:[a-f0-9]{64})$/.exec(imageId ?? '')?.[1];

const isRunningAndReady = (pod: V1Pod) => pod.status?.phase === 'Running' && (pod.status.containerStatuses ?? []).every((s) => s.ready && s.state?.running);

/**
 * Waits until the pods matching `labelSelector` are exactly `count`, none terminating, all Running and
 * ready, and all pass `check` (for example: their spec names the backup).
 */
export async function waitForRunningPods(core: CoreV1Api, namespace: string, labelSelector: string, count: number, timeoutMs = 90_000, check: (pod: V1Pod) => boolean = () => true): Promise<V1Pod[]> {
  let pods: V1Pod[] = [];
  await waitUntil(`${count} running pod(s) ${labelSelector} in ${namespace}`, async () => {
    pods = (await core.listNamespacedPod({ namespace, labelSelector })).items;
    return pods.length === count && pods.every((p) => !p.metadata?.deletionTimestamp && isRunningAndReady(p) && check(p));
  }, timeoutMs).catch(async (err: Error) => {
    throw new Error(`${err.message}; pods: ${JSON.stringify(pods.map((p) => ({ name: p.metadata?.name, image: p.spec?.containers[0]?.image, deleting: !!p.metadata?.deletionTimestamp, phase: p.status?.phase, statuses: p.status?.containerStatuses?.map((s) => s.state), init: p.status?.initContainerStatuses?.map((s) => s.state) })))}`);
  });
  return pods;
}

/** Waits for a pod to reach a phase (Succeeded, Failed, Running). */
export async function waitForPodPhase(core: CoreV1Api, namespace: string, name: string, phase: string, timeoutMs = 90_000): Promise<V1Pod> {
  let pod: V1Pod | undefined;
  await waitUntil(`pod ${namespace}/${name} ${phase}`, async () => {
    pod = await core.readNamespacedPod({ name, namespace }).catch(() => undefined);
    return pod?.status?.phase === phase;
  }, timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}; status: ${JSON.stringify(pod?.status)}`);
  });
  return pod!;
}

/** `ctr` against the node's containerd, in the namespace the CRI uses. */
export function ctr(env: NodeEnv, ...args: string[]): string {
  return execFileSync('ctr', ['--address', env.node.containerdSocket, '--namespace', 'k8s.io', ...args], { encoding: 'utf8' });
}

/** The node's images as containerd lists them: name -> target digest. */
export function nodeImages(env: NodeEnv): Map<string, string> {
  const images = new Map<string, string>();
  for (const line of ctr(env, 'images', 'ls').split('\n').slice(1).filter(Boolean)) {
    const [ref, , digest] = line.split(/\s+/);
    if (ref && digest) images.set(ref, digest);
  }
  return images;
}

/**
 * "Rotates" the node's image store: removes every image except the pod sandbox image (a new node
 * gets that from its distribution's registry, not from the one that is lost), synchronously, so that
 * their content is garbage-collected too.
 */
export function wipeNodeImages(env: NodeEnv): string[] {
  const images = nodeImages(env);
  const pause = images.get(env.node.sandboxImage);
  const doomed = [...images].filter(([, digest]) => digest !== pause).map(([ref]) => ref);
  if (doomed.length) ctr(env, 'images', 'rm', '--sync', ...doomed);
  return doomed;
}

/** A registry set of a test's own on the node address (`regharness serve`), which the test may destroy. */
export interface OwnRegistries {
  registries: Record<string, HarnessRegistry>;
  trace: string;
  /** Stops the registries and deletes their storage. */
  destroy(): Promise<void>;
}

export async function startOwnRegistries(): Promise<OwnRegistries> {
  const dir = await mkdtemp(join(tmpdir(), 'image-clone-node-registry-'));
  const trace = join(dir, 'requests.jsonl');
  const child: ChildProcess = spawn(join(repoRoot, '.harness/bin/regharness'),
    ['serve', '--dir', join(dir, 'storage'), '--listen-ip', nodeAddress, '--trace-requests', trace], { stdio: ['pipe', 'pipe', 'inherit'] });
  const path = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`regharness serve exited (${code})`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^READY (.+)$/.exec(line);
      if (match) resolve(match[1]!);
    });
  });
  const { registries } = JSON.parse(await readFile(path, 'utf8')) as { registries: Record<string, HarnessRegistry> };
  for (const registry of Object.values(registries)) await trustRegistryHost(registry.host);
  return {
    registries, trace,
    destroy: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Lines of a registry request trace from line `from` on. */
export async function traceLines(path: string, from = 0): Promise<Array<{ registry: string; method: string; path: string; status: number }>> {
  const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
  return lines.slice(from).map((l) => JSON.parse(l));
}

/** A Job made from a CronJob's template, as `kubectl create job --from=cronjob/NAME` does. */
export async function jobFromCronJob(batch: BatchV1Api, namespace: string, cronJob: string, name: string): Promise<void> {
  const cj = await batch.readNamespacedCronJob({ name: cronJob, namespace });
  await batch.createNamespacedJob({
    namespace,
    body: {
      metadata: {
        name, namespace, annotations: { 'cronjob.kubernetes.io/instantiate': 'manual' },
        labels: cj.spec?.jobTemplate.metadata?.labels ?? {},
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: cronJob, uid: cj.metadata!.uid!, controller: true }],
      },
      spec: cj.spec!.jobTemplate.spec!,
    },
  });
}

/** Runs a Job made from a CronJob and waits until it has finished: its condition, its pods. */
export async function runJobFromCronJob(clients: { batch: BatchV1Api; core: CoreV1Api }, namespace: string, cronJob: string, name: string): Promise<{ job: V1Job; pods: V1Pod[] }> {
  const { batch, core } = clients;
  await jobFromCronJob(batch, namespace, cronJob, name);
  let job: V1Job | undefined;
  await waitUntil(`Job ${name} to finish`, async () => {
    job = await batch.readNamespacedJob({ name, namespace });
    return !!job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  }, 120_000).catch(async (err: Error) => {
    const pods = (await core.listNamespacedPod({ namespace, labelSelector: `job-name=${name}` })).items;
    throw new Error(`${err.message}: ${JSON.stringify(job?.status)} ${JSON.stringify(pods.map((p) => p.status))}`);
  });
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: `job-name=${name}` })).items;
  return { job: job!, pods };
}

/** `kubectl apply -k DIR` (DIR relative to the repository), as docs/cronjob.md tells users, with the admin kubeconfig. */
export function applyKustomization(env: HarnessEnv, dir: string): string {
  return execFileSync('kubectl', ['--kubeconfig', env.kubeconfig, 'apply', '-k', join(repoRoot, dir)], { encoding: 'utf8' });
}

/**
 * The Secret image-clone-pull in the image-clone namespace (created if missing): the backup's
 * pull-only identity, which `--pull-secret image-clone-pull` copies into patched namespaces.
 */
export async function ensurePullSecret(env: HarnessEnv): Promise<void> {
  const { core } = kubeClients(adminKubeConfig(env));
  await core.createNamespace({ body: { metadata: { name: 'image-clone' } } }).catch(() => {});
  const backup = env.registries.backup;
  const auth = Buffer.from(`${backup.reader!.username}:${backup.reader!.password}`).toString('base64');
  const body = { metadata: { name: 'image-clone-pull' }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': JSON.stringify({ auths: { [backup.host]: { auth } } }) } };
  await core.createNamespacedSecret({ namespace: 'image-clone', body }).catch(async () => {
    await core.replaceNamespacedSecret({ name: 'image-clone-pull', namespace: 'image-clone', body });
  });
}

/**
 * Writes a user's overlay into `dir`, as docs/cronjob.md has users write one: `base` (a folder of
 * the repository's manifests), image-clone's image by digest, and the CronJob's container given
 * these IMAGE_CLONE_* variables; `namespace` moves everything there.
 */
export async function writeCronJobOverlay(dir: string, options: { base: string; image: string; digest: string; env: Record<string, string>; namespace?: string }): Promise<void> {
  const env = Object.entries(options.env).map(([name, value]) => `                      - name: ${name}\n                        value: ${value}\n`).join('');
  await writeFile(join(dir, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
${options.namespace ? `namespace: ${options.namespace}\n` : ''}resources:
  - ${relative(dir, join(repoRoot, options.base))}
images:
  - name: registry.example.com/image-clone
    newName: ${options.image}
    digest: ${options.digest}
patches:
  - patch: |-
      apiVersion: batch/v1
      kind: CronJob
      metadata:
        name: image-clone
        namespace: image-clone
      spec:
        jobTemplate:
          spec:
            template:
              spec:
                containers:
                  - name: image-clone
                    env:
${env}`);
}

/** A cloud overlay as a user applies it, and then what that cloud's pod identity webhook adds (the harness has none). */
export interface WebhookOverlay {
  /** The repository's overlay: manifests/overlays/eks or aks. */
  base: string;
  /** The ServiceAccount's annotations the user sets (the role ARN, the client id). */
  annotations: Record<string, string>;
  /**
   * Image-clone's image by digest, and what the webhook gives the pod: the container's variables
   * and a projected ServiceAccount token (`file` in `dir`, for `audience`).
   */
  pod?: { image: string; digest: string; env: Record<string, string>; token: { volume: string; dir: string; file: string; audience: string; expirationSeconds: number } };
}

/** Writes `dir`/kustomization.yaml for a WebhookOverlay: first applied without `pod`, so the test reads the annotation back as the webhook would. */
export async function writeWebhookOverlay(dir: string, overlay: WebhookOverlay): Promise<void> {
  const annotations = Object.entries(overlay.annotations).map(([key, value]) => `          ${key}: ${value}\n`).join('');
  const serviceAccountPatch = `  - patch: |-
      apiVersion: v1
      kind: ServiceAccount
      metadata:
        name: image-clone
        namespace: image-clone
        annotations:
${annotations}`;
  const base = relative(dir, join(repoRoot, overlay.base));
  if (!overlay.pod) {
    await writeFile(join(dir, 'kustomization.yaml'), `resources:\n  - ${base}\npatches:\n${serviceAccountPatch}`);
    return;
  }
  const { image, digest, env, token } = overlay.pod;
  // A strategic merge patch, written as JSON (which YAML reads as it is).
  const cronJobPatch = {
    apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'image-clone', namespace: 'image-clone' },
    spec: { jobTemplate: { spec: { template: { spec: {
      containers: [{
        name: 'image-clone',
        env: Object.entries(env).map(([name, value]) => ({ name, value })),
        volumeMounts: [{ name: token.volume, mountPath: token.dir, readOnly: true }],
      }],
      volumes: [{ name: token.volume, projected: { sources: [{ serviceAccountToken: { audience: token.audience, expirationSeconds: token.expirationSeconds, path: token.file } }] } }],
    } } } } },
  };
  await writeFile(join(dir, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ${base}
images:
  - name: registry.example.com/image-clone
    newName: ${image}
    digest: ${digest}
patches:
${serviceAccountPatch}  - patch: '${JSON.stringify(cronJobPatch)}'
`);
}
