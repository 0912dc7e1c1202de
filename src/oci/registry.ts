// The distribution API for one repository at a time: manifests, blobs, uploads, referrers.
import { ManifestError, RegistryError } from '../errors.ts';
import { digestAlgorithm, digestOf, manifestAccept, maxManifestBytes, parseManifest, type Descriptor } from './manifest.ts';
import type { Transport, RegistryResponse } from './transport/transport.ts';
import type { Readable } from 'node:stream';
import { readCapped } from '../util/read.ts';

/** A repository in a registry: 'docker.io' + 'library/nginx'. */
export interface Repository {
  registry: string;
  repository: string;
}

export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

export interface Manifest extends ManifestHead {
  bytes: Buffer;
}

export type UploadStart =
  | { mounted: true }
  | { mounted: false; location: string; chunkMinLength: number | undefined };

export const repoName = (r: Repository) => `${r.registry}/${r.repository}`;
const pull = (r: Repository) => [`repository:${r.repository}:pull`];
const push = (r: Repository) => [`repository:${r.repository}:pull,push`];

export class RegistryClient {
  readonly transport: Transport;

  constructor(transport: Transport) {
    this.transport = transport;
  }

  /** HEAD of a manifest by tag or digest; undefined when the registry does not have it. */
  async headManifest(repo: Repository, reference: string, forPush = false): Promise<ManifestHead | undefined> {
    const response = await this.transport.send({
      registry: repo.registry, repository: repo.repository, method: 'HEAD',
      path: `/v2/${repo.repository}/manifests/${reference}`,
      scopes: forPush ? push(repo) : pull(repo),
      headers: { accept: manifestAccept },
      accept: [404],
      followRedirects: true,
    });
    await response.body.dump();
    if (response.status === 404) return undefined;
    const digest = header(response, 'docker-content-digest');
    if (!digest) {
      // Docker-Content-Digest is optional on HEAD: hash the manifest instead.
      const manifest = await this.getManifest(repo, reference);
      return { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.size };
    }
    return { digest, mediaType: mediaTypeOf(response), size: Number(header(response, 'content-length') ?? 0) };
  }

  /** GET of a manifest; its digest is computed over the bytes and must match a requested digest. */
  async getManifest(repo: Repository, reference: string): Promise<Manifest> {
    const where = `${repoName(repo)}@${reference}`;
    const response = await this.transport.send({
      registry: repo.registry, repository: repo.repository, method: 'GET',
      path: `/v2/${repo.repository}/manifests/${reference}`,
      scopes: pull(repo),
      headers: { accept: manifestAccept },
      followRedirects: true,
    });
    const declared = Number(header(response, 'content-length'));
    if (declared > maxManifestBytes) {
      response.body.destroy();
      throw new ManifestError(`${where}: manifest of ${declared} bytes is larger than the ${maxManifestBytes}-byte limit`);
    }
    const bytes = await readAll(response, maxManifestBytes, () => new ManifestError(`${where}: manifest is larger than the ${maxManifestBytes}-byte limit`));
    const byDigest = reference.includes(':');
    const digest = digestOf(bytes, byDigest ? digestAlgorithm(reference) : 'sha256');
    if (byDigest && digest !== reference) {
      throw new ManifestError(`${where}: the registry sent a manifest whose digest is ${digest}`);
    }
    const headerDigest = header(response, 'docker-content-digest');
    if (!byDigest && headerDigest?.startsWith('sha256:') && headerDigest !== digest) {
      throw new ManifestError(`${where}: Docker-Content-Digest ${headerDigest} does not match the manifest's bytes (${digest})`);
    }
    const mediaType = parseManifest(bytes, header(response, 'content-type'), where).mediaType;
    return { bytes, digest, mediaType, size: bytes.length };
  }

  /**
   * PUT of manifest bytes, exactly as received, under a tag or its digest. Resolves with the
   * registry's OCI-Subject header: set when it indexed the manifest's subject (the referrers API).
   */
  async putManifest(repo: Repository, reference: string, manifest: Pick<Manifest, 'bytes' | 'digest' | 'mediaType'>): Promise<{ ociSubject: string | undefined }> {
    const response = await this.transport.send({
      registry: repo.registry, repository: repo.repository, method: 'PUT',
      path: `/v2/${repo.repository}/manifests/${reference}`,
      scopes: push(repo),
      headers: { 'content-type': manifest.mediaType, 'content-length': String(manifest.bytes.length) },
      body: manifest.bytes,
    }).catch((err: unknown) => {
      // A registry that refuses the media type (415, or MANIFEST_INVALID for Docker types on an OCI-only registry).
      if (err instanceof RegistryError && (err.status === 415 || (err.code === 'MANIFEST_INVALID' && manifest.mediaType.startsWith('application/vnd.docker.')))) {
        throw new ManifestError(`${repoName(repo)}: the registry does not accept the media type ${manifest.mediaType} (${err.message.replace(/^[^(]*\(/, '').replace(/\)$/, '')}); nothing was tagged. Some registries have a setting to accept Docker media types`);
      }
      throw err;
    });
    await response.body.dump();
    const stored = header(response, 'docker-content-digest');
    if (stored && stored.startsWith('sha256:') && stored !== manifest.digest) {
      throw new ManifestError(`${repoName(repo)}:${reference}: the registry stored the manifest as ${stored}, not ${manifest.digest}`);
    }
    return { ociSubject: header(response, 'oci-subject') };
  }

