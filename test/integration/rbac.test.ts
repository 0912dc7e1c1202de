// The in-cluster install, proven on the harness's real API server: the files under manifests/ are
// applied as `kubectl apply -k` would apply them, the CronJob's pod passes the restricted pod
// security profile, and `image-clone sync` runs as the ServiceAccount (a token from the TokenRequest
// API) with exactly the CronJob's configuration. Then each RBAC rule is taken away in turn, and the
// run must fail saying which verb on which resource it was refused.
//
// The API calls a run makes are read back from the API server's audit log, so "exactly what a run
// needs" is checked both ways: every grant is used, and nothing ungranted is asked for.
//
// The custom kinds image-clone knows (docs/custom-workloads.md) are granted too: this test installs a
// minimal CRD for each (their names as the projects define them; test/integration/custom-workloads
// uses the projects' real CRDs), so that a run lists and patches them, and each of their grants can
// be shown to be needed. Without one of those, a run warns naming the kind; it does not fail.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ApiException, AuthorizationV1Api, BatchV1Api, CoordinationV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy,
  dumpYaml, loadAllYaml, setHeaderOptions, type KubernetesObject,
} from '@kubernetes/client-node';
import { loadAll } from 'js-yaml';
import { harnessEnv, repoRoot, type HarnessEnv } from '../harness/harness.ts';
import { knownCustomKinds, nestAt } from '../../src/core/custom-kinds.ts';
import { qualifiedKind } from '../../src/core/workloads.ts';
import { deleteCrds, installCrd, minimalCrd } from './crds.ts';
import { cronJob, daemonSet, deployment, job, Namespaces, pod, podTemplate, replicaSet, replicationController, statefulSet } from './fixtures.ts';
import { adminKubeConfig, runCli, seedImage, serviceAccountToken, tokenKubeConfig, uniqueRepo, waitUntil, writeKubeconfig, type CliRun, kubeClients } from './helpers.ts';

type Doc = Record<string, any>;

// --- Rendering: the parts of kustomize these manifests use, checked against `kubectl kustomize`. ---

const manifestsDir = join(repoRoot, 'manifests');
const docsOf = (path: string): Doc[] => (loadAll(readFileSync(path, 'utf8')) as Doc[]).filter(Boolean);

/** The objects `kubectl apply -k dir` applies: resources (files and bases), then JSON 6902 patches. */
function render(dir: string): Doc[] {
  const kustomization = docsOf(join(dir, 'kustomization.yaml'))[0]!;
  const unknown = Object.keys(kustomization).filter((key) => !['apiVersion', 'kind', 'resources', 'patches'].includes(key));
  if (unknown.length) throw new Error(`${dir}/kustomization.yaml uses ${unknown.join(', ')}, which this test's renderer does not know: teach it, or the test no longer applies what users apply`);
  const docs: Doc[] = (kustomization.resources as string[]).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? render(path) : docsOf(path);
  });
  for (const { target, patch } of kustomization.patches ?? []) {
    const [group, version] = [target.group ? `${target.group}/` : '', target.version];
    const matches = docs.filter((d) => d.apiVersion === `${group}${version}` && d.kind === target.kind && d.metadata.name === target.name && d.metadata.namespace === target.namespace);
    if (matches.length !== 1) throw new Error(`patch target ${JSON.stringify(target)} matches ${matches.length} objects`);
    for (const op of loadAll(patch)[0] as Doc[]) applyOperation(matches[0]!, op);
  }
  return docs;
}

function applyOperation(doc: Doc, op: Doc): void {
  if (op.op !== 'add') throw new Error(`JSON patch op ${op.op} is not implemented by this test's renderer`);
  const keys = (op.path as string).split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = keys.pop()!;
  const parent = keys.reduce((node, key) => node[Array.isArray(node) ? Number(key) : key], doc);
  if (Array.isArray(parent)) parent.splice(last === '-' ? parent.length : Number(last), 0, structuredClone(op.value));
  else parent[last] = structuredClone(op.value);
}

const keyOf = (d: Doc) => `${d.apiVersion}/${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`;
const byKey = (docs: Doc[]) => [...docs].sort((a, b) => keyOf(a).localeCompare(keyOf(b)));

const base = render(manifestsDir);
const overlay = render(join(manifestsDir, 'overlays/pull-secrets'));
const find = (docs: Doc[], kind: string, name: string): Doc => docs.find((d) => d.kind === kind && d.metadata.name === name)!;

// --- The cluster side. ---

const ns = 'image-clone';
const saUser = `system:serviceaccount:${ns}:image-clone`;
const saGroups = ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'];
const fieldManager = 'image-clone-rbac-test';
const smp = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

let env: HarnessEnv;
let core: CoreV1Api;
let batch: BatchV1Api;
let leases: CoordinationV1Api;
let authz: AuthorizationV1Api;
let objects: KubernetesObjectApi;
let work: string;
let saKubeconfig: string;
let repo: string;
let label: string;
let registryConfigPath: string;
let applied: Doc[] = [];
let namespaces: Namespaces;
const images = { app: '', helper: '', job: '', tool: '' };

