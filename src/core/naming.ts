// Where a source image lives in the backup registry, and back. Pure: no I/O.
//
// nested (default): <backup registry>/<prefix>/<source host>/<source path>
//   backup.example.com/mirror/docker.io/library/nginx
// flat: <backup registry>/<prefix>/<one component>, for registries that allow one level below an
// organisation (Docker Hub, Quay):
//   quay.io/acme/docker.io-library-nginx
//
// The source host as a path component (a path allows only [a-z0-9._-]):
// - lower case, by registryKey: host names are case-insensitive, and Docker Hub is 'docker.io';
// - a port becomes '_port' (registry.local:5000 -> registry.local_5000): a host name never holds '_';
// - an IPv6 literal becomes 'ip6__' plus its address with each ':' as 'x' ([::1]:5000 -> ip6__xx1_5000):
//   a host name never holds '__', and 'x' is no hex digit, so this too reads back one way only.
//
// The flat component joins (host component, path components...) with a single '-', after doubling
// every '-' inside each of them: quay.io/my-org/app -> quay.io-my--org-app. Every component starts
// and ends with a letter or digit, so in the joined name a run of exactly one '-' is a boundary and
// every other run has even length: the split, and so the source, is unique. Joining with '_' (the
// design notes' example) would collide: a.io/b_c/d and a.io/b/c_d would both be a.io_b_c_d.
//
// sourceOfBackup is the exact inverse: it decodes, then accepts only a name that backupReference
// gives back for the decoded source, so each backup name has at most one source.
import { formatReference, type ImageReference, InvalidReferenceError, isDockerHub, parseReference, registryKey } from '../reference.ts';
import { InvalidSettingError } from './errors.ts';

export type NamingMode = 'nested' | 'flat';

/** From --backup REGISTRY[/PREFIX], e.g. {registry: 'backup.example.com', prefix: 'mirror'}; prefix may be ''. */
export interface BackupLocation {
  registry: string;
  prefix: string;
}

/** A source image whose backup name cannot be formed. Not an InvalidSettingError: the image comes from the cluster. */
export class NamingError extends Error {
  override name = 'NamingError';
}

/** The registries' limit on a repository path (distribution's RepositoryNameTotalLengthMax). */
const maxRepositoryLength = 255;
const maxTagLength = 128;
const portSeparator = '_';
const ipv6Marker = 'ip6__';
const ipv6Colon = 'x';
const flatSeparator = '-';
const locationExample = 'backup.example.com/mirror';
/** ip6__<address> or a host name, then _<port> if any. */
const registryComponentPattern = /^(?:ip6__([0-9a-fx]+)|([a-z0-9.-]+))(?:_([0-9]+))?$/;

/** Parses a backup location REGISTRY[/PREFIX]; throws InvalidSettingError saying what is wrong. */
export function parseBackupLocation(value: string): BackupLocation {
  const invalid = (problem: string): InvalidSettingError =>
    new InvalidSettingError(`invalid backup location ${JSON.stringify(value)}`, `${problem}; expected REGISTRY[/PREFIX], e.g. ${locationExample}`);
  if (value === '') throw invalid('it is empty');
  // Not echoed: an '@' may be part of user:password@host.
  if (value.includes('@')) {
    throw new InvalidSettingError('invalid backup location', `it contains "@"; give REGISTRY[/PREFIX] without a digest or user name, e.g. ${locationExample}`);
  }
  const slash = value.indexOf('/');
  const registry = slash === -1 ? value : value.slice(0, slash);
  const prefix = slash === -1 ? '' : value.slice(slash + 1);
  if (registry === '') throw invalid('the registry is missing');
  // A path never holds ':', so one in its last component is a tag.
  const last = prefix.slice(prefix.lastIndexOf('/') + 1);
  if (last.includes(':')) throw invalid(`a location takes no tag, found ${JSON.stringify(last.slice(last.indexOf(':')))}`);
  // Docker Hub pushes need a namespace, and a lone docker.io/<name> would read as docker.io/library/<name>.
  if (isDockerHub(registry) && prefix === '') throw invalid('Docker Hub needs a namespace, e.g. docker.io/acme');

  // A repository below the location checks host and prefix by the reference grammar.
  const probe = 'x';
  let parsed: ImageReference;
  try {
    parsed = parseReference(prefix === '' ? `${registry}/${probe}` : `${registry}/${prefix}/${probe}`);
  } catch (error) {
    if (error instanceof InvalidReferenceError) throw invalid(error.problem);
    throw error;
  }
  if (registryKey(parsed.registry) !== registryKey(registry)) {
    throw invalid(`"${registry}" would be read as a Docker Hub namespace; write the registry with a "." or a port, e.g. ${registry}.example.com or ${registry}:5000`);
  }
  return { registry: parsed.registry, prefix };
}

