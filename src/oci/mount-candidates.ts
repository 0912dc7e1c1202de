// Where else in the target registry a blob already lives, found in the registry itself: a blob the
// backup holds in some repository is mounted (POST ?mount=&from=), never uploaded again, in a later
// run or another process too. Nothing is kept on disk (a CronJob pod has none to write): the
// candidates are repositories the caller knows hold whole images (a sync's images already backed
// up, images found already in place) and, when the registry offers it, a few pages of its catalog
// near the target repository. They are ranked by how close their names are to the target and the
// source, and a few of them are asked (HEAD of the image's base layer) once per base layer and run;
// the repositories that hold it are then asked for the image's other blobs.
//
// Cost, only when a blob is missing from the target (a warm run never gets here): per run and
// registry at most `catalogLevels` catalog pages; per distinct base layer at most
// `candidatesPerRound` HEADs; per missing blob at most `holdersAsked` HEADs, then one mount. A mount
// that fails anyway (the blob was deleted meanwhile, another cluster's garbage collection) gets an
// upload session from the registry, which the upload uses: nothing is lost but the saving.
import { registryKey } from '../reference.ts';
import type { Descriptor } from './manifest.ts';
import type { Repository } from './registry.ts';

/** What the finder asks of the registry (RegistryClient). */
export interface BlobLocator {
  headBlob(repo: Repository, digest: string, forPush?: boolean): Promise<number | undefined>;
  catalog(registry: string, n: number, last?: string): Promise<string[] | undefined>;
}

/** Repositories asked for an image's base layer (in parallel), once per base layer and run. */
const candidatesPerRound = 6;
/** Repositories that hold the base layer, asked in turn for each other missing blob of the image. */
const holdersAsked = 2;
/** Catalog pages read per registry and run: the target's parent folder, then the folders above it. */
const catalogLevels = 3;
const catalogPageSize = 100;
/** A base layer smaller than this is uploaded without looking: the look-ups would cost about as much. */
const minProbeBytes = 32 * 1024;

type Blob = Pick<Descriptor, 'digest' | 'size'>;

export class MountCandidates {
  readonly #registry: BlobLocator;
  /** registry key -> repositories known to hold whole images. */
  readonly #hinted = new Map<string, Set<string>>();
  /** registry key + folder -> the catalog page after it ([] when refused). */
  readonly #catalog = new Map<string, Promise<string[]>>();
  /** registry key -> the catalog was refused: not asked again this run. */
  readonly #noCatalog = new Set<string>();
  /** registry key / target repository @ blob digest -> the image's base layer. */
  readonly #bases = new Map<string, Blob>();
  /** registry key @ base digest -> repositories found to hold it, best first. */
  readonly #rounds = new Map<string, Promise<string[]>>();
  /** registry key / repository @ digest -> whether the repository holds the blob. */
  readonly #holds = new Map<string, Promise<boolean>>();

  constructor(registry: BlobLocator) {
    this.#registry = registry;
  }

  /** Repositories of a registry known to hold whole images (their blobs can be mounted). */
  hint(repositories: Repository[]): void {
    for (const r of repositories) {
      const key = registryKey(r.registry);
      let set = this.#hinted.get(key);
      if (!set) this.#hinted.set(key, (set = new Set()));
      set.add(r.repository);
    }
  }

