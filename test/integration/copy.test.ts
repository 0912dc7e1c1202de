// `image-clone copy` and the engine under it, against the harness's real registries.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { before, describe, test } from 'node:test';
import { CopyEngine } from '../../src/oci/copy-engine.ts';
import { loadCredentialSource } from '../../src/auth/docker-config.ts';
import { mediaTypes, sha256Digest } from '../../src/oci/manifest.ts';
import { parseReference } from '../../src/reference.ts';
import { RegistryClient } from '../../src/oci/registry.ts';
import { Transport, type TransportOptions } from '../../src/oci/transport/transport.ts';
import type { HarnessEnv } from '../harness/harness.ts';
import { startFaultProxy } from './fault-proxy.ts';
import { harnessFixtures } from './fixtures.ts';
import { runCli, seedImage, uniqueRepo, verifyCopy, writeRegistryConfig, type SeedResult } from './helpers.ts';

let env: HarnessEnv;
let registryConfig: string;
let insecureArgs: string[];

before(async () => {
  ({ env, registryConfig, insecure: insecureArgs } = await harnessFixtures());
});

/** An engine in this process, for what the CLI does not expose (shared state across images, short timeouts). */
async function engineFor(insecure: string[], transportOptions: Partial<TransportOptions> = {}) {
  const credentials = await loadCredentialSource({ configFile: registryConfig, env: {}, homeDir: '/nonexistent' });
  const transport = new Transport({ credentials, insecureHosts: insecure, ...transportOptions });
  return { transport, engine: new CopyEngine(new RegistryClient(transport), { concurrency: 4 }) };
}

/**
 * The registry matrix (test/harness/registry/README.md): distribution v3 with token and basic auth,
 * Debian's distribution 2.8 with token auth, go-containerregistry's registry and olareg (neither has
 * auth), each with both manifest formats.
 */
const matrix = ['backup', 'backup-basic', 'distribution2', 'ggcr', 'olareg'].flatMap((target) => (['oci', 'docker'] as const).map((format) => [format, target] as const));

