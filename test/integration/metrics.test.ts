// --metrics-pushgateway against the real Prometheus Pushgateway (built from the Go module proxy by
// test/harness/tools.sh), after real syncs on the harness: its /metrics holds each run's figures,
// exactly those of the run's report; a run with a lost image shows it; a run that fails before its
// report keeps the last success time; dry runs push nothing; an unreachable Pushgateway is one
// warning line and the run's own exit code.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoRoot, type HarnessEnv } from '../harness/harness.ts';
import { deployment, harnessFixtures, type Namespaces } from './fixtures.ts';
import { runCli, seedImage, uniqueRepo, waitUntil, type KubeClients } from './helpers.ts';

let env: HarnessEnv;
let kube: KubeClients;
let namespaces: Namespaces;
let registryConfig: string;
let insecure: string[];
let own: string;
let goodNs: string;
let lostNs: string;
let pushgateway: ChildProcess;
let gateway: string;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

before(async () => {
  ({ env, kube, namespaces, registryConfig, insecure } = await harnessFixtures());
  const bin = join(repoRoot, '.harness/bin/pushgateway');
  assert.ok(existsSync(bin), `${bin} is missing: run \`bash test/harness/tools.sh\` (npm run harness:build does)`);
  const port = await freePort();
  gateway = `http://127.0.0.1:${port}`;
  pushgateway = spawn(bin, [`--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  pushgateway.stderr!.on('data', (d) => (log += d));
  await waitUntil('the Pushgateway to be ready', async () => (await fetch(`${gateway}/-/ready`).catch(() => undefined))?.ok === true, 30_000)
    .catch((err: Error) => { throw new Error(`${err.message}\n${log}`); });

  own = await namespaces.create('metrics-own');
  goodNs = await namespaces.create('metrics-good');
  lostNs = await namespaces.create('metrics-lost');
  const repo = uniqueRepo('metrics');
  await seedImage(env.registries.source, `${repo}:1`, { layers: 2, layerSize: 8192, seed: 23 });
  await kube.apps.createNamespacedDeployment({ namespace: goodNs, body: deployment('web', `${env.registries.source.host}/${repo}:1`, { replicas: 0 }) });
  await kube.apps.createNamespacedDeployment({ namespace: lostNs, body: deployment('gone', `${env.registries.source.host}/${uniqueRepo('never-pushed')}:1`, { replicas: 0 }) });
});

after(async () => {
  pushgateway?.kill('SIGTERM');
  await namespaces?.deleteAll();
});

const sync = (namespace: string, cluster: string, extra: string[] = [], backup = `${env.registries.backup.host}/metrics`, pushgatewayUrl = gateway) =>
  runCli(['sync', '--backup', backup, '--kubeconfig', env.kubeconfig, '--registry-config', registryConfig, ...insecure,
    '--own-namespace', own, '-n', namespace, '-o', 'json', '--log-format', 'json', '--metrics-cluster', cluster, ...extra],
  { IMAGE_CLONE_METRICS_PUSHGATEWAY: pushgatewayUrl });

/** The Pushgateway's /metrics: image_clone_* samples of one cluster group, as "name{other labels}" -> value. */
async function pushed(cluster: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${gateway}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^(image_clone_[a-z_]+)\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (labels.cluster !== cluster) continue;
    assert.equal(labels.job, 'image-clone');
    const { cluster: _, job: __, instance: ___, ...rest } = labels;
    const key = Object.keys(rest).length ? `${m[1]}{${Object.entries(rest).map(([k, v]) => `${k}="${v}"`).join(',')}}` : m[1]!;
    out.set(key, Number(m[3]));
  }
  return out;
}

describe('metrics pushed to a real Pushgateway', () => {
  let successTime: number;

  test('a successful run: the figures of its report, success 1, and the time it ended', async () => {
    const startedAt = Date.now() / 1000;
    const run = await sync(goodNs, 'good');
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    const m = await pushed('good');
    for (const [result, n] of Object.entries(report.summary.images)) if (result !== 'total') assert.equal(m.get(`image_clone_images_total{result="${result}"}`), n, result);
    for (const [result, n] of Object.entries(report.summary.workloads)) if (result !== 'total') assert.equal(m.get(`image_clone_workloads_total{result="${result}"}`), n, result);
    for (const [result, n] of Object.entries(report.summary.blobs)) assert.equal(m.get(`image_clone_blobs_total{result="${result}"}`), n, result);
    assert.equal(m.get('image_clone_images_total{result="copied"}'), 1);
    assert.equal(m.get('image_clone_workloads_total{result="patched"}'), 1);
    assert.equal(m.get('image_clone_lost_images'), 0);
    assert.equal(m.get('image_clone_transferred_bytes_total'), report.summary.bytesTransferred);
    assert.ok(report.summary.bytesTransferred > 16384);
    assert.equal(m.get('image_clone_last_run_success'), 1);
    successTime = m.get('image_clone_last_success_timestamp_seconds')!;
    assert.ok(successTime >= startedAt && successTime <= Date.now() / 1000, `${successTime} during the run`);
    assert.ok(m.get('image_clone_run_duration_seconds')! > 0);
    assert.ok(!run.stderr.includes('Pushgateway'), run.stderr);
  });

  test('a run with a lost image (exit 1): lost images 1, success 0, no success time', async () => {
    const run = await sync(lostNs, 'lost');
    assert.equal(run.code, 1, run.stderr);
    const m = await pushed('lost');
    assert.equal(m.get('image_clone_lost_images'), 1);
    assert.equal(m.get('image_clone_images_total{result="lost"}'), 1);
    assert.equal(m.get('image_clone_workloads_total{result="skipped"}'), 1);
    assert.equal(m.get('image_clone_last_run_success'), 0);
    assert.equal(m.has('image_clone_last_success_timestamp_seconds'), false);
  });

  test('a run that fails before its report (backup unreachable, exit 5) pushes success 0 and keeps the last success time and figures', async () => {
    const before = await pushed('good');
    const closed = `127.0.0.1:${await freePort()}`;
    const run = await sync(goodNs, 'good', ['--insecure-registry', closed], `${closed}/metrics`);
    assert.equal(run.code, 5, run.stderr);
    const m = await pushed('good');
    assert.equal(m.get('image_clone_last_run_success'), 0);
    assert.equal(m.get('image_clone_last_success_timestamp_seconds'), successTime);
    assert.ok(m.get('image_clone_last_run_timestamp_seconds')! > before.get('image_clone_last_run_timestamp_seconds')!);
    assert.equal(m.get('image_clone_images_total{result="copied"}'), before.get('image_clone_images_total{result="copied"}'));
  });

  test('a dry run pushes nothing', async () => {
    const run = await sync(goodNs, 'dry', ['--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await pushed('dry')).size, 0);
  });

  test('an unreachable Pushgateway: one warning line, and the run keeps its exit code', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const run = await runCli(['sync', '--backup', `${env.registries.backup.host}/metrics`, '--kubeconfig', env.kubeconfig, '--registry-config', registryConfig, ...insecure,
      '--own-namespace', own, '-n', goodNs, '--metrics-pushgateway', closed]);
    assert.equal(run.code, 0, run.stderr);
    const warnings = run.stderr.split('\n').filter((l) => l.includes('Pushgateway'));
    assert.equal(warnings.length, 1, run.stderr);
    assert.match(warnings[0]!, new RegExp(`^warning: could not push metrics to the Pushgateway ${closed}/metrics/job/image-clone: connect ECONNREFUSED `));
  });

  test('a Pushgateway that refuses the push (a wrong path: HTTP 404): one warning line with the status, JSON in JSON logs, exit code kept', async () => {
    const run = await sync(goodNs, 'refused', [], undefined, `${gateway}/wrong/prefix`);
    assert.equal(run.code, 0, run.stderr);
    const warnings = run.stderr.split('\n').filter((l) => l.includes('Pushgateway'));
    assert.equal(warnings.length, 1, run.stderr);
    const line = JSON.parse(warnings[0]!);
    assert.equal(line.level, 'warn');
    assert.match(line.message, new RegExp(`^could not push metrics to the Pushgateway ${gateway}/wrong/prefix/metrics/job/image-clone/cluster/refused: HTTP 404`));
  });
});
