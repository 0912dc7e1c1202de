// Moving tags: one tag, several digests. Every digest a workload runs is held by an anchor tag of
// its own in the backup, runs converge (the next one does nothing), backups made before anchor
// tags are adopted without moving bytes, two clusters syncing at once into one backup never undo
// each other, and distribution's own garbage collector (untagged manifests deleted) loses nothing.
//
// This file runs its own registry set (so that it can stop the backup, collect its garbage, and
// start it again on the same addresses) and a second control plane (the second cluster).
// The harness has no kubelet: the digests pods run are written into their status here, as a
// kubelet would report them (imageID `<repository>@<digest>`).
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { anchorTag, sealTag } from '../../src/core/naming.ts';
import { collectGarbage, harnessEnv, startControlPlane, startRegistries, type HarnessEnv } from '../harness/harness.ts';
import { Namespaces, pod, reportRunning } from './fixtures.ts';
import {
  adminKubeConfig, manifestDigest, runCli, seedImage, tagsOf, uniqueRepo, verifyCopy, writeRegistryConfig, type CliRun, insecureFlags,
} from './helpers.ts';

let env: HarnessEnv;
let registriesDir: string;
let registries: { registries: HarnessEnv['registries']; trace: string; stop(): Promise<void> };
let second: Awaited<ReturnType<typeof startControlPlane>>;
/** The two clusters, each with the namespaces this file made in it (which later tests go back to). */
let clusters: Array<{ name: string; kubeconfig: string; core: CoreV1Api; namespaces: Namespaces }>;
let registryConfig: string;
let repo: string;

const source = () => registries.registries.source;
const backup = () => registries.registries.backup;
const prefix = 'm';
/** The backup repository of a source repository of this file's source registry. */
const backupRepository = (path: string) => `${prefix}/${source().host.replace(':', '_')}/${path}`;
const insecure = () => insecureFlags(registries.registries);
const sync = (kubeconfig: string, args: string[]): Promise<CliRun> => runCli(['sync', '--backup', `${backup().host}/${prefix}`,
  '--registry-config', registryConfig, '--kubeconfig', kubeconfig, ...insecure(), ...args]);

/** A bare Pod whose status says it runs `digest` of `image` (what a kubelet reports after the pull). */
async function runningPod(core: CoreV1Api, ns: string, name: string, image: string, digest: string): Promise<void> {
  await core.createNamespacedPod({ namespace: ns, body: pod(name, image) });
  await reportRunning(core, ns, name, image, `${image.slice(0, image.lastIndexOf(':'))}@${digest}`);
}

async function podImage(core: CoreV1Api, ns: string, name: string): Promise<string> {
  return (await core.readNamespacedPod({ name, namespace: ns })).spec!.containers[0]!.image!;
}

/** Every container image of every namespace this file made, in both clusters. */
async function workloadImages(): Promise<string[]> {
  const images: string[] = [];
  for (const { core, namespaces } of clusters) {
    for (const name of namespaces.names) {
      for (const p of (await core.listNamespacedPod({ namespace: name })).items) images.push(...p.spec!.containers.map((c) => c.image!));
    }
  }
  return images;
}

/**
 * The invariant after every run: each workload on a backup copy names a digest that the backup
 * holds under a tag (its anchor), and the copy is complete and identical to the source's digest.
 */
async function checkBackupCopies(options: { verify: boolean }): Promise<number> {
  let checked = 0;
  for (const image of await workloadImages()) {
    assert.ok(image.startsWith(`${backup().host}/`), `${image}: every workload here runs from the backup`);
    const [name, digest] = image.split('@') as [string, string];
    const repository = name.slice(backup().host.length + 1).replace(/:[^/]*$/, '');
    const tags = await tagsOf(backup(), repository);
    assert.ok([...tags.values()].includes(digest), `${image}: the backup holds ${digest} under a tag (tags: ${[...tags.keys()].join(', ')})`);
    assert.equal(tags.get(anchorTag(digest)), digest, `${image}: held by its anchor tag`);
    if (options.verify) {
      const sourceRepository = repository.slice(`${prefix}/${source().host.replace(':', '_')}/`.length);
      const check = await verifyCopy({ registry: source(), ref: `${sourceRepository}@${digest}` }, { registry: backup(), ref: `${repository}@${digest}` });
      assert.equal(check.identical, true, `${image}: ${check.differences?.join('; ')}`);
    }
    checked++;
  }
  return checked;
}

