// Kubernetes Events on the workloads, on the harness's real API server: a real run records one per
// situation (backed up, skipped with the reason, image lost), findable as kubectl finds them (core/v1
// field selectors on reason and the involved object's uid); the next run adds to each Event's series
// instead of adding Events; a dry run records nothing. A cluster that refuses Events: rbac.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EventsV1Api, type EventsV1Event } from '@kubernetes/client-node';
import type { HarnessEnv } from '../harness/harness.ts';
import { deployment, harnessFixtures, type Namespaces } from './fixtures.ts';
import { runCli, seedImage, uniqueRepo, type KubeClients } from './helpers.ts';

let env: HarnessEnv;
let kube: KubeClients;
let namespaces: Namespaces;
let registryConfig: string;
let insecure: string[];
let own: string;
let ns: string;
let lostImage: string;
const uids: Record<string, string> = {};

before(async () => {
  ({ env, kube, namespaces, registryConfig, insecure } = await harnessFixtures());
  own = await namespaces.create('events-own');
  ns = await namespaces.create('events');
  const repo = uniqueRepo('events');
  await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 4096, seed: 31 });
  const image = `${env.registries.source.host}/${repo}:1`;
  lostImage = `${env.registries.source.host}/${uniqueRepo('never-pushed')}:1`;
  for (const body of [
    deployment('web', image, { replicas: 0 }),
    deployment('gone', lostImage, { replicas: 0 }),
    deployment('argo', image, { replicas: 0, metadata: { labels: { 'argocd.argoproj.io/instance': 'shop' } } }),
  ]) {
    const created = await kube.apps.createNamespacedDeployment({ namespace: ns, body });
    uids[created.metadata!.name!] = created.metadata!.uid!;
  }
});

after(async () => {
  await namespaces?.deleteAll();
});

const sync = (extra: string[] = []) => runCli(['sync', '--backup', `${env.registries.backup.host}/events`, '--kubeconfig', env.kubeconfig, '--registry-config', registryConfig,
  ...insecure, '--own-namespace', own, '-n', ns, '-o', 'json', ...extra]);

const eventsV1 = () => kube.kc.makeApiClient(EventsV1Api);
const ours = async (): Promise<EventsV1Event[]> => (await eventsV1().listNamespacedEvent({ namespace: ns })).items.filter((e) => e.reportingController === 'image-clone');
const of = (events: EventsV1Event[], workload: string) => events.filter((e) => e.regarding?.name === workload).map((e) => `${e.type} ${e.reason}`).sort();

describe('Events on the workloads', () => {
  test('a dry run records nothing', async () => {
    const run = await sync(['--dry-run']);
    assert.equal(run.code, 1, run.stderr); // the lost image
    assert.deepEqual(await ours(), []);
  });

  test('a real run: BackedUp on the patched workload naming its copy, BackupSkipped with the reason, ImageLost naming the image', async () => {
    const run = await sync();
    assert.equal(run.code, 1, run.stderr);
    const events = await ours();
    assert.deepEqual(of(events, 'web'), ['Normal BackedUp']);
    assert.deepEqual(of(events, 'argo'), ['Normal BackupSkipped']);
    assert.deepEqual(of(events, 'gone'), ['Warning ImageLost']);
    const backedUp = events.find((e) => e.reason === 'BackedUp')!;
    const patched = (await kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec!.template.spec!.containers[0]!.image!;
    assert.ok(backedUp.note!.includes(`app: ${patched}`), backedUp.note);
    assert.match(events.find((e) => e.reason === 'BackupSkipped')!.note!, /^managed by Argo CD/);
    assert.ok(events.find((e) => e.reason === 'ImageLost')!.note!.includes(lostImage));
    for (const e of events) {
      assert.equal(e.action, 'Sync');
      assert.equal(e.regarding!.uid, uids[e.regarding!.name!], 'the workload by uid, as kubectl describe looks them up');
      assert.equal(e.series, undefined, 'the first of its kind');
    }
    assert.doesNotMatch(run.stderr, /Kubernetes Events/, 'no warning');
  });

  test('as kubectl finds them: `get events -A --field-selector reason=ImageLost` and `describe deploy gone`', async () => {
    const lost = (await kube.core.listEventForAllNamespaces({ fieldSelector: 'reason=ImageLost' })).items.filter((e) => e.involvedObject.namespace === ns);
    assert.deepEqual(lost.map((e) => [e.type, e.involvedObject.kind, e.involvedObject.name]), [['Warning', 'Deployment', 'gone']]);
    const described = await kube.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=gone,involvedObject.namespace=${ns},involvedObject.kind=Deployment,involvedObject.uid=${uids.gone}` });
    assert.equal(described.items.length, 1);
    assert.ok(described.items[0]!.message!.includes(lostImage));
  });

  test('the next runs add to the series of the same Events instead of adding Events', async () => {
    const first = await ours();
    assert.equal((await sync()).code, 1);
    assert.equal((await sync()).code, 1);
    const events = await ours();
    // web is now unchanged (it runs the backup): no Event for that; its BackedUp stays as it was.
    assert.deepEqual(events.map((e) => e.metadata!.name).sort(), first.map((e) => e.metadata!.name).sort(), 'no new Event');
    const series = (reason: string) => events.find((e) => e.reason === reason)!.series;
    assert.equal(series('ImageLost')?.count, 3);
    assert.equal(series('BackupSkipped')?.count, 3);
    assert.equal(series('BackedUp'), undefined);
    assert.ok(new Date(series('ImageLost')!.lastObservedTime).getTime() > new Date(events.find((e) => e.reason === 'ImageLost')!.eventTime!).getTime());
  });

  test('--no-events records nothing', async () => {
    const before = await ours();
    const other = await namespaces.create('events-off');
    await kube.apps.createNamespacedDeployment({ namespace: other, body: deployment('gone', lostImage, { replicas: 0 }) });
    const run = await runCli(['sync', '--backup', `${env.registries.backup.host}/events`, '--kubeconfig', env.kubeconfig, '--registry-config', registryConfig,
      ...insecure, '--own-namespace', own, '-n', other, '--no-events']);
    assert.equal(run.code, 1, run.stderr);
    assert.deepEqual((await eventsV1().listNamespacedEvent({ namespace: other })).items.filter((e) => e.reportingController === 'image-clone'), []);
    assert.equal((await ours()).length, before.length);
  });
});
