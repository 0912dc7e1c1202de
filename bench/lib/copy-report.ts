// bench:copy's results: a fleet run of one tool, the peak-RSS run, what counts for the verdict (a
// verified run that other work on the shared machine did not disturb), and the report: a text for the
// terminal and the Markdown section of RESULTS.md.
import type { CpuProfileSummary } from './cpu-profile.ts';
import type { Command, Contender } from './copy-tools.ts';
import type { VerifySummary } from './fleets.ts';
import { mdTable, median, mib, s2, textTable, yesNo } from './format.ts';
import { machineTable, type Machine } from './machine.ts';
import { cacheRoot, type Tool } from './peers.ts';
import type { TimedResult } from './processes.ts';
import type { countRequests } from './registry-trace.ts';
import type { RequestTimeline } from './request-timeline.ts';
import { describeWan, wanProfile } from './wan.ts';

/** Background (cores busy) above which the machine counts as busy with someone else's work. */
export const busyCores = Number(process.env.BENCH_BUSY_CORES ?? 0.6);

/** What the report needs to know of bench:copy's configuration. */
export interface CopySettings {
  fleet: { images: number; groupSize: number; platforms: string; layers: number; sharedLayers: number; layerSize: string; prefix: string };
  fleetArgs: string[];
  wan: boolean;
  rounds: number;
  machineCores: number;
  fullVerifySample: number[];
  targetPrefix: string;
}

export interface FleetRun {
  contender: Contender;
  command?: Command;
  copy?: TimedResult;
  error?: string;
  /** regharness verify of every image of the fleet. */
  verification?: VerifySummary;
  registryCpuS: number;
  /** CPU of the WAN proxies during the copy (--profile wan), else 0. */
  proxyCpuS: number;
  machineBusyS: number;
  load: string;
  /** How long we waited for the machine to calm down before copying, and the background then (cores). */
  quietWaitMs: number;
  backgroundCores: number;
  /** CPU used during the copy by neither the tool nor the registries, in cores (other users, kernel, the idle Kubernetes harness). */
  otherCores: number;
  /** Set when the run was thrown away because the machine was too busy with other work. */
  discarded?: string;
  requests: ReturnType<typeof countRequests>;
  fleetDigests: string[];
  uniqueBytes: number;
  logicalBytes: number;
  seedMs: number;
  timeline?: RequestTimeline;
  profile?: CpuProfileSummary;
}

export interface RssRun {
  command: string;
  copy?: TimedResult;
  vmHwmKiB?: number;
  verified: boolean;
  detail: string;
  layerBytes: number;
}

export interface Group {
  contender: Contender;
  runs: FleetRun[];
}

/** A run whose copy exited 0 and whose every image verified identical. */
const verified = (v: VerifySummary | undefined) => Boolean(v && v.checked > 0 && v.identical === v.checked);
const good = (r: FleetRun) => Boolean(r.copy && !r.error && verified(r.verification));
/** A verified run that other work on the machine did not disturb: only these count for the verdict. */
const clean = (r: FleetRun) => good(r) && !(r.otherCores > busyCores);
export const groupOk = (g: Group) => g.runs.length > 0 && g.runs.every(good);
export const groupMs = (g: Group) => median(g.runs.filter(clean).map((r) => r.copy!.wallMs));

export interface ReportInput {
  settings: CopySettings;
  machine: Machine;
  icTool: Tool;
  peers: Tool[];
  groups: Group[];
  rss: RssRun;
  icMs: number;
  bestMandated?: Group | undefined;
  bestAny?: Group | undefined;
  fleetTarget: boolean;
  fleetTargetAny: boolean;
  rssMiB: number;
  rssTarget: boolean;
  diagnostics: Group[];
  discarded: FleetRun[];
  fleetInfo: FleetRun;
  sameFleet: boolean;
  totalS: number;
}

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');

function verifiedText(g: Group): string {
  const done = g.runs.filter((r) => r.verification);
  const errors = g.runs.filter((r) => r.error);
  if (errors.length) return `NO: ${errors[0]!.error!.slice(0, 90)}`;
  if (!done.length) return 'not run';
  const ok = done.filter((r) => verified(r.verification)).length;
  const v = done[0]!.verification!;
  return ok === g.runs.length
    ? `yes (${g.runs.length} run${g.runs.length > 1 ? 's' : ''}: ${v.identical}/${v.checked} identical, ${v.fullChecked} --full)`
    : `NO (${g.runs.length - ok} of ${g.runs.length} runs incomplete or different)`;
}

