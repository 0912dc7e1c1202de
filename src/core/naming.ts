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
import { InvalidReferenceError, UsageError } from '../errors.ts';
import { formatReference, type ImageReference, isDockerHub, parseReference, registryKey } from '../oci/reference.ts';

export type NamingMode = 'nested' | 'flat';

/** From --backup REGISTRY[/PREFIX], e.g. {registry: 'backup.example.com', prefix: 'mirror'}; prefix may be ''. */
export interface BackupLocation {
  registry: string;
  prefix: string;
}

/** A source image whose backup name cannot be formed. Not a UsageError: the image comes from the cluster. */
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

/** Parses --backup REGISTRY[/PREFIX]; throws UsageError saying what is wrong. */
export function parseBackupLocation(value: string): BackupLocation {
  const invalid = (problem: string): UsageError =>
    new UsageError(`invalid backup location ${JSON.stringify(value)}: ${problem}; expected REGISTRY[/PREFIX], e.g. ${locationExample}`);
  if (value === '') throw invalid('it is empty');
  // Not echoed: an '@' may be part of user:password@host.
  if (value.includes('@')) {
    throw new UsageError(`invalid backup location: it contains "@"; give REGISTRY[/PREFIX] without a digest or user name, e.g. ${locationExample}`);
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
 * The backup name for a source image, tagged: with the source's tag if it has one, else (digest only)
 * with '<algorithm>-<hex>', because registries garbage-collect untagged manifests. No digest is set.
 */
export function backupReference(source: ImageReference, backup: BackupLocation, mode: NamingMode): ImageReference {
  const repository = backupRepository(source, backup, mode);
  if (repository.length > maxRepositoryLength) {
    throw new NamingError(
      `cannot name a backup of ${formatReference(source)}: its repository path would be ${repository.length} characters long, ` +
        `over the registries' limit of ${maxRepositoryLength}${mode === 'nested' ? '' : ' (flat naming)'}`,
    );
  }
  return { registry: backup.registry, repository, tag: backupTag(source) };
}

/** '<backup name>:<tag>@<digest>', what a patched workload runs: the node pulls exactly this digest. */
export function pinnedReference(backupRef: ImageReference, digest: string): string {
  return formatReference({ ...backupRef, digest });
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

function backupTag(source: ImageReference): string {
  if (source.tag !== undefined) return source.tag;
  // A reference with neither tag nor digest means :latest, as parseReference has it.
  if (source.digest === undefined) return 'latest';
  // sha512-<128 hex> is over the tag limit: cut, it is still unique, and the pinned digest decides what is pulled.
  return source.digest.replace(':', '-').slice(0, maxTagLength);
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
