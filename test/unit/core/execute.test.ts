import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { executePlan, type ImageCopier, type Patcher } from '../../../src/core/execute.ts';
import { imagePatch, readRecorded, restorePatch } from '../../../src/core/patches.ts';
import { imagesToResolve, type PlanConfig, type Resolution } from '../../../src/core/plan.ts';
import { planRestore } from '../../../src/core/restore.ts';
import { originalImagesAnnotation, type KubeObject, type Workload } from '../../../src/core/workloads.ts';

const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const config: PlanConfig = { backup: { registry: 'backup.example.com', prefix: 'mirror' }, naming: 'nested', pin: true, patchManaged: false, includeImages: [], excludeImages: [] };
const backupOf = (name: string, tag: string, digest: string) => `backup.example.com/mirror/docker.io/library/${name}:${tag}@${digest}`;

function workload(name: string, images: Record<string, string>, extra: Partial<Workload> = {}): Workload {
  return {
    kind: 'Deployment', namespace: 'shop', name, uid: name, resourceVersion: '10', labels: {}, annotations: {}, pullSecrets: [],
    containers: Object.entries(images).map(([c, image]) => ({ name: c, image, type: 'container' as const })), ...extra,
  };
}

describe('patch bodies', () => {
  test('only image fields, the annotation, and the resourceVersion precondition, at each kind\'s pod spec', () => {
    const w = workload('web', { app: 'nginx:1.25', side: 'envoy:1' });
    w.containers.push({ name: 'init', image: 'busybox:1', type: 'initContainer' });
    const body = imagePatch(w, [{ container: 'app', type: 'container', image: 'B1' }, { container: 'init', type: 'initContainer', image: 'B2' }]) as any;
    assert.deepEqual(body.spec, { template: { spec: { containers: [{ name: 'app', image: 'B1' }], initContainers: [{ name: 'init', image: 'B2' }] } } });
    assert.equal(body.metadata.resourceVersion, '10');
    assert.deepEqual(JSON.parse(body.metadata.annotations[originalImagesAnnotation]), {
      containers: { app: { original: 'nginx:1.25', backup: 'B1' } }, initContainers: { init: { original: 'busybox:1', backup: 'B2' } },
    });
    assert.deepEqual((imagePatch({ ...w, kind: 'CronJob' }, [{ container: 'app', type: 'container', image: 'B1' }]) as any).spec.jobTemplate.spec.template.spec.containers, [{ name: 'app', image: 'B1' }]);
    assert.deepEqual((imagePatch({ ...w, kind: 'Pod' }, [{ container: 'app', type: 'container', image: 'B1' }]) as any).spec.containers, [{ name: 'app', image: 'B1' }]);
  });

  test('a re-patch keeps the first original, never recording a backup copy as the original', () => {
    const first = imagePatch(workload('web', { app: 'nginx:1.25' }), [{ container: 'app', type: 'container', image: 'B1' }]) as any;
    const patched = workload('web', { app: 'B1' }, { annotations: first.metadata.annotations });
    const second = imagePatch(patched, [{ container: 'app', type: 'container', image: 'B2' }]) as any;
    assert.deepEqual(readRecorded(second.metadata.annotations), { containers: { app: { original: 'nginx:1.25', backup: 'B2' } } });
  });

  test('restore: only containers still on our backup image go back; the annotation is removed', () => {
    const annotations = { [originalImagesAnnotation]: JSON.stringify({ containers: { app: { original: 'nginx:1.25', backup: 'B1' }, side: { original: 'envoy:1', backup: 'B2' }, gone: { original: 'x:1', backup: 'B3' } } }) };
    const [step] = planRestore([workload('web', { app: 'B1', side: 'envoy:2' }, { annotations })]);
    assert.deepEqual(step!.changes, [{ container: 'app', type: 'container', image: 'nginx:1.25' }]);
    assert.deepEqual(step!.kept.map((k) => k.container), ['side', 'gone']);
    assert.match(step!.kept[0]!.reason, /changed since image-clone patched it \(now envoy:2\)/);
    const body = restorePatch(step!.workload, step!.changes) as any;
    assert.equal(body.metadata.annotations[originalImagesAnnotation], null);
    assert.deepEqual(planRestore([workload('plain', { app: 'nginx' }), workload('junk', { app: 'x' }, { annotations: { [originalImagesAnnotation]: '{"containers":{"app":"old-format"}}' } })]), []);
  });
});

