// The run lock (a Lease in image-clone's namespace) and --pull-secret, against the harness.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AppsV1Api, CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { harnessEnv, type HarnessEnv } from '../harness/harness.ts';
import { startFaultProxy } from './fault-proxy.ts';
import { adminKubeConfig, runCli, seedImage, uniqueRepo, writeRegistryConfig, insecureFlags, kubeClients } from './helpers.ts';

let env: HarnessEnv;
let core: CoreV1Api;
let apps: AppsV1Api;
let leases: CoordinationV1Api;
let registryConfig: string;
const namespaces: string[] = [];

async function namespace(prefix: string): Promise<string> {
  const name = (await core.createNamespace({ body: { metadata: { generateName: `${prefix}-` } } })).metadata!.name!;
  namespaces.push(name);
  return name;
}

async function deploy(ns: string, name: string, image: string, pullSecrets: string[] = []): Promise<void> {
  await apps.createNamespacedDeployment({ namespace: ns, body: {
    metadata: { name },
    spec: { replicas: 0, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: {
      containers: [{ name: 'app', image }], ...(pullSecrets.length ? { imagePullSecrets: pullSecrets.map((n) => ({ name: n })) } : {}),
    } } },
  } });
}

before(async () => {
  env = await harnessEnv();
  const kc = adminKubeConfig(env);
  ({ core, apps, leases } = kubeClients(kc));
  registryConfig = await writeRegistryConfig(env);
});

after(async () => {
  for (const ns of namespaces) await core.deleteNamespace({ name: ns }).catch(() => {});
});

/** MicroTime as the API server wants it (six fractional digits); client-node would send three. */
const micro = (date: Date) => date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;

const syncArgs = (own: string, ns: string, extra: string[] = []) => ['sync', '--backup', `${env.registries.backup.host}/locked`, '--kubeconfig', env.kubeconfig,
  '--registry-config', registryConfig, ...insecureFlags(env.registries),
  '--own-namespace', own, '-n', ns, '-o', 'json', ...extra];

describe('run lock', () => {
  test('two syncs started together: one runs, the other exits 4 at once, naming the holder', async () => {
    const own = await namespace('ic-home');
    const ns = await namespace('lock-a');
    const repo = uniqueRepo('lock');
    await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 16 * 1024, seed: 60 });
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let arrived!: () => void;
    const copying = new Promise<void>((resolve) => (arrived = resolve));
    const proxy = await startFaultProxy({ upstream: env.registries.source.host, rates: {}, gate, onEligible: () => arrived() });
    await deploy(ns, 'web', `${proxy.host}/${repo}:1`);
    try {
      const first = runCli([...syncArgs(own, ns), '--insecure-registry', proxy.host]);
      // The first run holds the lock and is copying (or it failed, and the test says why).
      await Promise.race([copying, first.then((r) => assert.fail(`the first run ended before copying: ${r.stderr}`))]);
      const started = Date.now();
      const second = await runCli([...syncArgs(own, ns), '--insecure-registry', proxy.host]);
      assert.equal(second.code, 4, second.stderr);
      assert.ok(Date.now() - started < 15_000, 'it exits at once');
      assert.match(second.stderr, /^image-clone: another sync is running: \S+ holds the run lock \(Lease ic-home-\w+\/image-clone-sync, renewed \d+s ago\)/);
      open();
      const done = await first;
      assert.equal(done.code, 0, done.stderr);
      const lease = await leases.readNamespacedLease({ name: 'image-clone-sync', namespace: own });
      assert.equal(lease.spec?.holderIdentity, undefined, 'released at the end');
      const third = await runCli([...syncArgs(own, ns), '--insecure-registry', proxy.host]);
      assert.equal(third.code, 0, 'the next run takes the released lock');
    } finally {
      open();
      await proxy.close();
    }
  });

  test('a lease whose holder died is taken over after its duration; a live one is not', async () => {
    const own = await namespace('ic-home');
    const ns = await namespace('lock-b');
    const repo = uniqueRepo('stale');
    await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 8 * 1024, seed: 61 });
    await deploy(ns, 'web', `${env.registries.source.host}/${repo}:1`);
    const stale = micro(new Date(Date.now() - 5 * 60_000));
    await leases.createNamespacedLease({ namespace: own, body: { metadata: { name: 'image-clone-sync' }, spec: { holderIdentity: 'crashed-cronjob-pod', leaseDurationSeconds: 60, acquireTime: stale, renewTime: stale } } });
    const run = await runCli(syncArgs(own, ns));
    assert.equal(run.code, 0, run.stderr);

    const lease = await leases.readNamespacedLease({ name: 'image-clone-sync', namespace: own });
    await leases.replaceNamespacedLease({ name: 'image-clone-sync', namespace: own, body: { metadata: lease.metadata, spec: { holderIdentity: 'busy-laptop', leaseDurationSeconds: 60, acquireTime: micro(new Date()), renewTime: micro(new Date()) } } });
    const refused = await runCli(syncArgs(own, ns));
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, /busy-laptop holds the run lock/);
    const dryRun = await runCli([...syncArgs(own, ns), '--dry-run']);
    assert.equal(dryRun.code, 0, 'a dry run needs no lock');
  });
});

