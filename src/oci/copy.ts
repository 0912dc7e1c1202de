// The copy engine: one image at a time or many in parallel, every platform, every digest kept.
// It remembers during a run where each blob already lives in the target registry, so a blob
// shared by many images moves once and is mounted everywhere else.
import type { ImageCopier } from '../core/ports.ts';
import { ManifestError, RegistryError } from '../errors.ts';
import { uploadBlob } from './blob.ts';
import { createLimiter, type Limiter } from '../util/limit.ts';
import { MountCandidates } from './mount-candidates.ts';
import { isTransientNetworkError } from '../util/retry.ts';
import {
  formatPlatform, isIndexType, isNonDistributable, mediaTypes, parseManifest, platformMatches, sha256Digest, uniqueByDigest,
  type Descriptor, type Platform,
} from './manifest.ts';
import { formatReference, registryKey, type ImageReference } from '../reference.ts';
import { repoName, type Manifest, type ManifestHead, type RegistryClient, type Repository } from './registry.ts';
import { treeHolding } from './holding.ts';
import { anchorTag } from '../core/naming.ts';

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

export interface CopyCounts {
  manifestsPushed: number;
  blobsCopied: number;
  blobsMounted: number;
  blobsPresent: number;
  bytesCopied: number;
  signatures: number;
}

export interface ImageCopyResult {
  source: string;
  target: string;
  /** The digest now under the target reference. */
  digest: string;
  mediaType: string;
  /** present: the target already had this digest under the tag, nothing was copied. */
  status: 'copied' | 'present';
  platforms: string[];
  counts: CopyCounts;
}

const ecrHost = /\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/;
/** ECR refuses chunks under 5 MiB (but the last). */
const ecrChunkSize = 5 * 1024 * 1024;
const blobAttempts = 3;

const emptyCounts = (): CopyCounts => ({ manifestsPushed: 0, blobsCopied: 0, blobsMounted: 0, blobsPresent: 0, bytesCopied: 0, signatures: 0 });

export class CopyEngine implements ImageCopier {
  readonly totals = emptyCounts();
  readonly #client: RegistryClient;
  readonly #options: CopyOptions;
  readonly #transfers: Limiter;
  /** registry key -> digest -> repositories known to hold the blob (mount sources). */
  readonly #blobHomes = new Map<string, Map<string, Set<string>>>();
  /** Blob and manifest work in flight or done, by target repository and digest: each happens once. */
  readonly #blobWork = new Map<string, Promise<void>>();
  readonly #manifestWork = new Map<string, Promise<void>>();
  /** Uploads in flight by target registry and digest, so other repositories mount instead of uploading again. */
  readonly #uploadsByDigest = new Map<string, Promise<void>>();
  /** Attachments (signatures, referrers) handled, by target repository and subject digest: once per run. */
  readonly #attachmentWork = new Map<string, Promise<void>>();
  /** Source tag lists, by repository: one request per repository per run. */
  readonly #sourceTags = new Map<string, Promise<Set<string>>>();
  /** Whether a registry answers the referrers API, by registry, once known. */
  readonly #referrersApi = new Map<string, boolean>();
  /** Source tags HEADed while measuring images, by repository and tag, until their copy takes them. */
  readonly #measuredHeads = new Map<string, Promise<ManifestHead | undefined>>();
  /** Source manifests by repository and digest: measuring an image fetches what its copy needs. */
  readonly #manifests = new Map<string, Promise<Manifest>>();
  /** Where else in the target registry a blob may be, from earlier runs and other processes. */
  readonly #mounts: MountCandidates;
  /** Set when a target registry refuses every write (out of storage, read-only): no image after it is tried. */
  #halted: RegistryError | undefined;

  constructor(client: RegistryClient, options: CopyOptions = {}) {
    this.#client = client;
    this.#options = options;
    this.#transfers = createLimiter(options.concurrency ?? 8);
    this.#mounts = new MountCandidates(client);
  }

  /** Why copying stopped early, if it did: a target out of storage or read-only fails every image the same way. */
  get halted(): RegistryError | undefined {
    return this.#halted;
  }