const head = ['tool', 'version', 'time (s), median of undisturbed runs', 'each run (s)', 'ratio to image-clone', 'verified', 'client CPU s', 'client peak RSS MiB', 'registry CPU s', 'CPU floor s', 'other load (cores)', 'requests src / dst'];

function groupRows(groups: Group[], icMs: number): string[][] {
  return groups.map((g) => {
    const runs = g.runs.filter((r) => r.copy);
    const ms = groupMs(g);
    const client = median(runs.map((r) => r.copy!.userS + r.copy!.sysS));
    const registry = median(runs.map((r) => r.registryCpuS));
    const other = median(runs.map((r) => r.otherCores));
    const first = g.runs[0];
    const reqs = (reg: string) => first?.requests[reg]?.total ?? 0;
    return [
      g.contender.label,
      g.contender.tool.version.replace(/, built with .*$/, ''),
      Number.isFinite(ms) ? s2(ms) : 'no undisturbed run',
      runs.map((r) => `${s2(r.copy!.wallMs)}${r.otherCores > busyCores ? '*' : ''}`).join(', ') || '-',
      Number.isFinite(ms) && Number.isFinite(icMs) ? (ms / icMs).toFixed(2) : '-',
      verifiedText(g),
      f1(client),
      runs.length ? (Math.max(...runs.map((r) => r.copy!.maxRssKiB)) / 1024).toFixed(0) : '-',
      f1(registry),
      f1((client + registry) / 2),
      Number.isFinite(other) ? other.toFixed(2) : '-',
      `${reqs('source')} / ${reqs('backup-basic')}`,
    ];
  });
}

