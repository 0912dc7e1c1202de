// Promise 1, "nothing lost", under attack: faults injected in front of both registries and the
// API server, SIGKILL at random moments of a run, and another writer editing workloads during a
// run. After every run the invariant must hold: each container runs its original image, or a
// backup reference whose manifest and every blob are present with the same digest, held by its
// anchor tag, each platform manifest by its own (so that registry garbage collection keeps it). Then a clean run converges and the run
// after it does nothing. One workload runs an older digest of a tag that moved upstream.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AppsV1Api, BatchV1Api, CoreV1Api, KubernetesObjectApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { anchorTag } from '../../src/core/naming.ts';
import { createLimiter } from '../../src/util/limit.ts';
import { parseReference } from '../../src/reference.ts';
import { repoRoot, type HarnessEnv } from '../harness/harness.ts';
import { startApiProxy, type ApiProxy } from './api-proxy.ts';
import { seededRandom, startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { clusterAdminToken, createIn, cronJob, daemonSet, deployment, harnessFixtures, pod, reportRunning, statefulSet, type Namespaces } from './fixtures.ts';
import {
  manifestDigest, runCli, seedImage, tokenKubeConfig, uniqueRepo, verifyCopy, writeKubeconfig, writeRegistryConfig, type CliRun, type KubeClients, type SeedOptions, type SeedResult,
} from './helpers.ts';

let env: HarnessEnv;
let core: CoreV1Api;
let apps: AppsV1Api;
let batch: BatchV1Api;
let objects: KubernetesObjectApi;
let source: FaultProxy;
let backup: FaultProxy;
let api: ApiProxy;
let kubeconfig: string;
let registryConfig: string;
let repo: string;
const seeded = new Map<string, SeedResult>(); // image as workloads name it -> what was seeded
const originals = new Map<string, Map<string, string>>(); // namespace -> "Kind/name/container" -> image
let namespaces: Namespaces;
const figures = { runs: 0, kills: 0, faultsInjected: 0, invariantChecks: 0, violations: 0, killPhases: new Map<string, number>() };
const registryFaults = { reset: 0.3, error500: 0.2, error503: 0.2, tooMany: 0.2, stall: 0.1 };
const apiFaults = { error500: 0.3, error503: 0.3, tooMany: 0.2, reset: 0.2 };

// The proxies read these tables on every request: scaling them in place changes the fault rate.
const sourceTable: Record<string, number> = {};
const backupTable: Record<string, number> = {};
const apiTable: Record<string, number> = {};

/** Faults on about `rate` of all requests (the shares of each base table sum to 1). */
function setRates(rate: number): void {
  for (const [table, base] of [[sourceTable, registryFaults], [backupTable, registryFaults], [apiTable, apiFaults]] as const) {
    for (const [fault, share] of Object.entries(base)) table[fault] = share * rate;
  }
}

const syncArgs = (ns: string, prefix: string) => ['sync', '--backup', `${backup.host}/${prefix}`, '--kubeconfig', kubeconfig,
  '--registry-config', registryConfig, '--insecure-registry', source.host, '--insecure-registry', backup.host,
  '--own-namespace', `no-lock-${prefix}`, '-n', ns, '-o', 'json', '--log-format', 'json'];

/** Five workloads of different kinds over three images; records every container's original image. */
async function workloads(prefix: string): Promise<string> {
  const ns = await namespaces.create(prefix);
  const [web, api, job, moved] = ['web:1', 'api:1', 'job:1', 'moved:1'].map((t) => `${source.host}/${repo}/${t}`) as [string, string, string, string];
  const list: Array<Record<string, any>> = [
    deployment('web', [{ name: 'app', image: web }, { name: 'sidecar', image: api }], { replicas: 1, pod: { initContainers: [{ name: 'init', image: job }] } }),
    statefulSet('db', api, { replicas: 0 }),
    daemonSet('agent', job),
    cronJob('nightly', job, { pod: { initContainers: [{ name: 'init', image: api }] } }),
    pod('lonely', web),
    pod('drifted', moved),
  ];
  const recorded = new Map<string, string>();
  for (const w of list) {
    await createIn(objects, ns, w);
    const pod = w.kind === 'Pod' ? w.spec : w.kind === 'CronJob' ? w.spec.jobTemplate.spec.template.spec : w.spec.template.spec;
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) recorded.set(`${w.kind}/${w.metadata.name}/${c.name}`, c.image);
  }
  originals.set(ns, recorded);
  // No kubelet runs here: the pod's status says what a kubelet would, that it runs the tag's older digest.
  await reportRunning(core, ns, 'drifted', moved, `${moved.slice(0, moved.lastIndexOf(':'))}@${seeded.get(moved)!.digest}`);
  return ns;
}

