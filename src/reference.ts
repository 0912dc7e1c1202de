// Image references by the distribution reference grammar, normalised the way Docker normalises them
// (docker.io, library/, :latest). The grammar: github.com/distribution/reference, reference.go.
//
// Registry host case: kept as written (Docker does the same, and a reference written back into a
// workload should read as the user wrote it). Host names are case-insensitive, so compare and key
// caches by registryKey(), never by the raw string. Docker Hub's aliases are the one exception:
// they always become 'docker.io', whatever their case.

/**
 * An image reference that does not follow the reference grammar. Not a UsageError: a reference can
 * come from a cluster as well as from the command line, and the caller decides which it is.
 */
export class InvalidReferenceError extends Error {
  override name = 'InvalidReferenceError';
  /** The input as given, unchanged. */
  readonly reference: string;
  /** What is wrong with it, without the input (for callers that word their own message). */
  readonly problem: string;

  constructor(reference: string, problem: string) {
    super(`invalid image reference ${JSON.stringify(reference)}: ${problem}`);
    this.reference = reference;
    this.problem = problem;
  }
}

export interface ImageReference {
  /** host, host:port or [IPv6]:port as written; Docker Hub's aliases become 'docker.io'. */
  registry: string;
  /** The repository path below the registry, e.g. 'library/nginx'. */
  repository: string;
  tag?: string;
  /** algorithm:hex, sha256 or sha512 only. */
  digest?: string;
}

const dockerHub = 'docker.io';
const dockerHubAliases = new Set([dockerHub, 'index.docker.io', 'registry-1.docker.io']);
const dockerHubApiHost = 'registry-1.docker.io';
const officialImagesPrefix = 'library/';
const defaultTag = 'latest';
const maxRepositoryLength = 255;
const maxTagLength = 128;
/** The digest algorithms we can verify, and the hex length each one must have. */
const digestHexLengths = new Map([
  ['sha256', 64],
  ['sha512', 128],
]);

const pathComponentPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const domainComponentPattern = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
const ipv6Pattern = /^\[[a-fA-F0-9:]+\]$/;
const tagPattern = /^\w[\w.-]*$/;
const imageIdPattern = /^[a-f0-9]{64}$/;
const urlSchemePattern = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;

