// `npm run bench:copy`: copies a seeded fleet of images with image-clone and with its peers
// (skopeo, crane, regctl), each into an empty registry, checks every copy, measures image-clone's
// peak memory on a single 1 GiB layer, and (re)writes its section of bench/RESULTS.md. Then a second
// round into new repositories: what each tool uploads per image when the registry has the blobs
// already (bench/lib/second-round.ts; its own section of RESULTS.md; --second-round-only: just that).
//
//   node bench/copy.ts [--profile wan] [--no-profile] [--diagnostics] [--no-write] [--smoke] [--second-round-only]
//   environment: BENCH_ROUNDS (default 3), BENCH_ONLY=regctl,crane (fewer peers), BENCH_CRANE_VERSION, BENCH_REGCTL_VERSION,
//   BENCH_IC_NODE_FLAGS='--max-semi-space-size=1' (node flags for image-clone's fleet and peak-RSS runs:
//   to measure it as its container image's ENTRYPOINT runs it)
//
// Fairness: every run starts a fresh harness (test/harness/harness.ts): an empty source registry,
// seeded with the same deterministic fleet (same digests every time), and an empty `backup-basic`
// target (htpasswd basic auth), used by every tool. One run at a time, in interleaved rounds (every
// other one reversed); runs disturbed by other work on the (shared) machine are thrown away and run
// again, and only undisturbed runs count. See bench/RESULTS.md for the reasoning.
//
// --profile wan (issue 15): the same runs with every tool reaching the registries through proxies
// that add latency and cap each connection's bandwidth (bench/lib/wan.ts); verification, seeding and
// the request counts still go to the registries directly. Its results go to a section of their own;
// the peak-RSS run is the loopback profile's only. --diagnostics (or --profile alone, as before)
// runs the diagnostic runs even when the target is met; --no-profile never.
//
// --smoke (test/integration/bench-smoke.test.ts): every code path on the smallest shape, to keep the
// benchmark from rotting, not to measure: 2 images of 2 small layers, one round, a 1 MiB layer for the
// RSS run, the profiled diagnostic run (always, and only that one), the registries without the
// Kubernetes half of the harness, no waiting for a quiet machine and no re-runs, only the peers
// already installed (nothing is downloaded), and RESULTS.md is not written.
import { rmSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, repoRoot, startHarness, type Harness } from '../test/harness/harness.ts';
import { benchArgs } from './lib/args.ts';
import { buildReport, busyCores, groupMs, groupOk, type CopySettings, type FleetRun, type Group, type RssRun } from './lib/copy-report.ts';
import { dockerAuth, imageCloneCopy, peerCopy, skopeoSync, type Command, type Contender, type RunContext } from './lib/copy-tools.ts';
import { summarizeCpuProfile } from './lib/cpu-profile.ts';
import { regharness, seedFleet, verifyPairs, type FleetShape } from './lib/fleets.ts';
import { fmtS, mib } from './lib/format.ts';
import { imageCloneVersion } from './lib/image-clone-runs.ts';
import { makeLog } from './lib/log.ts';
import { machineInfo, machineTable, type Machine } from './lib/machine.ts';
import { timedWithVmHwm } from './lib/peak-rss.ts';
import { cacheRoot, ensureGnuTime, findPeers, type Tool } from './lib/peers.ts';
import { findProcess, loadAverage, processCpuSeconds, systemCpu } from './lib/proc.ts';
import { firstLine, isolatedEnv, run, timed } from './lib/processes.ts';
import { waitForQuietMachine } from './lib/quiet-machine.ts';
import { registriesOnly } from './lib/registries.ts';
import { countRequests, fileSize, readTraceFrom } from './lib/registry-trace.ts';
import { summarizeUndiciTrace } from './lib/request-timeline.ts';
import { copySection, ownSection, writeSection } from './lib/results-md.ts';
import { secondRound, secondRoundReport, type RoundResult } from './lib/second-round.ts';
import { describeWan, startWan, wanProfile, type Wan } from './lib/wan.ts';

// ---------------------------------------------------------------- configuration

const { flag, stringOption } = benchArgs();
const smoke = flag('--smoke');
/** --profile wan: the registries behind latency and a bandwidth cap (bench/lib/wan.ts). */
const wan = stringOption('--profile') === 'wan';
const forceDiagnostics = flag('--diagnostics') || (flag('--profile') && !wan);
/** The running WAN proxies (--profile wan). */
let wanProxy: Wan | undefined;
const resultsPath = join(repoRoot, 'bench', 'RESULTS.md');
/** The CLI under test: a snapshot of bin/ and dist/ taken at the start (see snapshotCli), so that a rebuild
 * by someone else during the benchmark cannot change the code between runs. */
