// The run lock (a Lease in image-clone's namespace) and --pull-secret, against the harness.
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { V1Lease, V1LeaseSpec } from '@kubernetes/client-node';
import type { HarnessEnv } from '../harness/harness.ts';
import { startFaultProxy } from './fault-proxy.ts';
import { deployment, gate, harnessFixtures, type Namespaces } from './fixtures.ts';
import { runCli, seedImage, uniqueRepo, type KubeClients } from './helpers.ts';

let env: HarnessEnv;
let kube: KubeClients;
let namespaces: Namespaces;
let registryConfig: string;
let insecure: string[];

before(async () => {
  ({ env, kube, namespaces, registryConfig, insecure } = await harnessFixtures());
});

after(async () => {
  await namespaces?.deleteAll();
});

/**
 * image-clone's own namespace (ic-home-…) and a namespace `name`-… whose Deployment web runs an
 * image seeded for the test, from `host` (the source registry by default).
 */
async function setUp(t: TestContext, name: string, seed: number, options: { layerSize?: number; host?: string; pullSecrets?: string[] } = {}) {
  const own = await namespaces.create('ic-home', t);
  const ns = await namespaces.create(name, t);
  const repo = uniqueRepo(name);
  await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: options.layerSize ?? 8 * 1024, seed });
  const image = `${options.host ?? env.registries.source.host}/${repo}:1`;
  const pod = options.pullSecrets ? { imagePullSecrets: options.pullSecrets.map((n) => ({ name: n })) } : {};
  await kube.apps.createNamespacedDeployment({ namespace: ns, body: deployment('web', image, { replicas: 0, pod }) });
  return { own, ns, image };
}

/** Rewrites the run lock's Lease in `own` with `spec`; returns the Lease as it was read before. */
async function rewriteLease(own: string, spec: V1LeaseSpec): Promise<V1Lease> {
  const lease = await kube.leases.readNamespacedLease({ name: 'image-clone-sync', namespace: own });
  await kube.leases.replaceNamespacedLease({ name: 'image-clone-sync', namespace: own, body: { metadata: lease.metadata, spec } });
  return lease;
}

/** MicroTime as the API server wants it (six fractional digits); client-node would send three. */
const micro = (date: Date) => date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;
/** A Lease spec saying `holder` holds the lock, renewed now. */
const heldBy = (holderIdentity: string): V1LeaseSpec => ({ holderIdentity, leaseDurationSeconds: 60, acquireTime: micro(new Date()), renewTime: micro(new Date()) });

const syncArgs = (own: string, ns: string, extra: string[] = []) => ['sync', '--backup', `${env.registries.backup.host}/locked`, '--kubeconfig', env.kubeconfig,
  '--registry-config', registryConfig, ...insecure,
  '--own-namespace', own, '-n', ns, '-o', 'json', ...extra];

describe('run lock', () => {
  test('two syncs started together: one runs, the other exits 4 at once, naming the holder', async (t) => {
    const copying = gate();
    const proxy = await startFaultProxy({ upstream: env.registries.source.host, rates: {}, gate: copying.until, onEligible: copying.onHeld });
    const { own, ns } = await setUp(t, 'lock-a', 60, { layerSize: 16 * 1024, host: proxy.host });
    try {
      const first = runCli([...syncArgs(own, ns), '--insecure-registry', proxy.host]);
      // The first run holds the lock and is copying (or it failed, and the test says why).
      await Promise.race([copying.held, first.then((r) => assert.fail(`the first run ended before copying: ${r.stderr}`))]);
      const started = Date.now();
      const second = await runCli([...syncArgs(own, ns), '--insecure-registry', proxy.host]);
      assert.equal(second.code, 4, second.stderr);
      assert.ok(Date.now() - started < 15_000, 'it exits at once');
      assert.match(second.stderr, /^image-clone: another sync is running: \S+ holds the run lock \(Lease ic-home-\w+\/image-clone-sync, renewed \d+s ago\)/);
      copying.open();
      const done = await first;
      assert.equal(done.code, 0, done.stderr);
      const lease = await kube.leases.readNamespacedLease({ name: 'image-clone-sync', namespace: own });
      assert.equal(lease.spec?.holderIdentity, undefined, 'released at the end');
      const third = await runCli([...syncArgs(own, ns), '--insecure-registry', proxy.host]);
      assert.equal(third.code, 0, 'the next run takes the released lock');
    } finally {
      copying.open();
      await proxy.close();
    }
  });

  test('a lease whose holder died is taken over after its duration; a live one is not', async (t) => {
    const { own, ns } = await setUp(t, 'lock-b', 61);
    const stale = micro(new Date(Date.now() - 5 * 60_000));
    await kube.leases.createNamespacedLease({ namespace: own, body: { metadata: { name: 'image-clone-sync' }, spec: { holderIdentity: 'crashed-cronjob-pod', leaseDurationSeconds: 60, acquireTime: stale, renewTime: stale } } });
    const run = await runCli(syncArgs(own, ns));
    assert.equal(run.code, 0, run.stderr);

    await rewriteLease(own, heldBy('busy-laptop'));
    const refused = await runCli(syncArgs(own, ns));
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, /busy-laptop holds the run lock/);
    const dryRun = await runCli([...syncArgs(own, ns), '--dry-run']);
    assert.equal(dryRun.code, 0, 'a dry run needs no lock');
  });
});

