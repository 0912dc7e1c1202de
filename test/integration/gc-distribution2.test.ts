// Garbage collection by distribution 2.8 (Debian's docker-registry, the `registry:2` most
// self-hosters run): its mark phase does not follow an index to its children, so with
// --delete-untagged every manifest that no tag names directly is deleted. A backup survives it only
// if every manifest image-clone writes has a tag of its own. Each test here syncs into 2.8, stops
// it, runs its own `garbage-collect --delete-untagged`, starts it again, and pulls what the
// workloads use with skopeo (a client the project did not write).
//
// This file runs its own registry set, so that it can stop the backup and collect its garbage.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { anchorTag, sealTag } from '../../src/core/naming.ts';
import { harnessEnv, startRegistries, type HarnessEnv, type HarnessRegistry } from '../harness/harness.ts';
import { createIn, deployment, Namespaces } from './fixtures.ts';
import {
  adminKubeConfig, attachArtifact, insecureFlags, kubeClients, manifestDigest, registryRequest, runCli, seedImage, tagsOf, uniqueRepo,
  writeRegistryConfig, type KubeClients, type SeedResult,
} from './helpers.ts';

const execFileAsync = promisify(execFile);

let env: HarnessEnv;
let kube: KubeClients;
let namespaces: Namespaces;
let registriesDir: string;
let registries: Awaited<ReturnType<typeof startRegistries>>;
let registryConfig: string;

const source = () => registries.registries.source;
const backup = () => registries.registries.distribution2!;
const prefix = 'gc';
const backupRepository = (path: string) => `${prefix}/${source().host.replace(':', '_')}/${path}`;
const tagOf = (digest: string) => digest.replace(':', '-');

before(async () => {
  env = await harnessEnv();
  kube = kubeClients(adminKubeConfig(env));
  namespaces = new Namespaces(kube.core);
  registriesDir = await mkdtemp(join(tmpdir(), 'image-clone-gc28-'));
  registries = await startRegistries(registriesDir);
  registryConfig = await writeRegistryConfig({ registries: registries.registries } as HarnessEnv, ['distribution2']);
});

after(async () => {
  await namespaces.deleteAll();
  await registries.stop();
  await rm(registriesDir, { recursive: true, force: true });
});

function sync(ns: string, ...extra: string[]) {
  return runCli(['sync', '--backup', `${backup().host}/${prefix}`, '-n', ns, '--registry-config', registryConfig,
    ...insecureFlags(registries.registries), '-o', 'json', ...extra]);
}

/** distribution 2.8's own collector on the backup's storage, with the registry stopped, as its documentation asks. */
async function collectGarbage(): Promise<string> {
  await registries.stop();
  try {
    const { stdout, stderr } = await execFileAsync('docker-registry', ['garbage-collect', '--delete-untagged', join(registriesDir, 'distribution2.yml')], { maxBuffer: 64 * 1024 * 1024 });
    return stdout + stderr;
  } finally {
    registries = await startRegistries(registriesDir);
  }
}