  /** Every tag of a repository (following pagination); empty when the repository does not exist. */
  async listTags(repo: Repository): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = `/v2/${repo.repository}/tags/list`;
    for (let page = 0; path && page < 1000; page++) {
      const response = await this.transport.send({
        registry: repo.registry, repository: repo.repository, method: 'GET', path,
        scopes: pull(repo), accept: [404],
      });
      if (response.status === 404) {
        await response.body.dump();
        return tags;
      }
      const bytes = await readAll(response, maxManifestBytes, () => new ManifestError(`${repoName(repo)}: tag list page too large`));
      let doc: { tags?: unknown };
      try {
        doc = JSON.parse(bytes.toString('utf8')) as { tags?: unknown };
      } catch {
        throw new ManifestError(`${repoName(repo)}: the tag list is not valid JSON`);
      }
      if (Array.isArray(doc.tags)) tags.push(...doc.tags.filter((t): t is string => typeof t === 'string'));
      path = nextLink(header(response, 'link'), response.url);
    }
    return tags;
  }

  /**
   * One page of the registry's repository list (GET /v2/_catalog), at most `n` names in lexical
   * order after `last`; undefined when the registry has no catalog or does not show it to us.
   */
  async catalog(registry: string, n: number, last?: string): Promise<string[] | undefined> {
    const response = await this.transport.send({
      registry, method: 'GET', path: `/v2/_catalog?n=${n}${last ? `&last=${encodeURIComponent(last)}` : ''}`,
      scopes: ['registry:catalog:*'], accept: [400, 403, 404, 405, 501],
    });
    if (response.status !== 200) {
      await response.body.dump();
      return undefined;
    }
    const bytes = await readAll(response, maxManifestBytes, () => new ManifestError(`${registry}: catalog page too large`));
    try {
      const doc = JSON.parse(bytes.toString('utf8')) as { repositories?: unknown };
      return Array.isArray(doc.repositories) ? doc.repositories.filter((r): r is string => typeof r === 'string') : undefined;
    } catch {
      return undefined;
    }
  }

  /** Size of a blob in the repository, or undefined when it is not there. */
  async headBlob(repo: Repository, digest: string, forPush = true): Promise<number | undefined> {
    const response = await this.transport.send({
      registry: repo.registry, repository: repo.repository, method: 'HEAD',
      path: `/v2/${repo.repository}/blobs/${digest}`,
      scopes: forPush ? push(repo) : pull(repo),
      accept: [404],
      // A HEAD redirected to presigned storage URLs fails there (signatures bind the method).
      followRedirects: false,
    });
    await response.body.dump();
    if (response.status === 404) return undefined;
    // A redirect means the registry has it; its own Content-Length is not the blob's (-1: unknown size).
    if (response.status >= 300) return -1;
    return Number(header(response, 'content-length') ?? -1);
  }

  /** GET of a blob, from `offset` on (a Range request) to resume an interrupted download. */
  async getBlob(repo: Repository, digest: string, offset = 0, signal?: AbortSignal): Promise<RegistryResponse> {
    return this.transport.send({
      registry: repo.registry, repository: repo.repository, method: 'GET',
      path: `/v2/${repo.repository}/blobs/${digest}`,
      scopes: pull(repo),
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      followRedirects: true,
      ...(signal ? { signal } : {}),
    });
  }

  /**
   * Starts an upload, as a cross-repository mount when `mountFrom` names a repository of the same
   * registry that holds the blob. A refused mount (202) opens an upload session we use; a mount the
   * registry rejects outright (401, 400, 404: Harbor, old Quay) falls back to a plain upload.
   */
  async startUpload(repo: Repository, digest: string, mountFrom?: Repository): Promise<UploadStart> {
    if (mountFrom && mountFrom.registry === repo.registry && mountFrom.repository !== repo.repository) {
      const response = await this.transport.send({
        registry: repo.registry, repository: repo.repository, method: 'POST',
        path: `/v2/${repo.repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom.repository)}`,
        scopes: [...push(repo), ...pull(mountFrom)],
        headers: { 'content-length': '0' },
        accept: [400, 401, 403, 404],
      });
      await response.body.dump();
      if (response.status === 201) return { mounted: true };
      if (response.status === 202) return this.#session(repo, response);
    }
    const response = await this.transport.send({
      registry: repo.registry, repository: repo.repository, method: 'POST',
      path: `/v2/${repo.repository}/blobs/uploads/`,
      scopes: push(repo),
      headers: { 'content-length': '0' },
    });
    await response.body.dump();
    return this.#session(repo, response);
  }

  #session(repo: Repository, response: RegistryResponse): UploadStart {
    const location = header(response, 'location');
    if (!location) {
      throw new RegistryError(repo.registry, `${repo.registry}: upload started without a Location header`, { transient: false });
    }
    const minLength = Number(header(response, 'oci-chunk-min-length'));
    // Locations may be relative, absolute, or carry state in their query: resolve, never rebuild.
    return { mounted: false, location: new URL(location, response.url).toString(), chunkMinLength: minLength > 0 ? minLength : undefined };
  }

  /**
   * Sends one chunk of an upload session (PATCH with Content-Range) and returns the session's next
   * Location (each answer may move it). Never resent on its own: a chunk sent twice could be appended
   * twice, so the caller retries the whole blob instead.
   */
  async patchUpload(repo: Repository, location: string, chunk: Buffer, offset: number, signal?: AbortSignal): Promise<string> {
    const response = await this.transport.send({
      registry: repo.registry, repository: repo.repository, method: 'PATCH', path: location, scopes: push(repo),
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(chunk.length),
        'content-range': `${offset}-${offset + chunk.length - 1}`,
      },
      body: chunk,
      replayable: false,
      ...(signal ? { signal } : {}),
    });
    await response.body.dump();
    // ECR answers 201, pulp 204: both fine.
    const next = header(response, 'location');
    return next ? new URL(next, response.url).toString() : location;
  }

  /**
   * Closes an upload session with the blob's digest: with the bytes still to send (a monolithic
   * upload: `body` streams them once, never replayed), or with none after the chunks.
   */
  async finishUpload(repo: Repository, location: string, digest: string, body?: { size: number; stream: () => Readable }, signal?: AbortSignal): Promise<void> {
    const response = await this.transport.send({
      registry: repo.registry, repository: repo.repository, method: 'PUT', path: withDigest(location, digest), scopes: push(repo),
      headers: body ? { 'content-type': 'application/octet-stream', 'content-length': String(body.size) } : { 'content-length': '0' },
      ...(body ? { body: body.stream, replayable: false } : {}),
      long: true,
      ...(signal ? { signal } : {}),
    });
    await response.body.dump();
  }

  /** Cancels an upload session we will not finish (best effort: some registries need delete scope). */
  async cancelUpload(repo: Repository, location: string): Promise<void> {
    await this.transport.send({
      registry: repo.registry, repository: repo.repository, method: 'DELETE', path: location,
      scopes: push(repo), accept: [400, 401, 403, 404, 405], replayable: false,
    }).then((r) => r.body.dump(), () => {});
  }

  /**
   * Referrers of a manifest through the OCI referrers API, following pagination; undefined when
   * the registry has no referrers API (the caller then tries the tag schema).
   */
  async referrers(repo: Repository, digest: string): Promise<Descriptor[] | undefined> {
    const found: Descriptor[] = [];
    let path: string | undefined = `/v2/${repo.repository}/referrers/${digest}`;
    for (let page = 0; path && page < 100; page++) {
      const response = await this.transport.send({
        registry: repo.registry, repository: repo.repository, method: 'GET', path,
        scopes: pull(repo),
        headers: { accept: 'application/vnd.oci.image.index.v1+json' },
        accept: [400, 404, 405, 501],
      });
      if (response.status !== 200) {
        await response.body.dump();
        return page === 0 ? undefined : found;
      }
      const bytes = await readAll(response, maxManifestBytes, () => new ManifestError(`${repoName(repo)}: referrers list too large`));
      // olareg (v0.1.2) answers an empty list with "manifests": null: that is an empty list.
      if (emptyReferrersList(bytes)) return found;
      const index = parseManifest(bytes, 'application/vnd.oci.image.index.v1+json', `${repoName(repo)} referrers of ${digest}`);
      if (index.kind === 'index') found.push(...index.manifests);
      path = nextLink(header(response, 'link'), response.url);
    }
    return found;
  }
}

export function header(response: RegistryResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function mediaTypeOf(response: RegistryResponse): string {
  return header(response, 'content-type')?.split(';')[0]?.trim() ?? '';
}

function emptyReferrersList(bytes: Buffer): boolean {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown> | null;
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) && (doc.manifests === undefined || doc.manifests === null);
  } catch {
    return false;
  }
}

/** The whole body, or the error `tooLarge` gives when it is longer than `limit` bytes. */
async function readAll(response: RegistryResponse, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const bytes = await readCapped(response.body, limit);
  if (bytes === undefined) throw tooLarge();
  return bytes;
}

/** The rel="next" target of a Link header, resolved against the URL that answered. */
function nextLink(link: string | undefined, base: URL): string | undefined {
  const match = link && /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  if (!match) return undefined;
  const next = new URL(match[1]!, base);
  return next.origin === base.origin ? next.pathname + next.search : undefined;
}

/**
 * Adds ?digest= to an upload Location without re-encoding the query it already carries
 * (distribution's _state token must come back byte for byte).
 */
export function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}