describe('image-clone copy', () => {
  matrix.forEach(([format, targetName], i) => {
    test(`a multi-platform ${format} index reaches ${targetName} byte-identical`, async () => {
      const repo = uniqueRepo(`multi-${format}`);
      // A seed of its own, in this run too: go-containerregistry's registry keeps one blob store for
      // all repositories, so blobs another test (or an earlier run on the same harness) pushed would
      // be "present" there, not copied.
      const seeded = await seedImage(env.registries.source, `${repo}:1.0`, {
        platforms: ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'], layers: 3, layerSize: 256 * 1024, seed: 11 + 1000 * i + 100_000 * (process.pid % 10_000), format,
      });
      const target = env.registries[targetName]!;
      const run = await runCli(['copy', `${env.registries.source.host}/${repo}:1.0`, `${target.host}/mirror/${repo}:1.0`,
        '--registry-config', registryConfig, ...insecureArgs, '-o', 'json']);
      assert.equal(run.code, 0, run.stderr);
      const [image] = JSON.parse(run.stdout).images;
      assert.equal(image.status, 'copied');
      assert.equal(image.digest, seeded.digest, 'the index keeps its digest');
      assert.deepEqual(image.platforms, ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7']);
      assert.equal(image.blobs.copied, seeded.blobs.length);
      assert.equal(image.bytesTransferred, seeded.bytes);

      const check = await verifyCopy({ registry: env.registries.source, ref: `${repo}:1.0` }, { registry: target, ref: `mirror/${repo}:1.0` });
      assert.equal(check.identical, true, check.differences?.join('; '));
      assert.equal(check.manifests, 4);

      const again = await runCli(['copy', `${env.registries.source.host}/${repo}:1.0`, `${target.host}/mirror/${repo}:1.0`,
        '--registry-config', registryConfig, ...insecureArgs, '-o', 'json']);
      assert.equal(again.code, 0, again.stderr);
      const second = JSON.parse(again.stdout);
      assert.equal(second.images[0].status, 'present', 'a second copy finds it in place and copies nothing');
      assert.equal(second.summary.bytesTransferred, 0);
    });
  });

  test('--insecure-registry HOST before SOURCE TARGET (the order --help shows) takes one host each time', async () => {
    const repo = uniqueRepo('order');
    await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 1024, seed: 4 });
    const run = await runCli(['copy', ...insecureArgs, `${env.registries.source.host}/${repo}:1`, `${env.registries.backup.host}/${repo}:1`,
      '--registry-config', registryConfig, '-o', 'json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).images[0].status, 'copied');
  });

  test('text output sums up what moved', async () => {
    const repo = uniqueRepo('text');
    await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 1024, seed: 3 });
    const run = await runCli(['copy', `${env.registries.source.host}/${repo}:1`, `${env.registries.backup.host}/${repo}:1`,
      '--registry-config', registryConfig, ...insecureArgs]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^copied {2}\S+ -> \S+\n {8}digest sha256:[a-f0-9]{64}\n/);
    assert.match(run.stdout, /\n1 image: 1 copied, 0 already present, 0 failed\nblobs: 2 copied, 0 mounted, 0 already present\n/);
    assert.doesNotMatch(run.stdout + run.stderr, /\u001b\[/, 'no escape codes when not on a terminal');
  });

  test('--from-file copies many images in one run: shared blobs move once, a missing image fails alone', async () => {
    const repos = [uniqueRepo('fleet'), uniqueRepo('fleet'), uniqueRepo('fleet')];
    const seeded = await Promise.all(repos.map((repo, i) => seedImage(env.registries.source, `${repo}:1`, {
      platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 64 * 1024, sharedLayers: 1, sharedSeed: 500, seed: 600 + i,
    })));
    const dir = await mkdtemp(join(tmpdir(), 'image-clone-pairs-'));
    const list = join(dir, 'pairs.txt');
    const src = env.registries.source.host;
    const dst = env.registries.backup.host;
    await writeFile(list, [
      '# three images and one that does not exist',
      ...repos.map((repo) => `${src}/${repo}:1   ${dst}/fleet/${repo}:1`),
      '',
      `${src}/${uniqueRepo('missing')}:1 ${dst}/fleet/missing:1`,
    ].join('\n'));
    const run = await runCli(['copy', '--from-file', list, '--registry-config', registryConfig, ...insecureArgs, '-o', 'json']);
    assert.equal(run.code, 1, 'a failed image makes the run exit 1');
    const report = JSON.parse(run.stdout);
    assert.deepEqual(report.images.map((i: { status: string }) => i.status), ['copied', 'copied', 'copied', 'failed']);
    assert.match(report.images[3].error, /no such image in the source registry/);
    assert.match(run.stderr, /^image-clone: .*no such image in the source registry\n$/m);
    const perImage = seeded.map((s) => new Set(s.blobs.map((b) => b.digest)));
    const unique = new Set(perImage.flatMap((blobs) => [...blobs]));
    const repeats = perImage.reduce((sum, blobs) => sum + blobs.size, 0) - unique.size;
    assert.ok(repeats >= 2, 'the images share a base layer');
    assert.equal(report.summary.blobs.copied, unique.size, 'each distinct blob was uploaded once');
    assert.equal(report.summary.blobs.mounted, repeats, 'and mounted into the other repositories');
    for (const repo of repos) {
      const check = await verifyCopy({ registry: env.registries.source, ref: `${repo}:1` }, { registry: env.registries.backup, ref: `fleet/${repo}:1` });
      assert.equal(check.identical, true, check.differences?.join('; '));
    }
  });

  test('--platform copies a filtered index and warns that its digest changes', async () => {
    const repo = uniqueRepo('platform');
    const seeded = await seedImage(env.registries.source, `${repo}:1`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 1, layerSize: 4096, seed: 5 });
    const run = await runCli(['copy', `${env.registries.source.host}/${repo}:1`, `${env.registries.backup.host}/${repo}:1`,
      '--platform', 'linux/arm64', '--registry-config', registryConfig, ...insecureArgs, '-o', 'json']);
    assert.equal(run.code, 0, run.stderr);
    const [image] = JSON.parse(run.stdout).images;
    assert.deepEqual(image.platforms, ['linux/arm64']);
    assert.notEqual(image.digest, seeded.digest);
    assert.match(run.stderr, /warning: .*rewrites the index; its digest changes/);
  });

  test('bad input gets one line and exit 2: an invalid reference, a wrong password', async () => {
    const invalid = await runCli(['copy', 'docker.io/Library/App:1', `${env.registries.backup.host}/x:1`]);
    assert.equal(invalid.code, 2, invalid.stderr);
    assert.match(invalid.stderr, /^image-clone: source: invalid image reference "docker.io\/Library\/App:1": repository path must be lower-case\n/);
    assert.doesNotMatch(invalid.stderr, /\n\s+at /, 'no stack trace');

    const repo = uniqueRepo('wrong-password');
    await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 1024, seed: 9 });
    const badConfig = await writeRegistryConfig({ ...env, registries: { ...env.registries, backup: { ...env.registries.backup, password: 'not-the-password' } } });
    const refused = await runCli(['copy', `${env.registries.source.host}/${repo}:1`, `${env.registries.backup.host}/${repo}:1`,
      '--registry-config', badConfig, ...insecureArgs]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.match(refused.stderr, /could not get an access token \(HTTP 401\): the configured credentials were refused/);
    assert.doesNotMatch(refused.stderr, /not-the-password/);
  });
});

