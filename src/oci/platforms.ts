// `copy --platform`: an index cut down to the platforms asked for. Its bytes are rewritten, so its
// digest changes, and the caller says so.
import { ManifestError } from '../errors.ts';
import { formatPlatform, parseManifest, platformMatches, sha256Digest, type Platform } from './manifest.ts';
import type { Manifest } from './registry.ts';

/** The manifest with only the `wanted` platforms, and the warning to give; a single-platform image as it is. */
export function filterPlatforms(manifest: Manifest, wanted: Platform[], where: string): { manifest: Manifest; warning: string } {
  const parsed = parseManifest(manifest.bytes, manifest.mediaType, where);
  if (parsed.kind !== 'index') return { manifest, warning: `${where} is a single-platform image; --platform ignored, copied as is` };
  const doc = JSON.parse(manifest.bytes.toString('utf8')) as { manifests: Array<{ platform?: Platform }> };
  doc.manifests = doc.manifests.filter((child) => wanted.some((p) => platformMatches(p, child.platform)));
  if (!doc.manifests.length) {
    throw new ManifestError(`${where} has no manifest for ${wanted.map(formatPlatform).join(', ')} (it has ${parsed.manifests.map((m) => formatPlatform(m.platform)).join(', ')})`);
  }
  const bytes = Buffer.from(JSON.stringify(doc));
  const digest = sha256Digest(bytes);
  return {
    manifest: { bytes, digest, mediaType: manifest.mediaType, size: bytes.length },
    warning: `${where}: copying ${doc.manifests.length} of ${parsed.manifests.length} platforms rewrites the index; its digest changes from ${manifest.digest} to ${digest}`,
  };
}
