// `npm run bench:plan` (issue 4): 5,000 workloads over 500 distinct images in the harness, every
// image already backed up. `image-clone sync --dry-run` must make at most one authenticated
// backup-registry request per distinct image, finish within 2x the time of
//   kubectl get deploy,sts,ds,cronjob,job,rs,rc,pod -A -o json
// listing the same objects (measured in the same run, alternating), and peak at most 300 MiB RSS.
//
//   node bench/plan.ts [--runs N] [--scale F] [--quiet-wait S] [--profile] [--no-profile] [--no-write] [--smoke]
//
// --runs: timed pairs (default 3); --scale: fewer namespaces and images for a trial (not written
// to RESULTS.md); --quiet-wait: seconds to wait for a quiet machine before timing (default 20);
// --profile: the diagnostics even when every target is met; --smoke (test/integration/bench-smoke.test.ts):
// every code path on the smallest shape (one workload of each kind, 2 images, one pair, the diagnostics
// always, though only the profiled run and two single runs: the other knobs are the same code with
// other flags), to keep the benchmark from rotting, not to measure: no wait for a quiet machine, kubectl
// only when it is already there (nothing is built), RESULTS.md not written.
import { join } from 'node:path';
import { repoRoot, startHarness } from '../test/harness/harness.ts';
import { benchArgs } from './lib/args.ts';
import { bigCluster, bigFleet, scaled, seedBackedUpFleet, smallest } from './lib/big-cluster.ts';
import { waitForControllers } from './lib/controllers.ts';
import { diagnose } from './lib/diagnostics.ts';
import { mdTable, median, metMissed, s2, textTable } from './lib/format.ts';
import { runImageClone, syncArgs, syncDisplay, writeRegistryConfig } from './lib/image-clone-runs.ts';
import { kubectlDisplay, kubectlList } from './lib/kubectl.ts';
import { makeLog } from './lib/log.ts';
import { machineTable } from './lib/machine.ts';
import { isolatedEnv, workDir } from './lib/processes.ts';
import { waitForQuietMachine } from './lib/quiet-machine.ts';
import { fmtKinds, registryRequests } from './lib/registry-trace.ts';
import { ownSection, writeSection } from './lib/results-md.ts';
import { startUp } from './lib/start-up.ts';
import { timedPair, type TimedPair } from './lib/versus-kubectl.ts';
import { createCluster, describeShape, expectedObjects, kinds } from './lib/workloads.ts';

const { flag, numberOption: option } = benchArgs();
const smoke = flag('--smoke');
/** --smoke: the controllers count as done after 1 s without a write (3 s for a measurement). */
const settleOptions = smoke ? { quietMs: 1000 } : {};
const runs = smoke ? 1 : Math.round(option('--runs', 3));
/** How long to wait for other processes on the machine to calm down before the timed runs. */
const quietWaitMs = smoke ? 0 : option('--quiet-wait', 20, 0) * 1000;
const scale = option('--scale', 1);
const { shape, fleet } = smoke ? smallest(bigCluster, bigFleet) : scaled(bigCluster, bigFleet, scale);
const backupPrefix = 'mirror';
const targets = { ratio: 2, rssMiB: 300, requestsPerImage: 1 };
const resultsPath = join(repoRoot, 'bench', 'RESULTS.md');
const log = makeLog('plan');
const started = Date.now();

