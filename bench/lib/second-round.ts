// bench:copy, second round (issue 15 §3, "blobs already in the backup are never uploaded again"):
// each tool copies a few images, one process per image, into new repositories of an empty target
// registry; then the same images again, one process per image, into other new repositories of that
// registry (another mirror folder, another cluster's backup names). Per image: the wall time, and
// the bytes the process sent to the target registry, counted on the wire by a relay in front of it
// (byte-counter.ts): blobs, manifests and HTTP headers alike, whatever the tool. A tool that knows or
// finds where the blobs already are sends manifests only the second time; one that does not sends
// every blob again. Each tool keeps its private HOME between the rounds (skopeo's blob-location
// cache lives there), as one machine running both rounds would.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Harness } from '../../test/harness/harness.ts';
import { startByteCounter } from './byte-counter.ts';
import type { Contender, RunContext } from './copy-tools.ts';
import { seedFleet, verifyPairs, type FleetShape } from './fleets.ts';
import { mdTable, median, mib, s2, textTable } from './format.ts';
import { loadAverage } from './proc.ts';
import { firstLine, isolatedEnv, timed, workDir } from './processes.ts';

/** A tool of bench/lib/copy-tools.ts: prepare() returns the command that copies each pair of the pairs file. */
type RoundContender = Pick<Contender, 'id' | 'label' | 'prepare'>;

interface ImageRun {
  wallMs: number;
  bytes: number;
}

export interface RoundResult {
  contender: RoundContender;
  first: ImageRun[];
  second: ImageRun[];
  /** Round-two copies that `regharness verify` found identical to their source. */
  identical: number;
  /** An image's bytes, its manifests and blobs whole. */
  imageBytes: number;
  display?: string;
  load: string;
  error?: string;
}

export interface RoundDeps {
  shape: FleetShape;
  freshHarness(): Promise<Harness>;
  log(line: string): void;
}

const sourcePrefix = 'base';
const folders = ['first', 'again'] as const;

/** Both rounds of one tool in a fresh harness: seed, copy one image per process twice, verify round two. */
export async function secondRound(contender: RoundContender, deps: RoundDeps): Promise<RoundResult> {
  const { shape, log } = deps;
  const h = await deps.freshHarness();
  const work = await workDir(`round-${contender.id}`);
  const basic = h.env.registries['backup-basic'];
  const counter = await startByteCounter(basic.host);
  const result: RoundResult = { contender, first: [], second: [], identical: 0, imageBytes: NaN, load: '' };
  try {
    const src = h.env.registries.source.host;
    const seeded = await seedFleet(h, src, shape, sourcePrefix);
    result.imageBytes = median(seeded.imageBytes);
    const env = await isolatedEnv(work.dir);
    const ctx: RunContext = { src, dst: counter.host, user: basic.username!, pass: basic.password!, work: work.dir, pairsFile: join(work.dir, 'pairs.txt'), env };
    env.PAIRS = ctx.pairsFile;
    result.load = await loadAverage();
    for (const folder of folders) {
      const runs = folder === 'first' ? result.first : result.second;
      for (const name of seeded.names) {
        // One pair in the file: every tool runs one process for this image (image-clone's --from-file too).
        await writeFile(ctx.pairsFile, `${src}/${name} ${counter.host}/${folder}/${name.slice(sourcePrefix.length + 1)}\n`);
        const command = await contender.prepare(ctx);
        result.display ??= command.display;
        const before = counter.sent();
        const r = await timed(command.cmd, command.args, { env });
        runs.push({ wallMs: r.wallMs, bytes: counter.sent() - before });
        if (r.code !== 0) throw new Error(`${folder}/${name}: exit ${r.code}: ${firstLine(r.stderr.trim().split('\n').pop() ?? '')}`);
      }
      log(`${contender.label}: round ${folder === 'first' ? 1 : 2}: ${mib(runs.reduce((a, r) => a + r.bytes, 0)).toFixed(1)} MiB sent in ${s2(runs.reduce((a, r) => a + r.wallMs, 0))} s`);
    }
    const verified = await verifyPairs(h, seeded.names.map((name) => ({ src: `${src}/${name}`, dst: `${basic.host}/again/${name.slice(sourcePrefix.length + 1)}` })));
    result.identical = verified.identical;
    if (verified.problems.length) result.error = `verify: ${verified.problems[0]}`;
  } catch (err) {
    result.error = (err as Error).message;
    log(`${contender.label}: ${result.error}`);
  } finally {
    await counter.close();
    await work.remove();
    await h.stop();
  }
  return result;
}

