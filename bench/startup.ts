// `npm run bench:startup`: what one process costs (issue 15, section 4). Scripts copy one image per
// process; this measures image-clone against skopeo and crane doing exactly that, in the same run:
//   --version   the bare start-up: process start, module loading, argument parsing, exit;
//   copy        one small image (a two-platform index, 2 layers of 4 KiB per platform) per process,
//               into a new repository of an empty registry.
//
//   node bench/startup.ts [--smoke] [--no-write]
//   environment: BENCH_ROUNDS (default 10), BENCH_CRANE_VERSION, BENCH_BASELINE_CLI (another build's
//   bin/image-clone.js, e.g. of an earlier commit: measured too, as "image-clone (baseline)", for a before/after)
//
// Fairness: every copy is of a different image of the same shape with no blob in common with any
// other (seed-fleet --group-size 1 --shared-layers 0), into a repository nobody wrote before, so no
// tool can mount or skip what an earlier run moved; every copy is checked with `regharness verify
// --full`. Each tool keeps one private HOME (with XDG_CACHE_HOME) for all its runs, as a user's
// scripts do, and gets one untimed warm-up run of each kind first (image-clone's compile cache is
// written there, skopeo's blob-info cache, ...). Runs are interleaved (every other round reversed);
// before each round the benchmark waits (up to 20 s) for the shared machine to be quiet.
//
// --smoke (test/integration/bench-smoke.test.ts): 1 round, only the peers already installed, nothing
// installed or written.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBuilt, repoRoot } from '../test/harness/harness.ts';
import { benchArgs } from './lib/args.ts';
import { dockerAuth } from './lib/copy-tools.ts';
import { seedFleet, verifyPairs, type FleetShape } from './lib/fleets.ts';
import { median, mdTable, textTable } from './lib/format.ts';
import { machineInfo, machineTable } from './lib/machine.ts';
import { ensureGnuTime, findPeers, type Tool } from './lib/peers.ts';
import { loadAverage } from './lib/proc.ts';
import { firstLine, isolatedEnv, run, timed, type TimedResult } from './lib/processes.ts';
import { waitForQuietMachine } from './lib/quiet-machine.ts';
import { imageCloneVersion } from './lib/image-clone-runs.ts';
import { makeLog } from './lib/log.ts';
import { registriesOnly } from './lib/registries.ts';
import { ownSection, writeSection } from './lib/results-md.ts';

const { flag } = benchArgs();
const smoke = flag('--smoke');
const rounds = smoke ? 1 : Math.max(1, Number(process.env.BENCH_ROUNDS ?? 10) || 10);
const cli = join(repoRoot, 'bin', 'image-clone.js');
const started = Date.now();
const log = makeLog('startup');

interface Contender {
  id: string;
  label: string;
  tool: Tool;
  version: string[];
  /** The copy of SRC to DST, and how RESULTS.md shows it. */
  copy(src: string, dst: string, work: string): { cmd: string; args: string[] };
  copyDisplay: string;
  /** Untimed: credentials for the target, the tool's own way. */
  login(work: string, env: NodeJS.ProcessEnv): Promise<void>;
  env?: NodeJS.ProcessEnv;
  work?: string;
}

interface Sample {
  contender: string;
  kind: 'version' | 'copy';
  run: TimedResult;
  ok: boolean;
  note?: string;
}