/** Pulls a reference whole (every platform, every blob, digests checked) with skopeo into a fresh OCI layout. */
async function pullWhole(registry: HarnessRegistry, reference: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'image-clone-pull-'));
  try {
    await execFileAsync('skopeo', ['copy', '--all', '--src-tls-verify=false', '--src-creds', `${registry.username}:${registry.password}`,
      `docker://${registry.host}/${reference}`, `oci:${dir}:pulled`], { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    throw new Error(`skopeo could not pull ${registry.host}/${reference}: ${(err as { stderr?: string }).stderr?.trim() ?? err}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The image each Deployment of a namespace runs now. */
async function deploymentImages(ns: string): Promise<string[]> {
  return (await kube.apps.listNamespacedDeployment({ namespace: ns })).items.map((d) => d.spec!.template.spec!.containers[0]!.image!);
}

/** `host/repo:tag@digest` -> `repo@digest` (skopeo takes a tag or a digest, not both). */
function byDigest(image: string): string {
  const at = image.indexOf('@');
  const name = image.slice(image.indexOf('/') + 1, at);
  return `${name.replace(/:[^/]*$/, '')}${image.slice(at)}`;
}

/** A multi-platform image signed the way `cosign sign --recursive` does (the index and each platform), with one OCI referrer on the index. */
async function signedImage(repo: string, seed: number): Promise<{ image: SeedResult; attachments: string[] }> {
  const image = await seedImage(source(), `${repo}:1`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 1, layerSize: 4096, seed, format: 'oci' });
  const attachments: string[] = [];
  for (const [i, digest] of [image.digest, ...image.children.map((c) => c.digest)].entries()) {
    attachments.push((await attachArtifact(source(), `${repo}@${digest}`, { seed: seed + 1 + i, tag: `${tagOf(digest)}.sig` })).digest);
  }
  attachments.push((await attachArtifact(source(), `${repo}@${image.digest}`, { seed: seed + 10 })).digest);
  return { image, attachments };
}

/** Every reference a synced workload of `repo` depends on, pulled whole from the backup. */
async function pullEverything(ns: string, repo: string, image: SeedResult, attachments: string[]): Promise<void> {
  const images = await deploymentImages(ns);
  assert.ok(images.every((i) => i.startsWith(`${backup().host}/`)), `patched to the backup: ${images.join(', ')}`);
  for (const i of images) await pullWhole(backup(), byDigest(i));
  const dst = backupRepository(repo);
  for (const digest of [image.digest, ...image.children.map((c) => c.digest)]) await pullWhole(backup(), `${dst}:${tagOf(digest)}.sig`);
  // The referrer, through the fallback tag 2.8 needs (it has no referrers API), and by digest.
  for (const digest of attachments) await pullWhole(backup(), `${dst}@${digest}`);
  await pullWhole(backup(), `${dst}:${tagOf(image.digest)}`);
}

describe("distribution 2.8's garbage collection (--delete-untagged) takes nothing a workload runs", () => {
  test('a signed multi-platform image with a referrer: every manifest is tagged, and all of it pulls after the collection', async (t) => {
    const ns = await namespaces.create('gc28', t);
    const repo = uniqueRepo('gc-multi');
    const { image, attachments } = await signedImage(repo, 300);
    await createIn(kube.objects, ns, deployment('web', `${source().host}/${repo}:1`));

    const first = await sync(ns);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(JSON.parse(first.stdout).summary.workloads.patched, 1);
    // Every manifest written has a tag of its own: the index and each platform by their anchors,
    // the referrer by its anchor, the signatures by their cosign tags.
    const tags = await tagsOf(backup(), backupRepository(repo));
    for (const digest of [image.digest, ...image.children.map((c) => c.digest), attachments.at(-1)!]) {
      assert.equal(tags.get(anchorTag(digest)), digest, `${anchorTag(digest)} holds ${digest}`);
    }
    assert.equal(tags.get(sealTag(image.digest)), image.digest, 'the copy is sealed: whole, checked with one HEAD');

    const gc = await collectGarbage();
    assert.match(gc, /blobs marked/, gc);
    await pullEverything(ns, repo, image, attachments);

    const next = await sync(ns);
    assert.equal(next.code, 0, next.stderr);
    const summary = JSON.parse(next.stdout).summary;
    assert.deepEqual([summary.images.copied, summary.images.tagged, summary.images.present], [0, 0, 1], next.stdout);
  });

  test('a backup made before every manifest had its own tag is repaired by one run (no blob moves), then survives the collection', async (t) => {
    const ns = await namespaces.create('gc28-old', t);
    const repo = uniqueRepo('gc-old');
    const shape = { platforms: ['linux/amd64', 'linux/arm64'], layers: 1, layerSize: 4096, seed: 320, format: 'oci' as const };
    const image = await seedImage(source(), `${repo}:1`, shape);
    // What the previous version left: the index under its anchor tag, the platforms by digest only
    // (the harness's own tool pushes an index that way; the same seed gives the same digests).
    const old = await seedImage(backup(), `${backupRepository(repo)}:${anchorTag(image.digest)}`, shape);
    assert.equal(old.digest, image.digest);
    const child = image.children[0]!.digest;
    assert.equal(await manifestDigest(backup(), backupRepository(repo), anchorTag(child)), undefined, 'the old layout: platforms untagged');
    await createIn(kube.objects, ns, deployment('web', `${source().host}/${repo}:1`));

    const repair = await sync(ns);
    assert.equal(repair.code, 0, repair.stderr);
    const report = JSON.parse(repair.stdout);
    assert.deepEqual([report.summary.images.copied, report.summary.images.tagged], [0, 1], repair.stdout);
    assert.deepEqual([report.summary.bytesTransferred, report.summary.blobs.copied], [0, 0], "no blob moved");
    for (const c of image.children) assert.equal(await manifestDigest(backup(), backupRepository(repo), anchorTag(c.digest)), c.digest);
    assert.equal(await manifestDigest(backup(), backupRepository(repo), sealTag(image.digest)), image.digest, 'sealed once repaired');

    await collectGarbage();
    for (const i of await deploymentImages(ns)) await pullWhole(backup(), byDigest(i));
    const next = await sync(ns);
    assert.equal(next.code, 0, next.stderr);
    assert.deepEqual([JSON.parse(next.stdout).summary.images.copied, JSON.parse(next.stdout).summary.images.tagged], [0, 0]);
  });

  test('a platform manifest deleted from the backup: sync --verify notices and copies it again; with the source gone too, the image is lost, never present', async (t) => {
    const ns = await namespaces.create('gc28-damaged', t);
    const repo = uniqueRepo('gc-damaged');
    const image = await seedImage(source(), `${repo}:1`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 1, layerSize: 4096, seed: 340, format: 'oci' });
    await createIn(kube.objects, ns, deployment('web', `${source().host}/${repo}:1`));
    const first = await sync(ns);
    assert.equal(first.code, 0, first.stderr);

    const dst = backupRepository(repo);
    const child = image.children[1]!.digest;
    const deleted = await registryRequest(backup(), `/v2/${dst}/manifests/${child}`, 'DELETE', `repository:${dst}:delete`);
    assert.equal(deleted.status, 202, 'the registry deleted the platform manifest');
    assert.equal(await manifestDigest(backup(), dst, child), undefined);

    // A plain sync trusts the seal (one HEAD per image): damage done after the copy was sealed is
    // what --verify is for.
    assert.equal(JSON.parse((await sync(ns)).stdout).summary.images.present, 1);
    const again = await sync(ns, '--verify');
    assert.equal(again.code, 0, again.stderr);
    const report = JSON.parse(again.stdout);
    assert.equal(report.summary.images.copied, 1, again.stdout);
    assert.match(report.images[0].reason, /incomplete/);
    assert.equal(await manifestDigest(backup(), dst, anchorTag(child)), child, 'copied again under its anchor');
    for (const i of await deploymentImages(ns)) await pullWhole(backup(), byDigest(i));

    // Damaged again, and this time the source has lost it too: lost, and the run says so.
    await registryRequest(backup(), `/v2/${dst}/manifests/${child}`, 'DELETE', `repository:${dst}:delete`);
    const gone = await registryRequest(source(), `/v2/${repo}/manifests/${image.digest}`, 'DELETE', `repository:${repo}:delete`);
    assert.equal(gone.status, 202, 'the source deleted the image');
    const lost = await sync(ns, '--verify');
    assert.equal(lost.code, 1, lost.stderr);
    const lostReport = JSON.parse(lost.stdout);
    assert.equal(lostReport.summary.images.lost, 1, lost.stdout);
    assert.match(lostReport.images[0].reason, /incomplete in the backup/);
  });

  test('sync --verify finds a blob the backup lost and copies it again; a plain sync asks only for manifests', async (t) => {
    const ns = await namespaces.create('gc28-verify', t);
    const repo = uniqueRepo('gc-verify');
    const image = await seedImage(source(), `${repo}:1`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 4096, seed: 360, format: 'oci' });
    await createIn(kube.objects, ns, deployment('web', `${source().host}/${repo}:1`));
    assert.equal((await sync(ns)).code, 0);

    const dst = backupRepository(repo);
    const layer = [...image.blobs].sort((a, b) => b.size - a.size)[0]!.digest; // a layer (configs are smaller)
    const deleted = await registryRequest(backup(), `/v2/${dst}/blobs/${layer}`, 'DELETE', `repository:${dst}:delete`);
    assert.equal(deleted.status, 202, 'the registry deleted the layer');

    const plain = await sync(ns);
    assert.equal(JSON.parse(plain.stdout).summary.images.present, 1, 'a plain sync does not look at blobs');
    const verified = await sync(ns, '--verify');
    assert.equal(verified.code, 0, verified.stderr);
    const report = JSON.parse(verified.stdout);
    assert.equal(report.summary.images.copied, 1, verified.stdout);
    assert.match(report.images[0].reason, new RegExp(`blob ${layer} .*is missing`));
    for (const i of await deploymentImages(ns)) await pullWhole(backup(), byDigest(i));
    const after = await sync(ns, '--verify');
    assert.equal(JSON.parse(after.stdout).summary.images.present, 1, after.stdout);
  });
});