/** Server-side apply, as `kubectl apply --server-side` does; fails if the client would drop any field of the file. */
async function apply(doc: Doc): Promise<void> {
  const typed = loadAllYaml(JSON.stringify(doc))[0];
  assert.deepEqual(loadAll(dumpYaml(typed))[0], doc, `${keyOf(doc)}: the Kubernetes client would drop or change a field of the file`);
  await objects.patch(typed as KubernetesObject, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply);
}

async function applyAll(docs: Doc[]): Promise<void> {
  const ordered = [...docs.filter((d) => d.kind === 'Namespace'), ...docs.filter((d) => d.kind !== 'Namespace')];
  for (const doc of ordered) await apply(doc);
  applied = docs;
}

async function deleteQuietly(doc: Doc): Promise<void> {
  await objects.delete({ apiVersion: doc.apiVersion, kind: doc.kind, metadata: { name: doc.metadata.name, namespace: doc.metadata.namespace } }).catch((err) => {
    if (!(err instanceof ApiException && err.code === 404)) throw err;
  });
}

async function namespaceGone(): Promise<boolean> {
  return core.readNamespace({ name: ns }).then(() => false, (err) => err instanceof ApiException && err.code === 404);
}

/** What an admin would ask: may the ServiceAccount do this? */
async function allowed(verb: string, group: string, resource: string, namespace?: string, name?: string): Promise<boolean> {
  const review = await authz.createSubjectAccessReview({ body: {
    spec: { user: saUser, groups: saGroups, resourceAttributes: { verb, group, resource, ...(namespace ? { namespace } : {}), ...(name ? { name } : {}) } },
  } });
  return review.status?.allowed === true;
}

interface AuditedRequest { verb: string; resource: string; namespace?: string; name?: string; code: number; decision: string }

const auditLines = async () => (await readFile(env.auditLog, 'utf8')).split('\n').filter(Boolean);

/** The ServiceAccount's API requests logged after line `from` of the audit log. */
async function requestsSince(from: number): Promise<AuditedRequest[]> {
  return (await auditLines()).slice(from).map((l) => JSON.parse(l))
    .filter((e) => e.stage === 'ResponseComplete' && e.user?.username === saUser && e.objectRef)
    .map((e) => ({
      verb: e.verb,
      resource: `${e.objectRef.apiGroup ?? ''}/${e.objectRef.resource}`,
      namespace: e.objectRef.namespace,
      name: e.objectRef.name,
      code: e.responseStatus?.code,
      decision: e.annotations?.['authorization.k8s.io/decision'],
    }));
}

/** "verb group/resource" for each grant of a set of rules, as the audit log names requests. */
const grantsOf = (rules: Doc[]) => new Set(rules.flatMap((r) => r.verbs.flatMap((v: string) => r.apiGroups.flatMap((g: string) => r.resources.map((res: string) => `${v} ${g}/${res}`)))));

/**
 * `image-clone sync` configured exactly as the applied CronJob's container (its args and env), as
 * the ServiceAccount. What differs from the pod: the backup registry's address, where the kubelet
 * would have mounted the credentials, the harness registries' plain HTTP, this test's label
 * selector (the harness is shared with other tests), and how the token reaches the API server.
 */
function runAsCronJob(extraArgs: string[] = []): Promise<CliRun> {
  const cronJob = find(applied, 'CronJob', 'image-clone');
  const container = cronJob.spec.jobTemplate.spec.template.spec.containers[0];
  const vars: Record<string, string | undefined> = Object.fromEntries(container.env.map((e: Doc) => [e.name, e.value]));
  assert.ok(vars.IMAGE_CLONE_BACKUP && vars.IMAGE_CLONE_REGISTRY_CONFIG, 'the CronJob sets the backup and the credentials file');
  return runCli([...container.args, '--kubeconfig', saKubeconfig, '--own-namespace', ns, ...extraArgs], {
    ...vars,
    IMAGE_CLONE_BACKUP: `${env.registries.backup.host}/rbac`,
    IMAGE_CLONE_REGISTRY_CONFIG: registryConfigPath,
    IMAGE_CLONE_INSECURE_REGISTRY: Object.values(env.registries).map((r) => r.host).join(','),
    IMAGE_CLONE_SELECTOR: label,
    KUBECONFIG: undefined,
  });
}

/** The last line of stderr, which must be the whole error: one line, no stack trace. */
function errorLine(run: CliRun): string {
  assert.doesNotMatch(run.stderr, /\n\s+at /, `no stack trace:\n${run.stderr}`);
  const lines = run.stderr.trim().split('\n');
  return lines[lines.length - 1]!;
}