/** Every container's current image in the namespace, by "Kind/name/container". */
async function currentImages(ns: string): Promise<Map<string, string>> {
  const images = new Map<string, string>();
  const add = (kind: string, name: string, spec: { containers: Array<{ name: string; image?: string }>; initContainers?: Array<{ name: string; image?: string }> } | undefined) => {
    for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) images.set(`${kind}/${name}/${c.name}`, c.image ?? '');
  };
  for (const d of (await apps.listNamespacedDeployment({ namespace: ns })).items) add('Deployment', d.metadata!.name!, d.spec!.template.spec);
  for (const s of (await apps.listNamespacedStatefulSet({ namespace: ns })).items) add('StatefulSet', s.metadata!.name!, s.spec!.template.spec);
  for (const d of (await apps.listNamespacedDaemonSet({ namespace: ns })).items) add('DaemonSet', d.metadata!.name!, d.spec!.template.spec);
  for (const c of (await batch.listNamespacedCronJob({ namespace: ns })).items) add('CronJob', c.metadata!.name!, c.spec!.jobTemplate.spec!.template.spec);
  for (const p of (await core.listNamespacedPod({ namespace: ns })).items) if (!p.metadata?.ownerReferences?.length) add('Pod', p.metadata!.name!, p.spec);
  return images;
}

/** The invariant: original image, or a backup copy (under this prefix) that verifies against the source digest. */
async function checkInvariant(ns: string, prefix: string, allowed: (key: string) => string[] = (k) => [originals.get(ns)!.get(k)!]): Promise<string[]> {
  const violations: string[] = [];
  const verified = new Map<string, boolean>();
  for (const [key, image] of await currentImages(ns)) {
    figures.invariantChecks++;
    const originalsForKey = allowed(key);
    if (originalsForKey.includes(image)) continue;
    const ref = parseReference(image);
    const original = originalsForKey.map((o) => seeded.get(o)).find((s) => s && ref.digest === s.digest);
    if (!image.startsWith(`${backup.host}/${prefix}/`) || !ref.digest || !original) {
      violations.push(`${ns} ${key}: ${image} is neither its original nor a pinned backup copy of it`);
      continue;
    }
    if (!verified.has(image)) {
      const anchored = await manifestDigest(env.registries.backup, ref.repository, anchorTag(ref.digest));
      if (anchored !== ref.digest) violations.push(`${ns} ${key}: ${image} is not held by its anchor tag (it answers ${anchored ?? 'nothing'}): garbage collection would delete it`);
      // A collector that does not follow an index to its children (distribution 2.8's) keeps only
      // what a tag names: each platform manifest needs its own anchor too.
      for (const child of original.children) {
        const held = await manifestDigest(env.registries.backup, ref.repository, anchorTag(child.digest));
        if (held !== child.digest) violations.push(`${ns} ${key}: the ${child.platform} manifest ${child.digest} of ${image} has no tag of its own: distribution 2.8's garbage collection would delete it`);
      }
      const check = await verifyCopy({ registry: env.registries.source, ref: `${repo}/${original.ref.split('/').pop()!.split(':')[0]}@${ref.digest}` },
        { registry: { ...env.registries.backup, host: backup.host }, ref: `${ref.repository}@${ref.digest}` });
      verified.set(image, check.identical);
      if (!check.identical) violations.push(`${ns} ${key}: ${image} does not verify: ${check.differences?.join('; ')}`);
    }
  }
  figures.violations += violations.length;
  return violations;
}

/**
 * Runs sync and SIGKILLs it: `kill.ms` after the start, or `kill.ms` after it logs `kill.after`
 * (an event name); never, when `kill` is undefined. Returns its event timeline.
 */
async function runKilledAt(ns: string, prefix: string, kill: { ms: number; after?: string } | undefined): Promise<{ events: Array<{ event: string; ms: number }>; ms: number; killed: boolean }> {
  const events: Array<{ event: string; ms: number }> = [];
  const started = Date.now();
  let killed = false;
  await new Promise<void>((resolve) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin/image-clone.js'), ...syncArgs(ns, prefix)], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      timer ??= setTimeout(() => {
        killed = child.kill('SIGKILL');
      }, kill!.ms);
    };
    if (kill && !kill.after) arm();
    child.stderr.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n').filter(Boolean)) {
        try {
          const event = String(JSON.parse(line).event);
          events.push({ event, ms: Date.now() - started });
          if (kill?.after === event) arm();
        } catch {
          // not an event line
        }
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return { events, ms: Date.now() - started, killed };
}