/** Parses and normalises an image reference; throws InvalidReferenceError naming what is wrong. */
export function parseReference(input: string): ImageReference {
  const check = (problem: string | undefined): void => {
    if (problem !== undefined) throw new InvalidReferenceError(input, problem);
  };
  check(inputProblem(input));

  const { name, tag, digest } = splitTagAndDigest(input);
  if (digest !== undefined) check(digestProblem(digest));
  if (tag !== undefined) check(tagProblem(tag));

  const { registry, path } = splitRegistry(name);
  if (registry !== undefined) check(registryProblem(registry));
  // Docker refuses these: `docker run <id>` would be ambiguous between an image ID and a repository.
  if (registry === undefined && imageIdPattern.test(path)) {
    check('a 64-character hex name is an image ID, not a repository; add a registry or a path');
  }

  const normalisedRegistry = registry === undefined || isDockerHub(registry) ? dockerHub : registry;
  const repository = normalisedRegistry === dockerHub && !path.includes('/') ? officialImagesPrefix + path : path;
  check(repositoryProblem(repository));

  const ref: ImageReference = { registry: normalisedRegistry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  if (tag === undefined && digest === undefined) ref.tag = defaultTag;
  return ref;
}

/** The canonical string: registry/repository[:tag][@digest]. */
export function formatReference(ref: ImageReference): string {
  const tag = ref.tag === undefined ? '' : `:${ref.tag}`;
  const digest = ref.digest === undefined ? '' : `@${ref.digest}`;
  return `${repositoryName(ref)}${tag}${digest}`;
}

/** registry/repository, without tag or digest. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The host that serves the registry API: Docker Hub's registry lives on another host than its name. */
export function apiHost(registry: string): string {
  return isDockerHub(registry) ? dockerHubApiHost : registry;
}

export function isDockerHub(registry: string): boolean {
  return dockerHubAliases.has(registry.toLowerCase());
}

/** The form to compare registries by and to key caches with: lower-case, Docker Hub as 'docker.io'. */
export function registryKey(registry: string): string {
  return isDockerHub(registry) ? dockerHub : registry.toLowerCase();
}

function inputProblem(input: string): string | undefined {
  if (input === '') return 'reference is empty';
  if (/\s/.test(input)) return 'reference contains whitespace';
  if (urlSchemePattern.test(input)) return 'reference must not start with a URL scheme such as "https://"';
  return undefined;
}

/** Name, tag and digest as written; '@' cannot occur in a name or tag, and a tag's ':' follows the last '/'. */
function splitTagAndDigest(input: string): { name: string; tag?: string; digest?: string } {
  const at = input.indexOf('@');
  const nameAndTag = at === -1 ? input : input.slice(0, at);
  const digest = at === -1 ? undefined : input.slice(at + 1);
  const colon = nameAndTag.lastIndexOf(':');
  if (colon <= nameAndTag.lastIndexOf('/')) return { name: nameAndTag, digest };
  return { name: nameAndTag.slice(0, colon), tag: nameAndTag.slice(colon + 1), digest };
}

/** Docker's rule for telling a registry from the first path component (splitDockerDomain). */
function splitRegistry(name: string): { registry?: string; path: string } {
  const slash = name.indexOf('/');
  if (slash === -1) return { path: name };
  const first = name.slice(0, slash);
  const isRegistry = first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase();
  return isRegistry ? { registry: first, path: name.slice(slash + 1) } : { path: name };
}

function digestProblem(digest: string): string | undefined {
  if (digest === '') return 'digest is empty after "@"';
  const colon = digest.indexOf(':');
  if (colon === -1) return `digest ${JSON.stringify(digest)} has no algorithm; expected sha256:<64 hex>`;
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const length = digestHexLengths.get(algorithm);
  if (length === undefined) return `digest algorithm ${JSON.stringify(algorithm)} is not supported; use sha256 or sha512`;
  const expected = `digest must be ${algorithm}:<${length} hex>`;
  const nonHex = /[^a-fA-F0-9]/.exec(hex);
  if (nonHex) return `${expected}, found ${JSON.stringify(nonHex[0])}`;
  if (hex.length !== length) return `${expected}, found ${hex.length} hex digits`;
  // go-digest and the registries accept lower-case hex only; a digest is compared as a string.
  if (/[A-F]/.test(hex)) return `${expected} in lower case`;
  return undefined;
}

function tagProblem(tag: string): string | undefined {
  if (tag === '') return 'tag is empty after ":"';
  if (tag.length > maxTagLength) return `tag ${JSON.stringify(tag)} is longer than ${maxTagLength} characters`;
  if (tagPattern.test(tag)) return undefined;
  if (/^[.-]/.test(tag)) return `tag ${JSON.stringify(tag)} must start with a letter, a digit or "_"`;
  return `tag ${JSON.stringify(tag)} may contain only letters, digits, "_", "." and "-"`;
}

/** host[:port] or [IPv6][:port], by the grammar's domainAndPort. */
function registryProblem(registry: string): string | undefined {
  const { host, port } = splitHostAndPort(registry);
  if (host === '') return 'registry host is empty';
  if (host.startsWith('[')) {
    if (!ipv6Pattern.test(host)) return `registry ${JSON.stringify(host)} is not a valid IPv6 address`;
  } else if (!host.split('.').every((part) => domainComponentPattern.test(part))) {
    return `registry host ${JSON.stringify(host)} is not a valid host name`;
  }
  return port === undefined ? undefined : portProblem(port);
}

function splitHostAndPort(registry: string): { host: string; port?: string } {
  // An IPv6 literal has colons of its own, inside its brackets.
  const closingBracket = registry.startsWith('[') ? registry.indexOf(']') : -1;
  const hostEnd = registry.startsWith('[') && closingBracket === -1 ? registry.length : closingBracket + 1;
  const colon = registry.indexOf(':', hostEnd);
  return colon === -1 ? { host: registry } : { host: registry.slice(0, colon), port: registry.slice(colon + 1) };
}

function portProblem(port: string): string | undefined {
  const number = /^[0-9]{1,5}$/.test(port) ? Number(port) : 0;
  if (number >= 1 && number <= 65535) return undefined;
  return `registry port ${JSON.stringify(port)} must be a number from 1 to 65535`;
}

function repositoryProblem(repository: string): string | undefined {
  if (repository === '') return 'repository path is empty';
  if (repository !== repository.toLowerCase()) return 'repository path must be lower-case';
  if (repository.length > maxRepositoryLength) {
    return `repository path is ${repository.length} characters long; the limit is ${maxRepositoryLength}`;
  }
  for (const component of repository.split('/')) {
    const problem = pathComponentProblem(component);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function pathComponentProblem(component: string): string | undefined {
  if (component === '') return 'repository path has an empty component ("//" or a "/" at either end)';
  if (pathComponentPattern.test(component)) return undefined;
  const quoted = JSON.stringify(component);
  const invalid = /[^a-z0-9._-]/.exec(component);
  if (invalid) {
    return `repository path component ${quoted} contains ${JSON.stringify(invalid[0])}; only a-z, 0-9, ".", "_" and "-" are allowed`;
  }
  if (!/^[a-z0-9].*[a-z0-9]$|^[a-z0-9]$/.test(component)) {
    return `repository path component ${quoted} must start and end with a letter or digit`;
  }
  return `repository path component ${quoted} has an invalid separator; use ".", "_", "__" or dashes between letters and digits`;
}