/** The refusal the API server words for a missing permission. */
function refusal(verb: string, group: string, resource: string, namespace?: string): RegExp {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const scope = namespace ? `in the namespace "${esc(namespace)}"` : 'at the cluster scope';
  return new RegExp(`\\(HTTP 403\\): .*forbidden: User "${esc(saUser)}" cannot ${verb} resource "${esc(resource)}" in API group "${esc(group)}" ${scope}`);
}

// --- Workloads of every kind, all labelled for this test's selector. ---

const workloads: Record<string, { kind: string; make: (name: string) => Doc }> = {
  deployments: { kind: 'Deployment', make: (name) => deployment(name, images.app, { replicas: 0 }) },
  statefulsets: { kind: 'StatefulSet', make: (name) => statefulSet(name, images.app, { replicas: 0 }) },
  daemonsets: { kind: 'DaemonSet', make: (name) => daemonSet(name, images.app) },
  replicasets: { kind: 'ReplicaSet', make: (name) => replicaSet(name, images.app, { replicas: 0 }) },
  cronjobs: { kind: 'CronJob', make: (name) => cronJob(name, images.app, { spec: { suspend: true }, pod: { restartPolicy: 'Never', initContainers: [{ name: 'init', image: images.helper }] } }) },
  jobs: { kind: 'Job', make: (name) => job(name, images.job, { spec: { suspend: true } }) },
  replicationcontrollers: { kind: 'ReplicationController', make: (name) => replicationController(name, images.app, { replicas: 0 }) },
  pods: { kind: 'Pod', make: (name) => pod(name, images.app) },
  // The custom kinds, keyed resource.group, each with its pod template where its kind keeps it.
  ...Object.fromEntries(knownCustomKinds.map((k) => [`${k.resource}.${k.group}`, {
    kind: qualifiedKind(k.group, k.kind),
    make: (name: string) => ({ apiVersion: `${k.group}/v1alpha1`, kind: k.kind, metadata: { name }, ...nestAt(k.path, podTemplate(name, images.app)) }),
  }])),
};

/** The key of `workloads` for a rule's resource: the resource, or resource.group for a custom kind. */
const builtinGroups = ['', 'apps', 'batch'];
const workloadKey = (c: { group: string; resource: string }) => (builtinGroups.includes(c.group) ? c.resource : `${c.resource}.${c.group}`);
/** The name createWorkloads gives the workload of a key: deployments -> deployment, rollouts.argoproj.io -> rollout. */
const nameOf = (key: string) => key.split('.')[0]!.replace(/s$/, '');
const customCrds = knownCustomKinds.map((k) => minimalCrd(k.group, k.kind, k.resource!));
/** Every user may ask what it may do (system:basic-user): a run asks before it patches a custom kind. */
const accessReview = 'create authorization.k8s.io/selfsubjectaccessreviews';

/** One workload of each resource named, in `namespace`, labelled for the selector. */
async function createWorkloads(namespace: string, resources: string[]): Promise<void> {
  const [key, value] = label.split('=');
  for (const resource of resources) {
    const name = nameOf(resource);
    const doc = workloads[resource]!.make(name);
    await objects.create({ ...doc, metadata: { name, namespace, labels: { [key!]: value! } } } as KubernetesObject);
  }
}