let cli = join(repoRoot, 'bin', 'image-clone.js');

/** The fleet: 30 two-platform images in 6 groups of 5 that share their 2 base layers. */
const fleet: FleetShape & { prefix: string } = {
  images: 30,
  groupSize: 5,
  platforms: 'linux/amd64,linux/arm64',
  layers: 4,
  sharedLayers: 2,
  layerSize: '8MiB',
  format: 'mixed',
  prefix: 'fleet',
  parallel: 2,
  // --smoke: 2 images sharing 1 of their 2 layers of 64 KiB.
  ...(smoke ? { images: 2, groupSize: 2, layers: 2, sharedLayers: 1, layerSize: '64KiB' } : {}),
};
const fleetArgs = [
  '--images', String(fleet.images), '--group-size', String(fleet.groupSize), '--platforms', fleet.platforms,
  '--layers', String(fleet.layers), '--shared-layers', String(fleet.sharedLayers), '--layer-size', fleet.layerSize,
  '--format', fleet.format, '--prefix', fleet.prefix,
];
const targetPrefix = 'mirror';
/** Interleaved rounds: every tool copies the fleet this many times; medians are compared. */
const rounds = smoke ? 1 : Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3) || 3);
/** Images checked with `verify --full` (blobs downloaded and re-hashed); all get the plain verify. */
const fullVerifySample = smoke ? [1] : [1, 15, 30];
/** The second round: six two-platform images sharing their two base layers (--smoke: two, one of two layers of 64 KiB). */
const secondRoundShape: FleetShape = {
  images: 6, groupSize: 6, platforms: 'linux/amd64,linux/arm64', layers: 4, sharedLayers: 2, layerSize: '8MiB', format: 'mixed', parallel: 4,
  ...(smoke ? { images: 2, groupSize: 2, layers: 2, sharedLayers: 1, layerSize: '64KiB' } : {}),
};
/** BENCH_IC_NODE_FLAGS: node's own flags for image-clone's runs (the container image passes some). */
const icNodeFlags = process.env.BENCH_IC_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? [];
/** The single layer of the peak-RSS run. */
const rssLayer = smoke ? { size: '1MiB', label: '1 MiB' } : { size: '1GiB', label: '1 GiB' };
const machineCores = Math.max(1, availableParallelism());
const settings: CopySettings = { fleet, fleetArgs, wan, rounds, machineCores, fullVerifySample, targetPrefix };
/** Give up waiting for a quiet machine after this long, and stop re-running noisy runs after this much benchmark time. */
const maxQuietWaitMs = smoke ? 0 : 20_000;
const retryBudgetMs = (wan ? 40 : 10) * 60_000;
/** Diagnostics (when the target is missed) start only before this point, to keep the whole benchmark near 15 minutes. */
const diagnosticsDeadlineMs = (wan ? 45 : 11) * 60_000;