export function buildReport(x: ReportInput): { text: string; markdown: string } {
  const { fleet, fleetArgs, wan, rounds, machineCores, fullVerifySample, targetPrefix } = x.settings;
  const m = x.machine;
  const f = x.fleetInfo;
  const unique = `${mib(f.uniqueBytes).toFixed(0)} MiB (${(f.uniqueBytes / 2 ** 30).toFixed(2)} GiB)`;
  const rows = groupRows(x.groups, x.icMs);
  const bestLine = (label: string, b: Group | undefined, met: boolean) => b && Number.isFinite(x.icMs)
    ? `${label}: image-clone ${s2(x.icMs)} s vs ${b.contender.label} ${s2(groupMs(b))} s (medians of the undisturbed runs): image-clone takes ${(x.icMs / groupMs(b)).toFixed(2)} x its time (${(groupMs(b) / x.icMs).toFixed(2)} x faster); target <= 0.50 x: ${met ? 'MET' : 'MISSED'}`
    : `${label}: INCONCLUSIVE: ${Number.isFinite(x.icMs) ? 'no peer has a verified run undisturbed by other work' : 'image-clone has no verified run undisturbed by other work'} (the machine was busy; rerun when it is quiet)`;
  const fleetLine = bestLine('Fleet copy vs the best peer the issue names', x.bestMandated, x.fleetTarget);
  const fleetAnyLine = x.bestAny && x.bestAny !== x.bestMandated ? bestLine('Fleet copy vs the best peer run of all (incl. skopeo sync)', x.bestAny, x.fleetTargetAny) : '';
  // The fastest run of each tool: noise on a shared machine only ever adds time.
  const fastest = (g: Group) => Math.min(...g.runs.filter(clean).map((r) => r.copy!.wallMs));
  const peerGroups = x.groups.slice(1).filter((g) => groupOk(g) && Number.isFinite(fastest(g)));
  const bestFastest = peerGroups.filter((g) => g.contender.mandated).reduce<Group | undefined>((a, g) => (!a || fastest(g) < fastest(a) ? g : a), undefined);
  const minLine = bestFastest && Number.isFinite(fastest(x.groups[0]!))
    ? `Same with each tool's fastest run: image-clone ${s2(fastest(x.groups[0]!))} s vs ${bestFastest.contender.label} ${s2(fastest(bestFastest))} s: ${(fastest(x.groups[0]!) / fastest(bestFastest)).toFixed(2)} x; target <= 0.50 x: ${fastest(x.groups[0]!) <= 0.5 * fastest(bestFastest) ? 'MET' : 'MISSED'}`
    : '';
  const icReg = median(x.groups[0]!.runs.map((r) => r.registryCpuS));
  const icClient = median(x.groups[0]!.runs.filter((r) => r.copy).map((r) => r.copy!.userS + r.copy!.sysS));
  const floorLine = x.bestMandated && Number.isFinite(icReg)
    ? `CPU-bound: the target asks for <= ${s2(0.5 * groupMs(x.bestMandated))} s. The registries alone used ${icReg.toFixed(1)} CPU-s serving image-clone's copy and image-clone ${icClient.toFixed(1)} CPU-s (medians): ` +
      `on ${machineCores} cores that is ${((icReg + icClient) / machineCores).toFixed(1)} s even with perfect overlap and nothing else running, and no client at all could beat ${(icReg / machineCores).toFixed(1)} s.`
    : '';
  const rssLine = x.rss.copy
    ? `Peak RSS of image-clone copying one image with a single ${mib(x.rss.layerBytes).toFixed(0)} MiB layer: ${x.rssMiB.toFixed(0)} MiB (GNU time; /proc VmHWM sampled: ${x.rss.vmHwmKiB ? (x.rss.vmHwmKiB / 1024).toFixed(0) : '-'} MiB), copy ${s2(x.rss.copy.wallMs)} s, verified with --full: ${yesNo(x.rss.verified)}; target < 200 MiB: ${x.rssTarget ? 'MET' : 'MISSED'}`
    : `Peak RSS: not measured (${x.rss.detail})`;
  const notRun = x.peers.filter((p) => !p.bin).map((p) => `Not run: ${p.name}: ${p.note}`);
  const diag = x.diagnostics.flatMap((g) => g.runs);
  const timelines = diag.flatMap((r) => (r.timeline ? [timelineText(r.timeline)] : []));
  const profiles = diag.flatMap((r) => (r.profile ? [profileText(r.profile)] : []));

  const network = wan
    ? `WAN profile (--profile wan): every tool reaches the registries through Toxiproxy (bench/lib/wan.ts): ${describeWan(wanProfile)}; the proxies' CPU is not counted as other load`
    : 'Network: loopback (the registries on 127.0.0.1, no added latency)';
  const text = [
    network,
    `Fleet: ${fleet.images} images x ${fleet.platforms.split(',').length} platforms, unique blob bytes ${unique}, ${mib(f.logicalBytes).toFixed(0)} MiB counting every image whole${x.sameFleet ? ' (same digests in every run)' : ' — WARNING: the digests differed between runs'}`,
    '',
    textTable(head, rows),
    '',
    fleetLine,
    ...(fleetAnyLine ? [fleetAnyLine] : []),
    ...(minLine ? [minLine] : []),
    ...(floorLine ? [floorLine] : []),
    rssLine,
    ...notRun,
    ...(x.discarded.length ? [`Thrown away (machine busy with other work; each re-run): ${x.discarded.map((r) => `${r.contender.label} ${s2(r.copy!.wallMs)} s (${r.otherCores.toFixed(2)} cores)`).join(', ')}`] : []),
    ...(diag.length ? ['', 'Diagnostic runs of image-clone (one each, not part of the comparison):', textTable(head, groupRows(x.diagnostics, x.icMs))] : []),
    ...timelines.flatMap((t) => ['', t]),
    ...profiles.flatMap((p) => ['', p]),
    '',
    `Total benchmark time ${x.totalS.toFixed(0)} s`,
  ].join('\n');

  const commands = x.groups.filter((g) => g.runs[0]?.command).map((g) =>
    `- **${g.contender.label}**${g.contender.setupDisplay ? ` (untimed set-up: ${g.contender.setupDisplay})` : ''}:\n\n  \`\`\`sh\n  ${g.runs[0]!.command!.display}\n  \`\`\``);
  const details = x.groups.flatMap((g) => g.runs.map((r, i) => {
    const parts = Object.entries(r.requests).map(([reg, c]) => `${reg} ${Object.entries(c.byKind).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} x${n}`).join(', ')}`);
    const c = r.copy;
    const cpu = c ? `${s2(c.wallMs)} s, client ${c.userS.toFixed(1)}u+${c.sysS.toFixed(1)}s, registry ${f1(r.registryCpuS)} s, ${wan ? `proxies ${f1(r.proxyCpuS)} s, ` : ''}whole machine ${f1(r.machineBusyS)} CPU-s (other work ${r.otherCores.toFixed(2)} cores), before: waited ${(r.quietWaitMs / 1000).toFixed(0)} s for ${r.backgroundCores.toFixed(2)} busy cores, load ${r.load}` : `load before ${r.load}`;
    return `- ${g.contender.label} #${i + 1}: ${cpu}${i === 0 ? `; requests: ${parts.join('; ') || 'none recorded'}` : ''}${r.verification?.problems.length ? `; verify problems: ${r.verification.problems.slice(0, 3).join('; ')}` : ''}${r.error ? `; error: ${r.error}` : ''}`;
  }));
  for (const r of x.discarded) details.push(`- thrown away: ${r.contender.label}, ${s2(r.copy!.wallMs)} s: ${r.discarded}`);

  const markdown = [
    wan ? `## WAN profile (\`npm run bench:copy -- --profile wan\`): results of ${m.date}` : `## Results of ${m.date}`,
    '',
    `Written by \`npm run bench:copy${wan ? ' -- --profile wan' : ''}\` (bench/copy.ts) in ${x.totalS.toFixed(0)} s; rerunning replaces this section.`,
    '',
    `${network}.`,
    '',
    '### Verdict',
    '',
    `- ${fleetLine}`,
    ...(fleetAnyLine ? [`- ${fleetAnyLine}`] : []),
    ...(minLine ? [`- ${minLine}`] : []),
    ...(floorLine ? [`- ${floorLine}`] : []),
    `- ${rssLine}`,
    ...notRun.map((n) => `- ${n}`),
    '',
    `### Fleet copy, ${rounds} interleaved rounds, each run into an empty registry`,
    '',
    mdTable(head, rows),
    '',
    'time: wall clock of copying the whole list (for per-image tools the loop, process start-ups included), median of the rounds; ' +
      'ratio: tool median over image-clone median (above 1: slower than image-clone). client CPU and peak RSS: GNU time over the ' +
      'tool and its children (median CPU, largest RSS); registry CPU: the regharness process that serves source, target and token ' +
      'issuer; CPU floor: (client + registry CPU) / 2 cores, the time the copy would take if it kept both cores busy with nothing ' +
      'else running; other load: cores used during the copy by anything else (kernel networking, the idle Kubernetes harness, other ' +
      `users of this shared machine: a run above ${busyCores} cores is thrown away and run again, up to 3 times; * marks a disturbed run kept because the retry budget was spent: it is shown but not counted); requests: as the registries logged them, first round.`,
    '',
    '### Machine and versions',
    '',
    machineTable(m, [
      ['image-clone', `${x.icTool.version}: ${x.icTool.note}`],
      ...x.peers.map((p) => [p.name, p.bin ? `${p.version} (${p.note})` : `not run: ${p.note}`]),
      ['registries', `distribution v3 in \`regharness serve\` (filesystem storage under /tmp), plain HTTP on 127.0.0.1; target \`backup-basic\` (htpasswd basic auth) for every tool${wan ? `; reached through Toxiproxy v2.5.0 (test/harness/wan, .harness/bin/wanproxy): ${describeWan(wanProfile)}` : ''}`],
    ]),
    '',
    '### Fleet',
    '',
    `\`regharness seed-fleet --registry SRC ${fleetArgs.join(' ')}\`: ${fleet.images} images \`SRC/${fleet.prefix}/app-N:v1\`, each an index ` +
      `(Docker manifest list for odd N, OCI index for even N) of ${fleet.platforms.split(',').length} platforms (${fleet.platforms}) with ` +
      `${fleet.layers} layers of ${fleet.layerSize} each; the ${fleet.images / fleet.groupSize} groups of ${fleet.groupSize} images share their first ` +
      `${fleet.sharedLayers} (base) layers, which seed-fleet also uses for both platforms. ${f.fleetDigests.length * 3} manifests; unique blob bytes ` +
      `${unique} (the distinct blobs seed-fleet reported), ${mib(f.logicalBytes).toFixed(0)} MiB counting every image whole. Seeding took ` +
      `${s2(f.seedMs)} s (first run). Copies go to \`DST/${targetPrefix}/app-N:v1\`.`,
    '',
    `After every run \`regharness verify\` checks all ${fleet.images} images (manifest bytes, digests and media types of the index and every ` +
      `child; every blob HEAD-checked with its size in the target repository), with \`--full\` (blobs downloaded and re-hashed) for app-` +
      `${fullVerifySample.join(', app-')}. A tool that dropped a platform or rewrote a digest would show as "NO".`,
    '',
    '### Exact commands',
    '',
    'SRC and DST are the fresh registries of each run; the files are in a private temp dir, and HOME, DOCKER_CONFIG, XDG_* and ' +
      'REGCTL_CONFIG point there, so no tool sees the machine\'s credentials or another run\'s caches. Credentials are never on a command line.',
    '',
    ...commands,
    `- **peak RSS**: \`${x.rss.command}\`, after \`regharness seed --ref SRC/big/one-layer:v1 --layers 1 --layer-size 1GiB\``,
    '',
    '### Per-run details',
    '',
    ...details,
    ...(diag.length ? [
      '',
      '### Diagnostics: where image-clone\'s time goes',
      '',
      'Run because the fleet target was missed; one run each, in a fresh harness as above, not part of the comparison.',
      '',
      mdTable(head, groupRows(x.diagnostics, x.icMs)),
      '',
      ...x.diagnostics.filter((g) => g.runs[0]?.command).map((g) => `- ${g.contender.label}: \`${g.runs[0]!.command!.display}\``),
      `- The CPU profile and request trace of the profiled run are kept in ${cacheRoot}/last-profile/.`,
      ...timelines.flatMap((t) => ['', '```', t, '```']),
      ...profiles.flatMap((p) => ['', '```', p, '```']),
    ] : []),
  ].join('\n');
  return { text, markdown };
}

