// bench:sync's results and their section of RESULTS.md: the cold syncs and the peer runs of part
// (a), the no-op runs of part (b).
import type { FleetShape, SeededFleet, VerifySummary } from './fleets.ts';
import type { Contender } from './copy-tools.ts';
import { mdTable, mib, s2 } from './format.ts';
import { syncDisplay, type CliRun } from './image-clone-runs.ts';
import { kubectlDisplay, type Kubectl } from './kubectl.ts';
import { machineTable, type Machine } from './machine.ts';
import type { TimedResult } from './processes.ts';
import type { waitForQuietMachine } from './quiet-machine.ts';
import { fmtKinds, registryRequests } from './registry-trace.ts';
import type { TimedPair } from './versus-kubectl.ts';
import { describeShape, workloadsPerNamespace, type ClusterShape } from './workloads.ts';

/** What the section says of bench:sync's configuration. */
export interface SyncSettings {
  wan: boolean;
  coldFleet: FleetShape;
  coldCluster: ClusterShape;
  coldBackupPrefix: string;
  /** Images of the cold fleet checked with regharness verify --full. */
  fullVerify: number[];
  quietWaitMs: number;
}

export type Quiet = Awaited<ReturnType<typeof waitForQuietMachine>>;
export const busyText = (q: Quiet | undefined) => (q ? `${(q.busy * 100).toFixed(0)}%` : '-');

export interface ColdSync {
  quiet: Quiet;
  seed: SeededFleet;
  created: number;
  sync: CliRun;
  verify: VerifySummary;
  workloadsOnBackup: number;
  workloadsExpectedOnBackup: number;
  workloadProblems: string[];
  requests: Record<string, ReturnType<typeof registryRequests>>;
}

export interface PeerRun {
  peer: Contender;
  round?: number;
  quiet?: Quiet;
  run?: TimedResult;
  /** The timed command as RESULTS.md shows it. */
  display?: string;
  verify?: VerifySummary;
  error?: string;
  seed?: SeededFleet;
  requests?: Record<string, ReturnType<typeof registryRequests>>;
}

export interface NoopResult {
  quiet: Quiet;
  shape: ClusterShape;
  fleet: FleetShape;
  createMs: number;
  createRate: number;
  seedMs: number;
  first: CliRun;
  settleMs: number;
  controllerWrites: number;
  counts: Record<string, number>;
  totalObjects: number;
  confirm: CliRun;
  pairs: TimedPair[];
  syncMs: number;
  kubectlMs: number;
  ratio: number;
  distinct: number;
  diagnostics: string[];
  findings: string[];
  setupMs: number;
}

export interface MarkdownInput {
  settings: SyncSettings;
  machine: Machine;
  icVersion: string;
  kubectl: Kubectl;
  cold: ColdSync | undefined;
  colds: ColdSync[];
  coldProfile: string[];
  peers: PeerRun[];
  peerChoice: string;
  noop: NoopResult | undefined;
  lines: string[];
  coldHead: string[];
  coldRows: string[][];
  noopHead: string[];
  noopRows: string[][];
  total: string;
}

