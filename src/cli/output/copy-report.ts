// The document `copy -o json` prints, and its text form: one entry per image, then the totals.
import type { CopyCounts, ImageCopyResult } from '../../oci/copy-engine.ts';
import { formatBytes, formatDuration } from './format.ts';
import { schemaVersion } from './document.ts';

/** One image's outcome in the report. */
export interface ImageReport {
  source: string;
  target: string;
  status: 'copied' | 'present' | 'failed';
  digest?: string;
  mediaType?: string;
  platforms: string[];
  manifestsPushed: number;
  blobs: { copied: number; mounted: number; present: number };
  signatures: number;
  bytesTransferred: number;
  /** Why it failed: one line, no credentials. */
  error?: string;
}

/** schemaVersion changes only when a field changes meaning. */
export interface CopyReport {
  schemaVersion: typeof schemaVersion;
  kind: 'copy';
  images: ImageReport[];
  summary: {
    images: { total: number; copied: number; present: number; failed: number };
    blobs: { copied: number; mounted: number; present: number };
    bytesTransferred: number;
    durationMs: number;
    bytesPerSecond: number;
  };
}

/** A copied or present image's entry. */
export function imageReport(result: ImageCopyResult): ImageReport {
  const c = result.counts;
  return {
    source: result.source, target: result.target, status: result.status, digest: result.digest, mediaType: result.mediaType,
    platforms: result.platforms, manifestsPushed: c.manifestsPushed,
    blobs: { copied: c.blobsCopied, mounted: c.blobsMounted, present: c.blobsPresent },
    signatures: c.signatures, bytesTransferred: c.bytesCopied,
  };
}

/** A failed image's entry: `message` is one line, without credentials. */
export function failedImageReport(source: string, target: string, message: string): ImageReport {
  return {
    source, target, status: 'failed', platforms: [], manifestsPushed: 0,
    blobs: { copied: 0, mounted: 0, present: 0 }, signatures: 0, bytesTransferred: 0, error: message,
  };
}

export function copyReport(images: ImageReport[], totals: CopyCounts, durationMs: number): CopyReport {
  const count = (status: ImageReport['status']) => images.filter((i) => i.status === status).length;
  return {
    schemaVersion,
    kind: 'copy',
    images,
    summary: {
      images: { total: images.length, copied: count('copied'), present: count('present'), failed: count('failed') },
      blobs: { copied: totals.blobsCopied, mounted: totals.blobsMounted, present: totals.blobsPresent },
      bytesTransferred: totals.bytesCopied,
      durationMs: Math.round(durationMs),
      bytesPerSecond: Math.round(totals.bytesCopied / Math.max(durationMs / 1000, 0.001)),
    },
  };
}

export function renderCopyText(r: CopyReport): string {
  const lines: string[] = [];
  for (const image of r.images) {
    if (image.status === 'failed') lines.push(`FAILED  ${image.source} -> ${image.target}: ${image.error}`);
    else if (image.status === 'present') lines.push(`present ${image.target} already holds ${image.digest}`);
    else {
      lines.push(`copied  ${image.source} -> ${image.target}`);
      lines.push(`        digest ${image.digest}${image.platforms.length ? `, platforms ${image.platforms.join(', ')}` : ''}`);
    }
  }
  const s = r.summary;
  lines.push(
    `${s.images.total} image${s.images.total === 1 ? '' : 's'}: ${s.images.copied} copied, ${s.images.present} already present, ${s.images.failed} failed`,
    `blobs: ${s.blobs.copied} copied, ${s.blobs.mounted} mounted, ${s.blobs.present} already present`,
    `transferred ${formatBytes(s.bytesTransferred)} in ${formatDuration(s.durationMs)} (${formatBytes(s.bytesPerSecond)}/s)`,
  );
  return `${lines.join('\n')}\n`;
}