function timelineText(t: RequestTimeline): string {
  const rows = t.rows.map((r) => [r.kind, r.status.startsWith('ERR_SSL') ? `${r.status} (https probe of an --insecure-registry host)` : r.status, String(r.n), r.queueP50.toFixed(1), r.serverP50.toFixed(1), r.totalP50.toFixed(1), r.totalP90.toFixed(1), r.sumS.toFixed(1)]);
  const last = Object.entries(t.lastOnConnection).sort((a, b) => b[1] - a[1]).slice(0, 4).map(([k, n]) => `${k} x${n}`).join(', ');
  return [
    `image-clone's requests (bench/undici-trace.ts): ${t.requests} over ${t.connections} TCP connections; ${t.singleUseConnections} connections carried a single request; the last request on a connection was: ${last}`,
    `first request ${t.firstRequestMs.toFixed(0)} ms after the process started (module loading), last response at ${t.lastResponseMs.toFixed(0)} ms, exit at ${t.exitMs.toFixed(0)} ms`,
    `blob uploads (PUT): ${t.blobPut.n}, ${t.blobPut.avgInFlight.toFixed(2)} in flight on average (max ${t.blobPut.maxInFlight}), p50 ${t.blobPut.p50Ms.toFixed(0)} ms, p90 ${t.blobPut.p90Ms.toFixed(0)} ms, ~${t.blobPut.mibPerSecPerStream.toFixed(0)} MiB/s per stream at p50; no upload in flight for ${t.noUploadMs.toFixed(0)} ms`,
    `blob downloads (GET): ${t.blobGet.n}, ${t.blobGet.avgInFlight.toFixed(2)} in flight on average, p50 ${t.blobGet.p50Ms.toFixed(0)} ms, p90 ${t.blobGet.p90Ms.toFixed(0)} ms`,
    '',
    textTable(['request', 'status', 'n', 'queued p50 ms', 'server p50 ms', 'total p50 ms', 'total p90 ms', 'sum s'], rows),
  ].join('\n');
}

function profileText(p: CpuProfileSummary): string {
  return [
    `image-clone's CPU profile (node --cpu-prof): ${p.sampledS.toFixed(2)} s sampled`,
    textTable(['where', 'self s', 'share'], p.buckets.map((b) => [b.name, b.s.toFixed(2), `${((100 * b.s) / p.sampledS).toFixed(0)}%`])),
    '',
    textTable(['top functions (self time)', 's'], p.topSelf.map((t) => [t.fn, t.s.toFixed(2)])),
  ].join('\n');
}