const reportOf = (run: CliRun) => {
  try {
    return JSON.parse(run.stdout);
  } catch {
    assert.fail(`stdout is not a JSON report (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
};

before(async () => {
  env = await harnessEnv();
  const kc = adminKubeConfig(env);
  ({ core, batch, leases, authz, objects } = kubeClients(kc));
  namespaces = new Namespaces(core);
  work = await mkdtemp(join(tmpdir(), 'image-clone-rbac-'));
  repo = uniqueRepo('rbac');
  label = `image-clone-test=${repo}`;

  for (const crd of customCrds) await installCrd(kc, crd);
  // A previous run's namespace may still be terminating.
  if (!(await namespaceGone())) {
    await core.deleteNamespace({ name: ns }).catch(() => {});
    await waitUntil('the previous image-clone namespace to be gone', namespaceGone, 120_000);
  }
  await applyAll(base);

  // The credentials Secret, made from the template users fill in, holding the harness's backup login.
  const template = docsOf(join(manifestsDir, 'base/registry-credentials.yaml'))[0]!;
  const { host, username, password } = env.registries.backup;
  const auths = { auths: { [host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } };
  await apply({ ...template, stringData: { '.dockerconfigjson': JSON.stringify(auths) } });
  // Mount it as the kubelet would: the volume's items, under its mountPath, below a stand-in root.
  const pod = find(base, 'CronJob', 'image-clone').spec.jobTemplate.spec.template.spec;
  const volume = pod.volumes.find((v: Doc) => v.secret?.secretName === template.metadata.name);
  const mount = pod.containers[0].volumeMounts.find((m: Doc) => m.name === volume.name);
  const stored = await core.readNamespacedSecret({ name: template.metadata.name, namespace: ns });
  for (const item of volume.secret.items) {
    const path = join(work, 'root', mount.mountPath, item.path);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, Buffer.from(stored.data![item.key]!, 'base64'), { mode: 0o600 });
  }
  registryConfigPath = join(work, 'root', pod.containers[0].env.find((e: Doc) => e.name === 'IMAGE_CLONE_REGISTRY_CONFIG').value);

  // The ServiceAccount's token, from the TokenRequest API, in a kubeconfig of its own.
  await waitUntil('the ServiceAccount', () => core.readNamespacedServiceAccount({ name: 'image-clone', namespace: ns }).then(() => true, () => false));
  const token = await serviceAccountToken(core, ns, 'image-clone');
  saKubeconfig = await writeKubeconfig(tokenKubeConfig(env.server, env.caFile, 'image-clone', token, ns), 'image-clone');

  const src = env.registries.source;
  await seedImage(src, `${repo}/app:1`, { layers: 1, layerSize: 32 * 1024, seed: 601 });
  await seedImage(src, `${repo}/helper:1`, { layers: 1, layerSize: 16 * 1024, seed: 602 });
  await seedImage(src, `${repo}/job:1`, { layers: 1, layerSize: 16 * 1024, seed: 603 });
  await seedImage(src, `${repo}/image-clone:0.1.0`, { layers: 1, layerSize: 16 * 1024, seed: 604 });
  Object.assign(images, { app: `${src.host}/${repo}/app:1`, helper: `${src.host}/${repo}/helper:1`, job: `${src.host}/${repo}/job:1`, tool: `${src.host}/${repo}/image-clone:0.1.0` });
});

after(async () => {
  await namespaces?.deleteAll();
  for (const doc of [...overlay].reverse()) await deleteQuietly(doc).catch(() => {});
  // Other tests' syncs take their run lock in the namespace "image-clone" when it exists (and skip
  // the lock when it does not): they must not meet it half-deleted.
  await waitUntil('the image-clone namespace to be gone', namespaceGone, 120_000);
  if (env) await deleteCrds(adminKubeConfig(env), customCrds.map((c) => c.metadata!.name!));
});

describe('the manifests', () => {
  const kubectl = (() => {
    try {
      execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  test('this test applies what `kubectl apply -k` applies', { skip: kubectl ? false : 'kubectl is not installed' }, () => {
    for (const [dir, docs] of [['.', base], ['overlays/pull-secrets', overlay]] as const) {
      const built = (loadAll(execFileSync('kubectl', ['kustomize', join(manifestsDir, dir)], { encoding: 'utf8' })) as Doc[]).filter(Boolean);
      assert.deepEqual(byKey(docs), byKey(built), `kubectl kustomize manifests/${dir}`);
    }
  });

  test('the restricted pod security profile admits the CronJob\'s pod, and would refuse a weaker one', async () => {
    const podTemplate = find(applied, 'CronJob', 'image-clone').spec.jobTemplate.spec.template;
    const pod = (spec: Doc) => ({ metadata: { generateName: 'image-clone-psa-', namespace: ns }, spec });
    await core.createNamespacedPod({ namespace: ns, body: pod(podTemplate.spec) as any, dryRun: 'All' });
    const weaker = structuredClone(podTemplate.spec);
    delete weaker.containers[0].securityContext.capabilities;
    const refused = await core.createNamespacedPod({ namespace: ns, body: pod(weaker) as any, dryRun: 'All' }).then(() => undefined, (err: ApiException<string>) => err);
    assert.ok(refused, 'the namespace enforces the profile');
    assert.match(JSON.parse(String(refused.body)).message, /violates PodSecurity "restricted:latest": unrestricted capabilities/);

    // The CronJob's own path: a Job made from it (like `kubectl create job --from=cronjob/image-clone`) gets its pod.
    const job = await batch.createNamespacedJob({ namespace: ns, body: { metadata: { generateName: 'image-clone-manual-', namespace: ns }, spec: find(applied, 'CronJob', 'image-clone').spec.jobTemplate.spec } });
    try {
      await waitUntil('the Job\'s pod', async () => (await core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${job.metadata!.name}` })).items.length === 1);
    } finally {
      await batch.deleteNamespacedJob({ name: job.metadata!.name!, namespace: ns, propagationPolicy: 'Background' });
    }
  });

  test("the ServiceAccount's permissions are the manifests' rules and nothing else; no Secrets at all", async () => {
    const sa = new KubeConfig();
    sa.loadFromFile(saKubeconfig);
    const self = sa.makeApiClient(AuthorizationV1Api);
    const app = await namespaces.create('rbac-rules');
    const granted = async (namespace: string) => {
      const review = await self.createSelfSubjectRulesReview({ body: { spec: { namespace } } });
      return new Set(review.status!.resourceRules.flatMap((r) => r.verbs.flatMap((v) => (r.apiGroups ?? []).flatMap((g) => (r.resources ?? []).map((res) => `${v} ${g}/${res}${r.resourceNames?.length ? `:${r.resourceNames.join(',')}` : ''}`))))
        .filter((g) => !/ authorization\.k8s\.io\/selfsubject|authentication\.k8s\.io\/selfsubjectreviews/.test(g)));
    };
    const clusterGrants = grantsOf(find(applied, 'ClusterRole', 'image-clone').rules);
    assert.deepEqual(await granted(app), clusterGrants, 'in an application namespace: the ClusterRole, exactly');
    const own = new Set([...clusterGrants, 'create coordination.k8s.io/leases', 'get coordination.k8s.io/leases:image-clone-sync', 'update coordination.k8s.io/leases:image-clone-sync']);
    assert.deepEqual(await granted(ns), own, 'in its own namespace: and the run lock');
    assert.equal(await allowed('get', 'coordination.k8s.io', 'leases', ns, 'someone-elses-lease'), false, 'get and update only that Lease');
    for (const verb of ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']) {
      for (const namespace of [ns, app, undefined]) {
        assert.equal(await allowed(verb, '', 'secrets', namespace), false, `${verb} secrets${namespace ? ` in ${namespace}` : ''}`);
      }
    }
    assert.equal(await allowed('get', '', 'secrets', ns, 'image-clone-registry'), false, 'not even its own credentials, which it only gets mounted');
  });
});