describe('restore and the run lock', () => {
  test('restore takes the run lock: exits 4 while a sync holds it; --no-lock and --dry-run go on; it releases the lock', async (t) => {
    const { own, ns, image: original } = await setUp(t, 'lock-restore', 63);
    const synced = await runCli(syncArgs(own, ns));
    assert.equal(synced.code, 0, synced.stderr);
    const image = async () => (await kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec!.template.spec!.containers[0]!.image;
    assert.notEqual(await image(), original);

    await rewriteLease(own, heldBy('nightly-sync'));
    const restoreArgs = ['restore', '--kubeconfig', env.kubeconfig, '--own-namespace', own, '-n', ns];
    const refused = await runCli(restoreArgs);
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /^image-clone: another sync is running: nightly-sync holds the run lock/);
    assert.notEqual(await image(), original, 'nothing was restored');
    const dryRun = await runCli([...restoreArgs, '--dry-run']);
    assert.equal(dryRun.code, 0, `a dry run needs no lock: ${dryRun.stderr}`);
    const unlocked = await runCli([...restoreArgs, '--no-lock']);
    assert.equal(unlocked.code, 0, unlocked.stderr);
    assert.equal(await image(), original, '--no-lock restores without the lock');

    // Free the lease (as its holder would), then a locked restore takes it and gives it back.
    const held = await rewriteLease(own, { leaseDurationSeconds: 60 });
    const again = await runCli(restoreArgs);
    assert.equal(again.code, 0, again.stderr);
    const after = await kube.leases.readNamespacedLease({ name: 'image-clone-sync', namespace: own });
    assert.equal(after.spec?.holderIdentity, undefined, 'released at the end');
    assert.notEqual(after.metadata?.resourceVersion, held.metadata?.resourceVersion, 'the restore took the lock (the lease was written)');
  });
});

describe('--pull-secret', () => {
  test('copies the Secret into each patched namespace and adds it to imagePullSecrets, keeping the others; restore takes it out', async (t) => {
    const { own, ns } = await setUp(t, 'pull', 62, { pullSecrets: ['existing'] });
    const dockerconfig = Buffer.from(JSON.stringify({ auths: { [env.registries.backup.host]: { auth: Buffer.from('puller:secret').toString('base64') } } })).toString('base64');
    await kube.core.createNamespacedSecret({ namespace: own, body: { metadata: { name: 'backup-pull' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': dockerconfig } } });

    const missing = await runCli([...syncArgs(own, ns), '--pull-secret', 'no-such-secret']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--pull-secret no-such-secret: no Secret no-such-secret in namespace ic-home-\w+/);

    const run = await runCli([...syncArgs(own, ns), '--pull-secret', 'backup-pull']);
    assert.equal(run.code, 0, run.stderr);
    const copied = await kube.core.readNamespacedSecret({ name: 'backup-pull', namespace: ns });
    assert.equal(copied.type, 'kubernetes.io/dockerconfigjson');
    assert.equal(copied.data?.['.dockerconfigjson'], dockerconfig);
    const names = async () => (await kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec!.template.spec!.imagePullSecrets!.map((s) => s.name).sort();
    assert.deepEqual(await names(), ['backup-pull', 'existing']);

    const restored = await runCli(['restore', '--kubeconfig', env.kubeconfig, '-n', ns]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(await names(), ['existing']);
  });
});