  /** The blobs of one image manifest on their way to `dst`: its first layer is what the look-up asks for. */
  noteImage(dst: Repository, blobs: Blob[], layers: Blob[]): void {
    const base = layers[0];
    if (!base) return;
    for (const b of blobs) {
      const key = `${registryKey(dst.registry)}/${dst.repository}@${b.digest}`;
      if (!this.#bases.has(key)) this.#bases.set(key, base);
    }
  }

  /** A repository of `dst`'s registry, other than `dst`, that holds `blob`; undefined when none is found. */
  async find(src: Repository, dst: Repository, blob: Blob): Promise<Repository | undefined> {
    const registry = registryKey(dst.registry);
    const base = this.#bases.get(`${registry}/${dst.repository}@${blob.digest}`) ?? blob;
    if (base.size < minProbeBytes && !this.#rounds.has(`${registry}@${base.digest}`)) return undefined;
    const holders = (await this.#round(src, dst, base)).filter((r) => r !== dst.repository);
    const at = (repository: string): Repository => ({ registry: dst.registry, repository });
    if (base.digest === blob.digest) return holders[0] === undefined ? undefined : at(holders[0]);
    for (const repository of holders.slice(0, holdersAsked)) {
      if (await this.#holdsBlob(dst.registry, repository, blob.digest)) return at(repository);
    }
    return undefined;
  }

  /** The best-ranked candidates that hold `base`, asked once per registry and base layer. */
  #round(src: Repository, dst: Repository, base: Blob): Promise<string[]> {
    const key = `${registryKey(dst.registry)}@${base.digest}`;
    let round = this.#rounds.get(key);
    if (!round) {
      round = (async () => {
        const hinted = this.#hinted.get(registryKey(dst.registry)) ?? new Set<string>();
        const pool = new Set([...hinted, ...await this.#catalogNear(dst)]);
        const asked = rankCandidates(pool, src.repository, dst.repository, hinted).slice(0, candidatesPerRound);
        const answers = await Promise.all(asked.map((repository) => this.#holdsBlob(dst.registry, repository, base.digest)));
        return asked.filter((_, i) => answers[i]);
      })();
      this.#rounds.set(key, round);
    }
    return round;
  }

  #holdsBlob(registry: string, repository: string, digest: string): Promise<boolean> {
    const key = `${registryKey(registry)}/${repository}@${digest}`;
    let answer = this.#holds.get(key);
    if (!answer) {
      // Pull rights are enough to look; a repository we may not read is simply not a candidate.
      answer = this.#registry.headBlob({ registry, repository }, digest, false).then((size) => size !== undefined, () => false);
      this.#holds.set(key, answer);
    }
    return answer;
  }

  /** Catalog pages that start at the target's parent folder and the folders above it (nearest first). */
  async #catalogNear(dst: Repository): Promise<string[]> {
    const found: string[] = [];
    for (const folder of catalogFolders(dst.repository).slice(0, catalogLevels)) {
      found.push(...await this.#catalogAfter(dst.registry, folder));
      if (new Set(found).size > candidatesPerRound) break;
    }
    return found;
  }

  #catalogAfter(registry: string, folder: string): Promise<string[]> {
    const key = `${registryKey(registry)}\n${folder}`;
    let page = this.#catalog.get(key);
    if (!page) {
      page = this.#noCatalog.has(registryKey(registry)) ? Promise.resolve([]) : this.#registry.catalog(registry, catalogPageSize, folder || undefined).then((names) => {
        if (names === undefined) this.#noCatalog.add(registryKey(registry));
        return names ?? [];
      }, () => {
        this.#noCatalog.add(registryKey(registry));
        return [];
      });
      this.#catalog.set(key, page);
    }
    return page;
  }
}

/**
 * The folders whose catalog pages may list a repository's neighbours, nearest first:
 * 'a/b/c' -> ['a/b/', 'a/', ''] (a catalog page after 'a/b/' starts with what 'a/b/' holds).
 */
export function catalogFolders(repository: string): string[] {
  const parts = repository.split('/');
  const folders: string[] = [];
  for (let n = parts.length - 1; n >= 0; n--) folders.push(n === 0 ? '' : `${parts.slice(0, n).join('/')}/`);
  return folders;
}

/**
 * Candidate repositories, most likely first to hold the blobs of an image copied from `source` to
 * `target`: the same image elsewhere (the longest common ending with either name: 'mirror/app' for
 * 'new/app'), then the nearest neighbours of the target (the longest common beginning), then
 * repositories known to hold whole images, then by name. The target itself is left out.
 */
export function rankCandidates(repositories: Iterable<string>, source: string, target: string, known: ReadonlySet<string> = new Set()): string[] {
  const targetParts = target.split('/');
  const sourceParts = source.split('/');
  const scored = [...new Set(repositories)].filter((r) => r !== target).map((name) => {
    const parts = name.split('/');
    return {
      name,
      ending: Math.max(commonEnding(parts, sourceParts), commonEnding(parts, targetParts)),
      beginning: commonBeginning(parts, targetParts),
      known: known.has(name) ? 1 : 0,
    };
  });
  scored.sort((a, b) => b.ending - a.ending || b.beginning - a.beginning || b.known - a.known || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return scored.map((s) => s.name);
}

function commonEnding(a: string[], b: string[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[a.length - 1 - n] === b[b.length - 1 - n]) n++;
  return n;
}

function commonBeginning(a: string[], b: string[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