async function main(): Promise<void> {
  if (smoke) log('--smoke: the smallest run, to exercise the code, not to measure; nothing is installed or written');
  if (!(await ensureGnuTime(log, { install: !smoke }))) throw new Error('GNU time (/usr/bin/time) is needed: apt-get install time');
  ensureBuilt();
  const machine = await machineInfo();
  const icVersion = await imageCloneVersion();
  const { skopeo, crane } = await findPeers(['skopeo', 'crane'], log, { install: !smoke });

  const h = await registriesOnly('startup');
  const { env, dir } = h;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void h.stop().finally(() => process.exit(130)));
  try {
    const src = env.registries.source.host;
    const target = env.registries['backup-basic']!;
    const dst = target.host;
    const auth = dockerAuth({ dst, user: target.username!, pass: target.password! });

    const contenders: Contender[] = [{
      id: 'image-clone', label: 'image-clone', tool: { name: 'image-clone', bin: process.execPath, version: icVersion, note: 'this repository' },
      version: [cli, '--version'],
      copy: (s, d, work) => ({ cmd: process.execPath, args: [cli, 'copy', s, d, '--registry-config', join(work, 'config.json'), '--insecure-registry', src, '--insecure-registry', dst, '-o', 'json'] }),
      copyDisplay: 'node bin/image-clone.js copy SRC/IMAGE DST/IMAGE --registry-config config.json --insecure-registry SRC --insecure-registry DST -o json',
      login: async (work) => writeFile(join(work, 'config.json'), auth, { mode: 0o600 }),
    }];
    const baseline = process.env.BENCH_BASELINE_CLI;
    if (baseline) {
      contenders.push({
        ...contenders[0]!, id: 'image-clone-baseline', label: 'image-clone (baseline)',
        tool: { name: 'image-clone (baseline)', bin: process.execPath, version: baseline, note: 'BENCH_BASELINE_CLI' },
        version: [baseline, '--version'],
        copy: (s, d, work) => ({ ...contenders[0]!.copy(s, d, work), args: contenders[0]!.copy(s, d, work).args.map((a) => (a === cli ? baseline : a)) }),
      });
    }
    if (skopeo.bin) {
      contenders.push({
        id: 'skopeo', label: 'skopeo copy', tool: skopeo, version: ['--version'],
        copy: (s, d, work) => ({ cmd: skopeo.bin!, args: ['copy', '--all', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-authfile', join(work, 'auth.json'), `docker://${s}`, `docker://${d}`] }),
        copyDisplay: 'skopeo copy --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false --dest-authfile auth.json docker://SRC/IMAGE docker://DST/IMAGE',
        login: async (work) => writeFile(join(work, 'auth.json'), auth, { mode: 0o600 }),
      });
    } else log(`skopeo: ${skopeo.note}`);
    if (crane.bin) {
      contenders.push({
        id: 'crane', label: 'crane copy', tool: crane, version: ['version'],
        copy: (s, d) => ({ cmd: crane.bin!, args: ['copy', '--insecure', s, d] }),
        copyDisplay: 'crane copy --insecure SRC/IMAGE DST/IMAGE (after an untimed crane auth login DST -u admin --password-stdin)',
        login: async (_work, e) => {
          const r = await run(crane.bin!, ['auth', 'login', dst, '-u', target.username!, '--password-stdin'], { env: e, input: target.password! });
          if (r.code !== 0) throw new Error(`crane auth login failed: ${firstLine(r.stderr)}`);
        },
      });
    } else log(`crane: ${crane.note}`);

    // One image per copy (warm-up included), none sharing a blob with another.
    const copies = contenders.length * (rounds + 1);
    const shape: FleetShape = { images: copies, groupSize: 1, platforms: 'linux/amd64,linux/arm64', layers: 2, sharedLayers: 0, layerSize: '4KiB', format: 'mixed', parallel: 4 };
    log(`seeding ${copies} small images into ${src}`);
    const fleet = await seedFleet(h, src, shape, 'small');
    let next = 0;

    for (const c of contenders) {
      c.work = join(dir, `tool-${c.id}`);
      // A private HOME, config and cache per tool, kept across its runs (as a user's scripts would).
      c.env = await isolatedEnv(c.work);
      await c.login(c.work, c.env);
    }

    const samples: Sample[] = [];
    const versionRun = async (c: Contender): Promise<Sample> => {
      const r = await timed(c.tool.bin!, c.version, { env: c.env! });
      return { contender: c.id, kind: 'version', run: r, ok: r.code === 0 };
    };
    const copyRun = async (c: Contender): Promise<Sample> => {
      const name = fleet.names[next++]!;
      const s = `${src}/${name}`;
      const d = `${dst}/copied/${c.id}/${name}`;
      const cmd = c.copy(s, d, c.work!);
      const r = await timed(cmd.cmd, cmd.args, { env: c.env! });
      const verify = await verifyPairs(h, [{ src: s, dst: d, full: true }]);
      const ok = r.code === 0 && verify.identical === 1;
      return { contender: c.id, kind: 'copy', run: r, ok, ...(ok ? {} : { note: r.code !== 0 ? `exit ${r.code}: ${firstLine(r.stderr)}` : verify.problems.join('; ') }) };
    };

    log('untimed warm-up: one --version and one copy per tool');
    for (const c of contenders) {
      const w = await copyRun(c);
      if (!w.ok) throw new Error(`${c.label}: warm-up copy failed: ${w.note}`);
      await versionRun(c);
    }
    const loads: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const quiet = smoke ? undefined : await waitForQuietMachine(log, { maxMs: 20_000, sampleMs: 1000 });
      loads.push(`${await loadAverage()}${quiet ? ` (${(quiet.busy * 100).toFixed(0)}% busy)` : ''}`);
      const order = round % 2 ? [...contenders].reverse() : contenders;
      for (const c of order) samples.push(await versionRun(c));
      for (const c of order) samples.push(await copyRun(c));
      log(`round ${round + 1}/${rounds} done`);
    }

    const report = buildReport(contenders, samples, { rounds, loads, machineRows: machineTable(machine, [
      ...contenders.map((c) => [c.tool.name, `${c.tool.version} (${c.tool.note})`]),
      ['registries', 'distribution v3 in `regharness serve`, plain HTTP on 127.0.0.1; target `backup-basic` (htpasswd basic auth)'],
    ]), fleetMs: fleet.ms });
    process.stdout.write(`${report.text}\nTotal benchmark time ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    if (!smoke && !flag('--no-write')) {
      await writeSection(join(repoRoot, 'bench', 'RESULTS.md'), ownSection('startup'), report.markdown);
      log('wrote the bench:startup section of bench/RESULTS.md');
    }
    if (samples.some((s) => !s.ok)) process.exitCode = 1;
  } finally {
    await h.stop();
  }
}

function buildReport(contenders: Contender[], samples: Sample[], x: { rounds: number; loads: string[]; machineRows: string; fleetMs: number }): { text: string; markdown: string } {
  const stats = (id: string, kind: Sample['kind']) => {
    const mine = samples.filter((s) => s.contender === id && s.kind === kind);
    return {
      n: mine.length,
      failed: mine.filter((s) => !s.ok).length,
      wallMs: median(mine.map((s) => s.run.wallMs)),
      cpuS: median(mine.map((s) => s.run.userS + s.run.sysS)),
      rssMiB: Math.max(...mine.map((s) => s.run.maxRssKiB / 1024)),
      all: mine.map((s) => (s.run.wallMs / 1000).toFixed(2)),
    };
  };
  const ic = { version: stats('image-clone', 'version'), copy: stats('image-clone', 'copy') };
  const verdicts: string[] = [];
  for (const kind of ['version', 'copy'] as const) {
    for (const c of contenders.filter((c) => c.id !== 'image-clone')) {
      const peer = stats(c.id, kind);
      const ratio = ic[kind].wallMs / peer.wallMs;
      const what = kind === 'version' ? '--version' : 'copy of one small image';
      const target = kind === 'copy' && c.id === 'skopeo' ? `; target <= 1.00 x skopeo: ${ratio <= 1 ? 'MET' : 'MISSED'}` : '';
      verdicts.push(`${what} per process, image-clone vs ${kind === 'version' ? c.tool.name : c.label}: ${(ic[kind].wallMs / 1000).toFixed(3)} s vs ${(peer.wallMs / 1000).toFixed(3)} s (medians of ${ic[kind].n} and ${peer.n} runs): ${ratio.toFixed(2)} x its time${target}`);
    }
  }
  if (contenders.length === 1) verdicts.push('no peer installed: no ratio (skopeo and crane are installed by a run without --smoke)');
  const head = ['tool', 'what', 'wall s (median)', 'ratio to image-clone', 'CPU s (median)', 'peak RSS MiB', 'verified', 'each run (s)'];
  const rows = contenders.flatMap((c) => (['version', 'copy'] as const).map((kind) => {
    const s = stats(c.id, kind);
    return [kind === 'version' ? c.tool.name : c.label, kind === 'version' ? '--version' : 'copy one small image', (s.wallMs / 1000).toFixed(3), (s.wallMs / ic[kind].wallMs).toFixed(2),
      s.cpuS.toFixed(2), s.rssMiB.toFixed(0), kind === 'copy' ? (s.failed ? `NO (${s.failed} of ${s.n} failed)` : `yes (${s.n}/${s.n}, --full)`) : (s.failed ? 'NO' : '-'), s.all.join(', ')];
  }));
  const failures = samples.filter((s) => !s.ok).map((s) => `- ${s.contender} ${s.kind}: ${s.note ?? `exit ${s.run.code}`}`);
  const text = [...verdicts, '', textTable(head, rows), ...(failures.length ? ['', 'Failures:', ...failures] : []), ''].join('\n');
  const markdown = [
    `## Start-up benchmark (issue 15, section 4): results of ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
    '',
    'Written by `npm run bench:startup` (bench/startup.ts); rerunning replaces this section.',
    '',
    '### Verdict',
    '',
    ...verdicts.map((v) => `- ${v}`),
    '',
    `### Per process, ${x.rounds} interleaved rounds`,
    '',
    mdTable(head, rows),
    '',
    'wall: measured by the benchmark around the process (GNU time started it); CPU (user + system) and peak RSS: GNU time (`/usr/bin/time -f "%e %U %S %M"`). ratio: the tool\'s median over image-clone\'s (above 1: slower than image-clone).',
    '',
    `- Images: \`regharness seed-fleet --images N --group-size 1 --shared-layers 0 --platforms linux/amd64,linux/arm64 --layers 2 --layer-size 4KiB --format mixed\`: each copy takes a different image (an index of 2 platforms, 2 layers of 4 KiB each) sharing no blob with any other, into a new repository of the empty \`backup-basic\` registry (basic auth), so nothing can be mounted or skipped; \`regharness verify --full\` after every copy. Seeding took ${(x.fleetMs / 1000).toFixed(2)} s.`,
    '- Each tool keeps one private HOME (XDG_CACHE_HOME under it) across its runs, as a user\'s scripts would, and had one untimed warm-up run of each kind.',
    `- Machine load before each round (load average; share of the CPUs busy over 1 s, after waiting up to 20 s for it to be under 30 %): ${x.loads.join('; ')}.`,
    '',
    'Commands:',
    '',
    ...contenders.map((c) => `- ${c.label}: \`${c.id.startsWith('image-clone') ? `node ${c.id === 'image-clone' ? 'bin/image-clone.js' : 'BASELINE/bin/image-clone.js'}` : c.id} ${c.version.slice(c.id.startsWith('image-clone') ? 1 : 0).join(' ')}\`; \`${c.copyDisplay}\``),
    '',
    '### Machine and versions',
    '',
    x.machineRows,
  ].join('\n');
  return { text, markdown };
}

await main();
