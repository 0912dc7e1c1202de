// Moving one blob's bytes: a streaming GET from the source feeds the upload to the target, with
// the digest and size checked on the way, so nothing touches the disk and memory stays flat
// whatever the blob's size. A bad byte aborts the upload before the registry can commit it.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ManifestError, RegistryError } from '../errors.ts';
import { digestAlgorithm, type Descriptor } from './manifest.ts';
import { header, repoName, type RegistryClient, type Repository } from './registry.ts';
import { isTransientNetworkError } from '../util/retry.ts';

export interface BlobTransferOptions {
  /** Upload in chunks of this many bytes (PATCH with Content-Range) instead of one PUT. */
  chunkSize?: number;
  /** Called with each chunk's length as bytes arrive from the source. */
  onBytes?: (bytes: number) => void;
  signal?: AbortSignal;
}

/** How often an interrupted source download is resumed (with a Range request) before giving up. */
const maxSourceResumes = 5;

/**
 * The source blob as a stream of verified bytes: resumes from where it broke off when the
 * connection drops, and throws if the bytes do not add up to the descriptor's size and digest.
 */
export async function* verifiedBlob(client: RegistryClient, source: Repository, blob: Descriptor, options: BlobTransferOptions = {}): AsyncGenerator<Buffer> {
  const hash = createHash(digestAlgorithm(blob.digest));
  let offset = 0;
  for (let resumes = 0; ; resumes++) {
    const response = await client.getBlob(source, blob.digest, offset, options.signal);
    // A server that ignores Range sends everything again: skip what we already have.
    let skip = offset > 0 && response.status === 200 ? offset : 0;
    if (offset > 0 && response.status === 206 && !header(response, 'content-range')?.startsWith(`bytes ${offset}-`)) {
      response.body.destroy();
      throw new RegistryError(source.registry, `${repoName(source)}: resumed download of ${blob.digest} returned the wrong range`, { transient: true });
    }
    try {
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        let data = chunk;
        if (skip > 0) {
          if (data.length <= skip) {
            skip -= data.length;
            continue;
          }
          data = data.subarray(skip);
          skip = 0;
        }
        offset += data.length;
        if (offset > blob.size) throw corrupted(source, blob, `more than the ${blob.size} bytes its descriptor gives`);
        hash.update(data);
        options.onBytes?.(data.length);
        yield data;
      }
      break;
    } catch (err) {
      response.body.destroy();
      if (err instanceof ManifestError || resumes >= maxSourceResumes || options.signal?.aborted || !isTransient(err)) throw err;
    }
  }
  if (offset !== blob.size) throw corrupted(source, blob, `${offset} bytes instead of ${blob.size}`);
  const digest = `${digestAlgorithm(blob.digest)}:${hash.digest('hex')}`;
  if (digest !== blob.digest) throw corrupted(source, blob, `bytes whose digest is ${digest}`);
}

function corrupted(source: Repository, blob: Descriptor, what: string): ManifestError {
  return new ManifestError(`${repoName(source)}: blob ${blob.digest} is corrupt: the registry sent ${what}; nothing was committed`);
}

function isTransient(err: unknown): boolean {
  if (err instanceof RegistryError) return err.transient;
  return isTransientNetworkError(err, { stream: true });
}

/** Streams a blob from `source` into an open upload session of `target` and commits it. */
export async function uploadBlob(client: RegistryClient, source: Repository, target: Repository, blob: Descriptor, location: string, options: BlobTransferOptions = {}): Promise<void> {
  // The generator's own error (a corrupt byte) is the one worth reporting, not the aborted upload it causes.
  let sourceError: unknown;
  const bytes = (async function* () {
    try {
      yield* verifiedBlob(client, source, blob, options);
    } catch (err) {
      sourceError = err;
      throw err;
    }
  })();
  try {
    if (options.chunkSize) {
      await uploadChunked(client, target, blob, location, bytes, options.chunkSize, options.signal);
    } else {
      const response = await client.transport.send({
        registry: target.registry, repository: target.repository, method: 'PUT',
        path: withDigest(location, blob.digest),
        scopes: [`repository:${target.repository}:pull,push`],
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
        body: () => Readable.from(bytes, { objectMode: false }),
        replayable: false,
        long: true,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      await response.body.dump();
    }
  } catch (err) {
    await bytes.return(undefined).catch(() => {});
    throw sourceError ?? err;
  }
}

/**
 * Chunked upload (PATCH with Content-Range), for registries that need it: those announcing
 * OCI-Chunk-Min-Length, and ECR, whose parts must be at least 5 MiB. Memory use is one chunk.
 */
async function uploadChunked(client: RegistryClient, target: Repository, blob: Descriptor, firstLocation: string, bytes: AsyncIterable<Buffer>, chunkSize: number, signal: AbortSignal | undefined): Promise<void> {
  let location = firstLocation;
  let offset = 0;
  const send = async (chunk: Buffer) => {
    const response = await client.transport.send({
      registry: target.registry, repository: target.repository, method: 'PATCH', path: location,
      scopes: [`repository:${target.repository}:pull,push`],
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(chunk.length),
        'content-range': `${offset}-${offset + chunk.length - 1}`,
      },
      body: chunk,
      // Resending a chunk after a failure could append it twice: the whole blob is retried instead.
      replayable: false,
      ...(signal ? { signal } : {}),
    });
    await response.body.dump();
    // Each answer may move the session (ECR answers 201, pulp 204: both fine); always use the latest Location.
    const next = header(response, 'location');
    if (next) location = new URL(next, response.url).toString();
    offset += chunk.length;
  };
  let pending: Buffer[] = [];
  let pendingSize = 0;
  for await (const data of bytes) {
    pending.push(data);
    pendingSize += data.length;
    if (pendingSize < chunkSize) continue;
    let all = Buffer.concat(pending);
    while (all.length >= chunkSize) {
      await send(all.subarray(0, chunkSize));
      all = all.subarray(chunkSize);
    }
    pending = [all];
    pendingSize = all.length;
  }
  if (pendingSize > 0) await send(Buffer.concat(pending));
  const response = await client.transport.send({
    registry: target.registry, repository: target.repository, method: 'PUT',
    path: withDigest(location, blob.digest),
    scopes: [`repository:${target.repository}:pull,push`],
    headers: { 'content-length': '0' },
    long: true,
    ...(signal ? { signal } : {}),
  });
  await response.body.dump();
}

/**
 * Adds ?digest= to an upload Location without re-encoding the query it already carries
 * (distribution's _state token must come back byte for byte).
 */
export function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}
