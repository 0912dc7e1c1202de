import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { anchorTag } from '../../../src/core/naming.ts';
import { buildPlan, globMatch, imagesToResolve, type Resolution } from '../../../src/core/plan.ts';
import type { Holding, ManifestLookup } from '../../../src/core/ports.ts';
import { resolveImages } from '../../../src/core/resolve.ts';
import type { Workload } from '../../../src/core/workloads.ts';
import { AuthError } from '../../../src/errors.ts';
import { planConfig } from './plan-config.ts';

const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const config = planConfig;

function workload(name: string, images: string[], extra: Partial<Workload> = {}): Workload {
  return {
    kind: 'Deployment', namespace: 'shop', name, uid: name, resourceVersion: '1', labels: {}, annotations: {}, pullSecrets: [],
    containers: images.map((image, i) => ({ name: `c${i}`, image, type: 'container' as const })), ...extra,
  };
}

describe('buildPlan', () => {
  test('each distinct image is resolved once, whatever the number of users', () => {
    const workloads = [workload('a', ['nginx:1.25', 'redis:7']), workload('b', ['docker.io/library/nginx:1.25']), workload('c', ['nginx:1.25'])];
    const requests = imagesToResolve(workloads, config);
    assert.deepEqual(requests.map((r) => r.key), ['docker.io/library/nginx:1.25', 'docker.io/library/redis:7']);
    assert.equal(requests[0]!.backup.repository, 'mirror/docker.io/library/nginx');
  });

  test('actions and reasons for every case', () => {
    const workloads = [
      workload('web', ['nginx:1.25']),
      workload('cache', ['redis:7']),
      workload('gone', ['quay.io/acme/gone:1']),
      workload('mirrored', ['backup.example.com/mirror/docker.io/library/nginx:1.25@' + d(1)]),
      workload('broken', ['Nginx/Bad:1']),
      workload('argo', ['nginx:1.25'], { managedBy: 'Argo CD' }),
      workload('batch', ['nginx:1.25'], { kind: 'Job' }),
    ];
    const resolutions = new Map<string, Resolution>([
      ['docker.io/library/nginx:1.25', { state: 'copy', digest: d(1), reason: 'not in the backup yet' }],
      ['docker.io/library/redis:7', { state: 'present', digest: d(2), reason: 'the backup holds the current digest' }],
      ['quay.io/acme/gone:1', { state: 'lost', reason: 'missing from the source and from the backup' }],
    ]);
    const plan = buildPlan(workloads, resolutions, config);
    const byName = Object.fromEntries(plan.workloads.map((w) => [w.name, w]));
    assert.equal(byName.web!.action, 'patch');
    assert.equal(byName.web!.newImage, `backup.example.com/mirror/docker.io/library/nginx:1.25@${d(1)}`);
    assert.equal(byName.cache!.action, 'patch');
    assert.deepEqual([byName.gone!.action, byName.gone!.reason], ['skip', 'image lost: missing upstream and in the backup']);
    assert.deepEqual([byName.mirrored!.action, byName.mirrored!.reason], ['unchanged', 'already runs from the backup registry']);
    assert.equal(byName.broken!.action, 'error');
    assert.match(byName.broken!.reason, /invalid image reference "Nginx\/Bad:1"/);
    assert.deepEqual([byName.argo!.action, byName.argo!.newImage !== null], ['skip', true]);
    assert.match(byName.argo!.reason, /managed by Argo CD/);
    assert.equal(byName.batch!.action, 'skip');
    assert.deepEqual(plan.summary.images, { copy: 1, tag: 0, present: 1, lost: 1, excluded: 0, error: 0 });
    assert.deepEqual(plan.images.find((i) => i.action === 'copy')!.usedBy, 3);
    const managed = buildPlan(workloads, resolutions, { ...config, patchManaged: true });
    assert.equal(managed.workloads.find((w) => w.name === 'argo')!.action, 'patch');
  });

  test('a workload with one unbackable container is left whole: no half patches', () => {
    const plan = buildPlan([workload('mixed', ['nginx:1.25', 'Bad/Ref:1'])],
      new Map([['docker.io/library/nginx:1.25', { state: 'copy', digest: d(1), reason: 'x' } as Resolution]]), config);
    assert.deepEqual(plan.workloads.map((w) => w.action), ['skip', 'error']);
  });

  test('--no-pin, include and exclude globs, digest-only references', () => {
    const workloads = [workload('a', ['nginx:1.25', 'redis:7', `alpine@${d(3)}`])];
    const resolutions = new Map<string, Resolution>([
      ['docker.io/library/nginx:1.25', { state: 'copy', digest: d(1), reason: '' }],
      [`docker.io/library/alpine@${d(3)}`, { state: 'copy', digest: d(3), reason: '' }],
    ]);
    const plan = buildPlan(workloads, resolutions, { ...config, pin: false, excludeImages: ['docker.io/library/redis:*'] });
    assert.deepEqual(plan.workloads.map((w) => [w.action, w.newImage]), [
      ['patch', `backup.example.com/mirror/docker.io/library/nginx:ic-sha256-${d(1).slice(7)}`],
      ['skip', null],
      ['patch', `backup.example.com/mirror/docker.io/library/alpine:ic-sha256-${d(3).slice(7)}`],
    ]);
    assert.equal(plan.images.find((i) => i.action === 'excluded')!.reason, 'matched by --exclude-image docker.io/library/redis:*');
    // Core spells no flag: the reason names the setting as the caller does (a config file's key, say).
    const keyed = buildPlan(workloads, resolutions, { ...config, excludeImages: ['docker.io/library/redis:*'], names: { ...config.names, excludeImages: 'sync.excludeImages' } });
    assert.equal(keyed.images.find((i) => i.action === 'excluded')!.reason, 'matched by sync.excludeImages docker.io/library/redis:*');
    const only = buildPlan(workloads, resolutions, { ...config, includeImages: ['*nginx*'] });
    assert.deepEqual(only.workloads.map((w) => w.action), ['patch', 'skip', 'skip']);
  });

  test('a digest-only reference is pinned by digest alone: its copy is held by its anchor tag', () => {
    const plan = buildPlan([workload('a', [`alpine@${d(3)}`])], new Map([[`docker.io/library/alpine@${d(3)}`, { state: 'copy', digest: d(3), reason: '' } as Resolution]]), config);
    assert.equal(plan.workloads[0]!.newImage, `backup.example.com/mirror/docker.io/library/alpine@${d(3)}`);
  });

  test('drift: the plan names the digest that runs and the one upstream names now, and counts it', () => {
    const w = workload('a', ['nginx:1.25']);
    w.containers[0]!.runningDigest = d(1);
    const [request] = imagesToResolve([w], config);
    const plan = buildPlan([w], new Map([[request!.key, { state: 'copy', digest: d(1), upstream: d(2), reason: 'the tag moved upstream' } as Resolution]]), config);
    assert.deepEqual([plan.images[0]!.digest, plan.images[0]!.upstreamDigest, plan.summary.drifted], [d(1), d(2), 1]);
    assert.equal(plan.workloads[0]!.newImage, `backup.example.com/mirror/docker.io/library/nginx:1.25@${d(1)}`, 'what runs is what the workload is patched to');
  });

  test('a workload already on its copy, pinned or by anchor tag (--no-pin), is checked by the digest it names', () => {
    const backup = 'backup.example.com/mirror/docker.io/library/nginx';
    for (const image of [`${backup}:1.25@${d(1)}`, `${backup}:${anchorTag(d(1))}`, `${backup}@${d(1)}`]) {
      const annotations = { 'image-clone.io/original-images': JSON.stringify({ containers: { c0: { original: 'nginx:1.25', backup: image } } }) };
      const [request] = imagesToResolve([workload('a', [image], { annotations })], config);
      assert.deepEqual([request?.digest, request?.backup.tag, request?.source.tag], [d(1), '1.25', '1.25'], image);
    }
  });

  test('globs: * crosses slashes, ? is one character, everything else is literal', () => {
    assert.ok(globMatch('docker.io/library/*', 'docker.io/library/nginx:1.25'));
    assert.ok(globMatch('*.gcr.io/*', 'eu.gcr.io/proj/app:1'));
    assert.ok(!globMatch('docker.io/library/nginx', 'docker.io/library/nginx:1.25'));
    assert.ok(globMatch('nginx:1.2?', 'nginx:1.25'));
    assert.ok(!globMatch('a.b', 'axb'));
  });
});

