// Image fleets in the harness registries (regharness seed-fleet), the backup names image-clone's
// nested naming gives them, and checking copies with regharness verify.
import { join } from 'node:path';
import { repoRoot, type Harness } from '../../test/harness/harness.ts';
import { pool } from './concurrency.ts';
import { firstLine, run } from './processes.ts';

export const regharness = join(repoRoot, '.harness', 'bin', 'regharness');

/** The shape of a `regharness seed-fleet` run: images PREFIX/app-N:v1, N = 1..images. */
export interface FleetShape {
  images: number;
  groupSize: number;
  platforms: string;
  layers: number;
  sharedLayers: number;
  layerSize: string;
  format: 'docker' | 'oci' | 'mixed';
  /** Images pushed concurrently by seed-fleet. */
  parallel: number;
}

export function fleetArgs(f: FleetShape, prefix: string): string[] {
  return [
    '--images', String(f.images), '--group-size', String(f.groupSize), '--platforms', f.platforms, '--layers', String(f.layers),
    '--shared-layers', String(f.sharedLayers), '--layer-size', f.layerSize, '--format', f.format, '--prefix', prefix, '--parallel', String(f.parallel),
  ];
}

export interface SeededFleet {
  /** Repository path and tag of image N (1-based) without the host: PREFIX/app-N:v1. */
  names: string[];
  digests: Map<string, string>;
  blobs: Map<string, number>;
  uniqueBytes: number;
  /** Each image's bytes, its manifests and blobs whole (seed-fleet's count), in the order seed-fleet finished them. */
  imageBytes: number[];
  manifests: number;
  ms: number;
}

/**
 * Pushes the fleet into `host` under `prefix` with seed-fleet. Digests depend only on the shape
 * (seeds come from the image index), not on host or prefix: the same shape pushed under a backup
 * name gives byte-identical images.
 */
export async function seedFleet(h: Harness, host: string, shape: FleetShape, prefix: string, options: { anchorTags?: boolean } = {}): Promise<SeededFleet> {
  const env = { ...process.env, REGHARNESS_REGISTRIES: h.envPath };
  const r = await run(regharness, ['seed-fleet', '--registry', host, ...fleetArgs(shape, prefix), ...(options.anchorTags ? ['--anchor-tags'] : [])], { env });
  if (r.code !== 0) throw new Error(`seed-fleet into ${host}/${prefix} failed: ${r.stderr.trim().slice(0, 500)}`);
  const images = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { ref: string; digest: string; children: unknown[]; blobs: Array<{ digest: string; size: number }>; bytes: number });
  if (images.length !== shape.images) throw new Error(`seed-fleet pushed ${images.length} images into ${host}/${prefix}, not ${shape.images}`);
  const digests = new Map<string, string>();
  const blobs = new Map<string, number>();
  for (const i of images) {
    digests.set(i.ref.slice(i.ref.indexOf('/') + 1), i.digest);
    for (const b of i.blobs) blobs.set(b.digest, b.size);
  }
  return {
    names: Array.from({ length: shape.images }, (_, i) => `${prefix}/app-${i + 1}:v1`),
    digests, blobs,
    uniqueBytes: [...blobs.values()].reduce((a, b) => a + b, 0),
    imageBytes: images.map((i) => i.bytes),
    manifests: images.reduce((a, i) => a + 1 + i.children.length, 0),
    ms: r.wallMs,
  };
}

/**
 * The repository image-clone's nested naming gives a source repository: <prefix>/<host, ':' as '_'>/<path>
 * (src/core/naming.ts; IPv4 host:port only, which is what the harness uses).
 */
export function nestedBackupPath(backupPrefix: string, sourceHost: string, path: string): string {
  return `${backupPrefix ? `${backupPrefix}/` : ''}${sourceHost.toLowerCase().replace(':', '_')}/${path}`;
}

export interface VerifySummary {
  checked: number;
  identical: number;
  /** Of the identical ones, those checked with --full (blobs downloaded and re-hashed). */
  fullChecked: number;
  /** One line per image that differs, sorted. */
  problems: string[];
}

/** `regharness verify` on pairs (src ref, dst ref), four at a time; `full` downloads and re-hashes the blobs. */
export async function verifyPairs(h: Harness, pairs: Array<{ src: string; dst: string; full?: boolean }>): Promise<VerifySummary> {
  const env = { ...process.env, REGHARNESS_REGISTRIES: h.envPath };
  const out: VerifySummary = { checked: 0, identical: 0, fullChecked: 0, problems: [] };
  await pool(pairs, 4, async (p) => {
    const r = await run(regharness, ['verify', '--src', p.src, '--dst', p.dst, ...(p.full ? ['--full'] : [])], { env });
    out.checked++;
    let parsed: { identical?: boolean; differences?: unknown[] } = {};
    try {
      parsed = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
    } catch {
      // reported below
    }
    if (r.code === 0 && parsed.identical) {
      out.identical++;
      if (p.full) out.fullChecked++;
    } else out.problems.push(`${p.dst}: ${parsed.differences ? JSON.stringify(parsed.differences).slice(0, 200) : firstLine(r.stderr) || `exit ${r.code}`}`);
  });
  out.problems.sort();
  return out;
}
