import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { executePlan } from '../../../src/core/execute.ts';
import type { ImageCopier, Patcher } from '../../../src/core/ports.ts';
import { anchorTag, sealTag } from '../../../src/core/naming.ts';
import { imagePatch, readRecorded, restorePatch } from '../../../src/core/patches.ts';
import { imagesToResolve, type Resolution } from '../../../src/core/plan.ts';
import { executeRestore, planRestore } from '../../../src/core/restore-plan.ts';
import { renderRestoreTable, restoreDocument } from '../../../src/cli/output/restore-report.ts';
import { originalImagesAnnotation, type Workload } from '../../../src/core/workloads.ts';
import type { KubeObject } from '../../../src/core/kube-object.ts';
import { planConfig } from './plan-config.ts';

const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const config = planConfig;
const backupOf = (name: string, tag: string, digest: string) => `backup.example.com/mirror/docker.io/library/${name}:${tag}@${digest}`;
const anchor = (n: number) => anchorTag(d(n));

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
  // A fake backup registry (tags and manifests by repository) standing in for the copy engine and
  // the lookups: the registry rules under test are the core's, not a registry's.
  function copier(fail: string[] = [], tags: Map<string, string> = new Map(), held: Set<string> = new Set()): ImageCopier & { jobs: string[]; tags: Map<string, string>; held: Set<string> } {
    const jobs: string[] = [];
    return {
      jobs, tags, held,
      async copyAll(list) {
        return list.map(({ source, target, alsoTags = [] }) => {
          jobs.push(`${source.repository}@${source.digest} -> ${target.repository}:${target.tag}`);
          if (fail.includes(source.repository)) return { error: new Error(`${source.repository}: copy failed`) };
          for (const tag of [target.tag, ...alsoTags]) tags.set(`${target.repository}:${tag}`, source.digest!);
          held.add(`${target.repository}@${source.digest}`);
          return { result: { status: 'copied' as const, digest: source.digest!, counts: { manifestsPushed: 0, blobsCopied: 2, blobsMounted: 0, blobsPresent: 0, bytesCopied: 100, signatures: 0 } } };
        });
      },
      async tag(repository, digest, tagged) {
        if (!held.has(`${repository.repository}@${digest}`)) throw new Error(`${repository.repository}@${digest}: manifest unknown`);
        const list = typeof tagged === 'string' ? [tagged] : tagged;
        jobs.push(`tag ${repository.repository}:${list.join(',')} -> ${digest}`);
        for (const tag of list) tags.set(`${repository.repository}:${tag}`, digest);
      },
    };
  }
  const lookupOf = (c: ReturnType<typeof copier>) => ({
    async digestOf(repository: { repository: string }, reference: string) {
      return reference.includes(':') && !reference.startsWith('ic-') ? (c.held.has(`${repository.repository}@${reference}`) ? reference : undefined) : c.tags.get(`${repository.repository}:${reference}`);
    },
  });
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
    const result = await executePlan(workloads, imagesToResolve(workloads, config), resolutions, config, { copier: c, patcher: p, manifests: lookupOf(c) }, { concurrency: 4 });
    assert.deepEqual(c.jobs, [
      `library/nginx@${d(1)} -> mirror/docker.io/library/nginx:${anchor(1)}`, `library/redis@${d(2)} -> mirror/docker.io/library/redis:${anchor(2)}`,
      `tag mirror/docker.io/library/nginx:1.25 -> ${d(1)}`,
    ], 'copies go to anchor tags; the human tag follows a copy that verified');
    assert.deepEqual(result.workloads.map((w) => [w.name, w.result]).sort(), [['api', 'failed'], ['cache', 'failed'], ['web', 'patched']]);
    assert.equal(p.bodies.length, 1, 'only web was patched; api would have been half-patched');
    assert.equal(p.bodies[0].spec.template.spec.containers[0].image, backupOf('nginx', '1.25', d(1)));
    assert.equal(result.images.get('docker.io/library/redis:7')?.result, 'failed');
  });

  test('before copying, the copier learns which backup repositories hold images already (where shared layers are mounted from)', async () => {
    const workloads = [workload('web', { app: 'nginx:1.25' }), workload('db', { app: 'redis:7' }), workload('old', { app: 'busybox:1' })];
    const resolutions = new Map<string, Resolution>([
      ['docker.io/library/nginx:1.25', { state: 'copy', digest: d(1), reason: '' }],
      ['docker.io/library/redis:7', { state: 'present', digest: d(2), reason: '' }],
      ['docker.io/library/busybox:1', { state: 'tag', digest: d(3), reason: '' }],
    ]);
    const c = copier();
    c.held.add(`mirror/docker.io/library/busybox@${d(3)}`);
    const known: string[][] = [];
    c.knownRepositories = (repositories) => known.push(repositories.map((r) => `${r.registry}/${r.repository}`));
    await executePlan(workloads, imagesToResolve(workloads, config), resolutions, config, { copier: c, patcher: patcher(() => 'patched'), manifests: lookupOf(c) }, { concurrency: 4 });
    assert.deepEqual(known, [['backup.example.com/mirror/docker.io/library/redis', 'backup.example.com/mirror/docker.io/library/busybox']]);

    const none: string[][] = [];
    const idle = copier();
    idle.knownRepositories = (repositories) => none.push(repositories.map((r) => r.repository));
    const present = new Map<string, Resolution>([['docker.io/library/redis:7', { state: 'present', digest: d(2), reason: '' }]]);
    await executePlan([workloads[1]!], imagesToResolve([workloads[1]!], config), present, config, { copier: idle, patcher: patcher(() => 'patched'), manifests: lookupOf(idle) }, { concurrency: 4 });
    assert.deepEqual(none, [], 'nothing to copy: not even that');
  });

  test('a conflict is re-read and re-planned: unchanged images are patched on top, changed ones left alone', async () => {
    const workloads = [workload('scaled', { app: 'nginx:1.25' }), workload('retagged', { app: 'nginx:1.25' })];
    const resolutions = new Map<string, Resolution>([['docker.io/library/nginx:1.25', { state: 'copy', digest: d(1), reason: '' }]]);
    const fresh = (name: string): KubeObject => ({
      metadata: { name, namespace: 'shop', uid: name, resourceVersion: '11', labels: { team: 'payments' } },
      spec: { replicas: 3, template: { spec: { containers: [{ name: 'app', image: name === 'retagged' ? 'nginx:1.26' : 'nginx:1.25' }] } } },
    });
    const cp = copier();
    const p = patcher((_kind, _name, body) => (body.metadata.resourceVersion === '10' ? 'conflict' : 'patched'), fresh);
    const events: string[] = [];
    const result = await executePlan(workloads, imagesToResolve(workloads, config), resolutions, config, { copier: cp, patcher: p, manifests: lookupOf(cp) }, { concurrency: 4, onEvent: (e) => events.push(e.kind) });
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
    const cp = copier();
    const p = patcher(() => 'conflict', (name) => ({ metadata: { name, namespace: 'shop', uid: name, resourceVersion: 'x' }, spec: { template: { spec: { containers: [{ name: 'app', image: 'nginx:1.25' }] } } } }));
    const result = await executePlan(workloads, imagesToResolve(workloads, config), resolutions, config, { copier: cp, patcher: p, manifests: lookupOf(cp) }, { concurrency: 1 });
    assert.deepEqual([result.workloads[0]!.result, p.bodies.length], ['skipped', 3]);
  });

  test('two digests of one tag: both copied to their anchors, both workloads patched; the human tag goes to the one upstream names', async () => {
    const workloads = [
      workload('old', { app: 'nginx:1.25' }, { containers: [{ name: 'app', image: 'nginx:1.25', type: 'container', runningDigest: d(1) }] }),
      workload('new', { app: 'nginx:1.25' }, { containers: [{ name: 'app', image: 'nginx:1.25', type: 'container', runningDigest: d(2) }] }),
    ];
    const requests = imagesToResolve(workloads, config);
    assert.equal(requests.length, 2, 'one request per (image, digest)');
    const resolutions = new Map<string, Resolution>([
      [requests[0]!.key, { state: 'copy', digest: d(1), upstream: d(2), reason: 'the tag moved upstream' }],
      [requests[1]!.key, { state: 'copy', digest: d(2), upstream: d(2), reason: 'not in the backup yet' }],
    ]);
    const c = copier();
    const p = patcher(() => 'patched');
    const result = await executePlan(workloads, requests, resolutions, config, { copier: c, patcher: p, manifests: lookupOf(c) }, { concurrency: 4 });
    assert.deepEqual(result.workloads.map((w) => [w.name, w.result]).sort(), [['new', 'patched'], ['old', 'patched']]);
    assert.deepEqual(p.bodies.map((b) => b.spec.template.spec.containers[0].image).sort(), [backupOf('nginx', '1.25', d(1)), backupOf('nginx', '1.25', d(2))]);
    const repo = 'mirror/docker.io/library/nginx';
    assert.equal(c.tags.get(`${repo}:${anchor(1)}`), d(1));
    assert.equal(c.tags.get(`${repo}:${anchor(2)}`), d(2));
    assert.equal(c.tags.get(`${repo}:1.25`), d(2), 'the human tag names what upstream names');
  });

  test('a human tag never moves for a digest upstream no longer names, and never leaves its old digest untagged', async () => {
    const repo = 'mirror/docker.io/library/nginx';
    const running = (n: number) => [workload('w', { app: 'nginx:1.25' }, { containers: [{ name: 'app', image: 'nginx:1.25', type: 'container', runningDigest: d(n) }] })];
    // A backup made before anchor tags: the human tag holds d(1), no anchor.
    const c = copier([], new Map([[`${repo}:1.25`, d(1)]]), new Set([`${repo}@${d(1)}`]));
    // d(3) runs, but upstream now names d(4): what runs is copied, the human tag stays.
    let requests = imagesToResolve(running(3), config);
    await executePlan(running(3), requests, new Map([[requests[0]!.key, { state: 'copy', digest: d(3), upstream: d(4), reason: '' }]]), config, { copier: c, patcher: patcher(() => 'patched'), manifests: lookupOf(c) }, { concurrency: 2 });
    assert.equal(c.tags.get(`${repo}:1.25`), d(1));
    assert.equal(c.tags.get(`${repo}:${anchor(3)}`), d(3));
    // d(4) runs and upstream names it: the human tag moves, after d(1) got its anchor.
    requests = imagesToResolve(running(4), config);
    await executePlan(running(4), requests, new Map([[requests[0]!.key, { state: 'copy', digest: d(4), upstream: d(4), reason: '' }]]), config, { copier: c, patcher: patcher(() => 'patched'), manifests: lookupOf(c) }, { concurrency: 2 });
    assert.equal(c.tags.get(`${repo}:1.25`), d(4));
    assert.equal(c.tags.get(`${repo}:${anchor(1)}`), d(1), 'the digest the human tag left is held by its anchor');
    assert.equal(c.tags.get(`${repo}:${sealTag(d(1))}`), d(1), 'and sealed: its platforms were anchored first');
    assert.ok(c.jobs.indexOf(`tag ${repo}:${anchor(1)},${sealTag(d(1))} -> ${d(1)}`) < c.jobs.indexOf(`tag ${repo}:1.25 -> ${d(4)}`), 'anchored before the tag moved');
  });

  test('an older build is never written under a missing human tag: a concurrent run may be placing what upstream names', async () => {
    const repo = 'mirror/docker.io/library/nginx';
    const running = [workload('w', { app: 'nginx:1.25' }, { containers: [{ name: 'app', image: 'nginx:1.25', type: 'container', runningDigest: d(3) }] })];
    const c = copier();
    const requests = imagesToResolve(running, config);
    await executePlan(running, requests, new Map([[requests[0]!.key, { state: 'copy', digest: d(3), upstream: d(4), reason: '' }]]), config, { copier: c, patcher: patcher(() => 'patched'), manifests: lookupOf(c) }, { concurrency: 2 });
    assert.equal(c.tags.get(`${repo}:${anchor(3)}`), d(3), 'the copy is held by its anchor');
    assert.equal(c.tags.has(`${repo}:1.25`), false, 'the human tag is left for the digest upstream names');
  });

  test('upstream unknown (gone): the copy gets the human tag where it is missing, and never moves it', async () => {
    const repo = 'mirror/docker.io/library/nginx';
    const running = (n: number) => [workload('w', { app: 'nginx:1.25' }, { containers: [{ name: 'app', image: 'nginx:1.25', type: 'container', runningDigest: d(n) }] })];
    const c = copier();
    for (const n of [5, 6]) {
      const requests = imagesToResolve(running(n), config);
      await executePlan(running(n), requests, new Map([[requests[0]!.key, { state: 'copy', digest: d(n), reason: '' }]]), config, { copier: c, patcher: patcher(() => 'patched'), manifests: lookupOf(c) }, { concurrency: 2 });
    }
    assert.equal(c.tags.get(`${repo}:1.25`), d(5));
    assert.equal(c.tags.get(`${repo}:${anchor(6)}`), d(6));
  });

  test('tag: a digest the backup holds without its anchor gets the anchor from its own bytes, then the workload is patched', async () => {
    const repo = 'mirror/docker.io/library/nginx';
    const c = copier([], new Map([[`${repo}:1.25`, d(1)]]), new Set([`${repo}@${d(1)}`]));
    const workloads = [workload('w', { app: 'nginx:1.25' })];
    const requests = imagesToResolve(workloads, config);
    const p = patcher(() => 'patched');
    const result = await executePlan(workloads, requests, new Map([[requests[0]!.key, { state: 'tag', digest: d(1), upstream: d(1), reason: '' }]]), config, { copier: c, patcher: p, manifests: lookupOf(c) }, { concurrency: 2 });
    assert.deepEqual(c.jobs, [`tag ${repo}:${anchor(1)},${sealTag(d(1))} -> ${d(1)}`], 'no copy: anchored and sealed, no bytes');
    assert.equal(result.images.get(requests[0]!.key)?.result, 'tagged');
    assert.equal(result.workloads[0]!.result, 'patched');
  });

  test('one digest named two ways (by tag, and by the digest pods run) is copied once', async () => {
    const workloads = [
      workload('pods', { app: 'nginx:1.25' }, { containers: [{ name: 'app', image: 'nginx:1.25', type: 'container', runningDigest: d(1) }] }),
      workload('template', { app: 'nginx:1.25' }),
    ];
    const requests = imagesToResolve(workloads, config);
    assert.equal(requests.length, 2);
    const c = copier();
    const result = await executePlan(workloads, requests, new Map(requests.map((r) => [r.key, { state: 'copy', digest: d(1), upstream: d(1), reason: '' } as Resolution])), config,
      { copier: c, patcher: patcher(() => 'patched'), manifests: lookupOf(c) }, { concurrency: 2 });
    assert.equal(c.jobs.filter((j) => !j.startsWith('tag ')).length, 1, 'one copy');
    assert.deepEqual(requests.map((r) => result.images.get(r.key)?.result), ['copied', 'copied']);
    assert.equal(result.totals.bytesCopied, 100, 'its bytes counted once');
  });

  test('one digest named two ways, held without its anchor, is tagged once', async () => {
    const repo = 'mirror/docker.io/library/nginx';
    const workloads = [
      workload('pods', { app: 'nginx:1.25' }, { containers: [{ name: 'app', image: 'nginx:1.25', type: 'container', runningDigest: d(1) }] }),
      workload('template', { app: 'nginx:1.25' }),
    ];
    const requests = imagesToResolve(workloads, config);
    const c = copier([], new Map([[`${repo}:1.25`, d(1)]]), new Set([`${repo}@${d(1)}`]));
    const result = await executePlan(workloads, requests, new Map(requests.map((r) => [r.key, { state: 'tag', digest: d(1), upstream: d(1), reason: '' } as Resolution])), config,
      { copier: c, patcher: patcher(() => 'patched'), manifests: lookupOf(c) }, { concurrency: 2 });
    assert.deepEqual(c.jobs, [`tag ${repo}:${anchor(1)},${sealTag(d(1))} -> ${d(1)}`], 'tagged once');
    assert.deepEqual(requests.map((r) => result.images.get(r.key)?.result), ['tagged', 'tagged']);
  });

  test('restore: a conflict is re-read and re-planned; one that keeps changing is kept, never overwritten', async () => {
    const annotations = { [originalImagesAnnotation]: JSON.stringify({ containers: { app: { original: 'nginx:1.25', backup: 'B1' } } }) };
    const fresh = (name: string): KubeObject => ({
      metadata: { name, namespace: 'shop', uid: name, resourceVersion: '11', annotations },
      spec: { template: { spec: { containers: [{ name: 'app', image: 'B1' }] } } },
    });
    const steps = planRestore([workload('once', { app: 'B1' }, { annotations }), workload('busy', { app: 'B1' }, { annotations })]);
    const p = patcher((_kind, name, body) => (name === 'busy' || body.metadata.resourceVersion === '10' ? 'conflict' : 'patched'), fresh);
    const outcomes = await executeRestore(steps, p, { dryRun: false });
    assert.deepEqual(outcomes.map((o) => [o.step.workload.name, o.result]), [['once', 'restored'], ['busy', 'kept']]);
    assert.equal(outcomes[0]!.step.workload.resourceVersion, '11', 'restored on top of the fresh read');
    assert.equal(p.bodies.filter((b) => b.metadata.resourceVersion === '11').length, 1 + 2, 'once: the re-planned patch; busy: two more tries, then kept');
    assert.deepEqual((await executeRestore(steps, patcher(() => 'patched'), { dryRun: true })).map((o) => o.result), ['would restore', 'would restore']);
  });

  test('restore: a workload deleted during the run is reported gone, not restored', async () => {
    const annotations = { [originalImagesAnnotation]: JSON.stringify({ containers: { app: { original: 'nginx:1.25', backup: 'B1' } } }) };
    const steps = planRestore([workload('deleted', { app: 'B1' }, { annotations }), workload('vanished', { app: 'B1' }, { annotations }), workload('kept', { app: 'B1' }, { annotations })]);
    // 'deleted' answers the patch with 404; 'vanished' conflicts, and its re-read finds nothing.
    const p = patcher((_kind, name) => (name === 'deleted' ? 'gone' : name === 'vanished' ? 'conflict' : 'patched'), () => undefined as unknown as KubeObject);
    const outcomes = await executeRestore(steps, p, { dryRun: false });
    assert.deepEqual(outcomes.map((o) => [o.step.workload.name, o.result]), [['deleted', 'gone'], ['vanished', 'gone'], ['kept', 'restored']]);
    const document = restoreDocument(outcomes, false);
    assert.deepEqual(document.summary.workloads, { total: 3, restored: 1, kept: 0, gone: 2, failed: 0 });
    assert.match(renderRestoreTable(document), /Workloads: 3: 1 restored, 0 kept, 2 gone, 0 failed\./);
  });

  test('images already in the backup get their attachments refreshed, unless the source no longer has them', async () => {
    const c = copier();
    const refreshed: string[] = [];
    c.refreshAttachments = async (jobs) => {
      for (const { source, target } of jobs) refreshed.push(`${source.repository}@${source.digest} -> ${target.repository}@${target.digest}`);
    };
    const workloads = [workload('web', { app: 'nginx:1.25' }), workload('cache', { app: 'redis:7' }), workload('gone', { app: 'memcached:1' })];
    const requests = imagesToResolve(workloads, config);
    const key = (name: string) => requests.find((r) => r.source.repository === `library/${name}`)!.key;
    const resolutions = new Map<string, Resolution>([
      [key('nginx'), { state: 'present', digest: d(1), upstream: d(1), reason: 'the backup holds this digest under its anchor tag' }],
      [key('redis'), { state: 'copy', digest: d(2), upstream: d(2), reason: 'not in the backup yet' }],
      [key('memcached'), { state: 'present', digest: d(3), reason: 'gone upstream; the backup copy is used' }],
    ]);
    await executePlan(workloads, requests, resolutions, config, { copier: c, patcher: patcher(() => 'patched'), manifests: lookupOf(c) }, { concurrency: 2 });
    assert.deepEqual(refreshed, [`library/nginx@${d(1)} -> mirror/docker.io/library/nginx@${d(1)}`], 'the copied image got its attachments with the copy; the gone one is not asked');
  });
});
