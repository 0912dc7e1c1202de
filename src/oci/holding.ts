// How much of an image the backup holds, seen the way a garbage collector that keeps only tagged
// manifests sees it. distribution 2.8's `garbage-collect --delete-untagged` does not follow an index
// to its children, and ECR lifecycle rules and other retention policies are defined on tags too: a
// manifest that no tag names is as good as gone. So every manifest image-clone writes has a tag of
// its own, the anchor tag of its digest (core/naming.ts), and "held" means: the image's anchor and,
// under an index, every child's anchor answer with their digests; its seal says so in one HEAD.
import type { Holding } from '../core/ports.ts';
import { anchorTag, sealTag } from '../core/naming.ts';
import { formatPlatform, isIndexType, isNonDistributable, parseManifest, uniqueByDigest, type Descriptor } from './manifest.ts';
import { repoName, type RegistryClient, type Repository } from './registry.ts';

export interface HoldingOptions {
  /** Also HEAD every blob (config and layers) of every manifest: `sync --verify`, after a GC. */
  blobs?: boolean;
}

/** Indexes nest rarely and shallowly; deeper is not an image a runtime pulls. */
const maxDepth = 4;

/**
 * What `repository` holds of `digest`. The warm path is one HEAD: the seal (core/naming.ts) is
 * written once every manifest under the copy has its own tag. Without it (a copy an earlier
 * version made, or one still being written), the anchor and, under an index, each child's anchor
 * are looked at: a GET of the index and a HEAD per child. With `blobs`, everything is walked.
 */
export async function holdingOf(client: RegistryClient, repository: Repository, digest: string, options: HoldingOptions = {}): Promise<Holding> {
  const sealed = (await client.headManifest(repository, sealTag(digest), true))?.digest === digest;
  if (sealed && !options.blobs) return { state: 'whole' };
  const anchored = await client.headManifest(repository, anchorTag(digest), true);
  // No anchor: a copy made before anchor tags, or a manifest left untagged, may still be there.
  const held = anchored?.digest === digest ? anchored : await client.headManifest(repository, digest, true);
  if (held?.digest !== digest) return { state: 'absent' };
  const below = await treeHolding(client, repository, { digest, mediaType: held.mediaType }, options);
  if (below.state !== 'whole') return below;
  if (anchored?.digest !== digest) return { state: 'unanchored', detail: `${digest} has no anchor tag` };
  if (!sealed) return { state: 'unanchored', detail: 'its seal tag is missing (a copy an earlier version made)' };
  return { state: 'whole' };
}

/**
 * What is below a manifest the repository holds: 'whole' when every child has its anchor (and, with
 * `blobs`, every blob is there), 'unanchored' when all is there but some child has no tag of its
 * own, 'damaged' when something is gone. A damaged tree wins over an unanchored one.
 */
export async function treeHolding(client: RegistryClient, repository: Repository, root: { digest: string; mediaType: string }, options: HoldingOptions = {}, depth = 0): Promise<Holding> {
  const index = isIndexType(root.mediaType);
  if (!index && !options.blobs) return { state: 'whole' };
  const manifest = await client.getManifest(repository, root.digest);
  const parsed = parseManifest(manifest.bytes, manifest.mediaType, `${repoName(repository)}@${root.digest}`);
  if (parsed.kind === 'image') {
    if (!options.blobs) return { state: 'whole' };
    const blobs = [...(parsed.config ? [parsed.config] : []), ...parsed.layers].filter((b) => !isNonDistributable(b));
    const distinct = uniqueByDigest(blobs);
    const sizes = await Promise.all(distinct.map((b) => client.headBlob(repository, b.digest)));
    const missing = distinct.find((_, i) => sizes[i] === undefined);
    return missing ? { state: 'damaged', detail: `blob ${missing.digest} of ${root.digest} is missing` } : { state: 'whole' };
  }
  if (depth >= maxDepth) return { state: 'whole' };
  const children = await Promise.all(uniqueByDigest(parsed.manifests).map(async (child): Promise<Holding> => {
    const anchored = await client.headManifest(repository, anchorTag(child.digest), true);
    if (anchored?.digest === child.digest) return treeHolding(client, repository, { digest: child.digest, mediaType: anchored.mediaType }, options, depth + 1);
    const held = await client.headManifest(repository, child.digest, true);
    if (held?.digest !== child.digest) return { state: 'damaged', detail: `${describe(child)} ${child.digest} is missing` };
    const below = await treeHolding(client, repository, { digest: child.digest, mediaType: held.mediaType }, options, depth + 1);
    return below.state === 'whole' ? { state: 'unanchored', detail: `${describe(child)} ${child.digest} has no tag of its own` } : below;
  }));
  return children.find((h) => h.state === 'damaged') ?? children.find((h) => h.state === 'unanchored') ?? { state: 'whole' };
}

function describe(child: Descriptor): string {
  return child.platform ? `the ${formatPlatform(child.platform)} manifest` : 'child manifest';
}
