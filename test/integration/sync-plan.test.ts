// `image-clone sync --dry-run` against the harness: workloads of every kind in several
// namespaces, pods whose status reports digests, images in `source` and some already in `backup`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CoreV1Api, KubernetesObjectApi } from '@kubernetes/client-node';
import { repoRoot, type HarnessEnv } from '../harness/harness.ts';
import { anchorTag, sealTag } from '../../src/core/naming.ts';
import {
  createIn, cronJob, daemonSet, deployment, harnessFixtures, job as jobOf, pod, replicaSet, replicationController, reportRunning, statefulSet, type Namespaces,
} from './fixtures.ts';
import { runCli, seedImage, uniqueRepo, waitUntil, type KubeClients, type SeedResult } from './helpers.ts';

let env: HarnessEnv;
let core: CoreV1Api;
let objects: KubernetesObjectApi;
let namespaces: Namespaces;
let registryConfig: string;
let nsA: string;
let nsB: string;
let baseArgs: string[];
let commonArgs: string[];
/** sync --dry-run over the given namespaces (the test's two and kube-system by default). */
const syncArgs = (namespaces = [nsA, nsB, 'kube-system']) => [...commonArgs, ...namespaces.flatMap((n) => ['-n', n])];
const images = {} as Record<'web' | 'api' | 'job' | 'twin', SeedResult>;
let repo: string;

before(async () => {
  let insecure: string[];
  let kube: KubeClients;
  ({ env, kube, namespaces, registryConfig, insecure } = await harnessFixtures());
  ({ core, objects } = kube);
  nsA = await namespaces.create('plan-a');
  nsB = await namespaces.create('plan-b');
  commonArgs = ['sync', '--dry-run', '--backup', `${env.registries.backup.host}/mirror`, '--registry-config', registryConfig,
    '--kubeconfig', env.kubeconfig, ...insecure];
  baseArgs = syncArgs();

  const src = env.registries.source;
  repo = uniqueRepo('plan');
  images.web = await seedImage(src, `${repo}/web:1.0`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 1, layerSize: 4096, seed: 1 });
  images.api = await seedImage(src, `${repo}/api:2.0`, { layers: 1, layerSize: 4096, seed: 2 });
  images.job = await seedImage(src, `${repo}/job:1`, { layers: 1, layerSize: 4096, seed: 3 });
  // The same path on a second registry: must get a backup name of its own.
  images.twin = await seedImage(env.registries['backup-basic'], `${repo}/api:2.0`, { layers: 1, layerSize: 4096, seed: 4 });
  // Already backed up: the api image, under the name nested naming gives it.
  await seedImage(env.registries.backup, `mirror/${src.host.replace(':', '_')}/${repo}/api:2.0`, { layers: 1, layerSize: 4096, seed: 2 });
  // As image-clone keeps it: held by its anchor tag too, and sealed (the same seed gives the same digest).
  await seedImage(env.registries.backup, `mirror/${src.host.replace(':', '_')}/${repo}/api:${anchorTag(images.api.digest)}`, { layers: 1, layerSize: 4096, seed: 2 });
  await seedImage(env.registries.backup, `mirror/${src.host.replace(':', '_')}/${repo}/api:${sealTag(images.api.digest)}`, { layers: 1, layerSize: 4096, seed: 2 });

  const web = `${src.host}/${repo}/web:1.0`;
  const api = `${src.host}/${repo}/api:2.0`;
  const job = `${src.host}/${repo}/job:1`;
  await createIn(objects, nsA, deployment('web', web, { replicas: 2 }));
  await createIn(objects, nsA, statefulSet('db', api));
  await createIn(objects, nsA, daemonSet('agent', `${env.registries['backup-basic'].host}/${repo}/api:2.0`));
  await createIn(objects, nsB, cronJob('nightly', job, { pod: { initContainers: [{ name: 'init', image: api }] } }));
  await createIn(objects, nsB, replicationController('legacy', web, { replicas: 0 }));
  await createIn(objects, nsB, replicaSet('bare-rs', api, { replicas: 0 }));
  await createIn(objects, nsB, jobOf('once', job));
  await createIn(objects, nsB, pod('lonely', `${src.host}/${repo}/gone:1`));
  await createIn(objects, nsB, deployment('broken', `${src.host}/${repo}/Upper/Case:1`));
  await createIn(objects, nsB, deployment('charted', api, { metadata: { labels: { 'app.kubernetes.io/managed-by': 'Helm' }, annotations: { 'meta.helm.sh/release-name': 'charted' } } }));
  await createIn(objects, 'kube-system', deployment(`system-${repo}`, web, { app: repo }));

  // No kubelet runs: report the web pods as running the index digest, through the status subresource.
  let pods: Array<{ metadata?: { name?: string } }> = [];
  await waitUntil('the web pods', async () => {
    pods = (await core.listNamespacedPod({ namespace: nsA, labelSelector: 'app=web' })).items;
    return pods.length === 2;
  });
  for (const p of pods) await reportRunning(core, nsA, p.metadata!.name!, web, `${src.host}/${repo}/web@${images.web.digest}`);
});

