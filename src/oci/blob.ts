// Moving one blob's bytes: a streaming GET from the source feeds the upload to the target, with
// the digest and size checked on the way, so nothing touches the disk and memory stays flat
// whatever the blob's size. A bad byte aborts the upload before the registry can commit it.
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ManifestError, RegistryError } from '../errors.ts';
import { digestAlgorithm, type Descriptor } from './manifest.ts';
import { header, repoName, type RegistryClient, type Repository } from './registry.ts';
import type { RegistryResponse } from './transport/transport.ts';
import { isTransientNetworkError } from '../util/retry-policy.ts';

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
 * connection drops, and fails if the bytes do not add up to the descriptor's size and digest. The
 * last chunk is held back until the digest is checked, so a corrupt blob never reaches the target
 * whole. Chunks pass straight from the response to the consumer ('data' events, no promise per
 * chunk: a blob is 16,000 chunks per GiB, and this is most of the client's CPU in a copy).
 */
class VerifiedBlob extends Readable {
  /** The source's own failure (a corrupt byte, a download that could not be resumed), once there is one. */
  failure: unknown;
  readonly #client: RegistryClient;
  readonly #source: Repository;
  readonly #blob: Descriptor;
  readonly #options: BlobTransferOptions;
  readonly #hash: Hash;
  #body: RegistryResponse['body'] | undefined;
  #offset = 0;
  #skip = 0;
  #resumes = 0;
  #opened = false;
  #checked = false;

  constructor(client: RegistryClient, source: Repository, blob: Descriptor, options: BlobTransferOptions = {}) {
    super();
    this.#client = client;
    this.#source = source;
    this.#blob = blob;
    this.#options = options;
    this.#hash = createHash(digestAlgorithm(blob.digest));
  }

  override _read(): void {
    if (this.#opened) this.#body?.resume();
    else {
      this.#opened = true;
      void this.#open();
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#body?.destroy();
    callback(err);
  }

  /** GET of the blob from the current offset (a Range request when resuming). */
  async #open(): Promise<void> {
    const offset = this.#offset;
    let response: RegistryResponse;
    try {
      response = await this.#client.getBlob(this.#source, this.#blob.digest, offset, this.#options.signal);
    } catch (err) {
      this.#fail(err);
      return;
    }
    if (this.destroyed) {
      response.body.destroy();
      return;
    }
    // A server that ignores Range sends everything again: skip what we already have.
    this.#skip = offset > 0 && response.status === 200 ? offset : 0;
    if (offset > 0 && response.status === 206 && !header(response, 'content-range')?.startsWith(`bytes ${offset}-`)) {
      response.body.destroy();
      this.#fail(new RegistryError(this.#source.registry, `${repoName(this.#source)}: resumed download of ${this.#blob.digest} returned the wrong range`, { transient: true }));
      return;
    }
    const body = response.body;
    this.#body = body;
    body.on('data', (chunk: Buffer) => this.#data(chunk));
    body.once('end', () => this.#end());
    body.once('error', (err: Error) => this.#bodyError(body, err));
  }

  #data(chunk: Buffer): void {
    if (this.destroyed) return;
    let data = chunk;
    if (this.#skip > 0) {
      if (data.length <= this.#skip) {
        this.#skip -= data.length;
        return;
      }
      data = data.subarray(this.#skip);
      this.#skip = 0;
    }
    this.#offset += data.length;
    if (this.#offset > this.#blob.size) {
      this.#fail(corrupted(this.#source, this.#blob, `more than the ${this.#blob.size} bytes its descriptor gives`));
      return;
    }
    this.#hash.update(data);
    if (this.#offset === this.#blob.size && !this.#check()) return;
    this.#options.onBytes?.(data.length);
    if (!this.push(data)) this.#body?.pause();
  }

  #end(): void {
    if (this.destroyed) return;
    if (this.#offset !== this.#blob.size) {
      this.#fail(corrupted(this.#source, this.#blob, `${this.#offset} bytes instead of ${this.#blob.size}`));
      return;
    }
    if (this.#checked || this.#check()) this.push(null);
  }

  /** The digest of all the bytes; false (and the stream failed) when it is not the descriptor's. */
  #check(): boolean {
    this.#checked = true;
    const digest = `${digestAlgorithm(this.#blob.digest)}:${this.#hash.digest('hex')}`;
    if (digest === this.#blob.digest) return true;
    this.#fail(corrupted(this.#source, this.#blob, `bytes whose digest is ${digest}`));
    return false;
  }

  /** The response broke off: resume from the offset reached, unless that is pointless. */
  #bodyError(body: RegistryResponse['body'], err: unknown): void {
    body.destroy();
    if (this.destroyed || body !== this.#body) return;
    this.#body = undefined;
    if (this.#resumes >= maxSourceResumes || this.#options.signal?.aborted || !isTransient(err)) {
      this.#fail(err);
      return;
    }
    this.#resumes++;
    void this.#open();
  }

  #fail(err: unknown): void {
    this.failure ??= err;
    this.destroy(err instanceof Error ? err : new Error(String(err)));
  }
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
  const bytes = new VerifiedBlob(client, source, blob, options);
  try {
    if (options.chunkSize) {
      await uploadChunked(client, target, blob, location, bytes, options.chunkSize, options.signal);
    } else {
      await client.finishUpload(target, location, blob.digest, { size: blob.size, stream: () => bytes }, options.signal);
    }
  } catch (err) {
    // The source's own error (a corrupt byte) is the one worth reporting, not the aborted upload it causes.
    throw bytes.failure ?? err;
  } finally {
    bytes.destroy();
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
    location = await client.patchUpload(target, location, chunk, offset, signal);
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
  await client.finishUpload(target, location, blob.digest, undefined, signal);
}
