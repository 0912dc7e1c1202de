// `npm run bench:scale` (issue 15, section 5): bench:plan's dry run and bench:sync's no-op sync on a
// cluster of 10,000 workloads of every kind over 1,000 distinct images, with 5,000, 20,000 and
// 50,000 pods, against `kubectl get deploy,sts,ds,cronjob,job,rs,rc,pod -A -o json` of the same
// objects (alternating pairs, medians). Targets: each <= 2x kubectl's time, peak RSS <= 400 MiB, at
// most one authenticated backup request per distinct image; memory should grow with workloads and
// images, not with pods (hence the curve).
//
//   node bench/scale.ts [--pods 5000,20000,50000] [--workloads 10000] [--images 1000] [--runs N]
//                       [--quiet-wait S] [--profile] [--no-profile] [--no-write] [--smoke]
//   environment: BENCH_BASELINE_CLI=/path/to/bin/image-clone.js: at the largest point, one more dry
//   run and no-op sync with that build (e.g. an earlier commit's), to show a change's effect in the same run.
//   BENCH_MEMORY_LIMIT_MIB (default 512, the CronJob's limit; 0: off): at the largest point, one more
//   dry run and no-op sync in a memory cgroup of that size (bench/lib/memory-cgroup.ts), where Node
//   sizes its heap as it would in the pod, and with the node flags of the image's ENTRYPOINT.
//
// One data set serves every point (building it is most of the run time): the workloads, then pods
// added in batches up to each point for the dry runs; then one real sync (untimed: every image is
// already in the backup, it patches the workloads), and the no-op syncs at each point on the way
// back down, deleting the pods of the last batch between points. The API server runs without
// workload controllers (kubeharness --controllers serviceaccount): the benchmark creates the
// ReplicaSets of the Deployments and every pod itself, with the ownerReferences the controllers
// would set, so the objects stay as created (see bench/lib/scale-cluster.ts).
//
// --smoke (test/integration/bench-smoke.test.ts): every code path on the smallest shape (one
// workload of each kind, 2 images, points of 10 and 20 pods, one pair each) but the diagnostics
// (bench:plan's smoke run covers those), no waiting for a quiet machine, RESULTS.md not written.
import { join } from 'node:path';
import { repoRoot, startHarness } from '../test/harness/harness.ts';
import { benchArgs } from './lib/args.ts';
import { bigCluster, bigFleet, seedBackedUpFleet, smallest } from './lib/big-cluster.ts';
import { diagnose } from './lib/diagnostics.ts';
import { mdTable, median, metMissed, s2, textTable } from './lib/format.ts';
import { imageNodeFlags, runImageClone, syncArgs, syncDisplay, writeRegistryConfig, type CliRun } from './lib/image-clone-runs.ts';
import { kubectlDisplay, kubectlList } from './lib/kubectl.ts';
import { makeLog } from './lib/log.ts';
import { memoryCgroup } from './lib/memory-cgroup.ts';
import { machineTable } from './lib/machine.ts';
import { isolatedEnv, workDir } from './lib/processes.ts';
import { waitForQuietMachine } from './lib/quiet-machine.ts';
import { registryRequests } from './lib/registry-trace.ts';
import { ownSection, writeSection } from './lib/results-md.ts';
import { addPods, createScaleCluster, FastClient, removeLastPodBatch } from './lib/scale-cluster.ts';
import { startUp } from './lib/start-up.ts';
import { timedPair, type TimedPair } from './lib/versus-kubectl.ts';
import { describeShape, type ClusterShape } from './lib/workloads.ts';

const { flag, stringOption, numberOption } = benchArgs();
const smoke = flag('--smoke');
const runs = smoke ? 1 : Math.round(numberOption('--runs', 3, 1));
const quietWaitMs = smoke ? 0 : numberOption('--quiet-wait', 20, 0) * 1000;
const points = smoke ? [10, 20] : (stringOption('--pods') ?? '5000,20000,50000').split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
const workloadCount = numberOption('--workloads', 10_000, 100);
const imageCount = Math.round(numberOption('--images', 1000, 10));
/** Requests in flight while creating the objects. */
const inFlight = 48;
/** bench:plan's mix of kinds (100 per namespace), in workloads / 100 namespaces. */
const fullShape: ClusterShape = { ...bigCluster, namespaces: Math.round(workloadCount / 100), namespacePrefix: 'scale' };
const fullFleet = { ...bigFleet, images: imageCount };
const { shape, fleet } = smoke ? smallest(fullShape, fullFleet) : { shape: fullShape, fleet: fullFleet };
const targets = { ratio: 2, rssMiB: 400, requestsPerImage: 1 };
const backupPrefix = 'mirror';
const resultsPath = join(repoRoot, 'bench', 'RESULTS.md');
const log = makeLog('scale');
const started = Date.now();

