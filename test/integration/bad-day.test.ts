// Registries on a bad day: a source over its pull quota (HTTP 429 for hours), a host that takes
// connections and never answers, a backup registry that runs out of storage, and one that is
// read-only. Each must end quickly with one clear cause, leave nothing half-done, and converge on a
// rerun once the registry is well again.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { anchorTag } from '../../src/core/naming.ts';
import type { HarnessEnv, HarnessRegistry } from '../harness/harness.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { createIn, deployment, harnessFixtures, type Namespaces } from './fixtures.ts';
import { freePort, manifestDigest, runCli, seedImage, uniqueRepo, waitUntil, type KubeClients } from './helpers.ts';

let env: HarnessEnv;
let kube: KubeClients;
let namespaces: Namespaces;
let registryConfig: string;
let insecure: string[];

before(async () => {
  ({ env, kube, namespaces, registryConfig, insecure } = await harnessFixtures());
});

after(() => namespaces.deleteAll());

const source = () => env.registries.source;

function sync(ns: string, backup: string, ...extra: string[]) {
  return runCli(['sync', '--backup', backup, '-n', ns, '--registry-config', registryConfig, ...insecure, '-o', 'json', ...extra]);
}

/** Debian's docker-registry (distribution 2.8) on `root`, no auth, with `extra` YAML under storage. */
async function startDistribution2(root: string, storageExtra = ''): Promise<{ registry: HarnessRegistry; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'image-clone-d2-'));
  const config = join(dir, 'config.yml');
  await writeFile(config, `version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: ${JSON.stringify(root)}}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}${storageExtra}}
http: {addr: "127.0.0.1:${port}"}
`);
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  const host = `127.0.0.1:${port}`;
  await waitUntil(`docker-registry on ${host}`, async () => (await fetch(`http://${host}/v2/`).catch(() => undefined))?.status === 200, 30_000);
  return {
    registry: { host, auth: 'none' },
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe('registries on a bad day', () => {
  test("a source over its pull quota (Docker Hub's 429 for hours) is given up at once; the other registries' images are backed up", async (t) => {
    const ns = await namespaces.create('quota', t);
    const limited = uniqueRepo('limited');
    const fine = [uniqueRepo('fine'), uniqueRepo('fine')];
    await seedImage(source(), `${limited}:1`, { layers: 1, layerSize: 2048, seed: 401 });
    for (const [i, repo] of fine.entries()) await seedImage(source(), `${repo}:1`, { layers: 1, layerSize: 2048, seed: 402 + i });
    let manifestGets = 0;
    // Docker Hub is not reachable from here: this proxy answers for it in front of a real registry,
    // with the status, headers and body Docker Hub documents for a spent anonymous quota (100 pulls
    // per 6 hours), for one repository; everything else is forwarded.
    const hub: FaultProxy = await startFaultProxy({
      upstream: source().host, rates: {},
      intercept: (req, res) => {
        if (req.method === 'GET' && /\/manifests\//.test(req.url ?? '')) manifestGets++;
        if (req.method !== 'GET' || !req.url?.startsWith(`/v2/${limited}/manifests/`)) return false;
        req.resume();
        res.writeHead(429, { 'content-type': 'application/json', 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600', 'docker-ratelimit-source': '192.0.2.1' })
          .end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit' }] }));
        return true;
      },
    });
    t.after(() => hub.close());
    await createIn(kube.objects, ns, deployment('limited', `${hub.host}/${limited}:1`));
    for (const [i, repo] of fine.entries()) await createIn(kube.objects, ns, deployment(`fine-${i}`, `${source().host}/${repo}:1`));

    const started = Date.now();
    const run = await sync(ns, `${env.registries.backup.host}/quota`, '--insecure-registry', hub.host);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(run.code, 1, run.stderr);
    assert.ok(seconds < 30, `the run took ${seconds} s: a spent quota is not waited out`);
    const report = JSON.parse(run.stdout);
    assert.equal(report.summary.images.copied, 2, run.stdout);
    const failed = report.images.filter((i: { result: string }) => i.result !== 'copied');
    assert.equal(failed.length, 1);
    assert.match(failed[0].resultReason, new RegExp(`${hub.host}: rate limit reached \\(HTTP 429: TOOMANYREQUESTS: You have reached your unauthenticated pull rate limit.*\\); wait until \\d\\d:\\d\\d UTC`));
    const entry = report.summary.registries.find((r: { registry: string }) => r.registry === hub.host);
    assert.match(entry.gaveUp, /rate limit reached/);
    assert.equal(entry.manifestGets, manifestGets, 'the report counts the manifest GETs the registry saw');
    assert.equal(run.stderr.match(/retry: .*HTTP 429/g)?.length ?? 0, 0, 'not retried');
  });

  test('a host that accepts connections and never answers costs one timeout, not one per image', async (t) => {
    const ns = await namespaces.create('hung', t);
    const sockets = new Set<Socket>();
    let accepted = 0;
    const hung: Server = createServer((socket) => {
      accepted++;
      sockets.add(socket); // accepted, never answered
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      hung.close(() => resolve());
    }));
    const host = `127.0.0.1:${(hung.address() as AddressInfo).port}`;
    for (let i = 0; i < 30; i++) await createIn(kube.objects, ns, deployment(`app-${i}`, `${host}/app-${i}:1`));

    const started = Date.now();
    const run = await sync(ns, `${env.registries.backup.host}/hung`, '--insecure-registry', host, '--registry-timeout', '2');
    const seconds = (Date.now() - started) / 1000;
    assert.equal(run.code, 1, run.stderr);
    // One image's worth: five attempts of 2 s and their backoff (and one https probe). Without
    // remembering the host, the 30 lookups (8 at a time) would make 150 attempts in four rounds.
    assert.ok(accepted <= 8 * 5 + 2, `the hung host was asked ${accepted} times`);
    assert.ok(seconds < 40, `30 images on a hung host took ${seconds} s`);
    const report = JSON.parse(run.stdout);
    assert.equal(report.summary.images.error, 30, run.stdout);
    for (const image of report.images) assert.match(image.reason, new RegExp(`${host}: the registry did not answer`));
    const entry = report.summary.registries.find((r: { registry: string }) => r.registry === host);
    assert.match(entry?.gaveUp ?? '', /did not answer/, 'the summary names the host once');
  });

  test('a backup registry out of storage: the cause is said, nothing is tagged for the image that did not fit, exit 5; once it has room the rerun completes', async (t) => {
    // distribution 2.8 on a 40 MiB tmpfs (the tests run as root), an image of about 60 MiB.
    const root = await mkdtemp(join(tmpdir(), 'image-clone-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', root]);
    t.after(async () => {
      execFileSync('umount', ['-l', root]);
      await rm(root, { recursive: true, force: true });
    });
    await mkdir(join(root, 'data'));
    const full = await startDistribution2(join(root, 'data'));
    t.after(() => full.stop());
    const ns = await namespaces.create('full', t);
    const repo = uniqueRepo('large');
    const image = await seedImage(source(), `${repo}:1`, { layers: 3, layerSize: 20 * 1024 * 1024, seed: 420 });
    await createIn(kube.objects, ns, deployment('large', `${source().host}/${repo}:1`));
    const backup = `${full.registry.host}/full`;
    const backupRepo = `full/${source().host.replace(':', '_')}/${repo}`;

    const first = await sync(ns, backup, '--insecure-registry', full.registry.host);
    assert.equal(first.code, 5, first.stderr);
    assert.match(first.stderr, /the registry is out of storage space: .*no space left on device/);
    assert.equal(await manifestDigest(full.registry, backupRepo, anchorTag(image.digest)), undefined, 'nothing tagged for the image that did not fit');
    const workload = await kube.apps.readNamespacedDeployment({ name: 'large', namespace: ns });
    assert.equal(workload.spec!.template.spec!.containers[0]!.image, `${source().host}/${repo}:1`, 'the workload is untouched');

    execFileSync('mount', ['-o', 'remount,size=300m', root]);
    const rerun = await sync(ns, backup, '--insecure-registry', full.registry.host);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.equal(JSON.parse(rerun.stdout).summary.workloads.patched, 1);
    assert.equal(await manifestDigest(full.registry, backupRepo, anchorTag(image.digest)), image.digest);
  });

  test('a read-only backup registry (maintenance mode): one line, exit 5, nothing changed; a dry run still plans', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'image-clone-ro-'));
    t.after(() => rm(root, { recursive: true, force: true }));
    const readOnly = await startDistribution2(root, ', readonly: {enabled: true}');
    t.after(() => readOnly.stop());
    const ns = await namespaces.create('readonly', t);
    const repos = [uniqueRepo('ro'), uniqueRepo('ro')];
    for (const [i, repo] of repos.entries()) {
      await seedImage(source(), `${repo}:1`, { layers: 1, layerSize: 2048, seed: 430 + i });
      await createIn(kube.objects, ns, deployment(`app-${i}`, `${source().host}/${repo}:1`));
    }
    const backup = `${readOnly.registry.host}/ro`;

    const plan = await sync(ns, backup, '--insecure-registry', readOnly.registry.host, '--dry-run');
    assert.equal(plan.code, 0, plan.stderr);
    assert.equal(JSON.parse(plan.stdout).summary.images.copy, 2);

    const run = await sync(ns, backup, '--insecure-registry', readOnly.registry.host);
    assert.equal(run.code, 5, run.stderr);
    const causes = run.stderr.split('\n').filter((line) => /read-only/.test(line));
    assert.ok(causes.length >= 1, run.stderr);
    assert.match(causes.at(-1)!, new RegExp(`${readOnly.registry.host}: the registry refuses every write \\(HTTP 405, it allows only GET, HEAD\\): it is read-only`));
    for (let i = 0; i < repos.length; i++) {
      const d = await kube.apps.readNamespacedDeployment({ name: `app-${i}`, namespace: ns });
      assert.equal(d.spec!.template.spec!.containers[0]!.image, `${source().host}/${repos[i]}:1`, 'untouched');
    }
  });
});