after(async () => {
  await namespaces?.deleteAll();
});

async function lineCount(path: string): Promise<number> {
  return (await readFile(path, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
}

async function linesAfter(path: string, skip: number): Promise<Array<Record<string, any>>> {
  return (await readFile(path, 'utf8')).split('\n').filter(Boolean).slice(skip).map((l) => JSON.parse(l));
}

describe('sync --dry-run', () => {
  test('plans every kind in several namespaces, reads only, and exits 1 for the lost image', async () => {
    const auditBefore = await lineCount(env.auditLog);
    const traceBefore = await lineCount(env.registryTrace);
    const run = await runCli([...baseArgs, '-o', 'json']);
    assert.equal(run.code, 1, `exit 1 because an image is lost and one reference is invalid\n${run.stderr}`);
    const doc = JSON.parse(run.stdout);
    assert.deepEqual([doc.schemaVersion, doc.kind], [2, 'plan']);
    assert.equal(doc.dryRun, true);

    const action = (kind: string, name: string, container = 'app') => doc.containers.find((w: any) => w.kind === kind && w.name === name && w.container === container);
    assert.deepEqual(action('Deployment', 'web')?.action, 'patch');
    assert.equal(action('Deployment', 'web').newImage, `${env.registries.backup.host}/mirror/${env.registries.source.host.replace(':', '_')}/${repo}/web:1.0@${images.web.digest}`);
    assert.equal(action('StatefulSet', 'db').action, 'patch');
    assert.equal(action('DaemonSet', 'agent').action, 'patch');
    assert.equal(action('CronJob', 'nightly').action, 'patch');
    assert.equal(action('CronJob', 'nightly', 'init').action, 'patch', 'initContainers too');
    assert.equal(action('ReplicationController', 'legacy').action, 'patch');
    assert.equal(action('ReplicaSet', 'bare-rs').action, 'patch');
    assert.deepEqual([action('Job', 'once').action, action('Job', 'once').reason], ['skip', "a Job's pod template is immutable; the image is backed up"]);
    assert.deepEqual([action('Pod', 'lonely').action, action('Pod', 'lonely').reason], ['skip', 'image lost: missing upstream and in the backup']);
    assert.equal(action('Deployment', 'broken').action, 'error');
    assert.match(action('Deployment', 'broken').reason, /repository path must be lower-case/);
    assert.deepEqual([action('Deployment', 'charted').action], ['skip']);
    assert.match(action('Deployment', 'charted').reason, /managed by Helm/);
    assert.ok(!doc.containers.some((w: any) => w.namespace === 'kube-system'), 'kube-system is excluded by default');
    assert.ok(!doc.workloads.some((w: any) => w.kind === 'ReplicaSet' && w.name.startsWith('web-')), 'owned ReplicaSets are not workloads');

    const image = (source: string) => doc.images.find((i: any) => i.source === source);
    const src = env.registries.source.host;
    assert.deepEqual([image(`${src}/${repo}/web:1.0`).action, image(`${src}/${repo}/web:1.0`).digest], ['copy', images.web.digest]);
    assert.equal(image(`${src}/${repo}/api:2.0`).action, 'present');
    assert.equal(image(`${src}/${repo}/gone:1`).action, 'lost');
    // The collision case: one path on two registries, two backup names.
    const twin = image(`${env.registries['backup-basic'].host}/${repo}/api:2.0`);
    assert.equal(twin.action, 'copy');
    assert.notEqual(twin.backup, image(`${src}/${repo}/api:2.0`).backup);
    assert.equal(doc.images.filter((i: any) => i.source === `${src}/${repo}/api:2.0`).length, 1, 'each distinct image is listed once');
    // One set of counts: each list counted as what it is.
    assert.equal(doc.summary.images.total, doc.images.length);
    assert.equal(doc.summary.workloads.total, doc.workloads.length);
    assert.equal(doc.summary.containers.total, doc.containers.length);
    assert.equal(new Set(doc.containers.map((c: any) => `${c.kind}/${c.namespace}/${c.name}`)).size, doc.workloads.length);
    assert.equal(doc.summary.containers.patch, doc.containers.filter((c: any) => c.action === 'patch').length);
    assert.equal(doc.summary.workloads.patch, doc.workloads.filter((w: any) => w.action === 'patch').length);

    const apiRequests = (await linesAfter(env.auditLog, auditBefore)).filter((e) => String(e.userAgent).startsWith('kubernetes-client-javascript'));
    assert.ok(apiRequests.length >= 8, 'the run listed every kind');
    assert.deepEqual([...new Set(apiRequests.map((e) => e.verb))].filter((v) => !['get', 'list', 'watch'].includes(v)), [], 'the API server saw only reads');
    const registryRequests = await linesAfter(env.registryTrace, traceBefore);
    assert.ok(registryRequests.length > 0);
    assert.deepEqual([...new Set(registryRequests.map((r) => r.method))].filter((m) => !['GET', 'HEAD'].includes(m)), [], 'the registries saw only reads');
  });

  test('not on a terminal (a CI log), the plan prints one row per line, references and digests whole', async () => {
    const run = await runCli(syncArgs([nsA]));
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split('\n');
    assert.match(run.stdout, /^IMAGE +ACTION +DIGEST +BACKUP +REASON$/m);
    const web = `${env.registries.source.host}/${repo}/web:1.0`;
    const row = lines.find((l) => l.startsWith(`${web} `));
    assert.ok(row?.includes(` ${images.web.digest} `), `the image, its whole digest and its backup on one line: ${row}`);
    const patch = lines.find((l) => l.startsWith(`Deployment/${nsA}/web `));
    assert.ok(patch?.includes(`${web} -> `) && patch.includes(`@${images.web.digest}`), `one line per container, from and to whole: ${patch}`);
    assert.match(run.stdout, /^Workloads: \d+: \d+ to patch, .*\nContainers: \d+: \d+ to patch/m);
  });

  test('on a terminal the table is coloured by meaning; NO_COLOR and --no-color turn colour off', async () => {
    // `script` gives the CLI a pseudo-terminal; CI and FORCE_COLOR would otherwise decide for chalk.
    const onTerminal = (extra: string[], extraEnv: Record<string, string> = {}, columns = 100) => {
      const command = `stty cols ${columns} rows 40; ${[process.execPath, join(repoRoot, 'bin/image-clone.js'), ...syncArgs([nsA]), ...extra].map((a) => `'${a}'`).join(' ')}`;
      const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color', COLUMNS: '100', ...extraEnv };
      delete env.CI;
      delete env.FORCE_COLOR;
      delete env.NO_COLOR;
      if (extraEnv.NO_COLOR) env.NO_COLOR = extraEnv.NO_COLOR;
      return spawnSync('script', ['-qec', command, '/dev/null'], { env, encoding: 'utf8', timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }).stdout;
    };
    const colour = /\u001b\[(3[0-7]|9[0-7])m/;
    const coloured = onTerminal([]);
    assert.match(coloured, /IMAGE/, coloured);
    // The pseudo-terminal also carries stderr's spinner: look from the table's header on.
    const plain = coloured.replace(/\u001b\[[0-9;?]*[a-zA-Z]/g, '').split(/\r?\n/).map((l) => l.replace(/^.*(?=IMAGE {2})/, ''));
    assert.ok(plain.some((l) => l.startsWith('IMAGE ')));
    assert.ok(plain.every((l) => l.length <= 100), `on a terminal the table fits its width: ${plain.find((l) => l.length > 100)}`);
    assert.match(coloured, colour, 'actions are coloured on a terminal');
    assert.doesNotMatch(onTerminal([], { NO_COLOR: '1' }), colour, 'NO_COLOR is honoured');
    assert.doesNotMatch(onTerminal(['--no-color']), colour, '--no-color is honoured');
    // A terminal that reports no width gets no spinner (ora would redraw forever), and still the plan.
    assert.match(onTerminal([], {}, 0), /IMAGE +ACTION +DIGEST/);
  });

  test('--exit-code: 3 when changes are pending; kinds, selector and image filters narrow the plan', async () => {
    const pending = await runCli([...syncArgs([nsA]), '--exit-code', '-o', 'json']);
    assert.equal(pending.code, 3, pending.stderr);
    const onlyCron = JSON.parse((await runCli([...baseArgs, '--kinds', 'cj', '-o', 'json'])).stdout);
    assert.deepEqual([...new Set(onlyCron.workloads.map((w: any) => w.kind))], ['CronJob']);
    const selected = JSON.parse((await runCli([...baseArgs, '-l', 'app.kubernetes.io/managed-by=Helm', '-o', 'json'])).stdout);
    assert.deepEqual(selected.workloads.map((w: any) => w.name), ['charted']);
    const excluded = JSON.parse((await runCli([...syncArgs([nsB]), '--exclude-image', `*/${repo}/gone:*`, '-o', 'json'])).stdout);
    assert.equal(excluded.workloads.find((w: any) => w.name === 'lonely').action, 'skip');
    assert.equal(excluded.images.find((i: any) => i.source.endsWith('/gone:1')).action, 'excluded');
  });

  test('-o kustomize maps original names to their backups', async () => {
    const run = await runCli([...baseArgs, '-o', 'kustomize']);
    assert.match(run.stdout, /^# Generated by image-clone.*\nimages:\n/);
    assert.ok(run.stdout.includes(`- name: ${env.registries.source.host}/${repo}/web\n  newName: ${env.registries.backup.host}/mirror/`), run.stdout);
    assert.match(run.stdout, new RegExp(`newTag: "1.0"\\n  digest: ${images.web.digest}`));
  });

  test('configuration comes from flags > IMAGE_CLONE_* > --config file, and bad input gets one line', async () => {
    const withoutBackup = syncArgs([nsA]).filter((a, i, all) => a !== '--backup' && all[i - 1] !== '--backup');
    const fromEnv = await runCli([...withoutBackup, '-o', 'json'], { IMAGE_CLONE_BACKUP: `${env.registries.backup.host}/from-env` });
    assert.match(JSON.parse(fromEnv.stdout).backup, /\/from-env$/);
    const flagWins = await runCli([...syncArgs([nsA]), '-o', 'json'], { IMAGE_CLONE_BACKUP: `${env.registries.backup.host}/from-env` });
    assert.match(JSON.parse(flagWins.stdout).backup, /\/mirror$/);
    const dir = await mkdtemp(join(tmpdir(), 'image-clone-config-'));
    await writeFile(join(dir, 'config.yaml'), `backup: ${env.registries.backup.host}/from-file\nnaming: flat\noutput: json\n`);
    const fromFile = await runCli([...withoutBackup, '--config', join(dir, 'config.yaml')]);
    const fileDoc = JSON.parse(fromFile.stdout);
    assert.match(fileDoc.backup, /\/from-file$/);
    assert.ok(fileDoc.images.every((i: any) => i.backup === null || /\/from-file\/[^/]+$/.test(i.backup.split(':').slice(0, -1).join(':'))), 'flat naming from the file');
    const envBeatsFile = await runCli([...withoutBackup, '--config', join(dir, 'config.yaml')], { IMAGE_CLONE_BACKUP: `${env.registries.backup.host}/from-env` });
    assert.match(JSON.parse(envBeatsFile.stdout).backup, /\/from-env$/);
    await writeFile(join(dir, 'bad.yaml'), 'backup: x\nbakcup: y\n');
    const badFile = await runCli([...withoutBackup, '--config', join(dir, 'bad.yaml')]);
    assert.deepEqual([badFile.code, badFile.stderr.split('\n')[0]], [2, `image-clone: --config ${join(dir, 'bad.yaml')}: unknown option "bakcup"`]);
    const missing = await runCli(['sync', '--dry-run', '--kubeconfig', env.kubeconfig]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^image-clone: --backup is required/);
    const badKinds = await runCli([...baseArgs, '--kinds', 'Widget']);
    assert.deepEqual([badKinds.code, badKinds.stderr.split('\n')[0]], [2, 'image-clone: --kinds: unknown kind "Widget" (known: Deployment, StatefulSet, DaemonSet, CronJob, ReplicationController, ReplicaSet, Job, Pod, '
      + 'Rollout.argoproj.io, CloneSet.apps.kruise.io, StatefulSet.apps.kruise.io, DaemonSet.apps.kruise.io, Service.serving.knative.dev, ScaledJob.keda.sh)']);
    const badKubeconfig = await runCli([...syncArgs().filter((a) => a !== env.kubeconfig && a !== '--kubeconfig'), '--kubeconfig', '/nonexistent/kubeconfig']);
    assert.deepEqual([badKubeconfig.code, badKubeconfig.stderr.split('\n')[0]], [2, 'image-clone: kubeconfig /nonexistent/kubeconfig does not exist']);
  });
});
