// Custom workloads, as pure logic: owner chains that end at kinds image-clone does not patch, the
// custom kinds it does patch (their pod template moved to spec.template by the lister), the
// --workload-kind syntax, and the JSON merge patches that send each container list back whole.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { customKindSpecs, knownCustomKinds, nestAt, parseWorkloadKind, valueAt } from '../../../src/core/custom-kinds.ts';
import { imagePatch, restorePatch } from '../../../src/core/patches.ts';
import { buildPlan, type Resolution } from '../../../src/core/plan.ts';
import { discoverWorkloads, originalImagesAnnotation } from '../../../src/core/workloads.ts';
import type { KubeObject, OwnerReference } from '../../../src/core/kube-object.ts';
import { slimCustom } from '../../../src/kube/list.ts';
import { InvalidSettingError } from '../../../src/core/errors.ts';
import { planConfig } from './plan-config.ts';

const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const owner = (apiVersion: string, kind: string, name: string, uid: string): OwnerReference => ({ apiVersion, kind, name, uid, controller: true });
const obj = (name: string, uid: string, ref?: OwnerReference, spec?: unknown, extra: Partial<NonNullable<KubeObject['metadata']>> = {}): KubeObject => ({
  metadata: { name, namespace: 'ro', uid, resourceVersion: '5', ...(ref ? { ownerReferences: [ref] } : {}), ...extra }, ...(spec ? { spec } : {}),
});
const template = (image: string, name = 'app') => ({ template: { spec: { containers: [{ name, image }] } } });
const runningPod = (name: string, ref: OwnerReference, image: string, n: number): KubeObject => ({
  ...obj(name, `pod-${name}`, ref, { containers: [{ name: 'app', image }] }),
  status: { containerStatuses: [{ name: 'app', image, imageID: `docker.io/library/app@${digest(n)}` }] },
});

const rolloutRef = owner('argoproj.io/v1alpha1', 'Rollout', 'web', 'ro1');
const rsRef = owner('apps/v1', 'ReplicaSet', 'web-7d9', 'rs1');
/** What a Rollout's controller creates: a ReplicaSet it owns, and that ReplicaSet's pods. */
const underRollout = {
  ReplicaSet: [obj('web-7d9', 'rs1', rolloutRef, template('app:1.0'))],
  Pod: [runningPod('web-7d9-a', rsRef, 'app:1.0', 1), runningPod('web-7d9-b', rsRef, 'app:1.0', 1)],
};