async function main(): Promise<void> {
  const { machine, icVersion, kubectl } = await startUp(log, { smoke });
  log(`kubectl: ${kubectl.bin ? `${kubectl.version} (${kubectl.note})` : kubectl.note}`);
  log(`image-clone ${icVersion}; cluster: ${describeShape(shape)}; ${fleet.images} images`);

  const h = await startHarness({ stderr: 'ignore' });
  const work = await workDir('plan');
  try {
    // ---- set-up: images in source and backup, the workloads, the controllers' objects
    const setupStarted = performance.now();
    log('seeding the images into source and backup, and creating the workloads, in parallel');
    const seeding = seedBackedUpFleet(h, fleet, backupPrefix);
    const images = Array.from({ length: fleet.images }, (_, i) => `${h.env.registries.source.host}/apps/app-${i + 1}:v1`);
    const created = await createCluster(h.env.kubeconfig, shape, images, log);
    log(`created ${created.workloads} workloads in ${created.namespaces.length} namespaces in ${s2(created.createMs)} s (${created.requestsPerSecond.toFixed(0)} creates/s, ${shape.concurrency} in flight)`);
    const seeded = await seeding;
    log(`seeded ${fleet.images} images into source in ${s2(seeded.source.ms)} s and into backup in ${s2(seeded.backup.ms)} s (in parallel); same digests: ${seeded.sameDigests}`);
    if (!seeded.sameDigests) throw new Error('the backup fleet does not have the source fleet\'s digests');
    const expected = expectedObjects(shape);
    const settle = await waitForControllers(h, expected, log, settleOptions);
    const setupMs = performance.now() - setupStarted;
    log(`controllers settled ${s2(settle.ms)} s after the last create (${settle.controllerWrites} controller writes); set-up took ${s2(setupMs)} s`);
    if (!settle.reachedExpected) throw new Error(`the controllers did not make the expected objects in time: ${JSON.stringify(settle.counts)}`);
    const totalObjects = kinds.reduce((a, k) => a + settle.counts[k], 0);

    // ---- the confirming dry run (also warms the page cache): every image must plan as 'present'
    const registryConfig = await writeRegistryConfig(h, work.dir);
    const env = await isolatedEnv(work.dir);
    const args = syncArgs({ h, backupPrefix, registryConfig, dryRun: true });
    const confirm = await runImageClone(h, args, { env });
    const summary = confirm.report?.summary;
    const distinct = Array.isArray(confirm.report?.images) ? confirm.report.images.length : NaN;
    log(`confirming dry run: exit ${confirm.run.code}, ${s2(confirm.run.wallMs)} s, images ${JSON.stringify(summary?.images)}, workloads ${JSON.stringify(summary?.workloads)}`);
    if (confirm.run.code !== 0 || !summary || summary.images.present !== fleet.images || distinct !== fleet.images) {
      throw new Error(`the confirming dry run did not plan every image as present (exit ${confirm.run.code}): ${JSON.stringify(summary)} ${confirm.run.stderr.slice(0, 500)}`);
    }

    // ---- kubectl warm-up: its discovery cache, as any user's would be warm
    const kubeHome = join(work.dir, 'kubectl-home');
    if (kubectl.bin) {
      const warm = await kubectlList(kubectl.bin, h.env.kubeconfig, kubeHome);
      log(`kubectl warm-up: exit ${warm.run.code}, ${warm.items} objects, ${s2(warm.run.wallMs)} s`);
      if (warm.run.code !== 0) throw new Error(`kubectl failed: ${warm.run.stderr.slice(0, 300)}`);
      if (warm.items !== totalObjects) log(`WARNING: kubectl listed ${warm.items} objects, the API server counts ${totalObjects}`);
    }

    // ---- timed: kubectl and the plan, alternately, on a quiet machine
    const quiet = await waitForQuietMachine(log, { maxMs: quietWaitMs, ...(smoke ? { sampleMs: 100 } : {}) });
    log(`machine ${(quiet.busy * 100).toFixed(0)}% busy${quiet.waitedMs > 6000 ? ` after waiting ${s2(quiet.waitedMs)} s` : ''}; timing ${runs} pairs`);
    const pairs: TimedPair[] = [];
    for (let i = 0; i < runs; i++) {
      const pair = await timedPair(h, kubectl.bin, kubeHome, args, env);
      const plan = pair.cli;
      const backup = registryRequests(plan.trace, 'backup');
      log(`run ${i + 1}/${runs}: kubectl ${kubectl.bin ? s2(pair.kubectl.run.wallMs) : '-'} s, plan ${s2(plan.run.wallMs)} s (exit ${plan.run.code}, ${(plan.run.maxRssKiB / 1024).toFixed(0)} MiB, backup ${backup.authenticated} authenticated + ${backup.challenges} 401)`);
      if (plan.run.code !== 0) throw new Error(`the dry run failed (exit ${plan.run.code}): ${plan.run.stderr.slice(0, 500)}`);
      pairs.push(pair);
    }

    // ---- verdicts
    const planMs = median(pairs.map((p) => p.cli.run.wallMs));
    const kubectlMs = median(pairs.map((p) => p.kubectl.run.wallMs));
    const ratio = planMs / kubectlMs;
    const ratioMet = Number.isFinite(ratio) && ratio <= targets.ratio;
    const backupRuns = pairs.map((p) => registryRequests(p.cli.trace, 'backup'));
    const maxAuthenticated = Math.max(...backupRuns.map((b) => b.authenticated));
    const requestsMet = maxAuthenticated <= distinct * targets.requestsPerImage;
    const peakMiB = Math.max(...pairs.map((p) => p.cli.run.maxRssKiB)) / 1024;
    const rssMet = peakMiB <= targets.rssMiB;

    // ---- diagnostics
    const diagnostics: string[] = [];
    const findings: string[] = [];
    if ((!((ratioMet || !kubectl.bin) && requestsMet && rssMet) && !flag('--no-profile')) || flag('--profile') || smoke) {
      const d = await diagnose(h, args, env, work.dir, log, { kubectl: kubectl.bin, dryRun: true, smoke });
      diagnostics.push(...d.lines);
      findings.push(...d.findings);
    }

    // ---- report
    const rows = pairs.flatMap((p, i) => {
      const b = registryRequests(p.cli.trace, 'backup');
      const s = registryRequests(p.cli.trace, 'source');
      const issuer = registryRequests(p.cli.trace, 'issuer');
      return [
        [String(i + 1), 'kubectl get', s2(p.kubectl.run.wallMs), `${(p.kubectl.run.userS + p.kubectl.run.sysS).toFixed(2)}`, (p.kubectl.run.maxRssKiB / 1024).toFixed(0), `${p.kubectl.items} objects`, `${p.kubectlServer.requests} lists, ${p.kubectlServer.serverMs} ms`, '-', p.load],
        [String(i + 1), 'image-clone sync --dry-run', s2(p.cli.run.wallMs), `${(p.cli.run.userS + p.cli.run.sysS).toFixed(2)}`, (p.cli.run.maxRssKiB / 1024).toFixed(0),
          `${p.cli.report?.summary?.images?.present ?? '?'} present`, `${p.cliServer.requests} lists, ${p.cliServer.serverMs} ms`,
          `${b.authenticated} + ${b.challenges}x401 / ${s.total} / ${issuer.total}`, ''],
      ];
    });
    const head = ['run', 'command', 'wall s', 'CPU s', 'peak RSS MiB', 'result', 'API server: lists, time serving them', 'requests: backup auth+401 / source / token issuer', 'load avg before'];
    const verdict = [
      `Backup-registry requests per dry run: at most ${maxAuthenticated} authenticated (+ ${Math.max(...backupRuns.map((b) => b.challenges))} 401 challenge) for ${distinct} distinct images = ${(maxAuthenticated / distinct).toFixed(2)} per image; target <= ${targets.requestsPerImage}: ${metMissed(requestsMet)}`,
      kubectl.bin
        ? `Time: image-clone sync --dry-run median ${s2(planMs)} s vs kubectl listing median ${s2(kubectlMs)} s (${runs} runs each, alternating): ratio ${ratio.toFixed(2)}; target <= ${targets.ratio}: ${metMissed(ratioMet)}`
        : `Time: image-clone sync --dry-run median ${s2(planMs)} s; kubectl is missing (${kubectl.note}), so the ratio was not measured`,
      `Peak RSS of image-clone: ${peakMiB.toFixed(0)} MiB (GNU time, max over the timed runs; /proc VmHWM sample ${(Math.max(...pairs.map((p) => p.cli.vmHwmKiB ?? 0)) / 1024).toFixed(0)} MiB); target <= ${targets.rssMiB} MiB: ${metMissed(rssMet)}`,
    ];
    const counts = kinds.map((k) => `${settle.counts[k]} ${k}`).join(', ');
    const setupLine = `Set-up ${s2(setupMs)} s: ${created.workloads} workloads created in ${s2(created.createMs)} s (${created.requestsPerSecond.toFixed(0)}/s, ${shape.concurrency} in flight, @kubernetes/client-node); ` +
      `${fleet.images} images seeded into source (${s2(seeded.source.ms)} s) and backup (${s2(seeded.backup.ms)} s) in parallel with that; ` +
      `then ${s2(settle.ms)} s until the controllers had made their objects and stopped writing (${settle.controllerWrites} writes: kube-controller-manager's client is limited to 20 requests/s per controller)`;
    const text = [
      '',
      `Cluster: ${describeShape(shape)}; ${totalObjects} objects listed (${counts})`,
      setupLine,
      '',
      textTable(head, rows),
      '',
      ...verdict,
      ...(diagnostics.length ? ['', 'Diagnostics:', ...diagnostics] : []),
      '',
      `Total ${((Date.now() - started) / 1000).toFixed(0)} s`,
    ].join('\n');
    process.stdout.write(`${text}\n`);

    const markdown = [
      `## Plan benchmark (issue 4): results of ${machine.date}`,
      '',
      `Written by \`npm run bench:plan\` (bench/plan.ts, helpers in bench/lib/) in ${((Date.now() - started) / 1000).toFixed(0)} s${scale !== 1 ? ` at --scale ${scale} (a trial, not the issue's size)` : ''}. Rerunning replaces this section.`,
      '',
      '### Verdict',
      '',
      ...verdict.map((v) => `- ${v}`),
      '',
      '### Runs (alternating; the first dry run and the first kubectl run were untimed warm-ups)',
      '',
      `Before timing, the benchmark waited for the machine to be under 30% busy (${quiet.quiet ? `it was ${(quiet.busy * 100).toFixed(0)}% busy after ${s2(quiet.waitedMs)} s` : `it was still ${(quiet.busy * 100).toFixed(0)}% busy after ${s2(quiet.waitedMs)} s: other processes ran during the timed runs`}).`,
      '',
      mdTable(head, rows),
      '',
      'wall: measured by the benchmark around the process; CPU and peak RSS: GNU time (`/usr/bin/time -f "%e %U %S %M"`). ' +
        'API server: list requests in the kube-apiserver audit log during the run and the sum of their server-side durations. ' +
        'requests: as the harness registries saw them (regharness --trace-requests); "auth" excludes the 401 challenges.',
      '',
      'Registry requests of each timed dry run, by kind and status:',
      '',
      ...pairs.map((p, i) => `- run ${i + 1}: ${['backup', 'source', 'issuer'].map((r) => `${r}: ${fmtKinds(registryRequests(p.cli.trace, r).byKind)}`).join('; ')}`),
      '',
      ...(diagnostics.length ? ['### Diagnostics: where the dry run\'s time and memory go', '', 'Single runs after the timed ones (not part of the verdict).', '', '```', ...diagnostics, '```', '', ...findings.map((f) => `- ${f}`), ''] : []),
      '### Cluster and images',
      '',
      `- ${describeShape(shape)} = ${created.workloads} workloads. Deployments, StatefulSets, ReplicaSets and ReplicationControllers have \`replicas: 0\`, except ${shape.deploymentsWithAPod} Deployments per namespace with \`replicas: 1\`; ` +
        'Jobs run; CronJobs are suspended; DaemonSets have no node to run on. No scheduler or kubelet: pods stay Pending. The deployment controller adds one ReplicaSet per Deployment.',
      `- Objects listed by both (${totalObjects}): ${counts}.`,
      `- Images: ${fleet.images} distinct, \`SOURCE/apps/app-N:v1\`, workload j runs image j mod ${fleet.images} (${created.workloads / fleet.images} workloads each, of several kinds and namespaces). ` +
        `Each is an index of ${fleet.platforms.split(',').length} platforms with ${fleet.layers} layers of ${fleet.layerSize} (seeded by \`regharness seed-fleet --images ${fleet.images} --group-size ${fleet.groupSize} --platforms ${fleet.platforms} --layers ${fleet.layers} --shared-layers ${fleet.sharedLayers} --layer-size ${fleet.layerSize} --format ${fleet.format}\`). ` +
        `"All already backed up": the same seed-fleet run pushed into \`backup\` under the nested names (\`BACKUP/${backupPrefix}/<source host with ':' as '_'>/apps/app-N:v1\`) and their anchor tags (\`ic-sha256-<hex>\`, as image-clone keeps its copies), byte-identical (same digests); the untimed confirming dry run planned ${summary.images.present}/${fleet.images} images as present.`,
      `- ${setupLine}.`,
      '',
      '### Commands',
      '',
      `- kubectl (HOME is a private folder; the discovery cache was warmed by the warm-up run): \`${kubectlDisplay}\``,
      `- image-clone: \`${syncDisplay({ backupPrefix, dryRun: true })}\` (config.json: the \`backup\` admin credentials)`,
      '',
      '### Machine and versions',
      '',
      machineTable(machine, [
        ['image-clone', icVersion],
        ['kubectl', kubectl.bin ? `${kubectl.version} (${kubectl.note})` : `not run: ${kubectl.note}`],
        ['Kubernetes (harness)', `kube-apiserver + kube-controller-manager ${h.env.k8sVersion}, audit log on (metadata level)`],
        ['registries', 'distribution v3 (regharness serve), plain HTTP on 127.0.0.1; `backup` with Bearer tokens'],
      ], { go: false }),
    ].join('\n');
    if (!flag('--no-write') && scale === 1 && !smoke) {
      await writeSection(resultsPath, ownSection('plan'), markdown);
      log(`wrote the plan section of ${resultsPath}`);
    } else {
      log('not writing RESULTS.md (--no-write, --scale or --smoke)');
    }
  } finally {
    await work.remove();
    await h.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench:plan: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
