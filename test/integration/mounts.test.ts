// Blobs already in the backup are never uploaded again (issue 15 §3): a later process or a later
// sync run finds them in the backup registry itself and mounts them. Counted in the harness
// registry's own request trace: a blob uploaded is a PUT that commits an upload session (201), a
// blob mounted a POST /blobs/uploads/?mount= answered 201 (the trace keeps paths, not queries).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import type { CoreV1Api, KubeConfig, KubernetesObjectApi, KubernetesObject } from '@kubernetes/client-node';
import { CopyEngine } from '../../src/oci/copy-engine.ts';
import { loadCredentialSource } from '../../src/auth/docker-config.ts';
import { RegistryClient } from '../../src/oci/registry.ts';
import { Transport } from '../../src/oci/transport/transport.ts';
import { parseReference } from '../../src/reference.ts';
import { harnessEnv, type HarnessEnv } from '../harness/harness.ts';
import { adminKubeConfig, insecureFlags, kubeClients, runCli, seedImage, uniqueRepo, verifyCopy, writeRegistryConfig, type SeedResult } from './helpers.ts';

let env: HarnessEnv;
let registryConfig: string;
let insecure: string[];
let kc: KubeConfig;
let core: CoreV1Api;
let objects: KubernetesObjectApi;
const namespaces: string[] = [];

before(async () => {
  env = await harnessEnv();
  registryConfig = await writeRegistryConfig(env);
  insecure = insecureFlags(env.registries);
  kc = adminKubeConfig(env);
  ({ core, objects } = kubeClients(kc));
});

after(async () => {
  for (const ns of namespaces) await core.deleteNamespace({ name: ns }).catch(() => {});
});

interface TraceLine { registry: string; method: string; path: string; status: number }

async function traceLength(): Promise<number> {
  return (await readFile(env.registryTrace, 'utf8')).split('\n').filter(Boolean).length;
}

async function traceSince(start: number): Promise<TraceLine[]> {
  return (await readFile(env.registryTrace, 'utf8')).split('\n').filter(Boolean).slice(start).map((l) => JSON.parse(l) as TraceLine);
}

/** What the backup registry saw for one repository: blobs committed by upload, blobs mounted. */
function blobWrites(lines: TraceLine[], repository: string, registry = 'backup'): { uploaded: number; mounted: number; started: number } {
  const mine = lines.filter((l) => l.registry === registry && l.path.startsWith(`/v2/${repository}/blobs/uploads/`));
  return {
    uploaded: mine.filter((l) => l.method === 'PUT' && l.status === 201).length,
    mounted: mine.filter((l) => l.method === 'POST' && l.status === 201).length,
    started: mine.filter((l) => l.method === 'POST' && l.status === 202).length,
  };
}

/** Two images of different source repositories that share their two base layers (on both platforms). */
async function seedPair(name: string, offset: number): Promise<{ repo: string; a: SeedResult; b: SeedResult; shared: Set<string>; own: Array<{ digest: string; size: number }> }> {
  const repo = uniqueRepo(name);
  // Seeds of this process and test: an earlier test (or run on the same harness) that pushed the
  // same layers would put them in the backup already, and they would be mounted from there too.
  const seed = 300_000 + (process.pid % 10_000) * 100 + offset * 10;
  const shape = { platforms: ['linux/amd64', 'linux/arm64'], layers: 3, layerSize: 128 * 1024, sharedLayers: 2, sharedSeed: seed };
  const a = await seedImage(env.registries.source, `${repo}/team-a/app:1`, { ...shape, seed: seed + 1 });
  const b = await seedImage(env.registries.source, `${repo}/other/svc:1`, { ...shape, seed: seed + 2 });
  const inA = new Set(a.blobs.map((x) => x.digest));
  const shared = new Set(b.blobs.filter((x) => inA.has(x.digest)).map((x) => x.digest));
  assert.equal(shared.size, 2, 'the two base layers');
  return { repo, a, b, shared, own: b.blobs.filter((x) => !shared.has(x.digest)) };
}