describe('sync as the ServiceAccount, configured as the CronJob', () => {
  let app: string;
  const everyKind = Object.keys(workloads);

  test('sync --dry-run plans every copy and patch, and only lists', async () => {
    app = await namespaces.create('rbac-app');
    await createWorkloads(app, everyKind);
    const mark = (await auditLines()).length;
    const run = await runAsCronJob(['--dry-run', '--exit-code', '-o', 'json']);
    assert.equal(run.code, 3, `exit 3: changes pending\n${run.stderr}`);
    const plan = reportOf(run);
    assert.deepEqual(plan.images.map((i: Doc) => [i.source, i.action]).sort(), [[images.app, 'copy'], [images.helper, 'copy'], [images.job, 'copy']]);
    const patches = plan.workloads.filter((w: Doc) => w.namespace === app && w.action === 'patch').map((w: Doc) => w.kind);
    assert.deepEqual([...new Set(patches)].sort(), Object.values(workloads).map((w) => w.kind).filter((k) => k !== 'Job').sort());
    const requests = await requestsSince(mark);
    const lists = [...grantsOf(find(applied, 'ClusterRole', 'image-clone').rules)].filter((g) => g.startsWith('list '));
    assert.deepEqual([...new Set(requests.map((r) => `${r.verb} ${r.resource}`))].sort(), [...lists, accessReview].sort(), 'lists the eight kinds and the custom ones, asks whether it may patch those, and nothing else');
    assert.ok(requests.filter((r) => r.verb === 'list').every((r) => r.namespace === undefined && r.code === 200), 'each at the cluster scope');
  });

  test('sync copies every image, patches every kind but Jobs, and uses exactly the permissions granted', async () => {
    await leases.deleteNamespacedLease({ name: 'image-clone-sync', namespace: ns }).catch(() => {}); // the first run ever: it creates the Lease
    const mark = (await auditLines()).length;
    const run = await runAsCronJob(['-o', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const report = reportOf(run);
    assert.deepEqual(report.summary.images, { total: 3, copied: 3, tagged: 0, present: 0, lost: 0, excluded: 0, failed: 0, error: 0 });
    const results = Object.fromEntries(report.workloads.filter((w: Doc) => w.namespace === app).map((w: Doc) => [w.kind, w.result]));
    assert.deepEqual(results, {
      Deployment: 'patched', StatefulSet: 'patched', DaemonSet: 'patched', ReplicaSet: 'patched', CronJob: 'patched', ReplicationController: 'patched', Pod: 'patched', Job: 'skipped',
      ...Object.fromEntries(knownCustomKinds.map((k) => [qualifiedKind(k.group, k.kind), 'patched'])),
    });
    const pod = await core.readNamespacedPod({ name: 'pod', namespace: app });
    assert.match(pod.spec!.containers[0]!.image!, new RegExp(`^${env.registries.backup.host}/rbac/.*@sha256:`));
    // The CronJob's log format: every line on stderr is a JSON event.
    for (const line of run.stderr.trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);

    // A second run does the same things again: the Job's BackupSkipped Event gets one more in its series (patch events).
    assert.equal((await runAsCronJob(['-o', 'json'])).code, 0);
    const requests = await requestsSince(mark);
    assert.ok(requests.every((r) => r.decision === 'allow'), `nothing refused: ${JSON.stringify(requests.filter((r) => r.decision !== 'allow'))}`);
    const used = new Set(requests.map((r) => `${r.verb} ${r.resource}`));
    const granted = new Set([...grantsOf(find(applied, 'ClusterRole', 'image-clone').rules), ...grantsOf(find(applied, 'Role', 'image-clone').rules), accessReview]);
    assert.deepEqual([...used].sort(), [...granted].sort(), 'every grant used, nothing else asked for');
    assert.ok(requests.filter((r) => r.resource === 'coordination.k8s.io/leases').every((r) => r.namespace === ns && (r.verb === 'create' || r.name === 'image-clone-sync')));
    const lease = await leases.readNamespacedLease({ name: 'image-clone-sync', namespace: ns });
    assert.equal(lease.spec?.holderIdentity, undefined, 'the run lock is given back');
  });

  test('the next dry run finds nothing to do', async () => {
    const run = await runAsCronJob(['--dry-run', '--exit-code', '-o', 'json']);
    assert.equal(run.code, 0, run.stderr);
  });

  // The own namespace is listed, so the tool's own image is copied, but the tool itself (its CronJob
  // carries the manifests' app.kubernetes.io/name=image-clone) is never patched.
  test("the tool's own CronJob image is backed up, and its CronJob is not patched", async () => {
    const [key, value] = label.split('=');
    await batch.patchNamespacedCronJob({ name: 'image-clone', namespace: ns, body: {
      metadata: { labels: { [key!]: value! } },
      spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'image-clone', image: images.tool }] } } } } },
    } }, smp);
    try {
      const run = await runAsCronJob(['-o', 'json']);
      assert.equal(run.code, 0, run.stderr);
      const report = reportOf(run);
      const own = report.images.find((i: Doc) => i.source === images.tool);
      assert.ok(own, "the tool's image is in the report");
      assert.equal(own.result, 'copied');
      const row = report.workloads.find((w: Doc) => w.kind === 'CronJob' && w.namespace === ns);
      assert.equal(row?.result, 'skipped');
      assert.match(row.resultReason, /^image-clone itself \(labelled app\.kubernetes\.io\/name=image-clone\)/);
      const cronJob = await batch.readNamespacedCronJob({ name: 'image-clone', namespace: ns });
      assert.equal(cronJob.spec!.jobTemplate.spec!.template.spec!.containers[0]!.image, images.tool, 'not patched');
    } finally {
      await apply(find(applied, 'CronJob', 'image-clone'));
      await batch.patchNamespacedCronJob({ name: 'image-clone', namespace: ns, body: { metadata: { labels: { [key!]: null } } } }, smp);
    }
  });
});

