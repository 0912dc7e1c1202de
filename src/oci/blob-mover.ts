// Moves blobs into a target repository, each once per run: present already, mounted from another
// repository of the same registry that holds it (one this run filled, the source itself, or one
// found in the registry), or uploaded. It remembers where each blob lives, so a blob shared by many
// images moves once and is mounted everywhere else.
import { ManifestError, RegistryError } from '../errors.ts';
import { registryKey } from '../reference.ts';
import { createLimiter, type Limiter } from '../util/limit.ts';
import { once } from '../util/once.ts';
import { isTransientNetworkError } from '../util/retry-policy.ts';
import { uploadBlob } from './blob.ts';
import type { CopyCounts, CopyOptions, Tally } from './copy-options.ts';
import { isNonDistributable, type Descriptor } from './manifest.ts';
import type { MountCandidates } from './mount-candidates.ts';
import { repoName, type RegistryClient, type Repository } from './registry.ts';

const ecrHost = /\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/;
/** ECR refuses chunks under 5 MiB (but the last). */
const ecrChunkSize = 5 * 1024 * 1024;
/**
 * Whole transfers of one blob: the transport retries each request and blob.ts resumes a cut
 * stream; what fails past both (an upload session lost) starts the blob over, this many times.
 */
const blobAttempts = 3;

type BlobAction = 'copied' | 'mounted' | 'present';

export class BlobMover {
  readonly #client: RegistryClient;
  readonly #options: CopyOptions;
  readonly #tally: Tally;
  readonly #mounts: MountCandidates;
  readonly #transfers: Limiter;
  /** registry key -> digest -> repositories known to hold the blob (mount sources). */
  readonly #homes = new Map<string, Map<string, Set<string>>>();
  /** Blob work in flight or done, by target repository and digest. */
  readonly #work = new Map<string, Promise<void>>();
  /** Uploads in flight by target registry and digest, so other repositories mount instead of uploading again. */
  readonly #uploads = new Map<string, Promise<void>>();

  constructor(client: RegistryClient, options: CopyOptions, tally: Tally, mounts: MountCandidates) {
    this.#client = client;
    this.#options = options;
    this.#tally = tally;
    this.#mounts = mounts;
    this.#transfers = createLimiter(options.concurrency ?? 8);
  }

  /** Puts `blob` into `dst` (from `src`), once per run; non-distributable layers are left where they are served. */
  async copy(src: Repository, dst: Repository, blob: Descriptor, counts: CopyCounts): Promise<void> {
    if (isNonDistributable(blob)) {
      this.#options.onEvent?.({ kind: 'warning', message: `${repoName(src)}: layer ${blob.digest} is non-distributable (served from ${blob.urls?.[0]}); not copied` });
      return;
    }
    return once(this.#work, `${registryKey(dst.registry)}/${dst.repository}@${blob.digest}`, () => this.#transfer(src, dst, blob, counts));
  }

  async #transfer(src: Repository, dst: Repository, blob: Descriptor, counts: CopyCounts): Promise<void> {
    const report = (action: BlobAction) => {
      this.#remember(dst, blob.digest);
      this.#tally.add(counts, action === 'copied' ? 'blobsCopied' : action === 'mounted' ? 'blobsMounted' : 'blobsPresent', 1);
      this.#options.onEvent?.({ kind: 'blob', action, target: repoName(dst), digest: blob.digest, size: blob.size });
    };
    if (await this.#client.headBlob(dst, blob.digest) !== undefined) return report('present');
    // The same blob on its way into another repository of this registry: wait, then mount it.
    const registryDigest = `${registryKey(dst.registry)}@${blob.digest}`;
    const elsewhere = this.#uploads.get(registryDigest);
    if (elsewhere) await elsewhere.catch(() => {});
    else {
      const mine = this.#upload(src, dst, blob, counts, report);
      this.#uploads.set(registryDigest, mine);
      return mine.finally(() => this.#uploads.delete(registryDigest));
    }
    return this.#upload(src, dst, blob, counts, report);
  }

  async #upload(src: Repository, dst: Repository, blob: Descriptor, counts: CopyCounts, report: (action: BlobAction) => void): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const mountFrom = await this.#mountSource(src, dst, blob);
        return await this.#transfers(async () => {
          const start = await this.#client.startUpload(dst, blob.digest, mountFrom);
          if (start.mounted) return report('mounted');
          const chunkSize = this.#options.chunkSize ?? start.chunkMinLength ?? (ecrHost.test(dst.registry) ? ecrChunkSize : undefined);
          let moved = 0;
          try {
            await uploadBlob(this.#client, src, dst, blob, start.location, {
              ...(chunkSize ? { chunkSize } : {}),
              ...(this.#options.signal ? { signal: this.#options.signal } : {}),
              onBytes: (bytes) => {
                moved += bytes;
                this.#options.onEvent?.({ kind: 'bytes', bytes });
              },
            });
          } catch (err) {
            await this.#client.cancelUpload(dst, start.location);
            throw err;
          }
          this.#tally.add(counts, 'bytesCopied', moved);
          report('copied');
        });
      } catch (err) {
        const transient = err instanceof RegistryError ? err.transient : !(err instanceof ManifestError) && isTransientNetworkError(err, { stream: true });
        if (!transient || attempt >= blobAttempts || this.#options.signal?.aborted) throw err;
      }
    }
  }

  /**
   * A repository of the target registry that holds the blob: one this run put it in, the source
   * when it is the same registry, else one found in the registry (mount-candidates.ts).
   */
  async #mountSource(src: Repository, dst: Repository, blob: Descriptor): Promise<Repository | undefined> {
    const homes = this.#homes.get(registryKey(dst.registry))?.get(blob.digest);
    const other = homes && [...homes].find((repository) => repository !== dst.repository);
    if (other) return { registry: dst.registry, repository: other };
    if (registryKey(src.registry) === registryKey(dst.registry)) return src;
    return this.#mounts.find(src, dst, blob);
  }

  #remember(repo: Repository, digest: string): void {
    const registry = registryKey(repo.registry);
    let byDigest = this.#homes.get(registry);
    if (!byDigest) this.#homes.set(registry, (byDigest = new Map()));
    let homes = byDigest.get(digest);
    if (!homes) byDigest.set(digest, (homes = new Set()));
    homes.add(repo.repository);
  }
}
