// SIGINT and SIGTERM, aimed at each phase of each command: a proxy holds the first request of the
// phase (a list, a manifest lookup, a blob, a patch), the signal goes in while it is held, and the
// command must exit 130 with one line, the run lock released, and every workload untouched or on a
// verified backup copy.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoRoot, type HarnessEnv } from '../harness/harness.ts';
import { startApiProxy, type ApiGate } from './api-proxy.ts';
import { startFaultProxy } from './fault-proxy.ts';
import { clusterAdminToken, deployment, gate, harnessFixtures, type Gate, type Namespaces } from './fixtures.ts';
import { runCli, seedImage, tokenKubeConfig, uniqueRepo, writeKubeconfig, type KubeClients } from './helpers.ts';

let env: HarnessEnv;
let kube: KubeClients;
let namespaces: Namespaces;
let registryConfig: string;
let insecure: string[];
let token: string;
let home: string;

before(async () => {
  ({ env, kube, namespaces, registryConfig, insecure } = await harnessFixtures());
  // The API proxy terminates TLS, so image-clone authenticates with a token, not a client certificate.
  home = await namespaces.create('signal-home');
  token = await clusterAdminToken(kube, home, 'runner', 7200);
});

after(async () => {
  await namespaces?.deleteAll();
  await kube?.rbac.deleteClusterRoleBinding({ name: `${home}-runner` }).catch(() => {});
});

/** A namespace of `count` Deployments over two freshly seeded images; returns it and the image of each. */
async function cluster(prefix: string, count: number, registryHost: string): Promise<{ ns: string; own: string; images: Map<string, string>; repo: string }> {
  const ns = await namespaces.create(prefix);
  const own = await namespaces.create(`${prefix}-own`);
  const repo = uniqueRepo(prefix);
  await seedImage(env.registries.source, `${repo}/a:1`, { layers: 2, layerSize: 64 * 1024, seed: 71 });
  await seedImage(env.registries.source, `${repo}/b:1`, { layers: 2, layerSize: 64 * 1024, seed: 72 });
  const images = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const name = `web-${i}`;
    const image = `${registryHost}/${repo}/${i % 2 ? 'b' : 'a'}:1`;
    images.set(name, image);
    await kube.apps.createNamespacedDeployment({ namespace: ns, body: deployment(name, image, { replicas: 0 }) });
  }
  return { ns, own, images, repo };
}

/**
 * Runs the CLI, sends `signal` once `g.held` resolves (the phase's first request is held), opens the
 * gate `openAfterMs` later (never, when undefined), and returns how the CLI ended.
 */
async function interrupt(args: string[], g: Gate, signal: NodeJS.Signals, openAfterMs?: number) {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/image-clone.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const first = await Promise.race([g.held.then(() => 'held' as const), exited.then(() => 'exited' as const)]);
  if (first === 'exited') assert.fail(`it ended before reaching the phase: ${stderr}`);
  const sent = Date.now();
  child.kill(signal);
  if (openAfterMs !== undefined) setTimeout(() => g.open(), openAfterMs);
  // A run that ignores the signal would wait on the held request for ever: give up on it.
  const stuck = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await exited;
  clearTimeout(stuck);
  return { code, stdout, stderr, ms: Date.now() - sent };
}

/** Exit 130, the interrupt's one line last on stderr (and no "failed"), nothing on stdout. */
function assertInterrupted(run: { code: number | null; stdout: string; stderr: string; ms: number }, signal: NodeJS.Signals) {
  assert.equal(run.code, 130, run.stderr);
  const lines = run.stderr.trimEnd().split('\n');
  assert.match(lines.at(-1)!, new RegExp(`^image-clone: interrupted by ${signal}: stopped; nothing half-done was tagged or patched`));
  assert.equal(lines.filter((l) => l.includes('interrupted')).length, 1, `one line about the interrupt:\n${run.stderr}`);
  assert.doesNotMatch(run.stderr, /failed|\n\s+at /, 'no failure report, no stack trace');
  assert.equal(run.stdout, '', 'no report on stdout');
  assert.ok(run.ms < 15_000, `it stopped promptly (${run.ms} ms)`);
}

async function assertLockReleased(own: string) {
  const lease = await kube.leases.readNamespacedLease({ name: 'image-clone-sync', namespace: own });
  assert.equal(lease.spec?.holderIdentity, undefined, 'the run lock is released');
}

/** Every Deployment runs its original image, or a pinned copy under the backup; returns how many were patched. */
async function patchedCount(ns: string, images: Map<string, string>, backupPrefix: string): Promise<number> {
  let patched = 0;
  for (const d of (await kube.apps.listNamespacedDeployment({ namespace: ns })).items) {
    const image = d.spec!.template.spec!.containers[0]!.image!;
    if (image === images.get(d.metadata!.name!)) continue;
    assert.ok(image.startsWith(`${backupPrefix}/`) && image.includes('@sha256:'), `${d.metadata!.name}: ${image}`);
    patched++;
  }
  return patched;
}