interface RuleCase { role: Doc; index: number; verb: string; group: string; resource: string }

/** Each (verb, resource) that a rule of `role` grants. */
function casesOf(role: Doc): RuleCase[] {
  return role.rules.flatMap((rule: Doc, index: number) => rule.resources.map((resource: string) => ({ role, index, verb: rule.verbs[0], group: rule.apiGroups[0], resource })));
}

/** Takes `resource` out of one rule of the role, runs `fn`, and puts the rule back; waits until the authorizer sees each change. */
async function withoutGrant(c: RuleCase, fn: () => Promise<void>): Promise<void> {
  const reduced = structuredClone(c.role);
  const rule = reduced.rules[c.index];
  rule.resources = rule.resources.filter((r: string) => r !== c.resource);
  if (!rule.resources.length) reduced.rules.splice(c.index, 1);
  const namespace = c.role.metadata.namespace ?? (c.verb === 'list' ? undefined : 'default');
  const name = c.role.rules[c.index].resourceNames?.[0];
  await apply(reduced);
  try {
    await waitUntil(`${c.verb} ${c.resource} to be refused`, async () => !(await allowed(c.verb, c.group, c.resource, namespace, name)));
    await fn();
  } finally {
    await apply(c.role);
    await waitUntil(`${c.verb} ${c.resource} to be allowed again`, () => allowed(c.verb, c.group, c.resource, namespace, name));
  }
}