describe('restore and the run lock', () => {
  test('restore takes the run lock: exits 4 while a sync holds it; --no-lock and --dry-run go on; it releases the lock', async () => {
    const own = await namespace('ic-home');
    const ns = await namespace('lock-restore');
    const repo = uniqueRepo('restore-lock');
    await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 8 * 1024, seed: 63 });
    const original = `${env.registries.source.host}/${repo}:1`;
    await deploy(ns, 'web', original);
    const synced = await runCli(syncArgs(own, ns));
    assert.equal(synced.code, 0, synced.stderr);
    const image = async () => (await apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec!.template.spec!.containers[0]!.image;
    assert.notEqual(await image(), original);

    const lease = await leases.readNamespacedLease({ name: 'image-clone-sync', namespace: own });
    await leases.replaceNamespacedLease({ name: 'image-clone-sync', namespace: own, body: { metadata: lease.metadata, spec: { holderIdentity: 'nightly-sync', leaseDurationSeconds: 60, acquireTime: micro(new Date()), renewTime: micro(new Date()) } } });
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
    const held = await leases.readNamespacedLease({ name: 'image-clone-sync', namespace: own });
    await leases.replaceNamespacedLease({ name: 'image-clone-sync', namespace: own, body: { metadata: held.metadata, spec: { leaseDurationSeconds: 60 } } });
    const again = await runCli(restoreArgs);
    assert.equal(again.code, 0, again.stderr);
    const after = await leases.readNamespacedLease({ name: 'image-clone-sync', namespace: own });
    assert.equal(after.spec?.holderIdentity, undefined, 'released at the end');
    assert.notEqual(after.metadata?.resourceVersion, held.metadata?.resourceVersion, 'the restore took the lock (the lease was written)');
  });
});

describe('--pull-secret', () => {
  test('copies the Secret into each patched namespace and adds it to imagePullSecrets, keeping the others; restore takes it out', async () => {
    const own = await namespace('ic-home');
    const ns = await namespace('pull');
    const repo = uniqueRepo('pull');
    await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 8 * 1024, seed: 62 });
    const dockerconfig = Buffer.from(JSON.stringify({ auths: { [env.registries.backup.host]: { auth: Buffer.from('puller:secret').toString('base64') } } })).toString('base64');
    await core.createNamespacedSecret({ namespace: own, body: { metadata: { name: 'backup-pull' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': dockerconfig } } });
    await deploy(ns, 'web', `${env.registries.source.host}/${repo}:1`, ['existing']);

    const missing = await runCli([...syncArgs(own, ns), '--pull-secret', 'no-such-secret']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--pull-secret no-such-secret: no Secret no-such-secret in namespace ic-home-\w+/);

    const run = await runCli([...syncArgs(own, ns), '--pull-secret', 'backup-pull']);
    assert.equal(run.code, 0, run.stderr);
    const copied = await core.readNamespacedSecret({ name: 'backup-pull', namespace: ns });
    assert.equal(copied.type, 'kubernetes.io/dockerconfigjson');
    assert.equal(copied.data?.['.dockerconfigjson'], dockerconfig);
    const names = async () => (await apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec!.template.spec!.imagePullSecrets!.map((s) => s.name).sort();
    assert.deepEqual(await names(), ['backup-pull', 'existing']);

    const restored = await runCli(['restore', '--kubeconfig', env.kubeconfig, '-n', ns]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(await names(), ['existing']);
  });
});