describe('owners image-clone does not patch', () => {
  test('a Rollout it does not list: one row for the Rollout, with the image its pods run and their digest, never the ReplicaSet', () => {
    const workloads = discoverWorkloads({ objects: underRollout, workloadKindSetting: '--workload-kind' });
    assert.deepEqual(workloads.map((w) => `${w.kind}/${w.namespace}/${w.name}`), ['Rollout.argoproj.io/ro/web']);
    const [rollout] = workloads;
    assert.deepEqual(rollout!.containers, [{ name: 'app', image: 'app:1.0', type: 'container', runningDigest: digest(1) }]);
    assert.match(rollout!.notPatched!, /^owned by argoproj\.io Rollout, which image-clone does not patch: its image is backed up; .*--workload-kind argoproj\.io\/Rollout=PATH/);
    assert.deepEqual(rollout!.members!.sort(), ['pod-web-7d9-a', 'pod-web-7d9-b', 'rs1']);
  });

  test('a Deployment that a custom resource controls (a Knative Revision) is not patched: its owner is reported', () => {
    const revision = owner('serving.knative.dev/v1', 'Revision', 'hello-00001', 'rev1');
    const workloads = discoverWorkloads({ objects: {
      Deployment: [obj('hello-00001-deployment', 'd1', revision, template('hello:1', 'user-container'))],
      ReplicaSet: [obj('hello-00001-deployment-x', 'rs9', owner('apps/v1', 'Deployment', 'hello-00001-deployment', 'd1'), template('hello:1', 'user-container'))],
    } });
    assert.deepEqual(workloads.map((w) => [w.kind, w.name, w.containers.map((c) => c.image)]), [['Revision.serving.knative.dev', 'hello-00001', ['hello:1']]]);
  });

  test('pods a Node owns (static pods) are reported under the Node, without a --workload-kind hint', () => {
    const workloads = discoverWorkloads({ objects: { Pod: [runningPod('etcd-n1', owner('v1', 'Node', 'n1', 'node1'), 'etcd:3', 2)] } });
    assert.equal(workloads[0]!.kind, 'Node');
    assert.equal(workloads[0]!.notPatched, 'owned by Node, which image-clone does not patch: its image is backed up');
  });

  test('an owner of a kind that is listed but was not selected is no row; one that could not be listed says why', () => {
    const listed = discoverWorkloads({ objects: underRollout, customKinds: [{ group: 'argoproj.io', kind: 'Rollout' }] });
    assert.deepEqual(listed, [], 'the Rollout was listed and not selected (a label selector): nothing to report');
    const refused = discoverWorkloads({ objects: underRollout, customKinds: [{ group: 'argoproj.io', kind: 'Rollout' }], unlisted: { 'argoproj.io/Rollout': 'RBAC: no list on rollouts.argoproj.io' } });
    assert.match(refused[0]!.notPatched!, /could not list \(RBAC: no list on rollouts\.argoproj\.io\)/);
  });

  test('the plan: the image is resolved and copied, the row is a skip with code not-patched, counted in the summary', () => {
    const workloads = discoverWorkloads({ objects: underRollout });
    const config = planConfig;
    const resolutions = new Map<string, Resolution>([[`docker.io/library/app:1.0@${digest(1)}`, { state: 'copy', digest: digest(1), reason: 'copy' }]]);
    const plan = buildPlan(workloads, resolutions, config);
    assert.deepEqual(plan.images.map((i) => [i.source, i.action, i.digest]), [['docker.io/library/app:1.0', 'copy', digest(1)]]);
    assert.deepEqual(plan.workloads.map((c) => [c.kind, c.action, c.code]), [['Rollout.argoproj.io', 'skip', 'not-patched']]);
    assert.equal(plan.summary.workloads.skip, 1);
  });
});