  /** Repositories of a target registry that hold whole images: a new image's blobs are mounted from them, not uploaded. */
  knownRepositories(repositories: Repository[]): void {
    this.#mounts.hint(repositories);
  }

  /**
   * Copies `source` to `target` whole: the index, every child (each under its anchor tag), every
   * blob, then the tag, then `alsoTags` (the seal). When the target tag already holds the source
   * digest whole, nothing is read or written beyond a few HEADs.
   */
  async copyImage(source: ImageReference, target: ImageReference, alsoTags: string[] = []): Promise<ImageCopyResult> {
    const src: Repository = { registry: source.registry, repository: source.repository };
    const dst: Repository = { registry: target.registry, repository: target.repository };
    const counts = emptyCounts();
    const result = (digest: string, mediaType: string, status: ImageCopyResult['status'], platforms: string[]): ImageCopyResult =>
      ({ source: formatReference(source), target: formatReference(target), digest, mediaType, status, platforms, counts });

    const sourceRef = source.digest ?? source.tag ?? 'latest';
    const head = await (this.#takeMeasuredHead(src, sourceRef) ?? this.#client.headManifest(src, sourceRef));
    if (!head) {
      throw new RegistryError(source.registry, `${formatReference(source)}: no such image in the source registry`, { status: 404, code: 'MANIFEST_UNKNOWN', transient: false });
    }
    const filtering = Boolean(this.#options.platforms?.length);
    const targetRef = target.tag ?? target.digest ?? head.digest;
    if (target.digest && !target.tag && target.digest !== head.digest && !filtering) {
      throw new ManifestError(`${formatReference(target)}: the target digest differs from the source's ${head.digest}`);
    }
    // A target found incomplete (a child or, with verifyBlobs, a blob gone) is copied again over
    // what it holds: every child and blob is looked at, even those with their anchor.
    let repair = false;
    if (!filtering) {
      const existing = await this.#client.headManifest(dst, targetRef, true);
      const holding = existing?.digest === head.digest
        ? await treeHolding(this.#client, dst, existing, { blobs: this.#options.verifyBlobs ?? false })
        : undefined;
      repair = holding !== undefined && holding.state !== 'whole';
      if (holding?.state === 'whole') {
        this.#mounts.hint([dst]);
        await this.#tagAlso(dst, head.digest, alsoTags, undefined);
        // In the target already; what was attached to it upstream since the last run still comes.
        if (this.#options.signatures ?? true) {
          // The copy is in place: a failure here is a warning, not a failed image.
          await this.#copyAttachments(src, dst, head, undefined, counts).catch((err: unknown) => {
            this.#options.onEvent?.({ kind: 'warning', message: `${formatReference(source)}: its signatures and referrers were not refreshed: ${firstLine(err)}` });
          });
        }
        return result(head.digest, head.mediaType, 'present', []);
      }
    }

    const original = await this.#manifest(src, head.digest);
    let manifest = original;
    if (filtering) manifest = this.#filterPlatforms(manifest, formatReference(source));
    // Children first, each under its own anchor tag; the image's own tag last, so that its presence
    // means the whole tree is held.
    const platforms = await this.#copyTree(src, dst, manifest, [], counts, repair);
    await this.#client.putManifest(dst, targetRef, manifest);
    this.#count(counts, 'manifestsPushed', 1);
    this.#options.onEvent?.({ kind: 'manifest', target: repoName(dst), reference: targetRef, digest: manifest.digest });

    // Verify before anyone relies on the copy: the target must answer with the exact digest.
    const stored = await this.#client.headManifest(dst, targetRef, true);
    if (stored?.digest !== manifest.digest) {
      throw new ManifestError(`${formatReference(target)}: after the copy the target answers ${stored?.digest ?? 'nothing'} instead of ${manifest.digest}`);
    }
    await this.#tagAlso(dst, manifest.digest, alsoTags, manifest);
    if (this.#options.signatures ?? true) await this.#copyAttachments(src, dst, head, original, counts);
    return result(manifest.digest, manifest.mediaType, 'copied', platforms);
  }

  /**
   * Copies many images, largest first so that the longest transfer starts early and the run ends
   * sooner; `imageConcurrency` images at a time (blob transfers are limited separately). Results come
   * back in the order given; one image's failure does not stop the others.
   */
  async copyAll(jobs: Array<{ source: ImageReference; target: ImageReference; alsoTags?: string[] }>, imageConcurrency: number): Promise<Array<{ result: ImageCopyResult } | { error: unknown }>> {
    // Measuring reads what the copy needs: an image whose measuring failed (after its retries) fails
    // with that error, rather than going through the same retries again. One image has no order to
    // choose: it is not measured, so an image already in place costs two HEADs, not its whole tree.
    const sizes = jobs.length === 1 ? [{ bytes: 0, error: undefined as unknown }]
      : await Promise.all(jobs.map((job) => this.size(job.source).then((bytes) => ({ bytes, error: undefined as unknown }), (error: unknown) => ({ bytes: 0, error }))));
    const order = jobs.map((_, i) => i).sort((a, b) => sizes[b]!.bytes - sizes[a]!.bytes);
    const slots = createLimiter(imageConcurrency);
    const outcomes: Array<{ result: ImageCopyResult } | { error: unknown }> = new Array(jobs.length);
    await Promise.all(order.map((i) => slots(async () => {
      const measured = sizes[i]!;
      if (measured.error !== undefined) {
        outcomes[i] = { error: measured.error };
        return;
      }
      const halted = this.#halted;
      if (halted) {
        outcomes[i] = { error: new RegistryError(halted.registry, `not tried: ${halted.message}`, { transient: false, ...(halted.condition ? { condition: halted.condition } : {}) }) };
        return;
      }
      try {
        outcomes[i] = { result: await this.copyImage(jobs[i]!.source, jobs[i]!.target, jobs[i]!.alsoTags) };
      } catch (error) {
        outcomes[i] = { error };
        if (error instanceof RegistryError && registryKey(error.registry) === registryKey(jobs[i]!.target.registry)
          && (error.condition === 'storage-full' || error.condition === 'read-only') && !this.#halted) {
          this.#halted = error;
          this.#options.onHalt?.(error);
        }
      }
    })));
    return outcomes;
  }

  /**
   * Puts the manifest `repository` holds by `digest` under `tag` too: the registry's own bytes and
   * media type, so the digest stays the same and no blob moves (the registry checks its references).
   */
  async tag(repository: Repository, digest: string, tags: string | string[]): Promise<void> {
    const manifest = await this.#client.getManifest(repository, digest);
    await this.#anchorChildren(repository, manifest, 0);
    for (const tag of typeof tags === 'string' ? [tags] : tags) {
      await this.#client.putManifest(repository, tag, manifest);
      this.#options.onEvent?.({ kind: 'manifest', target: repoName(repository), reference: tag, digest });
    }
  }

  /** Puts a verified copy under more tags where they do not hold it yet (the target's own bytes when not given). */
  async #tagAlso(dst: Repository, digest: string, tags: string[], manifest: Manifest | undefined): Promise<void> {
    for (const tag of tags) {
      if ((await this.#client.headManifest(dst, tag, true))?.digest === digest) continue;
      manifest ??= await this.#client.getManifest(dst, digest);
      await this.#client.putManifest(dst, tag, manifest);
      this.#options.onEvent?.({ kind: 'manifest', target: repoName(dst), reference: tag, digest });
    }
  }

  /**
   * Gives each child of an index the repository holds its anchor tag, from the repository's own
   * bytes (a copy made before every manifest had a tag of its own): no blob moves. A child that is
   * gone cannot be tagged: the error says so, and the image is copied again once resolution sees it.
   */
  async #anchorChildren(repository: Repository, manifest: Manifest, depth: number): Promise<void> {
    const parsed = parseManifest(manifest.bytes, manifest.mediaType, `${repoName(repository)}@${manifest.digest}`);
    if (parsed.kind !== 'index' || depth > 4) return;
    await settleAll(uniqueByDigest(parsed.manifests).map(async (child) => {
      const anchor = anchorTag(child.digest);
      if ((await this.#client.headManifest(repository, anchor, true))?.digest === child.digest) return;
      const bytes = await this.#client.getManifest(repository, child.digest);
      await this.#anchorChildren(repository, bytes, depth + 1);
      await this.#client.putManifest(repository, anchor, bytes);
      this.#options.onEvent?.({ kind: 'manifest', target: repoName(repository), reference: anchor, digest: child.digest });
    }));
  }

  /**
   * For images the target already holds (by digest): copies what was attached to them upstream
   * since, at the cost #copyAttachments states. A failure is a warning: the copy itself stands.
   */
  async refreshAttachments(jobs: Array<{ source: ImageReference; target: ImageReference }>, concurrency: number): Promise<void> {
    if (!(this.#options.signatures ?? true)) return;
    const slots = createLimiter(Math.max(1, concurrency));
    await Promise.all(jobs.map((job) => slots(async () => {
      const digest = job.source.digest ?? job.target.digest;
      if (!digest) return;
      try {
        await this.#copyAttachments({ registry: job.source.registry, repository: job.source.repository },
          { registry: job.target.registry, repository: job.target.repository }, { digest, mediaType: undefined }, undefined, emptyCounts());
      } catch (err) {
        this.#options.onEvent?.({ kind: 'warning', message: `${formatReference(job.source)}: its signatures and referrers were not refreshed: ${firstLine(err)}` });
      }
    })));
  }

  /** Bytes of the distinct blobs an image references, from its manifests (cached for the copy). */
  async size(source: ImageReference): Promise<number> {
    const src: Repository = { registry: source.registry, repository: source.repository };
    let digest = source.digest;
    if (!digest) {
      // The copy that follows takes this answer rather than asking the source again.
      const tag = source.tag ?? 'latest';
      const head = this.#client.headManifest(src, tag);
      this.#measuredHeads.set(this.#headKey(src, tag), head);
      head.catch(() => this.#measuredHeads.delete(this.#headKey(src, tag)));
      digest = (await head)?.digest;
    }
    if (!digest) return 0;
    const blobs = new Map<string, number>();
    const walk = async (manifestDigest: string, depth: number): Promise<void> => {
      if (depth > 4) return;
      const manifest = await this.#manifest(src, manifestDigest);
      const parsed = parseManifest(manifest.bytes, manifest.mediaType, `${repoName(src)}@${manifestDigest}`);
      if (parsed.kind === 'index') await settleAll(uniqueByDigest(parsed.manifests).map((m) => walk(m.digest, depth + 1)));
      else for (const b of [...(parsed.config ? [parsed.config] : []), ...parsed.layers]) blobs.set(b.digest, b.size);
    };
    await walk(digest, 0);
    return [...blobs.values()].reduce((a, b) => a + b, 0);
  }

  #headKey(src: Repository, tag: string): string {
    return `${registryKey(src.registry)}/${src.repository}:${tag}`;
  }

  /** The source tag's HEAD made while measuring the image, once: a later copy of the tag asks again. */
  #takeMeasuredHead(src: Repository, tag: string): Promise<ManifestHead | undefined> | undefined {
    const key = this.#headKey(src, tag);
    const head = this.#measuredHeads.get(key);
    this.#measuredHeads.delete(key);
    return head;
  }

  #manifest(src: Repository, digest: string): Promise<Manifest> {
    const key = `${registryKey(src.registry)}/${src.repository}@${digest}`;
    let manifest = this.#manifests.get(key);
    if (!manifest) {
      manifest = this.#client.getManifest(src, digest);
      this.#manifests.set(key, manifest);
      manifest.catch(() => this.#manifests.delete(key));
    }
    return manifest;
  }

  /** Copies what a manifest references (children first, then blobs); returns the platforms seen. */
  async #copyTree(src: Repository, dst: Repository, manifest: Manifest, ancestors: string[], counts: CopyCounts, repair = false): Promise<string[]> {
    const where = `${repoName(src)}@${manifest.digest}`;
    const parsed = parseManifest(manifest.bytes, manifest.mediaType, where);
    if (parsed.kind === 'index') {
      const children = uniqueByDigest(parsed.manifests);
      await settleAll(children.map((child) => this.#copyChild(src, dst, child.digest, [...ancestors, manifest.digest], counts, repair)));
      return children.map((child) => formatPlatform(child.platform));
    }
    const blobs = uniqueByDigest([...(parsed.config ? [parsed.config] : []), ...parsed.layers]);
    this.#mounts.noteImage(dst, blobs, parsed.layers);
    await settleAll(blobs.map((blob) => this.#copyBlob(src, dst, blob, counts)));
    return [];
  }

  /**
   * A child manifest, under its own anchor tag (a garbage collector that does not follow an index to
   * its children keeps it): skipped when the target holds it under its anchor, else copied whole,
   * once per run. In a repair, an anchored child is walked too: what is below it may be gone.
   */
  async #copyChild(src: Repository, dst: Repository, digest: string, ancestors: string[], counts: CopyCounts, repair: boolean): Promise<void> {
    if (ancestors.includes(digest)) {
      throw new ManifestError(`${repoName(src)}@${digest}: the index refers to itself`);
    }
    const key = `${registryKey(dst.registry)}/${dst.repository}@${digest}`;
    let work = this.#manifestWork.get(key);
    if (!work) {
      work = (async () => {
        const anchor = anchorTag(digest);
        const anchored = (await this.#client.headManifest(dst, anchor, true))?.digest === digest;
        if (anchored && !repair) return;
        const child = await this.#manifest(src, digest);
        await this.#copyTree(src, dst, child, ancestors, counts, repair);
        if (anchored) return;
        await this.#client.putManifest(dst, anchor, child);
        this.#count(counts, 'manifestsPushed', 1);
        this.#options.onEvent?.({ kind: 'manifest', target: repoName(dst), reference: anchor, digest });
      })();
      this.#manifestWork.set(key, work);
      work.catch(() => this.#manifestWork.delete(key));
    }
    return work;
  }

  async #copyBlob(src: Repository, dst: Repository, blob: Descriptor, counts: CopyCounts): Promise<void> {
    if (isNonDistributable(blob)) {
      this.#options.onEvent?.({ kind: 'warning', message: `${repoName(src)}: layer ${blob.digest} is non-distributable (served from ${blob.urls?.[0]}); not copied` });
      return;
    }
    const key = `${registryKey(dst.registry)}/${dst.repository}@${blob.digest}`;
    let work = this.#blobWork.get(key);
    if (!work) {
      work = this.#transferBlob(src, dst, blob, counts);
      this.#blobWork.set(key, work);
      work.catch(() => this.#blobWork.delete(key));
    }
    return work;
  }

  async #transferBlob(src: Repository, dst: Repository, blob: Descriptor, counts: CopyCounts): Promise<void> {
    const report = (action: 'copied' | 'mounted' | 'present') => {
      this.#remember(dst, blob.digest);
      this.#count(counts, action === 'copied' ? 'blobsCopied' : action === 'mounted' ? 'blobsMounted' : 'blobsPresent', 1);
      this.#options.onEvent?.({ kind: 'blob', action, target: repoName(dst), digest: blob.digest, size: blob.size });
    };
    if (await this.#client.headBlob(dst, blob.digest) !== undefined) return report('present');
    // The same blob on its way into another repository of this registry: wait, then mount it.
    const registryDigest = `${registryKey(dst.registry)}@${blob.digest}`;
    const elsewhere = this.#uploadsByDigest.get(registryDigest);
    if (elsewhere) await elsewhere.catch(() => {});
    else {
      const mine = this.#uploadBlob(src, dst, blob, counts, report);
      this.#uploadsByDigest.set(registryDigest, mine);
      return mine.finally(() => this.#uploadsByDigest.delete(registryDigest));
    }
    return this.#uploadBlob(src, dst, blob, counts, report);
  }

  async #uploadBlob(src: Repository, dst: Repository, blob: Descriptor, counts: CopyCounts, report: (action: 'copied' | 'mounted' | 'present') => void): Promise<void> {
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
          this.#count(counts, 'bytesCopied', moved);
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
    const homes = this.#blobHomes.get(registryKey(dst.registry))?.get(blob.digest);
    const other = homes && [...homes].find((repository) => repository !== dst.repository);
    if (other) return { registry: dst.registry, repository: other };
    if (registryKey(src.registry) === registryKey(dst.registry)) return src;
    return this.#mounts.find(src, dst, blob);
  }

  #remember(repo: Repository, digest: string): void {
    const registry = registryKey(repo.registry);
    let byDigest = this.#blobHomes.get(registry);
    if (!byDigest) this.#blobHomes.set(registry, (byDigest = new Map()));
    let homes = byDigest.get(digest);
    if (!homes) byDigest.set(digest, (homes = new Set()));
    homes.add(repo.repository);
  }

  /**
   * What is attached to the image and to each of its children in the source: cosign's
   * sha256-<hex>.sig/.att/.sbom tags, and OCI referrers (the referrers API, or its fallback tag
   * sha256-<hex>). Runs for images already in the target too, so attachments added upstream since
   * the first copy arrive. Source cost: one tag list per repository and one referrers probe per
   * registry per run; then, only for what exists, a HEAD per cosign tag, a GET per fallback tag,
   * and on a registry with the referrers API one query per manifest of the image.
   */
  async #copyAttachments(src: Repository, dst: Repository, root: { digest: string; mediaType: string | undefined }, manifest: Manifest | undefined, counts: CopyCounts): Promise<void> {
    const tags = await this.#tagsOf(src);
    const tagged = new Set<string>();
    for (const tag of tags) {
      const match = attachmentTag.exec(tag);
      if (match) tagged.add(`sha256:${match[1]}`);
    }
    const rootReferrers = await this.#referrersOf(src, root.digest);
    const api = rootReferrers !== undefined;
    const subjects = [root.digest];
    // Children matter when the source may list referrers for them, or tags name a digest other than the root.
    // (A media type not known yet is read with the index.)
    if ((root.mediaType === undefined || isIndexType(root.mediaType)) && (api || [...tagged].some((digest) => digest !== root.digest))) {
      // An image already in the target is read there (the same bytes): the source is asked for nothing more.
      const index = manifest ?? await this.#client.getManifest(dst, root.digest);
      const parsed = parseManifest(index.bytes, index.mediaType, `${repoName(dst)}@${root.digest}`);
      if (parsed.kind === 'index') subjects.push(...uniqueByDigest(parsed.manifests).map((child) => child.digest));
    }
    await settleAll(subjects.map((subject) => {
      const key = `${registryKey(dst.registry)}/${dst.repository}@${subject}`;
      let work = this.#attachmentWork.get(key);
      if (!work) {
        const known = subject === root.digest ? rootReferrers : undefined;
        work = this.#attachmentsOf(src, dst, subject, tags, api, known, counts);
        this.#attachmentWork.set(key, work);
        work.catch(() => this.#attachmentWork.delete(key));
      }
      return work;
    }));
  }

  /** The source's tags, listed once per repository per run. */
  #tagsOf(src: Repository): Promise<Set<string>> {
    const key = `${registryKey(src.registry)}/${src.repository}`;
    let tags = this.#sourceTags.get(key);
    if (!tags) {
      // A registry that refuses to list tags (some want more than pull rights for it) still gives
      // its referrers; the cosign tags are then not seen, and the run says so once.
      tags = this.#client.listTags(src).then((list) => new Set(list), (err: unknown) => {
        this.#options.onEvent?.({ kind: 'warning', message: `${repoName(src)}: cannot list its tags, so cosign signatures are not copied from it: ${firstLine(err)}` });
        return new Set<string>();
      });
      this.#sourceTags.set(key, tags);
    }
    return tags;
  }

  /**
   * Referrers of a digest through the referrers API; undefined when the registry has none. A
   * registry found without the API is not asked again during the run.
   */
  async #referrersOf(repo: Repository, digest: string): Promise<Descriptor[] | undefined> {
    const registry = registryKey(repo.registry);
    if (this.#referrersApi.get(registry) === false) return undefined;
    const found = await this.#client.referrers(repo, digest);
    this.#referrersApi.set(registry, found !== undefined);
    return found;
  }

  async #attachmentsOf(src: Repository, dst: Repository, subject: string, tags: Set<string>, api: boolean, known: Descriptor[] | undefined, counts: CopyCounts): Promise<void> {
    const base = subject.replace(':', '-');
    await settleAll(cosignSuffixes.filter((suffix) => tags.has(base + suffix)).map((suffix) => this.#copyTag(src, dst, base + suffix, counts)));
    const referrers: Descriptor[] = api ? [...(known ?? (await this.#referrersOf(src, subject)) ?? [])] : [];
    let sourceFallback: Manifest | undefined;
    if (tags.has(base)) {
      sourceFallback = await this.#client.getManifest(src, base);
      const parsed = parseManifest(sourceFallback.bytes, sourceFallback.mediaType, `${repoName(src)}:${base}`);
      if (parsed.kind === 'index') for (const d of parsed.manifests) if (!referrers.some((r) => r.digest === d.digest)) referrers.push(d);
    }
    if (referrers.length) await this.#pushReferrers(src, dst, subject, referrers, sourceFallback, counts);
  }

  /** A tag of the source (a cosign signature, attestation or SBOM), when the target's differs. */
  async #copyTag(src: Repository, dst: Repository, tag: string, counts: CopyCounts): Promise<void> {
    const head = await this.#client.headManifest(src, tag);
    if (!head) return;
    const existing = await this.#client.headManifest(dst, tag, true);
    if (existing?.digest === head.digest) return;
    const manifest = await this.#manifest(src, head.digest);
    await this.#copyTree(src, dst, manifest, [], counts);
    await this.#client.putManifest(dst, tag, manifest);
    this.#count(counts, 'signatures', 1);
    this.#options.onEvent?.({ kind: 'manifest', target: repoName(dst), reference: tag, digest: manifest.digest });
  }

  /**
   * Pushes the referrers of one subject one after another (a registry that keeps one referrers
   * index per subject loses updates made at the same time). A target with the referrers API
   * (OCI-Subject on the PUT, or a referrers endpoint that answers) indexes them itself and gets no
   * fallback tag; one without gets the fallback tag sha256-<hex>, merged with what it lists already.
   */
  async #pushReferrers(src: Repository, dst: Repository, subject: string, referrers: Descriptor[], sourceFallback: Manifest | undefined, counts: CopyCounts): Promise<void> {
    const registry = registryKey(dst.registry);
    let targetApi = this.#referrersApi.get(registry);
    const missing = new Set<string>();
    for (const referrer of referrers) {
      // Each referrer under its own anchor tag: a fallback tag's index alone does not keep it from GC.
      const anchor = anchorTag(referrer.digest);
      if ((await this.#client.headManifest(dst, anchor, true))?.digest === referrer.digest) continue;
      if (await this.#client.headManifest(dst, referrer.digest, true)) {
        // Copied before referrers had their own tags: the target's own bytes get the tag.
        await this.tag(dst, referrer.digest, anchor);
        continue;
      }
      const manifest = await this.#manifest(src, referrer.digest).catch((err: unknown) => {
        // A fallback tag may still list a referrer that was deleted since: skip it, say so.
        if (err instanceof RegistryError && err.status === 404) return undefined;
        throw err;
      });
      if (!manifest) {
        this.#options.onEvent?.({ kind: 'warning', message: `${repoName(src)}: referrer ${referrer.digest} of ${subject} is listed but not there; not copied` });
        missing.add(referrer.digest);
        continue;
      }
      await this.#copyTree(src, dst, manifest, [subject], counts);
      const { ociSubject } = await this.#client.putManifest(dst, anchor, manifest);
      if (ociSubject) this.#referrersApi.set(registry, (targetApi = true));
      this.#count(counts, 'signatures', 1);
      this.#options.onEvent?.({ kind: 'manifest', target: repoName(dst), reference: anchor, digest: referrer.digest });
    }
    if (targetApi === undefined) {
      targetApi = (await this.#client.referrers(dst, subject)) !== undefined;
      this.#referrersApi.set(registry, targetApi);
    }
    if (targetApi) return;

    const base = subject.replace(':', '-');
    const head = await this.#client.headManifest(dst, base, true);
    const listed: Descriptor[] = [];
    if (head) {
      const current = await this.#client.getManifest(dst, head.digest);
      const parsed = parseManifest(current.bytes, current.mediaType, `${repoName(dst)}:${base}`);
      if (parsed.kind === 'index') listed.push(...parsed.manifests);
    }
    const merged = [...listed, ...referrers.filter((r) => !missing.has(r.digest) && !listed.some((l) => l.digest === r.digest))];
    if (!merged.length || (head && merged.length === listed.length)) return;
    let index: Pick<Manifest, 'bytes' | 'digest' | 'mediaType'>;
    const sourceListed = sourceFallback && parseManifest(sourceFallback.bytes, sourceFallback.mediaType, `${repoName(src)}:${base}`);
    if (!head && sourceFallback && sourceListed?.kind === 'index' && sameDigests(sourceListed.manifests, merged)) {
      index = sourceFallback; // the source's own bytes: the same digest on both sides
    } else {
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: merged.map(descriptorJson) }));
      index = { bytes, digest: sha256Digest(bytes), mediaType: mediaTypes.ociIndex };
    }
    await this.#client.putManifest(dst, base, index);
  }

  #filterPlatforms(manifest: Manifest, where: string): Manifest {
    const wanted = this.#options.platforms ?? [];
    const parsed = parseManifest(manifest.bytes, manifest.mediaType, where);
    if (parsed.kind !== 'index') {
      this.#options.onEvent?.({ kind: 'warning', message: `${where} is a single-platform image; --platform ignored, copied as is` });
      return manifest;
    }
    const doc = JSON.parse(manifest.bytes.toString('utf8')) as { manifests: Array<{ platform?: Platform }> };
    doc.manifests = doc.manifests.filter((child) => wanted.some((p) => platformMatches(p, child.platform)));
    if (!doc.manifests.length) {
      throw new ManifestError(`${where} has no manifest for ${wanted.map(formatPlatform).join(', ')} (it has ${parsed.manifests.map((m) => formatPlatform(m.platform)).join(', ')})`);
    }
    const bytes = Buffer.from(JSON.stringify(doc));
    const digest = sha256Digest(bytes);
    this.#options.onEvent?.({ kind: 'warning', message: `${where}: copying ${doc.manifests.length} of ${parsed.manifests.length} platforms rewrites the index; its digest changes from ${manifest.digest} to ${digest}` });
    return { bytes, digest, mediaType: manifest.mediaType, size: bytes.length };
  }

  #count(counts: CopyCounts, field: keyof CopyCounts, n: number): void {
    counts[field] += n;
    this.totals[field] += n;
  }
}

/** A tag of the cosign or referrers tag schemes: sha256-<hex>, optionally .sig, .att or .sbom. */
const attachmentTag = /^sha256-([a-f0-9]{64})(?:\.sig|\.att|\.sbom)?$/;
const cosignSuffixes = ['.sig', '.att', '.sbom'];

/**
 * Like Promise.all, but waits for every task before it throws the first failure: an image that
 * fails is reported once the work it started has ended, so no retry of that work is logged after
 * the image's error line.
 */
async function settleAll(work: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(work);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

function sameDigests(a: Descriptor[], b: Descriptor[]): boolean {
  const set = new Set(a.map((d) => d.digest));
  return set.size === b.length && b.every((d) => set.has(d.digest));
}

/** A descriptor as a referrers index lists it. */
function descriptorJson(d: Descriptor): Record<string, unknown> {
  return {
    mediaType: d.mediaType, digest: d.digest, size: d.size,
    ...(d.artifactType ? { artifactType: d.artifactType } : {}),
    ...(d.annotations ? { annotations: d.annotations } : {}),
    ...(d.platform ? { platform: d.platform } : {}),
  };
}