/**
 * The backup name for a source image, with the source's human tag (`latest` when the reference has
 * neither tag nor digest, as parseReference reads it; none for a digest-only reference). No digest
 * is set: what holds a digest in the backup is its anchor tag (anchorTag).
 */
export function backupReference(source: ImageReference, backup: BackupLocation, mode: NamingMode): ImageReference {
  const repository = backupRepository(source, backup, mode);
  if (repository.length > maxRepositoryLength) {
    throw new NamingError(
      `cannot name a backup of ${formatReference(source)}: its repository path would be ${repository.length} characters long, ` +
        `over the registries' limit of ${maxRepositoryLength}${mode === 'nested' ? '' : ' (flat naming)'}`,
    );
  }
  const tag = humanTag(source);
  return { registry: backup.registry, repository, ...(tag === undefined ? {} : { tag }) };
}

/**
 * The tag a source reference gives its backup copies for people: its own tag, `latest` when it has
 * neither tag nor digest (parseReference's reading), none when it is pinned by digest only.
 */
export function humanTag(source: ImageReference): string | undefined {
  if (source.tag !== undefined) return source.tag;
  return source.digest === undefined ? 'latest' : undefined;
}

/**
 * What a patched workload runs: '<backup name>:<tag>@<digest>' (the node pulls exactly this digest),
 * or with `pin` false the anchor tag alone, '<backup name>:ic-sha256-<hex>': a human tag may move
 * to a newer copy, the anchor never does, so the workload runs the digest it ran before either way.
 */
export function patchedReference(backupRef: ImageReference, digest: string, pin = true): string {
  const { tag: _, ...repository } = backupRef;
  return formatReference(pin ? { ...backupRef, digest } : { ...repository, tag: anchorTag(digest) });
}

// Anchor tags. Every digest a workload is pinned to is held in the backup by a tag of its own,
// derived from the digest alone, so that registry garbage collection (which deletes untagged
// manifests) never takes it, and a human tag that moves to a newer copy un-tags nothing:
//   sha256:<64 hex>  ->  ic-sha256-<64 hex>   (74 characters)
// - within the tag grammar [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; a longer digest (sha512) is cut to
//   128 characters: still unique in practice, and the digest check decides what is pulled;
// - never one of cosign's tags or the referrers fallback tag (sha256-<hex>[.sig|.att|.sbom]): those
//   start with the algorithm, anchors with 'ic-';
// - never a human tag: a source tag of this form is not written to the backup (isAnchorTag).
// One anchor per (repository, digest), whatever tags point at the digest upstream: the check
// "already backed up" is one HEAD of it.
const anchorPrefix = 'ic-';
const anchorPattern = /^ic-(sha256|sha384|sha512)-([0-9a-f]+)$/;

/** The anchor tag that holds `digest` (algorithm:hex) in a backup repository. */
export function anchorTag(digest: string): string {
  const colon = digest.indexOf(':');
  return `${anchorPrefix}${digest.slice(0, colon)}-${digest.slice(colon + 1)}`.slice(0, maxTagLength);
}

/**
 * The seal of a copy: a second tag on the image's own manifest, written after the anchor of every
 * manifest under it (each platform of an index) is in place. Its presence means the copy is whole,
 * as a garbage collector that keeps only tagged manifests (distribution 2.8's, which does not
 * follow an index to its children) sees it, so the warm check stays one HEAD. A copy an earlier
 * version made has no seal: it is checked, its children tagged, and sealed once.
 *   sha256:<64 hex>  ->  ic-whole-sha256-<64 hex>   (80 characters; the prefix keeps a cut sha512 seal apart from its anchor)
 */
export function sealTag(digest: string): string {
  return `${anchorPrefix}whole-${anchorTag(digest).slice(anchorPrefix.length)}`.slice(0, maxTagLength);
}

const sealPattern = /^ic-whole-(sha256|sha384|sha512)-[0-9a-f]+$/;