const perImage = (runs: ImageRun[]) => (runs.length ? runs.reduce((a, r) => a + r.bytes, 0) / runs.length : NaN);
const mib2 = (bytes: number) => (Number.isFinite(bytes) ? mib(bytes).toFixed(2) : '-');
const medianS = (runs: ImageRun[]) => (runs.length ? s2(median(runs.map((r) => r.wallMs))) : '-');
/** Met when image-clone's second round sends at most this share of an image's bytes: manifests and headers, no blob. */
const targetShare = 0.01;

export function secondRoundReport(results: RoundResult[], shape: FleetShape): { text: string; markdown: string } {
  const head = ['tool', 'round 1: MiB sent per image (mean)', 'round 1: s per image (median)', 'round 2: MiB sent per image (mean)', 'round 2: s per image (median)', 'round 2 time vs image-clone', 'round 2 verified'];
  const ic = results.find((r) => r.contender.id === 'image-clone');
  const icMs = ic?.second.length ? median(ic.second.map((r) => r.wallMs)) : NaN;
  const rows = results.map((r) => {
    const ms = r.second.length ? median(r.second.map((x) => x.wallMs)) : NaN;
    return [
      r.contender.label, mib2(perImage(r.first)), medianS(r.first), mib2(perImage(r.second)), medianS(r.second),
      Number.isFinite(ms / icMs) ? (ms / icMs).toFixed(2) : '-',
      r.error ? `NO: ${r.error.slice(0, 80)}` : `${r.identical}/${shape.images}`,
    ];
  });
  const imageBytes = ic?.imageBytes ?? NaN;
  const icBytes = ic && !ic.error ? perImage(ic.second) : NaN;
  const met = Number.isFinite(icBytes) && icBytes <= targetShare * imageBytes;
  const verdict = `Second round into new repositories (${shape.images} images, one process each): MiB sent to the target per image: `
    + `${results.map((r) => `${r.contender.label} ${mib2(perImage(r.second))}`).join(', ')} (an image is ${mib2(imageBytes)} MiB); `
    + `target: image-clone uploads no blob the registry holds already (<= ${targetShare * 100}% of an image's bytes): ${met ? 'MET' : 'MISSED'}`;
  const shapeLine = `Images: \`regharness seed-fleet --images ${shape.images} --group-size ${shape.groupSize} --platforms ${shape.platforms} --layers ${shape.layers} `
    + `--shared-layers ${shape.sharedLayers} --layer-size ${shape.layerSize}\` (the first ${shape.sharedLayers} layers shared by all, on both platforms). Round 1 copies `
    + `SRC/${sourcePrefix}/app-N:v1 to DST/first/app-N:v1, round 2 the same images to DST/again/app-N:v1, one process per image, each tool in a fresh harness `
    + '(target `backup-basic`, basic auth) with its private HOME kept between the rounds. Sent: bytes the process sent to the target registry '
    + '(blobs, manifests, HTTP headers), counted by a TCP relay in front of it (bench/lib/byte-counter.ts).';
  const text = [verdict, '', textTable(head, rows), '', shapeLine, ...results.map((r) => `- ${r.contender.label}: load before: ${r.load}`)].join('\n');
  const markdown = [
    '## Copy benchmark: a second round into new repositories (issue 15, section 3)',
    '',
    'Written by `npm run bench:copy` (bench/lib/second-round.ts); rerunning replaces this section.',
    '',
    `- ${verdict}`,
    '',
    mdTable(head, rows),
    '',
    shapeLine,
    '',
    ...results.map((r) => `- **${r.contender.label}**: \`${r.display ?? '-'}\` (one pair in pairs.txt; load before: ${r.load})`),
  ].join('\n');
  return { text, markdown };
}