describe('custom kinds image-clone patches', () => {
  const rollout = {
    apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout',
    metadata: { name: 'web', namespace: 'ro', uid: 'ro1', resourceVersion: '42', labels: { app: 'web' }, managedFields: [{ manager: 'x' }] },
    spec: { replicas: 3, strategy: { canary: {} }, template: { metadata: { labels: { app: 'web' } }, spec: {
      containers: [{ name: 'app', image: 'app:1.0', ports: [{ containerPort: 80 }], env: [{ name: 'A', value: '1' }] }, { name: 'side', image: 'side:2' }],
      initContainers: [{ name: 'init', image: 'init:1', command: ['true'] }],
      imagePullSecrets: [{ name: 'theirs' }], volumes: [{ name: 'v', emptyDir: {} }],
    } } },
  } as KubeObject;

  test('the lister moves the pod template to spec.template and keeps the container lists whole', () => {
    const slim = slimCustom(['spec', 'template'], rollout);
    assert.deepEqual(slim.spec, { template: { spec: {
      containers: (rollout.spec as any).template.spec.containers, initContainers: (rollout.spec as any).template.spec.initContainers, imagePullSecrets: [{ name: 'theirs' }],
    } } });
    assert.ok(!JSON.stringify(slim).includes('managedFields') && !JSON.stringify(slim).includes('volumes'));
    const scaledJob = { metadata: { name: 'j', namespace: 'ro' }, spec: { jobTargetRef: { parallelism: 1, template: { spec: { containers: [{ name: 'c', image: 'job:1' }] } } } } } as KubeObject;
    assert.deepEqual(slimCustom(['spec', 'jobTargetRef', 'template'], scaledJob).spec, { template: { spec: { containers: [{ name: 'c', image: 'job:1' }] } } });
    assert.equal(slimCustom(['spec', 'template'], { metadata: { name: 'w' }, spec: { workloadRef: { kind: 'Deployment' } } }).spec, undefined, 'no template there: none');
  });

  test('a listed Rollout is the workload; the ReplicaSet and pods under it are not rows, and their digest is its', () => {
    const workloads = discoverWorkloads({ objects: { ...underRollout, 'Rollout.argoproj.io': [slimCustom(['spec', 'template'], rollout)] }, customKinds: [{ group: 'argoproj.io', kind: 'Rollout' }] });
    assert.deepEqual(workloads.map((w) => `${w.kind}/${w.name}`), ['Rollout.argoproj.io/web']);
    assert.equal(workloads[0]!.notPatched, undefined);
    assert.equal(workloads[0]!.containers.find((c) => c.name === 'app')!.runningDigest, digest(1));
    assert.ok(workloads[0]!.template, 'the whole lists, for the merge patch');
  });

  test('a Rollout without a pod template (workloadRef) is reported with what runs under it, not patched', () => {
    const workloadRef = slimCustom(['spec', 'template'], { ...rollout, spec: { workloadRef: { kind: 'Deployment', name: 'web' } } });
    const workloads = discoverWorkloads({ objects: { ...underRollout, 'Rollout.argoproj.io': [workloadRef] }, customKinds: [{ group: 'argoproj.io', kind: 'Rollout' }] });
    assert.deepEqual(workloads.map((w) => [w.kind, w.name, w.containers.map((c) => c.image)]), [['Rollout.argoproj.io', 'web', ['app:1.0']]]);
    assert.match(workloads[0]!.notPatched!, /no pod template/);
  });

  test('the merge patch sends each changed list back whole with only images changed, the precondition and the annotation', () => {
    const [workload] = discoverWorkloads({ objects: { 'Rollout.argoproj.io': [slimCustom(['spec', 'template'], rollout)] } });
    const body = imagePatch(workload!, [{ container: 'app', type: 'container', image: 'backup/app:1.0@x' }, { container: 'init', type: 'initContainer', image: 'backup/init:1@y' }], 'pull') as any;
    assert.equal(body.metadata.resourceVersion, '42');
    assert.deepEqual(JSON.parse(body.metadata.annotations[originalImagesAnnotation]), {
      pullSecret: 'pull',
      containers: { app: { original: 'app:1.0', backup: 'backup/app:1.0@x' } },
      initContainers: { init: { original: 'init:1', backup: 'backup/init:1@y' } },
    });
    assert.deepEqual(body.spec.template.spec, {
      containers: [{ name: 'app', image: 'backup/app:1.0@x', ports: [{ containerPort: 80 }], env: [{ name: 'A', value: '1' }] }, { name: 'side', image: 'side:2' }],
      initContainers: [{ name: 'init', image: 'backup/init:1@y', command: ['true'] }],
      imagePullSecrets: [{ name: 'theirs' }, { name: 'pull' }],
    });

    // Restore, from the object as the patch left it: the originals back, our pull secret out, the annotation removed.
    const patched = structuredClone(rollout) as any;
    patched.spec.template.spec = { ...patched.spec.template.spec, ...body.spec.template.spec };
    patched.metadata.annotations = body.metadata.annotations;
    const [after] = discoverWorkloads({ objects: { 'Rollout.argoproj.io': [slimCustom(['spec', 'template'], patched)] } });
    const undo = restorePatch(after!, [{ container: 'app', type: 'container', image: 'app:1.0' }, { container: 'init', type: 'initContainer', image: 'init:1' }]) as any;
    assert.deepEqual(undo.metadata.annotations, { [originalImagesAnnotation]: null });
    assert.deepEqual(undo.spec.template.spec.containers, (rollout.spec as any).template.spec.containers);
    assert.deepEqual(undo.spec.template.spec.initContainers, (rollout.spec as any).template.spec.initContainers);
    assert.deepEqual(undo.spec.template.spec.imagePullSecrets, [{ name: 'theirs' }]);
  });

  test('restore takes out the pull secret sync added; where it was the only one, the field goes (null), not an empty list', () => {
    const annotations = { [originalImagesAnnotation]: JSON.stringify({ pullSecret: 'pull', containers: { c: { original: 'job:1', backup: 'b/job:1@d' } } }) };
    const scaledJob = slimCustom(['spec', 'jobTargetRef', 'template'], { metadata: { name: 'j', namespace: 'ro', uid: 'j1', resourceVersion: '9', annotations },
      spec: { jobTargetRef: { template: { spec: { containers: [{ name: 'c', image: 'b/job:1@d' }], imagePullSecrets: [{ name: 'pull' }] } } } } });
    const [workload] = discoverWorkloads({ objects: { 'ScaledJob.keda.sh': [scaledJob] } });
    const undo = restorePatch(workload!, [{ container: 'c', type: 'container', image: 'job:1' }]) as any;
    assert.deepEqual(undo.spec.template.spec, { imagePullSecrets: null, containers: [{ name: 'c', image: 'job:1' }] });
  });

  test('an unnamed container (Knative allows one) is named by its place, in the plan and in the patch', () => {
    const service = slimCustom(['spec', 'template'], { metadata: { name: 'hello', namespace: 'kn', uid: 'k1', resourceVersion: '3' }, spec: { template: { spec: { containers: [{ image: 'hello:1', ports: [{ containerPort: 8080 }] }] } } } });
    const [workload] = discoverWorkloads({ objects: { 'Service.serving.knative.dev': [service] } });
    assert.deepEqual(workload!.containers.map((c) => c.name), ['containers[0]']);
    const body = imagePatch(workload!, [{ container: 'containers[0]', type: 'container', image: 'backup/hello:1@z' }]) as any;
    assert.deepEqual(body.spec.template.spec.containers, [{ image: 'backup/hello:1@z', ports: [{ containerPort: 8080 }] }]);
  });
});