/** Whether a tag has the anchor or seal form (a source tag of that form is never written as a human tag). */
export function isAnchorTag(tag: string): boolean {
  return anchorPattern.test(tag) || sealPattern.test(tag);
}

/** The digest an anchor tag holds, when the tag carries all of it (sha256 always does). */
export function digestOfAnchorTag(tag: string): string | undefined {
  const match = anchorPattern.exec(tag);
  if (!match) return undefined;
  const digest = `${match[1]}:${match[2]}`;
  return anchorTag(digest) === tag && match[2]!.length === { sha256: 64, sha384: 96, sha512: 128 }[match[1]!] ? digest : undefined;
}

/**
 * The source a backup name was made for: the exact inverse of backupReference's repository mapping.
 * The registry comes back as its registryKey (lower case), the only case a backup name keeps.
 * Undefined when the name is not under the backup location or is not one backupReference makes.
 */
export function sourceOfBackup(
  backupRef: ImageReference,
  backup: BackupLocation,
  mode: NamingMode,
): { registry: string; repository: string } | undefined {
  if (!isUnderBackup(backupRef, backup)) return undefined;
  const below = backupRef.repository.split('/').slice(prefixComponents(backup).length);
  const [first, ...path] = mode === 'nested' ? below : flatComponents(below);
  if (first === undefined || path.length === 0) return undefined;
  const registry = registryOfComponent(first);
  if (registry === undefined) return undefined;
  const source = { registry, repository: path.join('/') };
  if (!isParsedSource(source)) return undefined;
  // Some names decode but are not what backupReference writes (a run of three '-', say): not ours.
  return backupRepository(source, backup, mode) === backupRef.repository ? source : undefined;
}

/**
 * Whether a reference is in the backup location: the same registry (by registryKey) and a repository
 * strictly below the prefix, compared by path components: 'mirrorx/...' is not under 'mirror'.
 */
export function isUnderBackup(ref: ImageReference, backup: BackupLocation): boolean {
  if (registryKey(ref.registry) !== registryKey(backup.registry)) return false;
  const prefix = prefixComponents(backup);
  const path = ref.repository.split('/');
  return path.length > prefix.length && prefix.every((component, index) => path[index] === component);
}

function backupRepository(source: { registry: string; repository: string }, backup: BackupLocation, mode: NamingMode): string {
  const components = [registryComponent(source.registry), ...source.repository.split('/')];
  const below = mode === 'nested' ? components : [joinFlat(components)];
  return [...prefixComponents(backup), ...below].join('/');
}

function prefixComponents(backup: BackupLocation): string[] {
  return backup.prefix === '' ? [] : backup.prefix.split('/');
}

function registryComponent(registry: string): string {
  const key = registryKey(registry);
  // A host name has no ':' of its own, so the only one is the port's.
  if (!key.startsWith('[')) return key.replace(':', portSeparator);
  const end = key.indexOf(']');
  const address = key.slice(1, end).replaceAll(':', ipv6Colon);
  return `${ipv6Marker}${address}${key.slice(end + 1).replace(':', portSeparator)}`;
}

function registryOfComponent(component: string): string | undefined {
  const match = registryComponentPattern.exec(component);
  if (match === null) return undefined;
  const [, address, name, port] = match;
  const host = address === undefined ? name : `[${address.replaceAll(ipv6Colon, ':')}]`;
  return port === undefined ? host : `${host}:${port}`;
}

/**
 * Whether parseReference would give exactly this source. The host goes in upper case: the backup name
 * lost its case, and upper case makes any host with a letter a registry, as it may have been in the source.
 */
function isParsedSource(source: { registry: string; repository: string }): boolean {
  try {
    const parsed = parseReference(`${source.registry.toUpperCase()}/${source.repository}`);
    return registryKey(parsed.registry) === source.registry && parsed.repository === source.repository;
  } catch {
    return false;
  }
}

/** The components of a flat name, which is one path component; none for anything else. */
function flatComponents(below: string[]): string[] {
  const [name, ...rest] = below;
  return name === undefined || rest.length > 0 ? [] : splitFlat(name);
}

function joinFlat(components: string[]): string {
  return components.map((component) => component.replaceAll('-', '--')).join(flatSeparator);
}

/** Splits at each run of exactly one '-' and halves the other runs; joinFlat checks the result. */
function splitFlat(name: string): string[] {
  return name.split(/(?<!-)-(?!-)/).map((part) => part.replaceAll('--', '-'));
}
