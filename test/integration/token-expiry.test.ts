// Tokens that expire in the middle of a long copy. The harness's own registry set with a token
// issuer whose tokens the registry accepts for 3 s, and a proxy in front of the backup that lets
// 1 MiB/s through: a copy of 12 MiB outlives its token several times over, and must still finish
// and verify. (distribution accepts a token until 60 s after its exp; the issuer signs short
// tokens with exp that much earlier, so the registry itself enforces the 3 s: see token.go.)
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startRegistries, type HarnessEnv } from '../harness/harness.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { runCli, seedImage, uniqueRepo, verifyCopy, writeRegistryConfig } from './helpers.ts';

let dir: string;
let registries: Awaited<ReturnType<typeof startRegistries>>;
let slow: FaultProxy;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-clone-tokens-'));
  registries = await startRegistries(dir, { tokenTtl: '3s' });
  slow = await startFaultProxy({ upstream: registries.registries.backup.host, rates: {}, bytesPerSecond: 1024 * 1024 });
});

after(async () => {
  await slow.close();
  await registries.stop();
  await rm(dir, { recursive: true, force: true });
});

test('a copy that outlives its token several times over renews it and completes whole', async () => {
  const { source, backup } = registries.registries;
  const repo = uniqueRepo('expiring');
  const image = await seedImage(source, `${repo}:1`, { layers: 1, layerSize: 12 * 1024 * 1024, seed: 450 });
  // The backup's login, for the host the client talks to (the slow proxy).
  const config = await writeRegistryConfig({ registries: { backup: { ...backup, host: slow.host } } } as unknown as HarnessEnv, ['backup']);
  const traceBefore = (await readFile(registries.trace, 'utf8')).split('\n').filter(Boolean).length;

  const started = Date.now();
  const run = await runCli(['copy', `${source.host}/${repo}:1`, `${slow.host}/${repo}:1`, '--registry-config', config,
    '--insecure-registry', source.host, '--insecure-registry', slow.host, '-o', 'json']);
  const seconds = (Date.now() - started) / 1000;
  assert.equal(run.code, 0, run.stderr);
  assert.ok(seconds > 9, `the copy took ${seconds} s: it must outlive several 3 s tokens to prove anything`);
  const check = await verifyCopy({ registry: source, ref: `${repo}:1` }, { registry: backup, ref: `${repo}:1` });
  assert.equal(check.identical, true, check.differences?.join('; '));
  assert.equal(JSON.parse(run.stdout).images[0].digest, image.digest);

  // The backup refused an expired token at least once, and the issuer handed out new ones.
  const trace = (await readFile(registries.trace, 'utf8')).split('\n').filter(Boolean).slice(traceBefore).map((l) => JSON.parse(l) as { registry: string; status: number });
  const tokens = trace.filter((r) => r.registry === 'issuer' && r.status === 200).length;
  const refused = trace.filter((r) => r.registry === 'backup' && r.status === 401).length;
  assert.ok(tokens >= 2, `${tokens} token(s) issued during a ${seconds} s copy`);
  assert.ok(refused >= 2, `the backup answered 401 ${refused} time(s): the first challenge, then an expired token`);
});