/** What a run does without the grant: each grant the tool needs has a way to show it. */
async function showNeeded(c: RuleCase): Promise<void> {
  const what = `${c.verb} ${c.group || 'core'}/${c.resource}`;
  if (knownCustomKinds.some((k) => k.group === c.group && k.resource === c.resource)) return showCustomNeeded(c);
  if (c.verb === 'list') {
    const run = await runAsCronJob(['-o', 'json']);
    assert.equal(run.code, 2, `exit 2 without ${what}\n${run.stderr}`);
    const line = errorLine(run);
    assert.match(line, new RegExp(`^image-clone: cannot list ${c.resource} in all namespaces `));
    assert.match(line, refusal('list', c.group, c.resource));
    return;
  }
  if (c.resource === 'events') {
    // Events are a courtesy: without them the run syncs as before, and says so once. Two runs: the
    // second repeats the first's Events (the Job's BackupSkipped), so it needs patch as well as create.
    const runs = [await runAsCronJob(['-o', 'json']), await runAsCronJob(['-o', 'json'])];
    const run = runs[c.verb === 'create' ? 0 : 1]!;
    assert.equal(run.code, 0, `exit 0 without ${what}\n${run.stderr}`);
    const warnings = run.stderr.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.level === 'warn' && /Kubernetes Events/.test(e.message));
    assert.equal(warnings.length, 1, run.stderr);
    assert.match(warnings[0].message, new RegExp(`^cannot ${c.verb} events in \\S+ \\(HTTP 403\\): .*cannot ${c.verb} resource "events" in API group "events.k8s.io".*; no Kubernetes Events were recorded on the workloads`));
    return;
  }
  if (c.verb === 'patch') {
    const app = await namespaces.create(`rbac-${c.resource}`);
    await createWorkloads(app, [c.resource]);
    const name = c.resource.replace(/s$/, '');
    const run = await runAsCronJob(['-o', 'json']);
    assert.equal(run.code, 1, `exit 1 without ${what}: that workload failed\n${run.stderr}`);
    const report = reportOf(run);
    const failed = report.workloads.filter((w: Doc) => w.result === 'failed');
    assert.deepEqual([...new Set(failed.map((w: Doc) => `${w.kind}/${w.namespace}/${w.name}`))], [`${workloads[c.resource]!.kind}/${app}/${name}`], 'that workload, and only it, failed');
    assert.match(failed[0].resultReason, new RegExp(`^cannot patch ${c.resource} ${app}/${name} `));
    assert.match(failed[0].resultReason, refusal('patch', c.group, c.resource, app));
    const event = run.stderr.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'workload-failed');
    assert.equal(event?.message, failed[0].resultReason, 'and the log says the same');
    return;
  }
  if (c.resource === 'leases') {
    if (c.verb === 'create') await leases.deleteNamespacedLease({ name: 'image-clone-sync', namespace: ns }).catch(() => {});
    if (c.verb === 'update') {
      await leases.createNamespacedLease({ namespace: ns, body: { metadata: { name: 'image-clone-sync' }, spec: { leaseDurationSeconds: 60 } } }).catch((err) => {
        if (!(err instanceof ApiException && err.code === 409)) throw err;
      });
    }
    const run = await runAsCronJob(['-o', 'json']);
    assert.equal(run.code, 2, `exit 2 without ${what}\n${run.stderr}`);
    const line = errorLine(run);
    assert.match(line, /^image-clone: cannot take the run lock \(Lease image-clone\/image-clone-sync\) /);
    assert.match(line, refusal(c.verb, c.group, c.resource, ns));
    return;
  }
  if (c.resource === 'secrets' && c.verb === 'get') {
    const run = await runAsCronJob(['-o', 'json']);
    assert.equal(run.code, 2, `exit 2 without ${what}\n${run.stderr}`);
    const line = errorLine(run);
    assert.match(line, /^image-clone: cannot read Secret image-clone\/image-clone-pull /);
    assert.match(line, refusal('get', '', 'secrets', ns));
    return;
  }
  if (c.resource === 'secrets' && c.verb === 'create') {
    const app = await namespaces.create('rbac-secrets');
    await createWorkloads(app, ['deployments']);
    const run = await runAsCronJob(['-o', 'json']);
    assert.equal(run.code, 1, `exit 1 without ${what}\n${run.stderr}`);
    const failed = reportOf(run).workloads.filter((w: Doc) => w.result === 'failed');
    assert.deepEqual([...new Set(failed.map((w: Doc) => `${w.namespace}/${w.name}`))], [`${app}/deployment`]);
    assert.match(failed[0].resultReason, new RegExp(`^cannot create Secret ${app}/image-clone-pull `));
    assert.match(failed[0].resultReason, refusal('create', '', 'secrets', app));
    return;
  }
  assert.fail(`no test shows why ${what} is needed: does image-clone use it?`);
}

/**
 * A custom kind's grant: without it the run does not fail (exit 0), it warns naming the kind. Without
 * list, the kind is not listed at all; without patch, its workload is skipped saying why.
 */
async function showCustomNeeded(c: RuleCase): Promise<void> {
  const key = workloadKey(c);
  const app = await namespaces.create(`rbac-${c.resource}`);
  await createWorkloads(app, [key]);
  const run = await runAsCronJob(['-o', 'json']);
  assert.equal(run.code, 0, `exit 0 without ${c.verb} ${c.group}/${c.resource}: a warning, not a failed run\n${run.stderr}`);
  const warnings = run.stderr.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.level === 'warn' && e.event === 'message').map((e) => e.message as string);
  const row = reportOf(run).workloads.find((w: Doc) => w.namespace === app);
  if (c.verb === 'list') {
    const warning = warnings.find((m) => m?.startsWith(`cannot list ${c.resource}.${c.group} in all namespaces `));
    assert.ok(warning, `a warning names the kind: ${JSON.stringify(warnings)}`);
    assert.match(warning, refusal('list', c.group, c.resource));
    assert.equal(row, undefined, 'a kind it may not list has no rows of its own (its pods, if any, would be reported under it)');
    return;
  }
  assert.ok(warnings.some((m) => m?.startsWith(`cannot patch ${c.resource}.${c.group} in namespace ${app}`)), `a warning names the kind: ${JSON.stringify(warnings)}`);
  assert.equal(row?.result, 'skipped', JSON.stringify(row));
  assert.match(row.resultReason, new RegExp(`may not patch ${c.resource}\\.${c.group.replace(/\./g, '\\.')} in namespace ${app} \\(RBAC\\)`));
  assert.equal(row.kind, workloads[key]!.kind);
}

