// The copy engine: one image at a time or many in parallel, every platform, every digest kept.
// It walks an image's tree (children first, each under its anchor tag; the image's tag last), and
// hands blobs to the blob mover (blob-mover.ts) and attachments to attachments.ts. Each manifest
// and blob is read and written once per run, whatever number of images share it.
import type { ImageCopier } from '../core/ports.ts';
import { anchorTag } from '../core/naming.ts';
import { ManifestError, RegistryError } from '../errors.ts';
import { formatReference, registryKey, type ImageReference } from '../reference.ts';
import { createLimiter } from '../util/limit.ts';
import { once, settleAll } from '../util/once.ts';
import { oneLine } from '../util/text.ts';
import { AttachmentCopier } from './attachments.ts';
import { BlobMover } from './blob-mover.ts';
import { emptyCounts, Tally, type CopyCounts, type CopyOptions } from './copy-options.ts';
import { treeHolding } from './holding.ts';
import { formatPlatform, parseManifest, uniqueByDigest } from './manifest.ts';
import { MountCandidates } from './mount-candidates.ts';
import { filterPlatforms } from './platforms.ts';
import { repoName, type Manifest, type ManifestHead, type RegistryClient, type Repository } from './registry.ts';

export type { CopyCounts, CopyOptions } from './copy-options.ts';

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

export class CopyEngine implements ImageCopier {
  readonly #tally = new Tally();
  readonly #client: RegistryClient;
  readonly #options: CopyOptions;
  readonly #blobs: BlobMover;
  readonly #attachments: AttachmentCopier;
  /** Child manifests copied in this run, by target repository and digest. */
  readonly #manifestWork = new Map<string, Promise<void>>();
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
    this.#mounts = new MountCandidates(client);
    this.#blobs = new BlobMover(client, options, this.#tally, this.#mounts);
    this.#attachments = new AttachmentCopier(client, options, this.#tally, {
      manifest: (src, digest) => this.#manifest(src, digest),
      copyTree: (src, dst, manifest, ancestors, counts) => this.#copyTree(src, dst, manifest, ancestors, counts),
      tag: (repository, digest, tags) => this.tag(repository, digest, tags),
    });
  }

  /** What the run moved, over all images. */
  get totals(): Readonly<CopyCounts> {
    return this.#tally.totals;
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
          await this.#attachments.copy(src, dst, head, undefined, counts).catch((err: unknown) => {
            this.#options.onEvent?.({ kind: 'warning', message: `${formatReference(source)}: its signatures and referrers were not refreshed: ${oneLine(err)}` });
          });
        }
        return result(head.digest, head.mediaType, 'present', []);
      }
    }

    const original = await this.#manifest(src, head.digest);
    let manifest = original;
    if (filtering) {
      const filtered = filterPlatforms(manifest, this.#options.platforms ?? [], formatReference(source));
      this.#options.onEvent?.({ kind: 'warning', message: filtered.warning });
      manifest = filtered.manifest;
    }
    // Children first, each under its own anchor tag; the image's own tag last, so that its presence
    // means the whole tree is held.
    const platforms = await this.#copyTree(src, dst, manifest, [], counts, repair);
    await this.#client.putManifest(dst, targetRef, manifest);
    this.#tally.add(counts, 'manifestsPushed', 1);
    this.#options.onEvent?.({ kind: 'manifest', target: repoName(dst), reference: targetRef, digest: manifest.digest });

    // Verify before anyone relies on the copy: the target must answer with the exact digest.
    const stored = await this.#client.headManifest(dst, targetRef, true);
    if (stored?.digest !== manifest.digest) {
      throw new ManifestError(`${formatReference(target)}: after the copy the target answers ${stored?.digest ?? 'nothing'} instead of ${manifest.digest}`);
    }
    await this.#tagAlso(dst, manifest.digest, alsoTags, manifest);
    if (this.#options.signatures ?? true) await this.#attachments.copy(src, dst, head, original, counts);
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
        await this.#attachments.copy({ registry: job.source.registry, repository: job.source.repository },
          { registry: job.target.registry, repository: job.target.repository }, { digest, mediaType: undefined }, undefined, emptyCounts());
      } catch (err) {
        this.#options.onEvent?.({ kind: 'warning', message: `${formatReference(job.source)}: its signatures and referrers were not refreshed: ${oneLine(err)}` });
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
    return once(this.#manifests, `${registryKey(src.registry)}/${src.repository}@${digest}`, () => this.#client.getManifest(src, digest));
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
    await settleAll(blobs.map((blob) => this.#blobs.copy(src, dst, blob, counts)));
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
    return once(this.#manifestWork, `${registryKey(dst.registry)}/${dst.repository}@${digest}`, async () => {
      const anchor = anchorTag(digest);
      const anchored = (await this.#client.headManifest(dst, anchor, true))?.digest === digest;
      if (anchored && !repair) return;
      const child = await this.#manifest(src, digest);
      await this.#copyTree(src, dst, child, ancestors, counts, repair);
      if (anchored) return;
      await this.#client.putManifest(dst, anchor, child);
      this.#tally.add(counts, 'manifestsPushed', 1);
      this.#options.onEvent?.({ kind: 'manifest', target: repoName(dst), reference: anchor, digest });
    });
  }
}