async function converges(ns: string, prefix: string): Promise<void> {
  setRates(0);
  const clean = await runCli(syncArgs(ns, prefix));
  figures.runs++;
  assert.equal(clean.code, 0, `a clean run converges (${ns}): ${clean.stderr.slice(-2000)}`);
  const report = JSON.parse(clean.stdout);
  assert.equal(report.summary.workloads.failed + report.summary.workloads.skipped, 0, JSON.stringify(report.summary));
  for (const [key, image] of await currentImages(ns)) assert.ok(image.startsWith(`${backup.host}/${prefix}/`) && image.includes('@sha256:'), `${key} patched: ${image}`);
  const noop = JSON.parse((await runCli(syncArgs(ns, prefix))).stdout);
  figures.runs++;
  assert.deepEqual([noop.summary.images.copied, noop.summary.workloads.patched, noop.summary.bytesTransferred], [0, 0, 0], 'the run after it does nothing');
  assert.deepEqual(await checkInvariant(ns, prefix), []);
}

before(async () => {
  let kube: KubeClients;
  ({ env, kube, namespaces } = await harnessFixtures());
  ({ core, apps, batch, objects } = kube);
  source = await startFaultProxy({ upstream: env.registries.source.host, rates: sourceTable, seed: 101, eligible: () => true, stallMs: 1500 });
  backup = await startFaultProxy({ upstream: env.registries.backup.host, rates: backupTable, seed: 202, eligible: () => true, stallMs: 1500 });
  api = await startApiProxy({ server: env.server, caFile: env.caFile, rates: apiTable, seed: 303 });

  // image-clone runs as a ServiceAccount with a token (the proxy terminates TLS, so no client certificate).
  const home = await namespaces.create('chaos-home');
  kubeconfig = await writeKubeconfig(tokenKubeConfig(api.server, env.caFile, 'chaos', await clusterAdminToken(kube, home, 'chaos', 7200)), 'chaos');
  registryConfig = await writeRegistryConfig({ ...env, registries: { ...env.registries, backup: { ...env.registries.backup, host: backup.host } } }, ['backup']);

  repo = uniqueRepo('chaos');
  const opts = { layers: 2, layerSize: 1024 * 1024, sharedLayers: 1, sharedSeed: 900 };
  const images: Array<[string, SeedOptions]> = [['web:1', { platforms: ['linux/amd64', 'linux/arm64'], seed: 901 }], ['api:1', { seed: 902 }], ['job:1', { seed: 903, layers: 1, sharedLayers: 0 }]];
  for (const [tag, extra] of images) {
    seeded.set(`${source.host}/${repo}/${tag}`, await seedImage(env.registries.source, `${repo}/${tag}`, { ...opts, ...extra }));
  }
  // A tag that moved upstream: the 'drifted' pods run the first digest, the tag names the second.
  seeded.set(`${source.host}/${repo}/moved:1`, await seedImage(env.registries.source, `${repo}/moved:1`, { ...opts, seed: 904 }));
  await seedImage(env.registries.source, `${repo}/moved:1`, { ...opts, seed: 905 });
});

after(async () => {
  const injected = [source, backup].reduce((sum, p) => sum + Object.values(p.injected).reduce((a, b) => a + b, 0), 0)
    + Object.values(api.injected).reduce((a, b) => a + b, 0);
  figures.faultsInjected = injected;
  const phases = [...figures.killPhases.entries()].map(([phase, n]) => `${phase} ${n}`).join(', ');
  console.log(`nothing-lost: faults injected ${injected} (source ${JSON.stringify(source.injected)}, backup ${JSON.stringify(backup.injected)}, api ${JSON.stringify(api.injected)}), `
    + `kills ${figures.kills} (${phases}), runs ${figures.runs}, invariant checks ${figures.invariantChecks}, invariant violations ${figures.violations}`);
  await Promise.all([source.close(), backup.close(), api.close()]);
  await namespaces?.deleteAll();
});