describe('SIGINT and SIGTERM end every command with 130', () => {
  async function syncPhase(phase: string, signal: NodeJS.Signals, options: { api?: (m: string, p: string) => boolean; registry?: (m: string, p: string) => boolean; openAfterMs?: number; count?: number }) {
    const g = gate();
    const apiGate: ApiGate | undefined = options.api ? { when: options.api, until: g.until, onHeld: g.onHeld } : undefined;
    const api = await startApiProxy({ server: env.server, caFile: env.caFile, rates: {}, ...(apiGate ? { gate: apiGate } : {}) });
    const source = await startFaultProxy({ upstream: env.registries.source.host, rates: {}, eligible: options.registry ?? (() => false), gate: g.until, onEligible: g.onHeld });
    try {
      const { ns, own, images } = await cluster(`sig-${phase}`, options.count ?? 2, source.host);
      const kubeconfig = await writeKubeconfig(tokenKubeConfig(api.server, env.caFile, 'runner', token), `sig-${phase}`);
      const prefix = `${env.registries.backup.host}/sig-${phase}`;
      const run = await interrupt(['sync', '--backup', prefix, '--kubeconfig', kubeconfig, '--registry-config', registryConfig, ...insecure, '--insecure-registry', source.host,
        '--own-namespace', own, '-n', ns, '-o', 'json', '--log-format', 'json'], g, signal, options.openAfterMs);
      assertInterrupted({ ...run, stderr: run.stderr.split('\n').filter((l) => !l.startsWith('{')).join('\n') }, signal);
      await assertLockReleased(own);
      return { run, patched: await patchedCount(ns, images, prefix), total: images.size };
    } finally {
      g.open();
      await Promise.all([api.close(), source.close()]);
    }
  }

  test('sync, SIGINT while listing workloads', async () => {
    const { patched } = await syncPhase('list', 'SIGINT', { api: (m, p) => m === 'GET' && /\/deployments\?/.test(p) });
    assert.equal(patched, 0);
  });

  test('sync, SIGTERM while resolving images', async () => {
    const { patched } = await syncPhase('resolve', 'SIGTERM', { registry: (m, p) => m === 'HEAD' && /\/manifests\//.test(p) });
    assert.equal(patched, 0);
  });

  test('sync, SIGINT while copying: the copy stops untagged, no image is reported failed', async () => {
    const { run, patched } = await syncPhase('copy', 'SIGINT', { registry: (m, p) => m === 'GET' && /\/blobs\/sha256:/.test(p) });
    assert.equal(patched, 0);
    assert.doesNotMatch(run.stderr, /image-failed|image-copied/, 'no copy is reported done or failed');
  });

  test('sync, SIGTERM while patching: patches in flight finish, no other is sent', async () => {
    // Ten workloads, eight patched at a time: the signal lands with eight held and two not yet sent.
    const { patched, total } = await syncPhase('patch', 'SIGTERM', { api: (m) => m === 'PATCH', openAfterMs: 300, count: 10 });
    assert.ok(patched < total, `${patched} of ${total} patched: the rest were not sent`);
  });

  test('restore, SIGINT while patching: one restore finishes, the others are left for the next run', async () => {
    const { ns, own, images } = await cluster('sig-restore', 3, env.registries.source.host);
    const prefix = `${env.registries.backup.host}/sig-restore`;
    const synced = await runCli(['sync', '--backup', prefix, '--kubeconfig', env.kubeconfig, '--registry-config', registryConfig, ...insecure, '--own-namespace', own, '-n', ns]);
    assert.equal(synced.code, 0, synced.stderr);
    assert.equal(await patchedCount(ns, images, prefix), 3);
    const g = gate();
    const api = await startApiProxy({ server: env.server, caFile: env.caFile, rates: {}, gate: { when: (m) => m === 'PATCH', until: g.until, onHeld: g.onHeld } });
    try {
      const kubeconfig = await writeKubeconfig(tokenKubeConfig(api.server, env.caFile, 'runner', token), 'sig-restore');
      const run = await interrupt(['restore', '--kubeconfig', kubeconfig, '--own-namespace', own, '-n', ns, '-o', 'json'], g, 'SIGINT', 300);
      assertInterrupted(run, 'SIGINT');
      await assertLockReleased(own);
      assert.equal(await patchedCount(ns, images, prefix), 2, 'the patch in flight finished; no other was sent');
    } finally {
      g.open();
      await api.close();
    }
  });

  test('copy, SIGTERM while a blob is in flight: exit 130 at once, nothing tagged', async () => {
    const g = gate();
    const source = await startFaultProxy({ upstream: env.registries.source.host, rates: {}, gate: g.until, onEligible: g.onHeld });
    try {
      const repo = uniqueRepo('sig-copy');
      await seedImage(env.registries.source, `${repo}:1`, { layers: 2, layerSize: 64 * 1024, seed: 73 });
      const target = `${env.registries.backup.host}/sig-copy/${repo}:1`;
      const run = await interrupt(['copy', `${source.host}/${repo}:1`, target, '--registry-config', registryConfig, ...insecure, '--insecure-registry', source.host], g, 'SIGTERM');
      assertInterrupted(run, 'SIGTERM');
      g.open();
      const check = await runCli(['copy', `${env.registries.source.host}/${repo}:1`, target, '--registry-config', registryConfig, ...insecure, '-o', 'json']);
      assert.equal(JSON.parse(check.stdout).images[0].status, 'copied', 'the interrupted copy left no tag behind');
    } finally {
      g.open();
      await source.close();
    }
  });
});
