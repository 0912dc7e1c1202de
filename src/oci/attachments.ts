// Signatures, attestations, SBOMs and OCI referrers: what is attached to an image and to each of
// its children in the source, copied along with it (and, on later runs, what was attached since).
// Each referrer is held in the target by its own anchor tag; a target without the referrers API
// gets the fallback tag sha256-<hex> as well, merged with what it lists already.
import { anchorTag } from '../core/naming.ts';
import { RegistryError } from '../errors.ts';
import { registryKey } from '../reference.ts';
import { once, settleAll } from '../util/once.ts';
import { oneLine } from '../util/text.ts';
import type { CopyCounts, CopyOptions, Tally } from './copy-options.ts';
import { isIndexType, mediaTypes, parseManifest, sha256Digest, uniqueByDigest, type Descriptor } from './manifest.ts';
import { repoName, type Manifest, type RegistryClient, type Repository } from './registry.ts';

/** What attachments need of the copy engine: its source manifests, its tree copy, its tagging. */
export interface TreeCopier {
  manifest(src: Repository, digest: string): Promise<Manifest>;
  copyTree(src: Repository, dst: Repository, manifest: Manifest, ancestors: string[], counts: CopyCounts): Promise<string[]>;
  tag(repository: Repository, digest: string, tags: string | string[]): Promise<void>;
}

export class AttachmentCopier {
  readonly #client: RegistryClient;
  readonly #options: CopyOptions;
  readonly #tally: Tally;
  readonly #tree: TreeCopier;
  /** Attachments handled, by target repository and subject digest: once per run. */
  readonly #work = new Map<string, Promise<void>>();
  /** Source tag lists, by repository: one request per repository per run. */
  readonly #sourceTags = new Map<string, Promise<Set<string>>>();
  /** Whether a registry answers the referrers API, by registry, once known. */
  readonly #referrersApi = new Map<string, boolean>();

  constructor(client: RegistryClient, options: CopyOptions, tally: Tally, tree: TreeCopier) {
    this.#client = client;
    this.#options = options;
    this.#tally = tally;
    this.#tree = tree;
  }

  /**
   * What is attached to the image and to each of its children in the source: cosign's
   * sha256-<hex>.sig/.att/.sbom tags, and OCI referrers (the referrers API, or its fallback tag
   * sha256-<hex>). Runs for images already in the target too, so attachments added upstream since
   * the first copy arrive. Source cost: one tag list per repository and one referrers probe per
   * registry per run; then, only for what exists, a HEAD per cosign tag, a GET per fallback tag,
   * and on a registry with the referrers API one query per manifest of the image.
   */
  async copy(src: Repository, dst: Repository, root: { digest: string; mediaType: string | undefined }, manifest: Manifest | undefined, counts: CopyCounts): Promise<void> {
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
    await settleAll(subjects.map((subject) => once(this.#work, `${registryKey(dst.registry)}/${dst.repository}@${subject}`,
      () => this.#attachmentsOf(src, dst, subject, tags, api, subject === root.digest ? rootReferrers : undefined, counts))));
  }

  /** The source's tags, listed once per repository per run. */
  #tagsOf(src: Repository): Promise<Set<string>> {
    // A registry that refuses to list tags (some want more than pull rights for it) still gives
    // its referrers; the cosign tags are then not seen, and the run says so once.
    return once(this.#sourceTags, `${registryKey(src.registry)}/${src.repository}`, () => this.#client.listTags(src).then((list) => new Set(list), (err: unknown) => {
      this.#options.onEvent?.({ kind: 'warning', message: `${repoName(src)}: cannot list its tags, so cosign signatures are not copied from it: ${oneLine(err)}` });
      return new Set<string>();
    }));
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
    const manifest = await this.#tree.manifest(src, head.digest);
    await this.#tree.copyTree(src, dst, manifest, [], counts);
    await this.#client.putManifest(dst, tag, manifest);
    this.#tally.add(counts, 'signatures', 1);
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
        await this.#tree.tag(dst, referrer.digest, anchor);
        continue;
      }
      const manifest = await this.#tree.manifest(src, referrer.digest).catch((err: unknown) => {
        // A fallback tag may still list a referrer that was deleted since: skip it, say so.
        if (err instanceof RegistryError && err.status === 404) return undefined;
        throw err;
      });
      if (!manifest) {
        this.#options.onEvent?.({ kind: 'warning', message: `${repoName(src)}: referrer ${referrer.digest} of ${subject} is listed but not there; not copied` });
        missing.add(referrer.digest);
        continue;
      }
      await this.#tree.copyTree(src, dst, manifest, [subject], counts);
      const { ociSubject } = await this.#client.putManifest(dst, anchor, manifest);
      if (ociSubject) this.#referrersApi.set(registry, (targetApi = true));
      this.#tally.add(counts, 'signatures', 1);
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
}

/** A tag of the cosign or referrers tag schemes: sha256-<hex>, optionally .sig, .att or .sbom. */
const attachmentTag = /^sha256-([a-f0-9]{64})(?:\.sig|\.att|\.sbom)?$/;
const cosignSuffixes = ['.sig', '.att', '.sbom'];

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

