// Which Event each workload of a run's report gets (pure mapping), and the Event names that make a
// repeated situation one series. Recording them on a real API server: test/integration/events.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { workloadEvents } from '../../src/cli/workload-events.ts';
import { eventName } from '../../src/kube/event-series.ts';

type Row = { kind: any; namespace: string; name: string; result: any; resultReason: string };
const w = (name: string, result: string, resultReason = '', kind = 'Deployment', namespace = 'shop'): Row => ({ kind, namespace, name, result, resultReason });
const c = (name: string, container: string, image: string, code: string, result: string, newImage: string | null = null, kind = 'Deployment', namespace = 'shop') =>
  ({ kind, namespace, name, container, image, newImage, code, result, action: 'patch', reason: '', resultReason: '' }) as any;

const report = {
  workloads: [
    w('web', 'patched'), w('argo', 'skipped', 'managed by Argo CD, which would revert a patch'), w('broken', 'failed', 'cannot patch deployments shop/broken (HTTP 422): invalid'),
    w('gone', 'skipped', 'image lost: missing upstream and in the backup'), w('steady', 'unchanged'), w('cron', 'patched', '', 'CronJob'),
    w('tool', 'skipped', 'image-clone itself: this run belongs to it', 'CronJob', 'image-clone'), w('unknown', 'patched'),
    w('team-app', 'patched', '', 'Deployment', 'image-clone'),
  ] as any,
  containers: [
    c('web', 'app', 'r.example/web:1', 'patch', 'patched', 'backup.example/r.example/web:1@sha256:aa'),
    c('web', 'sidecar', 'r.example/side:1', 'on-backup', 'unchanged'),
    c('gone', 'app', 'r.example/gone:1', 'image-lost', 'skipped'), c('gone', 'init', 'r.example/gone:1', 'image-lost', 'skipped'),
    c('cron', 'job', 'r.example/job:1', 'patch', 'patched', 'backup.example/r.example/job:1@sha256:bb', 'CronJob'),
    c('tool', 'sync', 'r.example/image-clone:1', 'self', 'skipped', null, 'CronJob', 'image-clone'),
    c('team-app', 'app', 'r.example/team:1', 'patch', 'patched', 'backup.example/r.example/team:1@sha256:cc', 'Deployment', 'image-clone'),
  ],
};
const listed = ['web', 'argo', 'broken', 'gone', 'steady', 'cron', 'tool', 'team-app'].map((name) => ({
  kind: (name === 'cron' || name === 'tool' ? 'CronJob' : 'Deployment') as any, namespace: name === 'tool' || name === 'team-app' ? 'image-clone' : 'shop', name, uid: `uid-${name}`,
}));

test('patched: Normal BackedUp naming the copies; skipped: Normal with the reason; failed: Warning with the cause; lost: Warning ImageLost only', () => {
  const events = workloadEvents(report, listed);
  assert.deepEqual(events.map((e) => `${e.regarding.kind}/${e.regarding.name} ${e.type} ${e.reason}`), [
    'Deployment/web Normal BackedUp', 'Deployment/argo Normal BackupSkipped', 'Deployment/broken Warning BackupFailed', 'Deployment/gone Warning ImageLost', 'CronJob/cron Normal BackedUp',
    'Deployment/team-app Normal BackedUp',
  ]);
  const [web, argo, broken, gone, cron] = events;
  assert.match(web!.note, /app: backup\.example\/r\.example\/web:1@sha256:aa\)$/);
  assert.doesNotMatch(web!.note, /sidecar/);
  assert.equal(argo!.note, 'managed by Argo CD, which would revert a patch');
  assert.equal(broken!.note, 'cannot patch deployments shop/broken (HTTP 422): invalid');
  assert.match(gone!.note, /^image r\.example\/gone:1 \(container app, init\) is lost/);
  assert.deepEqual(web!.regarding, { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'web', uid: 'uid-web' });
  assert.equal(cron!.regarding.apiVersion, 'batch/v1');
});

test('none for unchanged workloads, image-clone itself (a team\'s workloads in its namespace get theirs), or a workload the listing did not see', () => {
  const names = workloadEvents(report, listed).map((e) => e.regarding.name);
  for (const name of ['steady', 'tool', 'unknown']) assert.ok(!names.includes(name), name);
});

test('the Event name: the same situation, the same name (one series); another reason, note or object, another name; valid for any workload name', () => {
  const [web] = workloadEvents(report, listed);
  assert.equal(eventName(web!), eventName(structuredClone(web!)));
  assert.notEqual(eventName(web!), eventName({ ...web!, note: `${web!.note}.` }));
  assert.notEqual(eventName(web!), eventName({ ...web!, reason: 'Other' }));
  assert.notEqual(eventName(web!), eventName({ ...web!, regarding: { ...web!.regarding, uid: 'uid-new' } }));
  assert.match(eventName(web!), /^web\.[0-9a-f]{16}$/);
  assert.ok(eventName({ ...web!, regarding: { ...web!.regarding, name: 'x'.repeat(253) } }).length <= 253);
});

test('a custom workload (Kind.group in the report) is named by its own kind and apiVersion in its Event', () => {
  const rollout = { workloads: [w('ro', 'patched', '', 'Rollout.argoproj.io')] as any, containers: [c('ro', 'app', 'r.example/app:1', 'patch', 'patched', 'b/app:1@sha256:dd', 'Rollout.argoproj.io')] };
  const [event] = workloadEvents(rollout, [{ kind: 'Rollout.argoproj.io', namespace: 'shop', name: 'ro', uid: 'uid-ro', apiVersion: 'argoproj.io/v1alpha1' }]);
  assert.deepEqual(event!.regarding, { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', namespace: 'shop', name: 'ro', uid: 'uid-ro' });
});