/** With the grant back, the next run succeeds and finishes what the refused one could not. */
async function recovers(): Promise<void> {
  const run = await runAsCronJob(['-o', 'json']);
  assert.equal(run.code, 0, `with the grant back, the run succeeds\n${run.stderr}`);
}

describe('every grant is needed: without it, a run fails and names the verb and the resource', () => {
  for (const c of [...casesOf(find(base, 'ClusterRole', 'image-clone')), ...casesOf(find(base, 'Role', 'image-clone'))]) {
    test(`${c.role.kind} ${c.role.metadata.name}, rule ${c.index + 1}: ${c.verb} ${c.group || 'core'}/${c.resource}`, async () => {
      await withoutGrant(c, () => showNeeded(c));
    });
  }
  // withoutGrant waits for each grant to be allowed again; one run then shows the restored roles work
  // (a run after every case showed the same thing 32 times, at a minute of CI).
  test('with every grant back, the run succeeds', recovers);
});

describe('the pull-secrets overlay', () => {
  let secretData: string;

  test('without it, --pull-secret is refused reading the Secret, naming the verb and the resource', async () => {
    const run = await runAsCronJob(['--pull-secret', 'image-clone-pull', '-o', 'json']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(errorLine(run), refusal('get', '', 'secrets', ns));
  });

  test('with it, the pull Secret is copied into the patched namespace and added to the pod template', async () => {
    await applyAll(overlay);
    const template = docsOf(join(manifestsDir, 'overlays/pull-secrets/pull-secret.yaml'))[0]!;
    const auths = { auths: { [env.registries.backup.host]: { auth: Buffer.from(`${env.registries.backup.reader!.username}:${env.registries.backup.reader!.password}`).toString('base64') } } };
    await apply({ ...template, stringData: { '.dockerconfigjson': JSON.stringify(auths) } });
    secretData = (await core.readNamespacedSecret({ name: template.metadata.name, namespace: ns })).data!['.dockerconfigjson']!;
    await waitUntil('the overlay\'s grants', () => allowed('create', '', 'secrets', 'default'));

    const app = await namespaces.create('rbac-pull');
    await createWorkloads(app, ['deployments']);
    const run = await runAsCronJob(['-o', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const copy = await core.readNamespacedSecret({ name: template.metadata.name, namespace: app });
    assert.equal(copy.type, 'kubernetes.io/dockerconfigjson');
    assert.equal(copy.data!['.dockerconfigjson'], secretData);
    const deployment = await objects.read({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'deployment', namespace: app } }) as Doc;
    assert.deepEqual(deployment.spec.template.spec.imagePullSecrets.map((s: Doc) => s.name), [template.metadata.name]);

    // Still nothing more: that one Secret to read, Secrets to create; no other Secret, no other verb.
    assert.equal(await allowed('get', '', 'secrets', ns, template.metadata.name), true);
    assert.equal(await allowed('get', '', 'secrets', ns, 'image-clone-registry'), false);
    for (const verb of ['list', 'watch', 'update', 'patch', 'delete']) assert.equal(await allowed(verb, '', 'secrets', app), false, `${verb} secrets`);
  });

  describe('every grant it adds is needed', () => {
    const added = overlay.filter((d) => (d.kind === 'Role' || d.kind === 'ClusterRole') && !base.some((b) => keyOf(b) === keyOf(d)));
    for (const c of added.flatMap(casesOf)) {
      test(`${c.role.kind} ${c.role.metadata.name}, rule ${c.index + 1}: ${c.verb} ${c.group || 'core'}/${c.resource}`, async () => {
        await withoutGrant(c, () => showNeeded(c));
      });
    }
    test('with every grant back, the run succeeds', recovers);
  });

  // A Pod's imagePullSecrets cannot change: under --pull-secret a bare Pod without it is skipped, with why.
  test('--pull-secret and a bare Pod: skipped with a reason, not a failed patch', async () => {
    const app = await namespaces.create('rbac-pull-pod');
    await createWorkloads(app, ['pods']);
    const run = await runAsCronJob(['-o', 'json']);
    const row = reportOf(run).workloads.find((w: Doc) => w.namespace === app);
    assert.notEqual(row.result, 'failed', row.resultReason);
    assert.match(row.resultReason, /imagePullSecrets/);
    assert.equal(run.code, 0, run.stderr);
  });
});