async function backupRequestsDuring<T>(run: () => Promise<T>): Promise<{ result: T; requests: Array<Record<string, any>> }> {
  const before = (await readFile(registries.trace, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
  const result = await run();
  const lines = (await readFile(registries.trace, 'utf8')).split('\n').filter(Boolean).slice(before).map((l) => JSON.parse(l));
  return { result, requests: lines.filter((r) => r.registry === 'backup') };
}

before(async () => {
  env = await harnessEnv();
  registriesDir = await mkdtemp(join(tmpdir(), 'image-clone-moving-'));
  [registries, second] = await Promise.all([startRegistries(registriesDir), startControlPlane()]);
  const kc2 = new KubeConfig();
  kc2.loadFromFile(second.kubeconfig);
  clusters = [
    { name: 'one', kubeconfig: env.kubeconfig, core: adminKubeConfig(env).makeApiClient(CoreV1Api) },
    { name: 'two', kubeconfig: second.kubeconfig, core: kc2.makeApiClient(CoreV1Api) },
  ].map((c) => ({ ...c, namespaces: new Namespaces(c.core) }));
  registryConfig = await writeRegistryConfig({ registries: registries.registries } as HarnessEnv, ['backup']);
  repo = uniqueRepo('moving');
});

after(async () => {
  for (const { namespaces } of clusters ?? []) await namespaces.deleteAll();
  await registries?.stop();
  await second?.stop();
});

describe('moving tags', () => {
  const digests: Record<string, string> = {};

  test('two digests of one tag in one run: drift reported, both copied and anchored, both workloads patched, exit 0; the next runs do nothing', async () => {
    const { core, kubeconfig, namespaces } = clusters[0]!;
    const ns = await namespaces.create('drift');
    const image = `${source().host}/${repo}/app:1`;
    digests.x = (await seedImage(source(), `${repo}/app:1`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 8192, seed: 1 })).digest;
    await runningPod(core, ns, 'old', image, digests.x);
    // The tag is rebuilt upstream; a pod started since runs the new digest.
    digests.y = (await seedImage(source(), `${repo}/app:1`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 8192, seed: 2 })).digest;
    await runningPod(core, ns, 'new', image, digests.y);

    const plan = await sync(kubeconfig, ['-n', ns, '--dry-run', '-o', 'json']);
    assert.equal(plan.code, 0, plan.stderr);
    const doc = JSON.parse(plan.stdout);
    const planned = (digest: string) => doc.images.find((i: any) => i.digest === digest);
    assert.deepEqual([planned(digests.x).action, planned(digests.x).upstreamDigest], ['copy', digests.y], 'X runs, upstream names Y');
    assert.match(planned(digests.x).reason, new RegExp(`the tag moved upstream: runs ${digests.x}, upstream now ${digests.y}`));
    assert.deepEqual([planned(digests.y).action, planned(digests.y).upstreamDigest], ['copy', null]);
    assert.equal(doc.summary.drifted, 1);
    const yaml = await sync(kubeconfig, ['-n', ns, '--dry-run', '-o', 'yaml']);
    assert.match(yaml.stdout, new RegExp(`upstreamDigest: "?${digests.y}`));
    const table = await sync(kubeconfig, ['-n', ns, '--dry-run']);
    assert.match(table.stdout, /1 run an older digest than their tag names upstream/);
    // Off a terminal a row is one line, so the drift reads whole in a CI log.
    assert.match(table.stdout, new RegExp(`^.*${digests.x}.*the tag moved upstream: runs ${digests.x}, upstream now ${digests.y}.*$`, 'm'));

    const run = await sync(kubeconfig, ['-n', ns, '-o', 'json']);
    assert.equal(run.code, 0, `exit 0\n${run.stderr}`);
    const report = JSON.parse(run.stdout);
    assert.equal(report.summary.images.copied, 2);
    assert.equal(report.summary.workloads.patched, 2);
    const backupName = `${backup().host}/${backupRepository(`${repo}/app`)}:1`;
    assert.equal(await podImage(core, ns, 'old'), `${backupName}@${digests.x}`);
    assert.equal(await podImage(core, ns, 'new'), `${backupName}@${digests.y}`);
    const tags = await tagsOf(backup(), backupRepository(`${repo}/app`));
    assert.equal(tags.get(anchorTag(digests.x)), digests.x);
    assert.equal(tags.get(anchorTag(digests.y)), digests.y);
    assert.equal(tags.get('1'), digests.y, 'the human tag names what the tag names upstream');
    assert.equal(await checkBackupCopies({ verify: true }), 2);

    for (const round of [2, 3]) {
      const { result: again, requests } = await backupRequestsDuring(() => sync(kubeconfig, ['-n', ns, '-o', 'json']));
      assert.equal(again.code, 0, again.stderr);
      const s = JSON.parse(again.stdout).summary;
      assert.deepEqual([s.images.copied, s.images.tagged, s.workloads.patched], [0, 0, 0], `run ${round} copies, tags and patches nothing`);
      const authenticated = requests.filter((r) => r.status !== 401);
      assert.ok(authenticated.length <= 2, `run ${round}: ${authenticated.length} backup requests for 2 (image, digest) pairs`);
      assert.ok(authenticated.every((r) => r.method === 'HEAD'), `run ${round} only reads`);
      assert.equal((await tagsOf(backup(), backupRepository(`${repo}/app`))).get('1'), digests.y, 'the human tag does not flip');
    }
  });

  test('a backup made before anchor tags (human tag only) is adopted by a tag of the same bytes: no blob moves', async () => {
    const { core, kubeconfig, namespaces } = clusters[0]!;
    const ns = await namespaces.create('legacy');
    const path = `${repo}/legacy`;
    const seeded = await seedImage(source(), `${path}:2`, { layers: 2, layerSize: 16384, seed: 5 });
    digests.legacy = seeded.digest;
    // What image-clone 0.1 left: the copy under the human tag only (`copy` writes exactly the tag it is given).
    const copy = await runCli(['copy', `${source().host}/${path}:2`, `${backup().host}/${backupRepository(path)}:2`, '--registry-config', registryConfig, ...insecure()]);
    assert.equal(copy.code, 0, copy.stderr);
    assert.equal(await manifestDigest(backup(), backupRepository(path), anchorTag(seeded.digest)), undefined);
    await runningPod(core, ns, 'legacy', `${source().host}/${path}:2`, seeded.digest);

    const { result: run, requests } = await backupRequestsDuring(() => sync(kubeconfig, ['-n', ns, '-o', 'json']));
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.deepEqual([report.images[0].action, report.images[0].result], ['tag', 'tagged']);
    assert.equal(report.summary.bytesTransferred, 0);
    assert.deepEqual(requests.filter((r) => r.method === 'POST' || r.method === 'PATCH' || (r.method === 'PUT' && !String(r.path).includes('/manifests/'))), [], 'no blob upload');
    const puts = requests.filter((r) => r.method === 'PUT' && r.status === 201).map((r) => String(r.path));
    assert.deepEqual(puts, [`/v2/${backupRepository(path)}/manifests/${anchorTag(seeded.digest)}`, `/v2/${backupRepository(path)}/manifests/${sealTag(seeded.digest)}`],
      'two manifest PUTs of the same bytes: the anchor tag, then the seal');
    assert.equal(await podImage(core, ns, 'legacy'), `${backup().host}/${backupRepository(path)}:2@${seeded.digest}`);
    const again = JSON.parse((await sync(kubeconfig, ['-n', ns, '-o', 'json'])).stdout);
    assert.deepEqual([again.images[0].result, again.summary.workloads.patched], ['present', 0]);
  });

  test('two clusters sync into one backup at the same time, the tag moved upstream between them: both converge, nothing untagged', async () => {
    const path = `${repo}/fleet`;
    const image = `${source().host}/${path}:1`;
    digests.fleet1 = (await seedImage(source(), `${path}:1`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 8192, sharedLayers: 1, sharedSeed: 9, seed: 11 })).digest;
    const [one, two] = clusters as [typeof clusters[0], typeof clusters[0]];
    const nsOne = await one.namespaces.create('fleet');
    await runningPod(one.core, nsOne, 'app', image, digests.fleet1);
    digests.fleet2 = (await seedImage(source(), `${path}:1`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 8192, sharedLayers: 1, sharedSeed: 9, seed: 12 })).digest;
    const nsTwo = await two.namespaces.create('fleet');
    await runningPod(two.core, nsTwo, 'app', image, digests.fleet2);

    for (const round of ['first', 'second']) {
      const runs = await Promise.all([sync(one.kubeconfig, ['-n', nsOne, '-o', 'json']), sync(two.kubeconfig, ['-n', nsTwo, '-o', 'json'])]);
      for (const [i, run] of runs.entries()) {
        assert.equal(run.code, 0, `cluster ${i + 1}, ${round} round\n${run.stderr}`);
        if (round === 'second') {
          const s = JSON.parse(run.stdout).summary;
          assert.deepEqual([s.images.copied, s.workloads.patched], [0, 0], `cluster ${i + 1}: the second round does nothing`);
        }
      }
    }
    const name = `${backup().host}/${backupRepository(path)}:1`;
    assert.equal(await podImage(one.core, nsOne, 'app'), `${name}@${digests.fleet1}`, 'each cluster on its own digest');
    assert.equal(await podImage(two.core, nsTwo, 'app'), `${name}@${digests.fleet2}`);
    const tags = await tagsOf(backup(), backupRepository(path));
    assert.equal(tags.get('1'), digests.fleet2, 'the human tag names the upstream digest');
    assert.equal(await checkBackupCopies({ verify: false }), 5, 'two pods of the first test, one of the second, one in each cluster');
  });

  test('garbage collection with untagged manifests deleted loses nothing a workload runs', async () => {
    // A control, so that the collection is shown to delete something: a manifest whose tag moved.
    const control = `${prefix}/control`;
    const first = await seedImage(backup(), `${control}:1`, { layers: 1, layerSize: 4096, seed: 90 });
    await seedImage(backup(), `${control}:1`, { layers: 1, layerSize: 4096, seed: 91 });
    assert.equal(await manifestDigest(backup(), control, first.digest), first.digest);

    await registries.stop();
    const output = collectGarbage(registriesDir, 'backup', { deleteUntagged: true });
    assert.match(output, /GC DONE/);
    registries = await startRegistries(registriesDir);

    assert.equal(await manifestDigest(backup(), control, first.digest), undefined, 'the collection deleted the untagged control manifest');
    assert.equal(await checkBackupCopies({ verify: true }), 5);
    // The next sync after the collection has nothing to do: every copy survived.
    for (const { kubeconfig, namespaces } of clusters) {
      const run = await sync(kubeconfig, ['-o', 'json', ...namespaces.names.flatMap((n) => ['-n', n])]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual([JSON.parse(run.stdout).summary.images.copied, JSON.parse(run.stdout).summary.images.tagged], [0, 0]);
    }
  });

  test('--no-pin patches to the anchor tag, the next run checks it by the digest it names, and restore undoes both kinds', async () => {
    const { core, kubeconfig, namespaces } = clusters[0]!;
    const ns = await namespaces.create('nopin');
    const image = `${source().host}/${repo}/app:1`;
    await runningPod(core, ns, 'old', image, digests.x!);
    const run = await sync(kubeconfig, ['-n', ns, '--no-pin', '-o', 'json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await podImage(core, ns, 'old'), `${backup().host}/${backupRepository(`${repo}/app`)}:${anchorTag(digests.x!)}`, 'the anchor names the digest that ran, forever');
    const again = JSON.parse((await sync(kubeconfig, ['-n', ns, '--no-pin', '-o', 'json'])).stdout);
    assert.deepEqual([again.images[0].result, again.workloads[0].action], ['present', 'unchanged'], 'checked by the digest its anchor names');
    for (const target of [ns, namespaces.names[0]!]) {
      const restore = await runCli(['restore', '--kubeconfig', kubeconfig, '-n', target, '-o', 'json']);
      assert.equal(restore.code, 0, restore.stderr);
    }
    assert.equal(await podImage(core, ns, 'old'), image);
    assert.deepEqual([await podImage(core, namespaces.names[0]!, 'old'), await podImage(core, namespaces.names[0]!, 'new')], [image, image]);
  });
});