interface Point {
  pods: number;
  objects: number;
  pairs: TimedPair[];
}

const rssMiB = (r: CliRun) => r.run.maxRssKiB / 1024;
const baselineCli = process.env.BENCH_BASELINE_CLI;
const memoryLimitMiB = Number(process.env.BENCH_MEMORY_LIMIT_MIB ?? 512);

async function main(): Promise<void> {
  const { machine, icVersion, kubectl } = await startUp(log, { smoke });
  if (!kubectl.bin) throw new Error(`kubectl is needed: ${kubectl.note}`);
  log(`image-clone ${icVersion}; kubectl ${kubectl.version}; ${describeShape(shape)}; ${fleet.images} images; pods ${points.join(', ')}`);
  const h = await startHarness({ stderr: 'ignore', controllers: 'serviceaccount' });
  const work = await workDir('scale');
  const client = await FastClient.fromKubeconfig(h.env.kubeconfig, inFlight);
  try {
    // ---- the data set: images (source and backup) in parallel with the workloads
    const seeding = seedBackedUpFleet(h, fleet, backupPrefix);
    const images = Array.from({ length: fleet.images }, (_, i) => `${h.env.registries.source.host}/apps/app-${i + 1}:v1`);
    const cluster = await createScaleCluster(client, shape, images, inFlight, log);
    log(`created ${cluster.workloads} workloads (+ ${cluster.byKind.Deployment} ReplicaSets of the Deployments) in ${s2(cluster.createMs)} s (${client.requests} requests)`);
    const seeded = await seeding;
    if (!seeded.sameDigests) throw new Error('the backup fleet does not have the source fleet\'s digests');
    log(`seeded ${fleet.images} images into source (${s2(seeded.source.ms)} s) and backup (${s2(seeded.backup.ms)} s)`);
    const barePods = cluster.byKind.Pod;

    const registryConfig = await writeRegistryConfig(h, work.dir);
    const env = await isolatedEnv(work.dir);
    const dryArgs = syncArgs({ h, backupPrefix, registryConfig, dryRun: true });
    const syncArgv = syncArgs({ h, backupPrefix, registryConfig, dryRun: false });
    const kubeHome = join(work.dir, 'kubectl-home');
    const podMs: Record<number, number> = {};

    const measure = async (label: string, pods: number, args: string[], check: (r: CliRun) => string | undefined): Promise<Point> => {
      const warm = await kubectlList(kubectl.bin!, h.env.kubeconfig, kubeHome);
      if (warm.run.code !== 0) throw new Error(`kubectl failed: ${warm.run.stderr.slice(0, 300)}`);
      const listedPods = warm.byKind.Pod ?? 0;
      if (listedPods !== pods) throw new Error(`kubectl lists ${listedPods} pods, expected ${pods}`);
      const quiet = await waitForQuietMachine(log, { maxMs: quietWaitMs, ...(smoke ? { sampleMs: 100 } : {}) });
      log(`${label} at ${pods} pods (${warm.items} objects): machine ${(quiet.busy * 100).toFixed(0)}% busy; ${runs} pairs`);
      const pairs: TimedPair[] = [];
      for (let i = 0; i < runs; i++) {
        const pair = await timedPair(h, kubectl.bin, kubeHome, args, env);
        const problem = pair.cli.run.code !== 0 ? `exit ${pair.cli.run.code}: ${pair.cli.run.stderr.slice(0, 400)}` : check(pair.cli);
        if (problem) throw new Error(`${label} at ${pods} pods: ${problem}`);
        const b = registryRequests(pair.cli.trace, 'backup');
        log(`  ${i + 1}/${runs}: kubectl ${s2(pair.kubectl.run.wallMs)} s ${(pair.kubectl.run.maxRssKiB / 1024).toFixed(0)} MiB; image-clone ${s2(pair.cli.run.wallMs)} s ${rssMiB(pair.cli).toFixed(0)} MiB, backup ${b.authenticated} + ${b.challenges}x401`);
        pairs.push(pair);
      }
      return { pods, objects: warm.items, pairs };
    };

    /** One run of the baseline build (BENCH_BASELINE_CLI) at the largest point, after the timed pairs. */
    const baseline: string[] = [];
    const extraRun = async (label: string, args: string[], options: { cli?: string; wrap?: string[]; nodeFlags?: string[] }) => {
      const r = await runImageClone(h, args, { env, ...options });
      const b = registryRequests(r.trace, 'backup');
      baseline.push(`${label}: ${s2(r.run.wallMs)} s, CPU ${(r.run.userS + r.run.sysS).toFixed(1)} s, peak RSS ${rssMiB(r).toFixed(0)} MiB, exit ${r.run.code}, backup ${b.authenticated} + ${b.challenges}x401 (one run)`);
      log(baseline[baseline.length - 1]!);
    };
    const baselineRun = async (label: string, args: string[]) => {
      if (baselineCli) await extraRun(`${label} with the baseline build (${baselineCli})`, args, { cli: baselineCli });
      if (memoryLimitMiB > 0) {
        const cg = await memoryCgroup(memoryLimitMiB);
        if ('unavailable' in cg) baseline.push(`${label} under a ${memoryLimitMiB} MiB memory limit: not run (${cg.unavailable})`);
        else {
          try {
            const flags = imageNodeFlags();
            await extraRun(`${label} in a memory cgroup of ${memoryLimitMiB} MiB (${cg.describe}) with the image's \`node ${flags.join(' ')}\`, as in the CronJob's pod`, args, { wrap: cg.wrap, nodeFlags: flags });
          } finally {
            await cg.remove();
          }
        }
      }
    };

    // ---- dry runs, pods going up
    const plans: Point[] = [];
    for (const p of points) {
      podMs[p] = await addPods(client, cluster, p - barePods, inFlight, log);
      log(`pods: ${p} (${cluster.podBatches.join(' + ')} owned + ${barePods} bare) after ${s2(podMs[p]!)} s`);
      plans.push(await measure('dry run', p, dryArgs, (r) => (r.report?.summary?.images?.present === fleet.images ? undefined : `not every image planned as present: ${JSON.stringify(r.report?.summary?.images)}`)));
      if (p === points[points.length - 1]) await baselineRun(`Dry run at ${p} pods`, dryArgs);
    }

    // ---- one real sync (every image is in the backup already: it patches the workloads), then no-op syncs going down
    log('the real sync that the no-op syncs repeat (untimed; patches the workloads, copies nothing)');
    const first = await runImageClone(h, [...syncArgv, '--concurrency', '32'], { env });
    const fs = first.report?.summary;
    log(`sync: exit ${first.run.code} in ${s2(first.run.wallMs)} s: images ${JSON.stringify(fs?.images)}, workloads ${JSON.stringify(fs?.workloads)}`);
    if (first.run.code !== 0 || !fs || fs.images.copied) throw new Error(`the sync failed or copied: ${JSON.stringify(fs)} ${first.run.stderr.slice(0, 400)}`);
    const noops: Point[] = [];
    for (const p of [...points].reverse()) {
      noops.unshift(await measure('no-op sync', p, syncArgv, (r) => {
        const s = r.report?.summary;
        return s && !s.workloads?.patched && !s.images?.copied && !s.workloads?.failed ? undefined : `not a no-op: ${JSON.stringify(s)}`;
      }));
      if (p === points[points.length - 1]) await baselineRun(`No-op sync at ${p} pods`, syncArgv);
      if (p !== points[0]) {
        const ms = await removeLastPodBatch(client, cluster, 8);
        log(`deleted the last batch of pods in ${s2(ms)} s`);
      }
    }

    // ---- verdicts at the largest point, and the curve
    const med = (pairs: TimedPair[], f: (p: TimedPair) => number) => median(pairs.map(f));
    const summary = (pt: Point) => {
      const cliMs = med(pt.pairs, (p) => p.cli.run.wallMs);
      const kubectlMs = med(pt.pairs, (p) => p.kubectl.run.wallMs);
      const distinct = new Set((pt.pairs[0]!.cli.report?.images as Array<{ backup?: string; source?: string }> | undefined)?.map((i) => i.backup ?? i.source) ?? []).size;
      const backupMax = Math.max(...pt.pairs.map((p) => registryRequests(p.cli.trace, 'backup').authenticated));
      return {
        cliMs, kubectlMs, ratio: cliMs / kubectlMs, distinct, backupMax,
        rss: Math.max(...pt.pairs.map((p) => rssMiB(p.cli))), kubectlRss: Math.max(...pt.pairs.map((p) => p.kubectl.run.maxRssKiB / 1024)),
        cpu: med(pt.pairs, (p) => p.cli.run.userS + p.cli.run.sysS), kubectlCpu: med(pt.pairs, (p) => p.kubectl.run.userS + p.kubectl.run.sysS),
      };
    };
    const verdicts: string[] = [];
    let allMet = true;
    for (const [label, list] of [['Dry run (bench:plan)', plans], ['No-op sync (bench:sync)', noops]] as const) {
      const top = list[list.length - 1]!;
      const s = summary(top);
      const ratioMet = s.ratio <= targets.ratio;
      const rssMet = s.rss <= targets.rssMiB;
      const reqMet = s.backupMax <= s.distinct * targets.requestsPerImage;
      allMet &&= ratioMet && rssMet && reqMet;
      verdicts.push(`${label} at ${top.pods} pods (${top.objects} objects): ${s2(s.cliMs)} s vs kubectl ${s2(s.kubectlMs)} s (medians of ${top.pairs.length}): ratio ${s.ratio.toFixed(2)}, target <= ${targets.ratio}: ${metMissed(ratioMet)}; ` +
        `peak RSS ${s.rss.toFixed(0)} MiB, target <= ${targets.rssMiB}: ${metMissed(rssMet)}; backup requests at most ${s.backupMax} for ${s.distinct} distinct images, target <= 1 per image: ${metMissed(reqMet)}`);
    }
    const head = ['pods', 'objects listed', 'kubectl s (CPU s, MiB)', 'dry run s (CPU s)', 'ratio', 'dry run peak RSS MiB', 'no-op sync s (CPU s)', 'ratio', 'no-op peak RSS MiB', 'backup requests / distinct images', 'pod creation s'];
    const rows = points.map((p, i) => {
      const a = summary(plans[i]!);
      const b = summary(noops[i]!);
      return [String(p), String(plans[i]!.objects), `${s2(a.kubectlMs)} (${a.kubectlCpu.toFixed(1)}, ${a.kubectlRss.toFixed(0)})`, `${s2(a.cliMs)} (${a.cpu.toFixed(1)})`, a.ratio.toFixed(2), a.rss.toFixed(0),
        `${s2(b.cliMs)} (${b.cpu.toFixed(1)})`, b.ratio.toFixed(2), b.rss.toFixed(0), `${a.backupMax} / ${a.distinct}; ${b.backupMax} / ${b.distinct}`, s2(podMs[p] ?? NaN)];
    });
    const growth = points.length > 1
      ? (() => {
          const lo = summary(plans[0]!);
          const hi = summary(plans[plans.length - 1]!);
          const nlo = summary(noops[0]!);
          const nhi = summary(noops[noops.length - 1]!);
          const per = (a: number, b: number) => (((b - a) * 1024) / (points[points.length - 1]! - points[0]!)).toFixed(2);
          return `Memory per pod, from ${points[0]} to ${points[points.length - 1]} pods: dry run +${(hi.rss - lo.rss).toFixed(0)} MiB (${per(lo.rss, hi.rss)} KiB per pod), no-op sync +${(nhi.rss - nlo.rss).toFixed(0)} MiB (${per(nlo.rss, nhi.rss)} KiB per pod); kubectl +${(hi.kubectlRss - lo.kubectlRss).toFixed(0)} MiB.`;
        })()
      : '';

    // ---- diagnostics at the largest point, when a target is missed (or asked for)
    const diagnostics: string[] = [];
    const findings: string[] = [];
    if (!smoke && ((!allMet && !flag('--no-profile')) || flag('--profile'))) {
      // The pods are back at the first point: up to the largest again.
      for (const p of points.slice(1)) await addPods(client, cluster, p - barePods, inFlight, log);
      const d = await diagnose(h, syncArgv, env, work.dir, log, { kubectl: kubectl.bin, dryRun: false });
      diagnostics.push(...d.lines);
      findings.push(...d.findings);
    }

    const setupLine = `Set-up: ${cluster.workloads} workloads and ${cluster.byKind.Deployment} ReplicaSets created in ${s2(cluster.createMs)} s (${inFlight} requests in flight, keep-alive HTTPS, bench/lib/scale-cluster.ts); ${fleet.images} images seeded into source and backup in parallel (${s2(Math.max(seeded.source.ms, seeded.backup.ms))} s); ` +
      `pods added per point: ${points.map((p) => `${p}: ${s2(podMs[p] ?? NaN)} s`).join(', ')}; the real sync between the dry runs and the no-op syncs ${s2(first.run.wallMs)} s (${JSON.stringify(fs.workloads)}).`;
    const text = ['', `Cluster: ${describeShape(shape)}; ${fleet.images} images; pods ${points.join(', ')}`, '', textTable(head, rows), '', ...verdicts, ...(growth ? [growth] : []), ...baseline, setupLine,
      ...(diagnostics.length ? ['', 'Diagnostics:', ...diagnostics] : []), '', `Total ${((Date.now() - started) / 1000).toFixed(0)} s`].join('\n');
    process.stdout.write(`${text}\n`);
    const markdown = [
      `## Scale benchmark (issue 15, section 5): results of ${machine.date}`,
      '',
      `Written by \`npm run bench:scale\` (bench/scale.ts) in ${((Date.now() - started) / 1000).toFixed(0)} s; rerunning replaces this section.`,
      '',
      '### Verdict',
      '',
      ...verdicts.map((v) => `- ${v}`),
      ...(growth ? [`- ${growth}`] : []),
      ...baseline.map((b) => `- ${b}`),
      '',
      `### The curve (${runs} alternating pairs per cell, medians; peak RSS: the largest of the pairs)`,
      '',
      mdTable(head, rows),
      '',
      `- Cluster: ${describeShape(shape)} = ${cluster.workloads} workloads, plus one ReplicaSet per Deployment; pods owned by the ReplicaSets, StatefulSets, DaemonSets, Jobs, ReplicaSets and ReplicationControllers (round robin, about ${(points[points.length - 1]! / (cluster.owners.length || 1)).toFixed(1)} each at the top point), and the ${barePods} bare Pods. No workload controllers (kubeharness --controllers serviceaccount): the benchmark made the ReplicaSets and pods with the ownerReferences the controllers set; pods stay Pending with no status.`,
      `- Images: ${fleet.images} distinct, workload j runs image j mod ${fleet.images}; all already in \`backup\` under image-clone's names (bench:plan's set-up, bench/lib/big-cluster.ts).`,
      '- Dry runs with the pods going up (before any sync), then one real sync (untimed: it patches the workloads, copies nothing), then the no-op syncs with the pods going down (the last batch deleted between points).',
      `- ${setupLine}`,
      `- Commands: \`${kubectlDisplay}\` (private HOME, discovery cache warm); \`${syncDisplay({ backupPrefix, dryRun: true })}\`; the no-op sync is the same without --dry-run.`,
      '',
      ...(diagnostics.length ? ['### Diagnostics at the largest point (no-op sync)', '', '```', ...diagnostics, '```', '', ...findings.map((f) => `- ${f}`), ''] : []),
      '### Machine and versions',
      '',
      machineTable(machine, [
        ['image-clone', icVersion],
        ['kubectl', `${kubectl.version} (${kubectl.note})`],
        ['Kubernetes (harness)', `kube-apiserver ${h.env.k8sVersion} with embedded etcd; kube-controller-manager with the serviceaccount controller only`],
      ], { go: false }),
    ].join('\n');
    if (!flag('--no-write') && !smoke) {
      await writeSection(resultsPath, ownSection('scale'), markdown);
      log(`wrote the scale section of ${resultsPath}`);
    }
  } finally {
    client.close();
    await work.remove();
    await h.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench:scale: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