describe('--workload-kind GROUP/KIND=PATH', () => {
  test('parses the group, the kind and the dot path', () => {
    assert.deepEqual(parseWorkloadKind('example.com/WebApp=spec.podTemplate'), { group: 'example.com', kind: 'WebApp', path: ['spec', 'podTemplate'] });
  });

  test('bad input is one line that says what is expected', () => {
    for (const [text, message] of [
      ['WebApp=spec.template', /expected GROUP\/KIND=PATH/],
      ['example.com/WebApp', /expected GROUP\/KIND=PATH/],
      ['apps/WebApp=spec.template', /not the API group of a custom resource/],
      ['example.com/webapp=spec.template', /is not a kind/],
      ['example.com/WebApp=spec..template', /field names joined by dots/],
      ['example.com/WebApp=spec.containers[0]', /field names joined by dots/],
    ] as const) {
      assert.throws(() => parseWorkloadKind(text), (err: Error) => err instanceof InvalidSettingError && message.test(err.message) && !err.message.includes('\n'), text);
    }
  });

  test('the user\'s path wins over a known kind\'s; other kinds are added', () => {
    const specs = customKindSpecs([parseWorkloadKind('argoproj.io/Rollout=spec.other'), parseWorkloadKind('example.com/WebApp=spec.template')]);
    assert.equal(specs.length, knownCustomKinds.length + 1);
    assert.deepEqual(specs.find((s) => s.kind === 'Rollout')!.path, ['spec', 'other']);
  });

  test('paths read and build nested objects', () => {
    assert.equal(valueAt({ spec: { a: { b: 1 } } }, ['spec', 'a', 'b']), 1);
    assert.equal(valueAt({ spec: [1] }, ['spec', '0']), undefined, 'no array indexes');
    assert.deepEqual(nestAt(['spec', 'jobTargetRef', 'template'], { x: 1 }), { spec: { jobTargetRef: { template: { x: 1 } } } });
  });
});

