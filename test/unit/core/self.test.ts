// Telling image-clone itself apart from the workloads it protects: by its label, and in a cluster
// by the controllers above the pod a run is. The lookups are in-memory objects (this is the pure
// chain-following logic; test/node/team.test.ts runs it against a real API server and pod).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildPlan, type Resolution } from '../../../src/core/plan.ts';
import { findSelf, selfLabel, selfReason, type ObjectLookup } from '../../../src/core/self-recognition.ts';
import type { Workload, WorkloadKind } from '../../../src/core/workloads.ts';
import type { KubeObject } from '../../../src/core/kube-object.ts';
import { planConfig } from './plan-config.ts';

type Owner = { kind: string; name: string; uid: string };
const object = (uid: string, owner?: Owner): KubeObject => ({ metadata: { uid, ...(owner ? { ownerReferences: [{ ...owner, controller: true }] } : {}) } });

/** A lookup over objects keyed `Kind/namespace/name`, recording what was asked. */
function lookupOf(objects: Record<string, KubeObject>): ObjectLookup & { asked: string[] } {
  const asked: string[] = [];
  const lookup = async (kind: WorkloadKind, namespace: string, name: string) => {
    asked.push(`${kind}/${namespace}/${name}`);
    return objects[`${kind}/${namespace}/${name}`];
  };
  return Object.assign(lookup, { asked });
}

describe('findSelf', () => {
  test("a CronJob's pod: the pod, its Job and the CronJob", async () => {
    const lookup = lookupOf({
      'Pod/team/image-clone-29000-abcde': object('pod-uid', { kind: 'Job', name: 'image-clone-29000', uid: 'job-uid' }),
      'Job/team/image-clone-29000': object('job-uid', { kind: 'CronJob', name: 'image-clone', uid: 'cj-uid' }),
      'CronJob/team/image-clone': object('cj-uid'),
    });
    const self = await findSelf(lookup, 'team', 'image-clone-29000-abcde');
    assert.deepEqual(self.uids, ['pod-uid', 'job-uid', 'cj-uid']);
    assert.deepEqual(self.chain, ['Pod team/image-clone-29000-abcde', 'Job team/image-clone-29000', 'CronJob team/image-clone']);
  });

  test('a Deployment\'s pod: through its ReplicaSet', async () => {
    const self = await findSelf(lookupOf({
      'Pod/ops/loop-7d-x': object('p', { kind: 'ReplicaSet', name: 'loop-7d', uid: 'rs' }),
      'ReplicaSet/ops/loop-7d': object('rs', { kind: 'Deployment', name: 'loop', uid: 'd' }),
      'Deployment/ops/loop': object('d'),
    }), 'ops', 'loop-7d-x');
    assert.deepEqual(self.uids, ['p', 'rs', 'd']);
  });

  test('a controller of a kind that is no workload kind is recorded by its UID, and not looked up', async () => {
    const lookup = lookupOf({ 'Pod/ops/p': object('p', { kind: 'Workflow', name: 'nightly', uid: 'wf' }) });
    const self = await findSelf(lookup, 'ops', 'p');
    assert.deepEqual(self.uids, ['p', 'wf']);
    assert.deepEqual(lookup.asked, ['Pod/ops/p']);
  });

  test('no pod of that name (a hostname that is not the pod name): nothing is identified', async () => {
    const self = await findSelf(lookupOf({}), 'team', 'custom-hostname');
    assert.deepEqual(self, { uids: [], chain: [] });
  });

  test('an owner that is gone ends the chain at what was found', async () => {
    const self = await findSelf(lookupOf({ 'Pod/t/p': object('p', { kind: 'Job', name: 'j', uid: 'j' }) }), 't', 'p');
    assert.deepEqual(self.uids, ['p']);
  });

  test('a cycle of owner references ends', async () => {
    const lookup = lookupOf({
      'Pod/t/p': object('p', { kind: 'Job', name: 'a', uid: 'a' }),
      'Job/t/a': object('a', { kind: 'Job', name: 'b', uid: 'b' }),
      'Job/t/b': object('b', { kind: 'Job', name: 'a', uid: 'a' }),
    });
    const self = await findSelf(lookup, 't', 'p');
    assert.deepEqual(self.uids, ['p', 'a', 'b']);
    assert.equal(lookup.asked.length, 4);
  });

  test('a lookup that fails fails findSelf (the caller decides what that means)', async () => {
    await assert.rejects(findSelf(async () => { throw new Error('forbidden'); }, 't', 'p'), /forbidden/);
  });
});

describe('selfReason', () => {
  const labels = { [selfLabel.key]: selfLabel.value };
  test('by UID from the chain, or by the label; anything else is not image-clone', () => {
    assert.match(selfReason({ uid: 'cj', labels: {} }, { uids: ['pod', 'cj'], chain: [] })!, /this run belongs to it/);
    assert.match(selfReason({ uid: 'x', labels }, undefined)!, /labelled app\.kubernetes\.io\/name=image-clone/);
    assert.equal(selfReason({ uid: 'x', labels: {} }, { uids: ['pod'], chain: [] }), undefined);
    assert.equal(selfReason({ uid: 'x', labels: { [selfLabel.key]: 'web' } }, undefined), undefined);
  });
});

describe('the plan in a shared namespace', () => {
  const config = planConfig;
  const digest = `sha256:${'a'.repeat(64)}`;
  const workload = (kind: Workload['kind'], name: string, uid: string, image: string, labels: Record<string, string> = {}): Workload => ({
    kind, namespace: 'team', name, uid, resourceVersion: '1', labels, annotations: {}, pullSecrets: [],
    containers: [{ name: 'c', image, type: 'container' }],
  });
  const resolutions = new Map<string, Resolution>([
    ['docker.io/library/nginx:1.25', { state: 'copy', digest, reason: 'not in the backup yet' }],
    ['registry.example.com/image-clone:0.1.0', { state: 'copy', digest, reason: 'not in the backup yet' }],
  ]);

  test("the team's workloads are patched; image-clone's CronJob (by its chain, or by its label) is backed up but skipped", () => {
    const workloads = [
      workload('Deployment', 'web', 'web-uid', 'nginx:1.25'),
      workload('CronJob', 'image-clone', 'cj-uid', 'registry.example.com/image-clone:0.1.0'),
      workload('CronJob', 'second-install', 'cj2-uid', 'registry.example.com/image-clone:0.1.0', { [selfLabel.key]: selfLabel.value }),
    ];
    const plan = buildPlan(workloads, resolutions, { ...config, self: { uids: ['pod-uid', 'job-uid', 'cj-uid'], chain: [] } });
    const byName = Object.fromEntries(plan.workloads.map((c) => [c.name, c]));
    assert.equal(byName.web!.action, 'patch');
    assert.equal(byName['image-clone']!.action, 'skip');
    assert.equal(byName['image-clone']!.code, 'self');
    assert.equal(byName['second-install']!.code, 'self');
    assert.ok(plan.images.every((i) => i.action === 'copy'), 'every image, image-clone\'s own too, is backed up');
  });

  test('without a chain or a label, a workload that shares image-clone\'s namespace is patched', () => {
    const plan = buildPlan([workload('CronJob', 'image-clone', 'cj-uid', 'registry.example.com/image-clone:0.1.0')], resolutions, config);
    assert.equal(plan.workloads[0]!.action, 'patch');
  });
});
