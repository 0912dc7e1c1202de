// What the parts of the copy engine share: its options, the events it tells, and what it counts
// (per image and for the whole run).
import type { RegistryError } from '../errors.ts';
import type { Platform } from './manifest.ts';
import type { CopyCounts } from '../core/ports.ts';

export type { CopyCounts };

export interface CopyOptions {
  /** Copy only these platforms of a multi-platform image (the index is rewritten: its digest changes). */
  platforms?: Platform[];
  /** Copy cosign signatures, attestations, SBOMs and OCI referrers along with the image (default true). */
  signatures?: boolean;
  /** Blob transfers in flight at once, across all images of the run. */
  concurrency?: number;
  /** Always upload in chunks of this size. */
  chunkSize?: number;
  /** A target that holds the image counts only when every blob of it is there too (`sync --verify`). */
  verifyBlobs?: boolean;
  onEvent?: (event: CopyEvent) => void;
  /** Told once when a target refuses every write (out of storage, read-only) and copying stops. */
  onHalt?: (cause: RegistryError) => void;
  signal?: AbortSignal;
}

export type CopyEvent =
  | { kind: 'blob'; action: 'copied' | 'mounted' | 'present'; target: string; digest: string; size: number }
  | { kind: 'bytes'; bytes: number }
  | { kind: 'manifest'; target: string; reference: string; digest: string }
  | { kind: 'warning'; message: string };


export const emptyCounts = (): CopyCounts => ({ manifestsPushed: 0, blobsCopied: 0, blobsMounted: 0, blobsPresent: 0, bytesCopied: 0, signatures: 0 });

/** Counts added to one image's figures and to the run's totals at once. */
export class Tally {
  readonly totals = emptyCounts();

  add(counts: CopyCounts, field: keyof CopyCounts, n: number): void {
    counts[field] += n;
    this.totals[field] += n;
  }
}