describe('executePlan', () => {
  function copier(fail: string[] = []): ImageCopier & { jobs: string[] } {
    const jobs: string[] = [];
    return {
      jobs,
      async copyAll(list) {
        return list.map(({ source, target }) => {
          jobs.push(`${source.repository}@${source.digest} -> ${target.repository}:${target.tag}`);
          return fail.includes(source.repository)
            ? { error: new Error(`${source.repository}: copy failed`) }
            : { result: { status: 'copied' as const, digest: source.digest!, counts: { blobsCopied: 2, blobsMounted: 0, blobsPresent: 0, bytesCopied: 100 } } };
        });
      },
    };
  }
  function patcher(onPatch: (kind: string, name: string, body: any, call: number) => 'patched' | 'conflict' | 'gone', fresh?: (name: string) => KubeObject): Patcher & { bodies: any[] } {
    const bodies: any[] = [];
    let calls = 0;
    return {
      bodies,
      async patch(kind, _ns, name, body) {
        bodies.push(body);
        const status = onPatch(kind, name, body, ++calls);
        return status === 'patched' ? { status, object: {} } : { status };
      },
      async read(_kind, _ns, name) {
        return fresh?.(name);
      },
    };
  }

  test('copies each image once, patches each workload once; a failed copy leaves its workloads untouched', async () => {
    const workloads = [workload('web', { app: 'nginx:1.25' }), workload('api', { app: 'nginx:1.25', cache: 'redis:7' }), workload('cache', { app: 'redis:7' })];
    const resolutions = new Map<string, Resolution>([
      ['docker.io/library/nginx:1.25', { state: 'copy', digest: d(1), reason: '' }],
      ['docker.io/library/redis:7', { state: 'copy', digest: d(2), reason: '' }],
    ]);
    const c = copier(['library/redis']);
    const p = patcher(() => 'patched');
    const result = await executePlan(workloads, imagesToResolve(workloads, config), resolutions, config, { copier: c, patcher: p }, { concurrency: 4 });
    assert.deepEqual(c.jobs, [`library/nginx@${d(1)} -> mirror/docker.io/library/nginx:1.25`, `library/redis@${d(2)} -> mirror/docker.io/library/redis:7`]);
    assert.deepEqual(result.workloads.map((w) => [w.name, w.result]).sort(), [['api', 'failed'], ['cache', 'failed'], ['web', 'patched']]);
    assert.equal(p.bodies.length, 1, 'only web was patched; api would have been half-patched');
    assert.equal(p.bodies[0].spec.template.spec.containers[0].image, backupOf('nginx', '1.25', d(1)));
    assert.equal(result.images.get('docker.io/library/redis:7')?.result, 'failed');
  });

  test('a conflict is re-read and re-planned: unchanged images are patched on top, changed ones left alone', async () => {
    const workloads = [workload('scaled', { app: 'nginx:1.25' }), workload('retagged', { app: 'nginx:1.25' })];
    const resolutions = new Map<string, Resolution>([['docker.io/library/nginx:1.25', { state: 'copy', digest: d(1), reason: '' }]]);
    const fresh = (name: string): KubeObject => ({
      metadata: { name, namespace: 'shop', uid: name, resourceVersion: '11', labels: { team: 'payments' } },
      spec: { replicas: 3, template: { spec: { containers: [{ name: 'app', image: name === 'retagged' ? 'nginx:1.26' : 'nginx:1.25' }] } } },
    });
    const p = patcher((_kind, _name, body) => (body.metadata.resourceVersion === '10' ? 'conflict' : 'patched'), fresh);
    const events: string[] = [];
    const result = await executePlan(workloads, imagesToResolve(workloads, config), resolutions, config, { copier: copier(), patcher: p }, { concurrency: 4, onEvent: (e) => events.push(e.kind) });
    const byName = Object.fromEntries(result.workloads.map((w) => [w.name, w]));
    assert.equal(byName.scaled!.result, 'patched');
    assert.equal(p.bodies.find((b) => b.metadata.resourceVersion === '11')?.spec.template.spec.containers[0].image, backupOf('nginx', '1.25', d(1)));
    assert.deepEqual([byName.retagged!.result], ['skipped']);
    assert.match(byName.retagged!.reason, /changed during the run/);
    assert.equal(p.bodies.filter((b) => b.metadata.resourceVersion === '11').length, 1, 'the retagged workload is not patched over the other writer');
    assert.equal(events.filter((e) => e === 'workload-conflict').length, 2);
  });

  test('a workload that keeps changing is given up after three tries, not overwritten', async () => {
    const workloads = [workload('busy', { app: 'nginx:1.25' })];
    const resolutions = new Map<string, Resolution>([['docker.io/library/nginx:1.25', { state: 'present', digest: d(1), reason: '' }]]);
    const p = patcher(() => 'conflict', (name) => ({ metadata: { name, namespace: 'shop', uid: name, resourceVersion: 'x' }, spec: { template: { spec: { containers: [{ name: 'app', image: 'nginx:1.25' }] } } } }));
    const result = await executePlan(workloads, imagesToResolve(workloads, config), resolutions, config, { copier: copier(), patcher: p }, { concurrency: 1 });
    assert.deepEqual([result.workloads[0]!.result, p.bodies.length], ['skipped', 3]);
  });
});