describe('copy engine', () => {
  test('a second image sharing layers with the first is mounted, moving no shared layer bytes', async () => {
    const base = { layers: 3, layerSize: 512 * 1024, sharedLayers: 2, sharedSeed: 100 };
    const repoA = uniqueRepo('mount-a');
    const repoB = uniqueRepo('mount-b');
    const a = await seedImage(env.registries.source, `${repoA}:1`, { ...base, seed: 1 });
    const b = await seedImage(env.registries.source, `${repoB}:1`, { ...base, seed: 2 });
    const shared = b.blobs.filter((blob) => a.blobs.some((other) => other.digest === blob.digest));
    assert.equal(shared.length, 2, 'the seeds share two base layers');

    const { engine, transport } = await engineFor([env.registries.source.host, env.registries.backup.host]);
    try {
      const backup = env.registries.backup.host;
      await engine.copyImage(parseReference(`${env.registries.source.host}/${repoA}:1`), parseReference(`${backup}/m/${repoA}:1`));
      const second = await engine.copyImage(parseReference(`${env.registries.source.host}/${repoB}:1`), parseReference(`${backup}/m/${repoB}:1`));
      assert.equal(second.counts.blobsMounted, 2);
      const unshared = b.blobs.filter((blob) => !shared.includes(blob));
      assert.equal(second.counts.bytesCopied, unshared.reduce((sum, blob) => sum + blob.size, 0), 'only the unshared blobs moved');
    } finally {
      await transport.close();
    }
    const check = await verifyCopy({ registry: env.registries.source, ref: `${repoB}:1` }, { registry: env.registries.backup, ref: `m/${repoB}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));
  });

  test('chunked uploads (PATCH with Content-Range) produce the same bytes', async () => {
    const repo = uniqueRepo('chunked');
    const seeded = await seedImage(env.registries.source, `${repo}:1`, { layers: 2, layerSize: 300 * 1024, seed: 51 });
    const traceBefore = (await readFile(env.registryTrace, 'utf8')).split('\n').filter(Boolean).length;
    const credentials = await loadCredentialSource({ configFile: registryConfig, env: {}, homeDir: '/nonexistent' });
    const transport = new Transport({ credentials, insecureHosts: [env.registries.source.host, env.registries.backup.host] });
    try {
      const engine = new CopyEngine(new RegistryClient(transport), { chunkSize: 64 * 1024 });
      await engine.copyImage(parseReference(`${env.registries.source.host}/${repo}:1`), parseReference(`${env.registries.backup.host}/chunked/${repo}:1`));
    } finally {
      await transport.close();
    }
    const patches = (await readFile(env.registryTrace, 'utf8')).split('\n').filter(Boolean).slice(traceBefore)
      .map((l) => JSON.parse(l)).filter((r) => r.registry === 'backup' && r.method === 'PATCH' && r.path.includes(`chunked/${repo}`));
    const chunks = seeded.blobs.reduce((sum, blob) => sum + Math.max(1, Math.ceil(blob.size / (64 * 1024))), 0);
    assert.equal(patches.length, chunks, 'every blob went up in 64 KiB chunks');
    const check = await verifyCopy({ registry: env.registries.source, ref: `${repo}:1` }, { registry: env.registries.backup, ref: `chunked/${repo}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));
  });

  test('signatures, attestations and referrers (tag schema) travel with the image; --no-signatures leaves them', async () => {
    const repo = uniqueRepo('signed');
    const src = env.registries.source.host;
    const image = await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 4096, seed: 52 });
    const tagOf = (digest: string) => digest.replace(':', '-');
    // A cosign-style signature and attestation: images under sha256-<hex>.sig and .att.
    const sig = await seedImage(env.registries.source, `${repo}:${tagOf(image.digest)}.sig`, { layers: 1, layerSize: 512, seed: 53, format: 'oci' });
    const att = await seedImage(env.registries.source, `${repo}:${tagOf(image.digest)}.att`, { layers: 1, layerSize: 512, seed: 54, format: 'oci' });
    // An OCI referrer (an SBOM whose subject is the image), found through the referrers tag schema.
    const empty = Buffer.from('{}');
    const emptyDigest = sha256Digest(empty);
    const upload = await fetch(`http://${src}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    const location = new URL(upload.headers.get('location')!, `http://${src}`);
    location.searchParams.set('digest', emptyDigest);
    assert.equal((await fetch(location, { method: 'PUT', body: empty })).status, 201);
    const referrer = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: mediaTypes.ociManifest, artifactType: 'application/vnd.example.sbom+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 }],
      subject: { mediaType: image.mediaType, digest: image.digest, size: 1 },
    }));
    const referrerDigest = sha256Digest(referrer);
    assert.equal((await fetch(`http://${src}/v2/${repo}/manifests/${referrerDigest}`, { method: 'PUT', body: referrer, headers: { 'content-type': mediaTypes.ociManifest } })).status, 201);
    const fallback = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [
      { mediaType: mediaTypes.ociManifest, digest: referrerDigest, size: referrer.length, artifactType: 'application/vnd.example.sbom+json' },
    ] }));
    assert.equal((await fetch(`http://${src}/v2/${repo}/manifests/${tagOf(image.digest)}`, { method: 'PUT', body: fallback, headers: { 'content-type': mediaTypes.ociIndex } })).status, 201);

    const copy = (dst: string, ...extra: string[]) => runCli(['copy', `${src}/${repo}:1`, `${env.registries.backup.host}/${dst}:1`, '--registry-config', registryConfig, ...insecureArgs, '-o', 'json', ...extra]);
    const signed = await copy(`signed/${repo}`);
    assert.equal(signed.code, 0, signed.stderr);
    assert.equal(JSON.parse(signed.stdout).images[0].signatures, 3);
    for (const [tag, digest] of [[`${tagOf(image.digest)}.sig`, sig.digest], [`${tagOf(image.digest)}.att`, att.digest], [tagOf(image.digest), sha256Digest(fallback)]] as const) {
      const check = await verifyCopy({ registry: env.registries.source, ref: `${repo}:${tag}` }, { registry: env.registries.backup, ref: `signed/${repo}:${tag}` });
      assert.equal(check.identical, true, `${tag}: ${check.differences?.join('; ')}`);
      assert.ok(digest.startsWith('sha256:'));
    }
    const check = await verifyCopy({ registry: env.registries.source, ref: `${repo}@${referrerDigest}` }, { registry: env.registries.backup, ref: `signed/${repo}@${referrerDigest}` });
    assert.equal(check.identical, true, 'the referrer itself, by digest');

    const unsigned = await copy(`unsigned/${repo}`, '--no-signatures');
    assert.equal(JSON.parse(unsigned.stdout).images[0].signatures, 0);
    const absent = await verifyCopy({ registry: env.registries.source, ref: `${repo}:${tagOf(image.digest)}.sig` }, { registry: env.registries.backup, ref: `unsigned/${repo}:${tagOf(image.digest)}.sig` });
    assert.equal(absent.identical, false, '--no-signatures copies no signature');
  });

  test('resets, 5xx, 429 with Retry-After and stalls: the copy completes and verifies', async () => {
    const repo = uniqueRepo('faults');
    await seedImage(env.registries.source, `${repo}:1`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 4, layerSize: 1024 * 1024, seed: 21 });
    const proxy = await startFaultProxy({
      upstream: env.registries.source.host,
      seed: 42,
      rates: { reset: 0.15, error500: 0.1, error503: 0.05, tooMany: 0.1, stall: 0.1 },
      eligible: (method) => method === 'GET' || method === 'HEAD',
      stallMs: 10_000,
    });
    const { engine, transport } = await engineFor([proxy.host, env.registries.backup.host], {
      bodyTimeoutMs: 1_000, retry: { attempts: 8, baseDelayMs: 20, maxDelayMs: 200 },
    });
    try {
      const result = await engine.copyImage(parseReference(`${proxy.host}/${repo}:1`), parseReference(`${env.registries.backup.host}/faults/${repo}:1`));
      assert.equal(result.status, 'copied');
    } finally {
      await transport.close();
      await proxy.close();
    }
    const injected = Object.values(proxy.injected).reduce((a, b) => a + b, 0);
    assert.ok(proxy.injected.reset > 0 && proxy.injected.tooMany > 0 && proxy.injected.stall > 0, `faults of each kind were injected: ${JSON.stringify(proxy.injected)}`);
    assert.ok(injected >= 5, `at least 5 faults injected (${injected})`);
    const check = await verifyCopy({ registry: env.registries.source, ref: `${repo}:1` }, { registry: env.registries.backup, ref: `faults/${repo}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));
  });

  test('a flipped byte fails the copy with a clear error, and the target gets no tag', async () => {
    const repo = uniqueRepo('flip');
    await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 256 * 1024, seed: 31 });
    const proxy = await startFaultProxy({ upstream: env.registries.source.host, rates: { flip: 1 } });
    const run = await runCli(['copy', `${proxy.host}/${repo}:1`, `${env.registries.backup.host}/flip/${repo}:1`,
      '--registry-config', registryConfig, ...insecureArgs, '--insecure-registry', proxy.host]);
    await proxy.close();
    assert.equal(run.code, 1);
    // One error line; a parallel request whose connection the aborted upload closed may log a retry.
    const errors = run.stderr.trim().split('\n').filter((line) => !line.startsWith('retry: '));
    assert.equal(errors.length, 1, run.stderr);
    assert.match(errors[0]!, /^image-clone: .*blob sha256:[a-f0-9]{64} is corrupt: the registry sent bytes whose digest is sha256:[a-f0-9]{64}; nothing was committed$/);
    const { transport } = await engineFor([env.registries.backup.host]);
    try {
      const client = new RegistryClient(transport);
      assert.equal(await client.headManifest({ registry: env.registries.backup.host, repository: `flip/${repo}` }, '1', true), undefined);
    } finally {
      await transport.close();
    }
  });

  test('blob GETs redirected to another host: the copy succeeds and that host never sees a credential', async () => {
    // The image lives in `backup` (token auth) and, identically, in `source` (anonymous).
    const repo = uniqueRepo('redirect');
    const seeded: SeedResult = await seedImage(env.registries.source, `${repo}:1`, { layers: 2, layerSize: 128 * 1024, seed: 41 });
    await seedImage(env.registries.backup, `${repo}:1`, { layers: 2, layerSize: 128 * 1024, seed: 41 });

    // A "CDN" on another loopback address serves blobs without auth, and rejects any Authorization header.
    const cdnSeen: Array<{ path: string; authorization: string | undefined }> = [];
    const cdn = createServer((req: IncomingMessage, res: ServerResponse) => {
      cdnSeen.push({ path: req.url ?? '', authorization: req.headers.authorization });
      if (req.headers.authorization) {
        res.writeHead(400).end('Only one auth mechanism allowed');
        return;
      }
      const [host, port] = env.registries.source.host.split(':');
      httpRequest({ host, port: Number(port), path: req.url }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      }).end();
    });
    await new Promise<void>((resolve) => cdn.listen(0, '127.0.0.2', resolve));
    const cdnHost = `127.0.0.2:${(cdn.address() as AddressInfo).port}`;
    const front = await startFaultProxy({
      upstream: env.registries.backup.host,
      rates: {},
      intercept: (req, res) => {
        if (req.method !== 'GET' || !/\/blobs\/sha256:/.test(req.url ?? '')) return false;
        res.writeHead(307, { location: `http://${cdnHost}${req.url!.replace(/^\/v2\/.*\/blobs\//, `/v2/${repo}/blobs/`)}` }).end();
        return true;
      },
    });
    // The front proxy answers with the registry's own challenge, so clients authenticate as for `backup`.
    const frontConfig = await writeRegistryConfig({ ...env, registries: { ...env.registries, backup: { ...env.registries.backup, host: front.host } } }, ['backup', 'backup-basic']);
    const run = await runCli(['copy', `${front.host}/${repo}:1`, `${env.registries['backup-basic'].host}/redirect/${repo}:1`,
      '--registry-config', frontConfig, ...insecureArgs, '--insecure-registry', front.host, '-o', 'json']);
    await front.close();
    await new Promise<void>((resolve) => cdn.close(() => resolve()));
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).images[0].digest, seeded.digest);
    assert.equal(cdnSeen.length, seeded.blobs.length, 'every blob came through the redirect');
    assert.deepEqual(cdnSeen.filter((r) => r.authorization !== undefined), [], 'no credential reached the other host');
    const check = await verifyCopy({ registry: env.registries.source, ref: `${repo}:1` }, { registry: env.registries['backup-basic'], ref: `redirect/${repo}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));
  });
});