describe('discover() with custom kinds', async () => {
  const { discover } = await import('../../../src/core/pipeline.ts');
  const { KubeError } = await import('../../../src/errors.ts');
  const { workloadKinds } = await import('../../../src/core/workloads.ts');
  type Source = import('../../../src/core/ports.ts').WorkloadSource;
  const rolloutKind = { ...knownCustomKinds[0]!, version: 'v1alpha1', resource: 'rollouts', name: 'Rollout.argoproj.io' };
  const listedRollout = slimCustom(['spec', 'template'], { metadata: { name: 'web', namespace: 'ro', uid: 'ro1', resourceVersion: '1' }, spec: template('app:1.0') });
  // A fake source (this is pure logic over what a lister returns; test/integration/custom-workloads
  // and rbac.test run the same against the real API server): the objects per kind, or a refusal.
  const source = (options: { refuseList?: boolean; mayPatch?: boolean }): Source & { reviews: string[] } => {
    const reviews: string[] = [];
    return {
      reviews,
      list: async (kind) => {
        if (kind === 'Rollout.argoproj.io') {
          if (options.refuseList) throw new KubeError('cannot list rollouts.argoproj.io in all namespaces (HTTP 403): forbidden', 403);
          return [listedRollout];
        }
        return (underRollout as Record<string, KubeObject[]>)[kind] ?? [];
      },
      customKinds: async (specs) => (specs.some((s) => s.group === 'argoproj.io') ? [rolloutKind] : []),
      canPatch: async (kind, namespace) => {
        reviews.push(`${kind.name}/${namespace}`);
        return options.mayPatch ?? true;
      },
    };
  };
  const options = { namespaces: [], excludeNamespaces: [], kinds: [...workloadKinds, 'Rollout.argoproj.io'], customKinds: [...knownCustomKinds] };

  test('a served kind is listed and patched through; the access review is asked once per kind and namespace', async () => {
    const s = source({});
    const workloads = await discover(s, options);
    assert.deepEqual(workloads.map((w) => [w.kind, w.name, w.notPatched]), [['Rollout.argoproj.io', 'web', undefined]]);
    assert.deepEqual(s.reviews, ['Rollout.argoproj.io/ro']);
  });

  test('no list (RBAC): a warning naming the kind; its pods are still reported under it, with why', async () => {
    const warnings: string[] = [];
    const workloads = await discover(source({ refuseList: true }), options, (line) => warnings.push(line));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^cannot list rollouts\.argoproj\.io in all namespaces \(HTTP 403\): forbidden; the Rollout\.argoproj\.io objects are not patched/);
    assert.deepEqual(workloads.map((w) => w.kind), ['Rollout.argoproj.io']);
    assert.match(workloads[0]!.notPatched!, /could not list \(RBAC: no list on rollouts\.argoproj\.io\)/);
  });

  test('no patch (RBAC): a warning naming the kind and namespace; its workloads are skipped, not failed', async () => {
    const warnings: string[] = [];
    const workloads = await discover(source({ mayPatch: false }), options, (line) => warnings.push(line));
    assert.match(warnings.join('\n'), /^cannot patch rollouts\.argoproj\.io in namespace ro: RBAC grants no patch on it/);
    assert.match(workloads[0]!.notPatched!, /may not patch rollouts\.argoproj\.io in namespace ro \(RBAC\)/);
  });

  test('--kinds without the custom kind: not listed, and its pods are not reported under it (not selected, like a Deployment)', async () => {
    const workloads = await discover(source({}), { ...options, kinds: [...workloadKinds] });
    assert.deepEqual(workloads, []);
  });
});