const started = Date.now();
/** What to undo if we are interrupted: the running harness and the temp dir holding credentials. */
const cleanups = new Set<() => Promise<void>>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the harness and removing temporary files`);
    void Promise.allSettled([...cleanups].map((c) => c())).then(() => process.exit(130));
  });
}
const log = makeLog('copy');

// ---------------------------------------------------------------- one fleet run

/**
 * A fresh harness for one run. --smoke starts only its registries (bench:copy reads nothing else of
 * it); the measured runs keep the whole harness, as every result in RESULTS.md had it (its idle
 * control plane is in "other load").
 */
const freshHarness = (): Promise<Harness> => (smoke ? registriesOnly('copy') : startHarness({ stderr: 'ignore' }));

/** Waits (up to maxQuietWaitMs, and not past the retry budget) until under busyCores of the machine's CPUs are busy over 1 s. */
async function waitForQuiet(): Promise<{ waitedMs: number; cores: number }> {
  const maxMs = Math.max(0, Math.min(maxQuietWaitMs, retryBudgetMs - (Date.now() - started)));
  // --smoke: one short sample (it only fills the report's columns).
  const sampleMs = smoke ? 100 : 1000;
  const q = await waitForQuietMachine(log, { busyShare: busyCores / machineCores, maxMs, sampleMs });
  return { waitedMs: Math.max(0, q.waitedMs - sampleMs), cores: q.busy * machineCores };
}

interface RunOptions {
  /** Record image-clone's request timeline and CPU profile (a diagnostic run, slower). */
  profile?: boolean;
}

async function fleetRun(contender: Contender, options: RunOptions = {}): Promise<FleetRun> {
  log(`${contender.label}: starting a fresh harness`);
  const h = await freshHarness();
  const work = await mkdtemp(join(tmpdir(), `bench-${contender.id}-`));
  const cleanup = async () => {
    await rm(work, { recursive: true, force: true });
    await h.stop();
  };
  cleanups.add(cleanup);
  try {
    const reg = h.env.registries;
    const seeded = await seedFleet(h, reg.source.host, fleet, fleet.prefix);
    // The tools reach the registries at these addresses: through the WAN proxies with --profile wan.
    const routed = wanProxy ? await wanProxy.route(reg, ['source', 'backup-basic']) : {};
    const src = routed.source ?? reg.source.host;
    const dst = routed['backup-basic'] ?? reg['backup-basic'].host;
    log(`${contender.label}: seeded ${fleet.images} images (${mib(seeded.uniqueBytes).toFixed(0)} MiB unique) in ${fmtS(seeded.ms)}; copying`);
    const pairsFile = join(work, 'pairs.txt');
    await writeFile(pairsFile, Array.from({ length: fleet.images }, (_, i) => `${src}/${fleet.prefix}/app-${i + 1}:v1 ${dst}/${targetPrefix}/app-${i + 1}:v1\n`).join(''));
    const env = await isolatedEnv(work);
    env.PAIRS = pairsFile;
    const ctx: RunContext = { src, dst, user: reg['backup-basic'].username!, pass: reg['backup-basic'].password!, work, pairsFile, env };
    const result: FleetRun = {
      contender, registryCpuS: NaN, proxyCpuS: 0, machineBusyS: NaN, load: '', requests: {}, quietWaitMs: 0, backgroundCores: NaN, otherCores: NaN,
      fleetDigests: seeded.names.map((n) => seeded.digests.get(n) ?? '?'), uniqueBytes: seeded.uniqueBytes,
      logicalBytes: seeded.imageBytes.reduce((a, b) => a + b, 0), seedMs: seeded.ms,
    };
    let command: Command;
    try {
      command = await contender.prepare(ctx);
    } catch (err) {
      result.error = (err as Error).message;
      log(`${contender.label}: ${result.error}`);
      return result;
    }
    result.command = command;
    const profDir = join(work, 'prof');
    const traceFile = join(work, 'undici-trace.jsonl');
    let cmdArgs = command.args;
    if (options.profile) {
      await mkdir(profDir);
      env.IMAGE_CLONE_BENCH_TRACE = traceFile;
      cmdArgs = ['--import', join(repoRoot, 'bench', 'undici-trace.ts'), '--cpu-prof', `--cpu-prof-dir=${profDir}`, ...cmdArgs];
    }
    const quiet = await waitForQuiet();
    result.quietWaitMs = quiet.waitedMs;
    result.backgroundCores = quiet.cores;
    result.load = await loadAverage();
    const regPid = findProcess(['regharness', 'serve', h.dir]);
    const offset = await fileSize(h.env.registryTrace);
    const cpu0 = systemCpu();
    const reg0 = regPid ? processCpuSeconds(regPid) : NaN;
    const proxy0 = wanProxy ? processCpuSeconds(wanProxy.pid) : 0;
    const copy = await timed(command.cmd, cmdArgs, { env });
    const reg1 = regPid ? processCpuSeconds(regPid) : NaN;
    const proxy1 = wanProxy ? processCpuSeconds(wanProxy.pid) : 0;
    const cpu1 = systemCpu();
    result.copy = copy;
    result.registryCpuS = reg1 - reg0;
    result.proxyCpuS = proxy1 - proxy0;
    result.machineBusyS = cpu1.busyS - cpu0.busyS;
    result.otherCores = (result.machineBusyS - copy.userS - copy.sysS - result.registryCpuS - result.proxyCpuS) / (copy.wallMs / 1000);
    result.requests = countRequests(await readTraceFrom(h.env.registryTrace, offset));
    await writeFile(join(work, 'stdout.txt'), copy.stdout);
    if (copy.code !== 0) {
      result.error = `exit ${copy.code}: ${copy.stderr.trim().split('\n').slice(-2).join(' | ').slice(0, 400)}`;
    }
    log(`${contender.label}: ${fmtS(copy.wallMs)} (exit ${copy.code}); verifying`);
    result.verification = await verifyPairs(h, seeded.names.map((name, i) => ({
      src: `${reg.source.host}/${name}`, dst: `${reg['backup-basic'].host}/${targetPrefix}/${name.slice(fleet.prefix.length + 1)}`, full: fullVerifySample.includes(i + 1),
    })));
    log(`${contender.label}: verify ${result.verification.identical}/${fleet.images} identical${result.verification.problems.length ? ` — ${result.verification.problems[0]}` : ''}`);
    if (options.profile) {
      result.timeline = await summarizeUndiciTrace(traceFile, seeded.blobs).catch(() => undefined);
      const prof = (await readdir(profDir).catch(() => [])).find((f) => f.endsWith('.cpuprofile'));
      if (prof) result.profile = await summarizeCpuProfile(join(profDir, prof));
      // Kept outside the repository for a closer look (e.g. in Chrome DevTools).
      const keep = join(cacheRoot, 'last-profile');
      await rm(keep, { recursive: true, force: true });
      await mkdir(keep, { recursive: true });
      if (prof) await copyFile(join(profDir, prof), join(keep, 'image-clone.cpuprofile'));
      await copyFile(traceFile, join(keep, 'undici-trace.jsonl')).catch(() => {});
      result.command = { ...command, display: command.display.replace(/^node /, 'IMAGE_CLONE_BENCH_TRACE=trace.jsonl node --import bench/undici-trace.ts --cpu-prof ') };
    }
    return result;
  } finally {
    cleanups.delete(cleanup);
    await cleanup();
  }
}

// ---------------------------------------------------------------- peak RSS on one 1 GiB layer

async function rssRun(): Promise<RssRun> {
  log(`peak RSS: starting a fresh harness, seeding one image with a single ${rssLayer.label} layer`);
  const h = await freshHarness();
  const work = await mkdtemp(join(tmpdir(), 'bench-rss-'));
  const cleanup = async () => {
    await rm(work, { recursive: true, force: true });
    await h.stop();
  };
  cleanups.add(cleanup);
  const command = `node ${icNodeFlags.map((f) => `${f} `).join('')}bin/image-clone.js copy SRC/big/one-layer:v1 DST/mirror/one-layer:v1 --registry-config config.json --insecure-registry SRC --insecure-registry DST -o json`
    + ', under GNU time (/usr/bin/time -f "%e %U %S %M": %M is the "Maximum resident set size" that -v prints)';
  try {
    const src = h.env.registries.source.host;
    const dst = h.env.registries['backup-basic'].host;
    const env = { ...process.env, REGHARNESS_REGISTRIES: h.envPath };
    const seed = await run(regharness, ['seed', '--ref', `${src}/big/one-layer:v1`, '--layers', '1', '--layer-size', rssLayer.size], { env });
    if (seed.code !== 0) return { command, verified: false, detail: `seed failed: ${seed.stderr.trim()}`, layerBytes: 0 };
    const seeded = JSON.parse(seed.stdout.trim()) as { blobs: Array<{ size: number }> };
    const layerBytes = Math.max(...seeded.blobs.map((b) => b.size));
    const config = join(work, 'config.json');
    await writeFile(config, dockerAuth({ dst, user: h.env.registries['backup-basic'].username!, pass: h.env.registries['backup-basic'].password! }), { mode: 0o600 });
    const toolEnv = await isolatedEnv(work);
    log('peak RSS: copying');
    // GNU time's figure is the primary one; VmHWM of the node process, sampled from /proc, is a cross-check.
    const { run: copy, vmHwmKiB: hwm } = await timedWithVmHwm(process.execPath, [...icNodeFlags, cli, 'copy', `${src}/big/one-layer:v1`, `${dst}/mirror/one-layer:v1`, '--registry-config', config, '--insecure-registry', src, '--insecure-registry', dst, '-o', 'json'], { env: toolEnv });
    log(`peak RSS: ${(copy.maxRssKiB / 1024).toFixed(0)} MiB in ${fmtS(copy.wallMs)} (exit ${copy.code}); verifying (--full)`);
    const verify = await run(regharness, ['verify', '--full', '--src', `${src}/big/one-layer:v1`, '--dst', `${dst}/mirror/one-layer:v1`], { env });
    return {
      command, copy, vmHwmKiB: hwm, layerBytes,
      verified: copy.code === 0 && verify.code === 0,
      detail: copy.code !== 0 ? firstLine(copy.stderr) : verify.stdout.trim() || firstLine(verify.stderr),
    };
  } finally {
    cleanups.delete(cleanup);
    await cleanup();
  }
}

// ---------------------------------------------------------------- main

/** Copies bin/, dist/ and package.json to a temp dir (node_modules linked), and returns the snapshot's launcher. */
async function snapshotCli(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-image-clone-'));
  cleanups.add(() => rm(dir, { recursive: true, force: true }));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  await cp(join(repoRoot, 'bin'), join(dir, 'bin'), { recursive: true });
  await cp(join(repoRoot, 'dist'), join(dir, 'dist'), { recursive: true });
  await copyFile(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  await symlink(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  return join(dir, 'bin', 'image-clone.js');
}

/** A fleet run, thrown away and run again (at most twice, within the time budget) when other work on the machine disturbed it. */
async function quietRun(contender: Contender, options: RunOptions, discarded: FleetRun[]): Promise<FleetRun> {
  for (let attempt = 1; ; attempt++) {
    const r = await fleetRun(contender, options);
    const noisy = r.copy && r.otherCores > busyCores;
    if (!noisy || attempt >= (smoke ? 1 : 4) || Date.now() - started > retryBudgetMs) return r;
    r.discarded = `other work used ${r.otherCores.toFixed(2)} cores during the copy (limit ${busyCores})`;
    log(`${contender.label}: ${fmtS(r.copy!.wallMs)} thrown away: ${r.discarded}; running it again`);
    discarded.push(r);
  }
}

async function main(): Promise<void> {
  if (smoke) log('--smoke: the smallest shape, to exercise the code, not to measure; nothing is installed or written');
  if (!(await ensureGnuTime(log, { install: !smoke }))) throw new Error('GNU time (/usr/bin/time) is needed: apt-get install time');
  log('building the harness if needed (test/harness/build.sh)');
  ensureBuilt();
  await readFile(join(repoRoot, 'dist', 'cli', 'main.js')).catch(() => {
    throw new Error('dist/ is missing: run `npm run build` first (npm run bench:copy does)');
  });
  cli = await snapshotCli();
  const machine = await machineInfo();
  const icTool: Tool = { name: 'image-clone', bin: cli, version: await imageCloneVersion(), note: 'this repository; dist/ from `npm run build`, copied at the start' };

  log(smoke ? 'peers: only those already installed (--smoke)' : `peers: installing into ${cacheRoot} when missing`);
  const found = await findPeers(['skopeo', 'crane', 'regctl'], log, { install: !smoke });
  const peers = Object.values(found);
  const contenders: Contender[] = [imageCloneCopy(cli, icTool, 'image-clone', icNodeFlags.length ? `image-clone (node ${icNodeFlags.join(' ')})` : 'image-clone', [], icNodeFlags)];
  for (const id of ['skopeo', 'crane', 'regctl'] as const) if (found[id].bin) contenders.push(peerCopy(id, found[id]));
  const names = Array.from({ length: fleet.images }, (_, i) => `${fleet.prefix}/app-${i + 1}:v1`);
  if (found.skopeo.bin) contenders.push(skopeoSync(found.skopeo, names, targetPrefix));
  // BENCH_ONLY=regctl,crane (ids: skopeo, crane, regctl, skopeo-sync) limits the peers, for a quick look.
  const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter(Boolean);
  const discarded: FleetRun[] = [];
  const groups: Group[] = contenders.filter((c, i) => i === 0 || !only?.length || only.includes(c.id)).map((contender) => ({ contender, runs: [] }));
  if (flag('--second-round-only')) return secondRounds(groups.map((g) => g.contender), machine);

  if (wan) {
    wanProxy = await startWan(wanProfile);
    const proxy = wanProxy;
    cleanups.add(() => proxy.stop());
    log(`--profile wan: ${describeWan(wanProfile)} (Toxiproxy, .harness/bin/wanproxy)`);
  }
  // Interleaved rounds, every other one in reverse order, so that drift on the machine spreads evenly.
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 ? [...groups].reverse() : groups;
    for (const g of order) {
      log(`round ${round + 1}/${rounds}`);
      g.runs.push(await quietRun(g.contender, {}, discarded));
    }
  }
  // The peak-RSS run is the loopback profile's: latency changes nothing about a single stream's memory.
  const rss: RssRun = wan ? { command: '-', verified: false, detail: 'measured by the loopback profile only', layerBytes: 0 } : await rssRun();

  // ---- the verdict: medians
  const ic = groups[0]!;
  const icMs = groupOk(ic) ? groupMs(ic) : NaN;
  const peerGroups = groups.slice(1).filter((g) => groupOk(g) && Number.isFinite(groupMs(g)));
  const best = (list: Group[]) => list.reduce<Group | undefined>((a, g) => (!a || groupMs(g) < groupMs(a) ? g : a), undefined);
  const bestMandated = best(peerGroups.filter((g) => g.contender.mandated));
  const bestAny = best(peerGroups);
  const fleetTarget = bestMandated && Number.isFinite(icMs) ? icMs <= 0.5 * groupMs(bestMandated) : false;
  const fleetTargetAny = bestAny && Number.isFinite(icMs) ? icMs <= 0.5 * groupMs(bestAny) : false;
  const rssMiB = rss.copy ? rss.copy.maxRssKiB / 1024 : NaN;
  const rssTarget = rss.verified && rssMiB < 200;

  // ---- diagnostics when the fleet target is missed (or asked for)
  const diagnostics: Group[] = [];
  if ((!fleetTarget && !flag('--no-profile')) || forceDiagnostics || smoke) {
    log('fleet target missed: diagnostic runs of image-clone (profiled; --no-signatures; --concurrency 16)');
    const candidates: Array<[Contender, RunOptions]> = [
      [imageCloneCopy(cli, icTool, 'ic-profile', 'image-clone, profiled (undici trace + --cpu-prof)'), { profile: true }],
      [imageCloneCopy(cli, icTool, 'ic-nosig', 'image-clone --no-signatures (no signature/referrer look-ups)', ['--no-signatures']), {}],
      [imageCloneCopy(cli, icTool, 'ic-c16', 'image-clone --concurrency 16', ['--concurrency', '16']), {}],
    ];
    // --smoke: the profiled run only (the others are plain runs with other flags).
    const variants = smoke ? candidates.slice(0, 1) : candidates;
    for (const [c, o] of variants) {
      if (Date.now() - started > diagnosticsDeadlineMs) {
        log(`skipping ${c.label}: past the time budget`);
        continue;
      }
      diagnostics.push({ contender: c, runs: [await quietRun(c, o, discarded)] });
    }
  }

  const all = [...groups, ...diagnostics].flatMap((g) => g.runs);
  const fleetInfo = all.find((r) => r.uniqueBytes) ?? all[0]!;
  const sameFleet = all.every((r) => r.fleetDigests.join() === fleetInfo.fleetDigests.join());
  const report = buildReport({ settings, machine, icTool, peers, groups, rss, icMs, bestMandated, bestAny, fleetTarget, fleetTargetAny, rssMiB, rssTarget, diagnostics, discarded, fleetInfo, sameFleet, totalS: (Date.now() - started) / 1000 });
  process.stdout.write(`\n${report.text}\n`);
  if (!flag('--no-write') && !smoke) {
    await writeSection(resultsPath, wan ? ownSection('copy-wan') : copySection, report.markdown);
    log(`wrote ${resultsPath}`);
  }
  await wanProxy?.stop();
  // The second round measures bytes, not latency: on loopback only.
  if (!wan) await secondRounds(groups.map((g) => g.contender), machine);
}

/** Issue 15, section 3: what each tool sends per image on a second round into new repositories (not skopeo sync: it takes no pairs). */
async function secondRounds(contenders: Contender[], machine: Machine): Promise<void> {
  const results: RoundResult[] = [];
  const perImage = contenders.filter((c) => c.id !== 'skopeo-sync');
  for (const contender of perImage) {
    log(`second round: ${contender.label}`);
    results.push(await secondRound(contender, { shape: secondRoundShape, freshHarness, log }));
  }
  const report = secondRoundReport(results, secondRoundShape);
  process.stdout.write(`\n${report.text}\n`);
  if (!flag('--no-write') && !smoke) {
    const versions = machineTable(machine, perImage.map((c) => [c.label, c.tool.version]));
    await writeSection(resultsPath, ownSection('copy-second-round'), `${report.markdown}\n\n### Machine and versions\n\n${versions}`);
    log(`wrote the second round to ${resultsPath}`);
  }
}

main().catch((err) => {
  process.stderr.write(`bench:copy: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});