describe('blobs already in the backup are mounted, not uploaded again', () => {
  test('copy: a second process copying a new image into another folder mounts its base layers from the first image\'s repository', async () => {
    const { repo, shared, own } = await seedPair('xmount', 1);
    const src = env.registries.source.host;
    const dst = env.registries.backup.host;
    const first = await runCli(['copy', `${src}/${repo}/team-a/app:1`, `${dst}/${repo}/mirror/team-a/app:1`, '--registry-config', registryConfig, ...insecure, '-o', 'json']);
    assert.equal(first.code, 0, first.stderr);

    const start = await traceLength();
    const second = await runCli(['copy', `${src}/${repo}/other/svc:1`, `${dst}/${repo}/mirror/other/svc:1`, '--registry-config', registryConfig, ...insecure, '-o', 'json']);
    assert.equal(second.code, 0, second.stderr);
    const lines = await traceSince(start);
    const writes = blobWrites(lines, `${repo}/mirror/other/svc`);
    assert.equal(writes.mounted, shared.size, 'each base layer mounted');
    assert.equal(writes.uploaded, own.length, `only the image's own blobs uploaded (${own.length}: configs and top layers), no base layer`);
    assert.equal(writes.started, writes.uploaded, 'every upload session opened was used: none left behind');
    const [image] = JSON.parse(second.stdout).images;
    assert.deepEqual(image.blobs, { copied: own.length, mounted: shared.size, present: 0 });
    assert.equal(image.bytesTransferred, own.reduce((sum, x) => sum + x.size, 0));

    // Bounded: a few catalog pages and HEADs, not a walk of the registry.
    const backup = lines.filter((l) => l.registry === 'backup');
    assert.ok(backup.filter((l) => l.path === '/v2/_catalog').length <= 3, 'at most three catalog pages');
    const elsewhere = backup.filter((l) => l.method === 'HEAD' && l.path.includes('/blobs/') && !l.path.startsWith(`/v2/${repo}/mirror/other/svc/`));
    assert.ok(elsewhere.length <= 6 + 2 * own.length, `${elsewhere.length} HEADs of blobs in other repositories`);

    const check = await verifyCopy({ registry: env.registries.source, ref: `${repo}/other/svc:1` }, { registry: env.registries.backup, ref: `${repo}/mirror/other/svc:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));
  });

  test('sync: a later run meets a new image built on a base already backed up and mounts the base layers; the warm run after asks once per image', async () => {
    const { repo, shared, own } = await seedPair('smount', 2);
    const src = env.registries.source.host;
    const prefix = `${env.registries.backup.host}/${repo}-backup`;
    const sync = (ns: string) => runCli(['sync', '--backup', prefix, '--registry-config', registryConfig, '--kubeconfig', env.kubeconfig, ...insecure, '-n', ns, '-o', 'json']);
    const ns = (await core.createNamespace({ body: { metadata: { generateName: 'mounts-' } } })).metadata!.name!;
    namespaces.push(ns);
    const deployment = (name: string, image: string) => ({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: ns },
      spec: { replicas: 0, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image }] } } },
    }) as KubernetesObject;

    await objects.create(deployment('app', `${src}/${repo}/team-a/app:1`));
    const first = await sync(ns);
    assert.equal(first.code, 0, first.stderr);

    await objects.create(deployment('svc', `${src}/${repo}/other/svc:1`));
    const start = await traceLength();
    const second = await sync(ns);
    assert.equal(second.code, 0, second.stderr);
    const report = JSON.parse(second.stdout);
    assert.equal(report.summary.images.copied, 1);
    const backupRepo = `${repo}-backup/${src.replace(':', '_')}/${repo}/other/svc`;
    const writes = blobWrites(await traceSince(start), backupRepo);
    assert.equal(writes.mounted, shared.size, 'each base layer mounted');
    assert.equal(writes.uploaded, own.length, 'only the new image\'s own blobs uploaded');
    assert.equal(report.summary.bytesTransferred, own.reduce((sum, x) => sum + x.size, 0));
    const check = await verifyCopy({ registry: env.registries.source, ref: `${repo}/other/svc:1` }, { registry: env.registries.backup, ref: `${backupRepo}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));

    const warmStart = await traceLength();
    const warm = await sync(ns);
    assert.equal(warm.code, 0, warm.stderr);
    assert.equal(JSON.parse(warm.stdout).summary.images.present, 2);
    const backup = (await traceSince(warmStart)).filter((l) => l.registry === 'backup');
    const authenticated = backup.filter((l) => l.status !== 401).length;
    assert.ok(authenticated <= 2, `${authenticated} authenticated backup requests for 2 distinct images on a warm run`);
  });

  test('a mount the registry refuses (the blob left the repository it was known in) becomes an upload in the session the registry opened', async () => {
    const { repo, shared, own } = await seedPair('fmount', 3);
    const src = env.registries.source.host;
    const basic = env.registries['backup-basic'];
    const credentials = await loadCredentialSource({ configFile: registryConfig, env: {}, homeDir: '/nonexistent' });
    const transport = new Transport({ credentials, insecureHosts: [src, basic.host] });
    try {
      const engine = new CopyEngine(new RegistryClient(transport), { concurrency: 4 });
      await engine.copyImage(parseReference(`${src}/${repo}/team-a/app:1`), parseReference(`${basic.host}/${repo}/a:1`));
      // The engine remembers that repository as the home of the base layers; one of them leaves it.
      const [gone] = [...shared];
      const auth = `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}`;
      const deleted = await fetch(`http://${basic.host}/v2/${repo}/a/blobs/${gone}`, { method: 'DELETE', headers: { authorization: auth } });
      assert.equal(deleted.status, 202, 'the blob is unlinked from the first repository');

      const start = await traceLength();
      const result = await engine.copyImage(parseReference(`${src}/${repo}/other/svc:1`), parseReference(`${basic.host}/${repo}/b:1`));
      assert.equal(result.status, 'copied');
      const writes = blobWrites(await traceSince(start), `${repo}/b`, 'backup-basic');
      assert.equal(writes.mounted, shared.size - 1, 'the base layer still there is mounted');
      assert.equal(writes.uploaded, own.length + 1, 'the one that left is uploaded');
      assert.equal(writes.started, writes.uploaded, 'the refused mount\'s session carried that upload: no second session, none left open');
      const check = await verifyCopy({ registry: env.registries.source, ref: `${repo}/other/svc:1` }, { registry: basic, ref: `${repo}/b:1` });
      assert.equal(check.identical, true, check.differences?.join('; '));
    } finally {
      await transport.close();
    }
  });
});
