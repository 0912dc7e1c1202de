// Manifests as bytes: we never re-serialize them (their digest is over the exact bytes), we only
// read what the copy needs: the children of an index, the config and layers of an image, and the
// subject of a referrer.
import { createHash } from 'node:crypto';
import { ManifestError } from '../errors.ts';

export const mediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociArtifact: 'application/vnd.oci.artifact.manifest.v1+json',
} as const;

const indexTypes: ReadonlySet<string> = new Set([mediaTypes.ociIndex, mediaTypes.dockerList]);
const imageTypes: ReadonlySet<string> = new Set([mediaTypes.ociManifest, mediaTypes.dockerManifest, mediaTypes.ociArtifact]);
const schema1Types: ReadonlySet<string> = new Set([mediaTypes.dockerSchema1, mediaTypes.dockerSchema1Signed]);

/** Whether a media type names an index (OCI image index or Docker manifest list). */
export const isIndexType = (mediaType: string | undefined): boolean => mediaType !== undefined && indexTypes.has(mediaType);

/**
 * One comma-joined Accept header with every type we copy: registries that read only the first
 * header line, or rewrite a list to one platform when list types are missing, get it right.
 */
export const manifestAccept = [
  mediaTypes.ociIndex, mediaTypes.dockerList, mediaTypes.ociManifest, mediaTypes.dockerManifest, mediaTypes.ociArtifact,
  mediaTypes.dockerSchema1Signed, mediaTypes.dockerSchema1,
].join(', ');

/** Manifests larger than this are refused: the spec asks registries to accept 4 MB; this leaves headroom. */
export const maxManifestBytes = 8 * 1024 * 1024;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; manifests: Descriptor[]; subject?: Descriptor }
  | { kind: 'image'; mediaType: string; config: Descriptor | undefined; layers: Descriptor[]; subject?: Descriptor };

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Digest of bytes with the algorithm that `expected` names (sha256 or sha512). */
export function digestOf(bytes: Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

export function digestAlgorithm(digest: string): 'sha256' | 'sha512' {
  const algorithm = digest.slice(0, digest.indexOf(':'));
  if (algorithm === 'sha256' || algorithm === 'sha512') return algorithm;
  throw new ManifestError(`unsupported digest algorithm in ${digest}`);
}

/**
 * Parses manifest bytes. `contentType` is what the registry said; the document's own mediaType
 * wins when present, since some registries answer application/json or octet-stream.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined, where: string): ParsedManifest {
  let doc: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    doc = parsed as Record<string, unknown>;
  } catch {
    throw new ManifestError(`${where}: the manifest is not valid JSON`);
  }
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  const headerType = contentType?.split(';')[0]?.trim();
  const mediaType = declared ?? guessMediaType(doc) ?? headerType ?? '';
  if (schema1Types.has(mediaType) || doc.schemaVersion === 1) {
    throw new ManifestError(`${where} is a Docker schema 1 image, which registries no longer accept; rebuild or re-push it with a current client`);
  }
  const subject = optionalDescriptor(doc.subject, where);
  if (indexTypes.has(mediaType)) {
    return { kind: 'index', mediaType, manifests: descriptorList(doc.manifests, where, 'manifests'), subject };
  }
  if (imageTypes.has(mediaType)) {
    const config = optionalDescriptor(doc.config, where);
    const layers = mediaType === mediaTypes.ociArtifact ? descriptorList(doc.blobs ?? [], where, 'blobs') : descriptorList(doc.layers ?? [], where, 'layers');
    return { kind: 'image', mediaType, config, layers, subject };
  }
  throw new ManifestError(`${where}: unknown manifest media type ${JSON.stringify(mediaType || '(none)')}`);
}

function guessMediaType(doc: Record<string, unknown>): string | undefined {
  if (doc.schemaVersion !== 2) return undefined;
  if (Array.isArray(doc.manifests)) return mediaTypes.ociIndex;
  if (doc.config && typeof doc.config === 'object') return mediaTypes.ociManifest;
  return undefined;
}

function descriptorList(value: unknown, where: string, field: string): Descriptor[] {
  if (!Array.isArray(value)) throw new ManifestError(`${where}: "${field}" is not a list`);
  return value.map((item) => descriptor(item, where));
}

function optionalDescriptor(value: unknown, where: string): Descriptor | undefined {
  return value === undefined || value === null ? undefined : descriptor(value, where);
}

const digestPattern = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

function descriptor(value: unknown, where: string): Descriptor {
  if (!value || typeof value !== 'object') throw new ManifestError(`${where}: a descriptor is not an object`);
  const d = value as Record<string, unknown>;
  if (typeof d.digest !== 'string' || !digestPattern.test(d.digest)) {
    throw new ManifestError(`${where}: a descriptor has an invalid digest ${JSON.stringify(String(d.digest).slice(0, 80))}`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new ManifestError(`${where}: descriptor ${d.digest} has an invalid size`);
  }
  const result: Descriptor = { mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest, size: d.size };
  const p = d.platform as Record<string, unknown> | undefined;
  if (p && typeof p.os === 'string' && typeof p.architecture === 'string') {
    result.platform = { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' ? { variant: p.variant } : {}) };
  }
  if (typeof d.artifactType === 'string') result.artifactType = d.artifactType;
  if (d.annotations && typeof d.annotations === 'object') result.annotations = d.annotations as Record<string, string>;
  if (Array.isArray(d.urls)) result.urls = d.urls.filter((u): u is string => typeof u === 'string');
  return result;
}

/** Descriptors without repeats, first of each digest kept. */
export function uniqueByDigest(descriptors: Descriptor[]): Descriptor[] {
  const seen = new Map<string, Descriptor>();
  for (const d of descriptors) if (!seen.has(d.digest)) seen.set(d.digest, d);
  return [...seen.values()];
}

/** A layer served from elsewhere (foreign, non-distributable): never copied, so never looked for. */
export function isNonDistributable(blob: Descriptor): boolean {
  return Boolean(blob.urls?.length) && /foreign|nondistributable/.test(blob.mediaType);
}

export function formatPlatform(p: Platform | undefined): string {
  if (!p) return 'unknown';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Parses "os/arch[/variant]" as given on the command line. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, ...rest] = text.split('/');
  if (!os || !architecture || rest.length) throw new ManifestError(`invalid platform ${JSON.stringify(text)}: expected os/arch or os/arch/variant`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function platformMatches(wanted: Platform, actual: Platform | undefined): boolean {
  if (!actual) return false;
  return wanted.os === actual.os && wanted.architecture === actual.architecture && (!wanted.variant || wanted.variant === actual.variant);
}