describe('nothing lost', () => {
  for (const rate of [0.05, 0.15, 0.3]) {
    test(`faults at ${rate * 100}% on both registries and the API server: the invariant holds, then a clean run converges`, async () => {
      const prefix = `faults-${rate * 100}`;
      const ns = await workloads(prefix);
      for (let run = 0; run < 3; run++) {
        setRates(rate);
        const result = await runCli(syncArgs(ns, prefix));
        figures.runs++;
        assert.ok([0, 1, 2, 5].includes(result.code ?? -1), `a documented exit code, not a crash: ${result.code} ${result.stderr.slice(-1000)}`);
        assert.doesNotMatch(result.stderr, /\n\s+at \S+ \(/, 'no stack trace');
        setRates(0);
        assert.deepEqual(await checkInvariant(ns, prefix), []);
      }
      await converges(ns, prefix);
    });
  }

  test('SIGKILL at 30 random moments of a run: every workload is untouched or on a verified copy; then it converges', async (t) => {
    setRates(0);
    const started = Date.now();
    // One run to learn how long the copying takes here; the kills are then spread over the phases.
    const calibration = await workloads('crash-calibrate');
    const timeline = await runKilledAt(calibration, 'crash-calibrate', undefined);
    figures.runs++;
    const at = (event: string, last = false) => (last ? timeline.events.filter((e) => e.event === event).at(-1) : timeline.events.find((e) => e.event === event))?.ms;
    const copyStart = at('copying') ?? timeline.ms / 2;
    const copying = Math.max((at('image-copied', true) ?? copyStart) - copyStart, 10);
    const random = seededRandom(4242);
    // 6 kills before copying (by time), 12 while copying (after the copy starts), 12 while patching
    // (after the first workload is patched, with the others still to go).
    const plans: Array<() => { ms: number; after?: string }> = [
      ...Array.from({ length: 6 }, () => () => ({ ms: Math.round(random() * copyStart) })),
      ...Array.from({ length: 12 }, () => () => ({ ms: Math.round(random() * copying), after: 'copying' })),
      ...Array.from({ length: 12 }, () => () => ({ ms: Math.round(random() * 15), after: 'workload-patched' })),
    ];
    // Every trial's workloads first, a few at a time (each trial has its own namespace and backup
    // prefix); the kills themselves stay one at a time, so that each lands where its plan says.
    const limit = createLimiter(4);
    const trials = await Promise.all(plans.map((_, trial) => limit(async () => ({ prefix: `crash-${trial}`, ns: await workloads(`crash-${trial}`) }))));
    const killsStarted = Date.now();
    for (const [trial, plan] of plans.entries()) {
      const { ns, prefix } = trials[trial]!;
      const kill = plan();
      const run = await runKilledAt(ns, prefix, kill);
      figures.runs++;
      figures.kills++;
      const seen = new Set(run.events.map((e) => e.event));
      const phase = !run.killed ? 'after it finished' : seen.has('workload-patched') ? 'while patching' : seen.has('image-copied') ? 'after some copies' : seen.has('copying') ? 'while copying' : 'before copying';
      figures.killPhases.set(phase, (figures.killPhases.get(phase) ?? 0) + 1);
      assert.deepEqual(await checkInvariant(ns, prefix), [], `trial ${trial}, killed ${kill.ms} ms after ${kill.after ?? 'the start'} (${phase})`);
    }
    assert.ok(figures.killPhases.size >= 3, `kills landed in different phases: ${[...figures.killPhases.keys()].join(', ')}`);
    // Then each converges: independent runs (own namespace, backup prefix and lock namespace), so a few at a time.
    const convergeStarted = Date.now();
    await Promise.all(trials.map(({ ns, prefix }) => limit(() => converges(ns, prefix))));
    t.diagnostic(`set-up ${((killsStarted - started) / 1000).toFixed(0)} s, 30 kills ${((convergeStarted - killsStarted) / 1000).toFixed(0)} s, 30 convergences ${((Date.now() - convergeStarted) / 1000).toFixed(0)} s`);
  });

  test('another writer edits replicas, annotations and images during runs: their changes are kept', async () => {
    setRates(0.05);
    const prefix = 'writer';
    const ns = await workloads(prefix);
    const smp = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
    const otherImage = `${source.host}/${repo}/api:1`;
    let editing = true;
    let edits = 0;
    const writer = (async () => {
      while (editing) {
        edits++;
        await apps.patchNamespacedDeployment({ name: 'web', namespace: ns, body: { spec: { replicas: 1 + (edits % 4) }, metadata: { annotations: { 'team/edit': String(edits) } } } }, smp).catch(() => {});
        if (edits === 3) await apps.patchNamespacedStatefulSet({ name: 'db', namespace: ns, body: { spec: { template: { spec: { containers: [{ name: 'app', image: otherImage.replace('api:1', 'job:1') }] } } } } }, smp).catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
    })();
    const runs: CliRun[] = [];
    for (let i = 0; i < 3; i++) {
      runs.push(await runCli(syncArgs(ns, prefix)));
      figures.runs++;
    }
    editing = false;
    await writer;
    const web = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    assert.equal(web.metadata!.annotations!['team/edit'], String(edits), "the writer's last annotation is there");
    assert.equal(web.spec!.replicas, 1 + (edits % 4), "and its last replica count");
    const db = await apps.readNamespacedStatefulSet({ name: 'db', namespace: ns });
    const dbImage = db.spec!.template.spec!.containers[0]!.image!;
    assert.ok(dbImage === `${source.host}/${repo}/job:1` || dbImage.startsWith(`${backup.host}/${prefix}/`), `the writer's image change is kept, or backed up by a later run: ${dbImage}`);
    setRates(0);
    // The db container may now run job:1 (the writer's choice) or its backup copy.
    assert.deepEqual(await checkInvariant(ns, prefix, (key) => key === 'StatefulSet/db/app' ? [`${source.host}/${repo}/job:1`, originals.get(ns)!.get(key)!] : [originals.get(ns)!.get(key)!]), []);
  });
});