export function buildMarkdown(x: MarkdownInput): string {
  const { wan, coldFleet, coldCluster, coldBackupPrefix, fullVerify, quietWaitMs } = x.settings;
  const m = x.machine;
  const out: string[] = [
    wan ? `## Sync benchmark, WAN profile (\`npm run bench:sync -- --profile wan\`): results of ${m.date}` : `## Sync benchmark (issue 5): results of ${m.date}`,
    '',
    `Written by \`npm run bench:sync\` (bench/sync.ts, helpers in bench/lib/) in ${x.total} s. Rerunning replaces this section.`,
    '',
    '### Verdict',
    '',
    ...x.lines.map((l) => `- ${l}`),
    '',
  ];
  if (x.cold) {
    const c = x.cold;
    const s = c.sync.report?.summary;
    out.push(
      `### (a) Cold sync: ${c.created} workloads over ${coldFleet.images} images, against the best peer`,
      '',
      mdTable(x.coldHead, x.coldRows),
      '',
      `- Images: the copy benchmark's fleet shape (bench/copy.ts) with the issue's ${coldFleet.images} images: \`regharness seed-fleet --images ${coldFleet.images} --group-size ${coldFleet.groupSize} --platforms ${coldFleet.platforms} --layers ${coldFleet.layers} --shared-layers ${coldFleet.sharedLayers} --layer-size ${coldFleet.layerSize} --format ${coldFleet.format}\`: ` +
        `${c.seed.manifests} manifests, ${c.seed.blobs.size} distinct blobs, ${mib(c.seed.uniqueBytes).toFixed(0)} MiB unique. Not scaled down.`,
      `- Cluster: ${describeShape(coldCluster)}; workload j runs image j mod ${coldFleet.images} (${c.created / coldFleet.images} each); replicas as in the plan benchmark. The controllers settled before the timed run.`,
      `- Target: an empty \`backup-basic\` registry (htpasswd basic auth), for image-clone and the peer alike, each in a fresh harness (the token registry \`backup\` is not used here: crane >= v0.21.4 refuses its realm on another loopback port). ` +
        'The peer copies the same images to the same names sync gives them, one invocation per image (as the copy benchmark runs it). ' +
        'image-clone\'s time includes listing the workloads, planning, copying, verifying and patching them.',
      `- Peer choice: ${x.peerChoice}.`,
      `- ${x.colds.length} alternating round(s) (a cold run needs a fresh harness and an empty registry); medians. Before each timed run the benchmark waited up to ${quietWaitMs / 1000} s for the machine to be under 30% busy (other benchmarks share this 2-core machine); "machine busy before" is the last 5 s sample.`,
      `- The first round's sync report: images ${JSON.stringify(s?.images)}, blobs ${JSON.stringify(s?.blobs)}, workloads ${JSON.stringify(s?.workloads)}, ${mib(s?.bytesTransferred ?? 0).toFixed(0)} MiB transferred, durationMs ${s?.durationMs}.`,
      `- Checks after each sync (first round shown): every workload read back from the API server (${c.workloadsOnBackup}/${c.workloadsExpectedOnBackup} non-Job workloads on \`BACKUP/${coldBackupPrefix}/<source host>/fleet/app-N:v1@<source digest>\`${c.workloadProblems.length ? `; problems: ${c.workloadProblems.join('; ')}` : ''}); ` +
        `\`regharness verify\` on all ${c.verify.checked} images (manifests, digests, media types, every blob HEAD-checked in the target repository), \`--full\` (blobs re-hashed) on app-${fullVerify.join(', app-')}: ${c.verify.identical} identical${c.verify.problems.length ? `; ${c.verify.problems.slice(0, 3).join('; ')}` : ''}.`,
      `- Requests of the first round's sync: ${['source', 'backup-basic'].map((r) => `${r}: ${fmtKinds(c.requests[r]!.byKind)}`).join('; ')}.`,
      ...x.peers.filter((p) => p.requests && p.round === 1).map((p) => `- Requests of ${p.peer.label} (round 1): ${['source', 'backup-basic'].map((r) => `${r}: ${fmtKinds(p.requests![r]!.byKind)}`).join('; ')}.`),
      '',
      ...(x.coldProfile.length ? ['Where a cold sync\'s time goes (one more cold sync in a fresh harness, with bench/undici-trace.ts and node --cpu-prof; not part of the ratio):', '', '```', ...x.coldProfile, '```', ''] : []),
      'Commands (SRC, DST: the fresh registries of that run):',
      '',
      `- image-clone: \`${syncDisplay({ backupPrefix: coldBackupPrefix, dryRun: false }).replace('BACKUP/', 'DST/')}\` (config.json: the admin credentials of DST)`,
      ...x.peers.filter((p) => p.round === 1).map((p) => `- ${p.peer.label} (set-up, untimed: ${p.peer.setupDisplay ?? 'none'}): \`${p.display ?? '-'}\``),
      '',
    );
  }
  if (x.noop) {
    const n = x.noop;
    const fs = n.first.report?.summary;
    out.push(
      `### (b) No-op sync: ${n.shape.namespaces * workloadsPerNamespace(n.shape)} workloads, already synced`,
      '',
      mdTable(x.noopHead, x.noopRows),
      '',
      `- Cluster: the plan benchmark's: ${describeShape(n.shape)}, ${n.fleet.images} images all already backed up in \`backup\` (token auth). Objects listed by both: ${n.totalObjects} (${Object.entries(n.counts).map(([k, v]) => `${v} ${k}`).join(', ')}).`,
      `- Getting there (untimed set-up, ${s2(n.setupMs)} s): ${n.shape.namespaces * workloadsPerNamespace(n.shape)} workloads created in ${s2(n.createMs)} s (${n.createRate.toFixed(0)}/s); images seeded in ${s2(n.seedMs)} s; ` +
        `a first real sync right after, with \`--concurrency 32\` (${s2(n.first.run.wallMs)} s, exit ${n.first.run.code}: images ${JSON.stringify(fs?.images)}, workloads ${JSON.stringify(fs?.workloads)}), ` +
        `then ${s2(n.settleMs)} s until the controllers were done (${n.controllerWrites} writes; the Deployments rolled out to the patched template). The first sync ran while the deployment controller was still busy, so its time is not a benchmark figure.`,
      `- Before the timed runs the benchmark waited up to ${quietWaitMs / 1000} s for the machine to be under 30% busy: ${busyText(n.quiet)} busy after ${s2(n.quiet.waitedMs)} s${n.quiet.quiet ? '' : ' (other processes were running during the timed runs)'}.`,
      `- Before the timed runs, a confirming sync: images ${JSON.stringify(n.confirm.report?.summary?.images)}, workloads ${JSON.stringify(n.confirm.report?.summary?.workloads)}, ${n.confirm.report?.summary?.bytesTransferred} bytes. Jobs are never patched (immutable pod template), so their images are still checked in the source and the backup.`,
      ...n.pairs.map((p, i) => `- no-op run ${i + 1} requests: ${['backup', 'source', 'issuer'].map((r) => `${r}: ${fmtKinds(registryRequests(p.cli.trace, r).byKind)}`).join('; ')}`),
      '',
      `Commands: \`${kubectlDisplay}\` (private HOME, discovery cache warmed by an untimed first run) and \`${syncDisplay({ backupPrefix: 'mirror', dryRun: false })}\`.`,
      '',
      ...(n.diagnostics.length ? ['Diagnostics (single runs after the timed ones, not part of the verdict):', '', '```', ...n.diagnostics, '```', '', ...n.findings.map((f) => `- ${f}`), ''] : []),
    );
  }
  out.push(
    '### Machine and versions',
    '',
    machineTable(m, [
      ['image-clone', x.icVersion],
      ['kubectl', x.kubectl.bin ? `${x.kubectl.version} (${x.kubectl.note})` : `not run: ${x.kubectl.note}`],
      ...x.peers.filter((p) => p.round === 1).map((p) => [p.peer.label, `${p.peer.tool.version} — ${p.peer.tool.note}`]),
      ['Kubernetes (harness)', 'kube-apiserver + kube-controller-manager v1.36.3, audit log on (metadata level)'],
      ['registries', 'distribution v3 (regharness serve), plain HTTP on 127.0.0.1'],
    ]),
  );
  return out.join('\n');
}