describe('resolveImages', () => {
  function lookup(answers: Record<string, string | undefined | Error>): ManifestLookup & { calls: string[] } {
    const calls: string[] = [];
    return {
      calls,
      async digestOf(repo, reference) {
        const key = `${repo.registry}/${repo.repository}:${reference}`;
        calls.push(key);
        const answer = answers[key];
        if (answer instanceof Error) throw answer;
        return answer;
      },
    };
  }

  const backupRepo = 'backup.example.com/mirror/docker.io/library/nginx';

  test('the backup is asked first; one request per (image, digest) when its anchor tag holds the running digest', async () => {
    const workloads = [workload('a', ['nginx:1.25']), workload('b', ['nginx:1.25'])];
    workloads[0]!.containers[0]!.runningDigest = d(1);
    workloads[1]!.containers[0]!.runningDigest = d(2);
    const l = lookup({ [`${backupRepo}:${anchorTag(d(1))}`]: d(1), [`${backupRepo}:${anchorTag(d(2))}`]: d(2), [`${backupRepo}:1.25`]: d(2) });
    const resolutions = await resolveImages(imagesToResolve(workloads, config), l, 4);
    assert.deepEqual(l.calls, [`${backupRepo}:${anchorTag(d(1))}`, `${backupRepo}:${anchorTag(d(2))}`]);
    assert.deepEqual([...resolutions.values()].map((r) => r.state), ['present', 'present']);
  });

  test('the human tag alone is not "backed up": a digest it holds without an anchor is tagged, one missing from the backup copied', async () => {
    const w = workload('a', ['nginx:1.25']);
    w.containers[0]!.runningDigest = d(1);
    const held = lookup({ [`${backupRepo}:1.25`]: d(1), [`${backupRepo}:${d(1)}`]: d(1) });
    assert.equal([...(await resolveImages(imagesToResolve([w], config), held, 4)).values()][0]!.state, 'tag');
    const moved = lookup({ [`${backupRepo}:1.25`]: d(1), 'docker.io/library/nginx:1.25': d(2), [`docker.io/library/nginx:${d(3)}`]: d(3) });
    w.containers[0]!.runningDigest = d(3);
    const [copy] = [...(await resolveImages(imagesToResolve([w], config), moved, 4)).values()];
    assert.deepEqual(copy, { state: 'copy', digest: d(3), upstream: d(2), reason: `the tag moved upstream: runs ${d(3)}, upstream now ${d(2)}; what runs is backed up` });
  });

  test('a tag without a running digest: the source names the digest, the backup is asked for its anchor', async () => {
    const l = lookup({ 'docker.io/library/nginx:1.25': d(1), [`${backupRepo}:${anchorTag(d(1))}`]: d(1) });
    const [r] = [...(await resolveImages(imagesToResolve([workload('a', ['nginx:1.25'])], config), l, 4)).values()];
    assert.equal(r!.state, 'present');
    assert.equal(l.calls.filter((c) => c.startsWith('backup.')).length, 1, 'one backup request');
  });

  test('a failing source with a backup copy is safe; a failing source without one is an error for that image only', async () => {
    const workloads = [workload('a', ['nginx:1.25', 'redis:7'])];
    const l = lookup({
      'backup.example.com/mirror/docker.io/library/nginx:1.25': d(1),
      [`backup.example.com/mirror/docker.io/library/nginx:${anchorTag(d(1))}`]: d(1),
      'docker.io/library/nginx:1.25': new Error('docker.io: cannot reach the registry: host not found'),
      'docker.io/library/redis:7': new Error('docker.io: cannot reach the registry: host not found'),
    });
    const byKey = await resolveImages(imagesToResolve(workloads, config), l, 4);
    const resolutions = ['docker.io/library/nginx:1.25', 'docker.io/library/redis:7'].map((key) => byKey.get(key)!);
    assert.deepEqual(resolutions.map((r) => r.state), ['present', 'error']);
    assert.match(resolutions[1]!.reason, /^source registry: docker.io: cannot reach/);
  });

  test('what the backup holds decides: whole is present, unanchored children are tagged, a damaged copy is copied again or lost', async () => {
    const w = workload('a', ['nginx:1.25']);
    w.containers[0]!.runningDigest = d(1);
    // The holding comes from oci/holding.ts on a real registry (see gc-distribution2.test.ts); here
    // each state is given, to check the decision alone.
    const resolveWith = async (holding: Holding, sourceHas: boolean) => {
      const l = lookup({ [`docker.io/library/nginx:${d(1)}`]: sourceHas ? d(1) : undefined });
      const asked: string[] = [];
      const [r] = [...(await resolveImages(imagesToResolve([w], config), { ...l, holdingOf: async (_repo, digest) => (asked.push(digest), holding) }, 4)).values()];
      assert.deepEqual(asked, [d(1)], 'one holding question per (image, digest)');
      return r!;
    };
    assert.equal((await resolveWith({ state: 'whole' }, true)).state, 'present');
    const tag = await resolveWith({ state: 'unanchored', detail: `the linux/arm64 manifest ${d(2)} has no tag of its own` }, true);
    assert.equal(tag.state, 'tag');
    assert.equal(tag.reason, `the backup holds all of this digest, but the linux/arm64 manifest ${d(2)} has no tag of its own: tagged, no bytes move`);
    const again = await resolveWith({ state: 'damaged', detail: `the linux/arm64 manifest ${d(2)} is missing` }, true);
    assert.deepEqual([again.state, again.reason], ['copy', `the backup copy is incomplete (the linux/arm64 manifest ${d(2)} is missing): copied again`]);
    const lost = await resolveWith({ state: 'damaged', detail: `the linux/arm64 manifest ${d(2)} is missing` }, false);
    assert.deepEqual([lost.state, lost.reason], ['lost', `${d(1)} is incomplete in the backup (the linux/arm64 manifest ${d(2)} is missing) and missing from the source`]);
    assert.equal((await resolveWith({ state: 'absent' }, true)).state, 'copy');
  });

  test('refused backup credentials stop the run', async () => {
    const l = lookup({ 'docker.io/library/nginx:1.25': d(1), [`${backupRepo}:${anchorTag(d(1))}`]: new AuthError('backup.example.com', 'refused') });
    await assert.rejects(resolveImages(imagesToResolve([workload('a', ['nginx:1.25'])], config), l, 4), AuthError);
  });
});
