// Registry credentials from docker config.json, Podman's auth.json and docker credential helpers
// (registry-protocol.md §1.5). Secrets never reach an error message: errors name the file, the
// entry's key or the helper, and what is wrong.

import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { isDockerHub, registryKey } from '../reference.ts';

export type Credential =
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token, exchanged at the token realm (docker `identitytoken`, helper user `<token>`). */
  | { kind: 'identityToken'; token: string }
  /** A bearer token sent to the registry as it is (docker `registrytoken`). */
  | { kind: 'registryToken'; token: string };

export interface CredentialSource {
  /** `repository` (e.g. 'org/app') lets namespaced auth.json keys such as 'quay.io/org' apply. */
  lookup(registry: string, repository?: string): Promise<Credential | undefined>;
}

/** Asks `docker-credential-<helper>` for a server's credentials; undefined when it has none. */
export type HelperRunner = (helper: string, serverUrl: string) => Promise<{ Username: string; Secret: string } | undefined>;

export interface CredentialSourceOptions {
  /** --registry-config: read first, and it must exist. */
  configFile?: string;
  env: Record<string, string | undefined>;
  homeDir: string;
  runHelper?: HelperRunner;
}

/** docker login keeps Docker Hub's credentials under this key, and helpers expect it as Docker Hub's server URL. */
const dockerHubAuthKey = 'https://index.docker.io/v1/';
const helperTimeoutMs = 30_000;
/** Helpers answer "credentials not found in native keychain" (docker-credential-helpers) for an unknown server. */
const helperNotFoundPattern = /credentials not found/i;
/** A helper name becomes part of a program name: no paths, no spaces. */
const helperNamePattern = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

/** One credentials file, read and checked. */
interface CredentialsFile {
  /** Helper name by registry key. */
  credHelpers: Map<string, string>;
  credsStore: string | undefined;
  /** Credentials by normalised key: a registry key, or a registry key and a namespace ('quay.io/org'). */
  auths: Map<string, Credential>;
}

/**
 * Reads the credentials files now, so that a malformed file stops the run before it starts; helpers
 * run later, on lookup. Files in order of precedence: `configFile`, docker config.json
 * ($DOCKER_CONFIG or ~/.docker), then $REGISTRY_AUTH_FILE; the first that has a credential wins.
 */
export async function loadCredentialSource(options: CredentialSourceOptions): Promise<CredentialSource> {
  const locations = credentialsFileLocations(options);
  const files = (await Promise.all(locations.map(({ path, required }) => readCredentialsFile(path, required)))).filter(
    (file): file is CredentialsFile => file !== undefined,
  );
  const runHelper = options.runHelper ?? defaultHelperRunner;
  return {
    async lookup(registry, repository) {
      for (const file of files) {
        const credential = await lookupInFile(file, runHelper, registry, repository);
        if (credential !== undefined) return credential;
      }
      return undefined;
    },
  };
}

/** Runs `docker-credential-<helper> get` with the server URL on stdin; not cached. */
export function createHelperRunner(options: { timeoutMs?: number } = {}): HelperRunner {
  const timeoutMs = options.timeoutMs ?? helperTimeoutMs;
  return (helper, serverUrl) => runHelperProgram(`docker-credential-${helper}`, serverUrl, timeoutMs);
}

/** Asks each (helper, server) once; concurrent lookups share the one run, and a failure is not remembered. */
export function memoizeHelperRunner(runHelper: HelperRunner): HelperRunner {
  const answers = new Map<string, ReturnType<HelperRunner>>();
  return (helper, serverUrl) => {
    const key = `${helper}\n${serverUrl}`;
    const known = answers.get(key);
    if (known !== undefined) return known;
    const answer = runHelper(helper, serverUrl);
    answers.set(key, answer);
    answer.catch(() => {
      if (answers.get(key) === answer) answers.delete(key);
    });
    return answer;
  };
}

/** The runner loadCredentialSource uses unless given one: answers cached for the process lifetime. */
export const defaultHelperRunner: HelperRunner = memoizeHelperRunner(createHelperRunner());

/** The server URL a helper is asked about: docker login's key for Docker Hub, else the host. */
export function helperServerUrl(registry: string): string {
  return isDockerHub(registry) ? dockerHubAuthKey : registryKey(registry);
}

function credentialsFileLocations(options: CredentialSourceOptions): { path: string; required: boolean }[] {
  const { configFile, env, homeDir } = options;
  const dockerConfigDir = nonEmpty(env['DOCKER_CONFIG']) ?? join(homeDir, '.docker');
  const podmanAuthFile = nonEmpty(env['REGISTRY_AUTH_FILE']);
  return [
    ...(configFile === undefined ? [] : [{ path: configFile, required: true }]),
    { path: join(dockerConfigDir, 'config.json'), required: false },
    ...(podmanAuthFile === undefined ? [] : [{ path: podmanAuthFile, required: false }]),
  ];
}

/**
 * Inside one file the registry's credHelpers entry, else credsStore, is asked first; when the helper
 * has nothing, a plain `auths` entry of the same file still counts.
 */
async function lookupInFile(
  file: CredentialsFile,
  runHelper: HelperRunner,
  registry: string,
  repository: string | undefined,
): Promise<Credential | undefined> {
  const key = registryKey(registry);
  const helper = file.credHelpers.get(key) ?? file.credsStore;
  if (helper !== undefined) {
    const credential = helperCredential(await runHelper(helper, helperServerUrl(registry)));
    if (credential !== undefined) return credential;
  }
  for (const candidate of namespacedKeys(key, repository)) {
    const credential = file.auths.get(candidate);
    if (credential !== undefined) return credential;
  }
  return undefined;
}

/** Most specific first: quay.io/org/app, quay.io/org, quay.io. */
function namespacedKeys(key: string, repository: string | undefined): string[] {
  const parts = repository === undefined || repository === '' ? [] : repository.split('/');
  return parts.map((_, i) => `${key}/${parts.slice(0, parts.length - i).join('/')}`).concat(key);
}

function helperCredential(answer: { Username: string; Secret: string } | undefined): Credential | undefined {
  if (answer === undefined || answer.Secret === '') return undefined;
  // Helpers mark an identity (refresh) token with this user name.
  if (answer.Username === '<token>') return { kind: 'identityToken', token: answer.Secret };
  return { kind: 'basic', username: answer.Username, password: answer.Secret };
}

async function readCredentialsFile(path: string, required: boolean): Promise<CredentialsFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = errorCode(error);
    if (!required && (code === 'ENOENT' || code === 'ENOTDIR')) return undefined;
    throw new ConfigError(`cannot read credentials file ${path}: ${describeFileError(code, error)}`);
  }
  return parseCredentialsFile(path, text);
}

function parseCredentialsFile(path: string, text: string): CredentialsFile {
  const fail = (problem: string): never => {
    throw new ConfigError(`invalid credentials file ${path}: ${problem}`);
  };
  // docker accepts an empty file as an empty configuration.
  const json: unknown = text.trim() === '' ? {} : parseJson(text, fail);
  if (!isRecord(json)) return fail('expected a JSON object');
  return {
    credHelpers: parseCredHelpers(json['credHelpers'], fail),
    credsStore: parseCredsStore(json['credsStore'], fail),
    auths: parseAuths(json['auths'], fail),
  };
}

type Fail = (problem: string) => never;

function parseJson(text: string, fail: Fail): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    // V8's message quotes the text around the error, which may be a secret: give only the place.
    return fail(`not valid JSON${jsonErrorPlace(text, error)}`);
  }
}

function jsonErrorPlace(text: string, error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  const position = /at position (\d+)/.exec(message);
  if (position !== null) {
    const before = text.slice(0, Number(position[1]));
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    return ` (line ${line}, column ${column})`;
  }
  if (/end of JSON input/.test(message)) return ' (it ends too early)';
  return '';
}

function parseCredHelpers(value: unknown, fail: Fail): Map<string, string> {
  const helpers = new Map<string, string>();
  if (value === undefined || value === null) return helpers;
  if (!isRecord(value)) return fail('"credHelpers" must be an object');
  for (const [key, helper] of Object.entries(value)) {
    if (typeof helper !== 'string' || !helperNamePattern.test(helper)) {
      return fail(`credHelpers[${JSON.stringify(key)}] must name a helper, such as "ecr-login"`);
    }
    const normalised = normalizeAuthKey(key);
    if (!helpers.has(normalised)) helpers.set(normalised, helper);
  }
  return helpers;
}

function parseCredsStore(value: unknown, fail: Fail): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || !helperNamePattern.test(value)) {
    return fail('"credsStore" must name a helper, such as "desktop"');
  }
  return value;
}

/** Keys already in normalised form (or docker login's Docker Hub key) win over aliases of the same registry. */
function parseAuths(value: unknown, fail: Fail): Map<string, Credential> {
  const auths = new Map<string, Credential>();
  if (value === undefined || value === null) return auths;
  if (!isRecord(value)) return fail('"auths" must be an object');
  const entries = Object.entries(value).map(([key, entry]) => ({ key, entry, normalised: normalizeAuthKey(key) }));
  const isExact = ({ key, normalised }: { key: string; normalised: string }) => key === normalised || key === dockerHubAuthKey;
  for (const { key, entry, normalised } of [...entries.filter(isExact), ...entries.filter((e) => !isExact(e))]) {
    const credential = authEntryCredential(key, entry, fail);
    if (credential !== undefined && !auths.has(normalised)) auths.set(normalised, credential);
  }
  return auths;
}

/**
 * URL-form keys ('https://host/v1/') lose scheme and path; other keys keep a namespace path
 * (auth.json 'quay.io/org'). The host part becomes a registry key, so Docker Hub's aliases meet.
 */
function normalizeAuthKey(key: string): string {
  const withoutScheme = key.replace(/^https?:\/\//i, '');
  const slash = withoutScheme.indexOf('/');
  const host = slash === -1 ? withoutScheme : withoutScheme.slice(0, slash);
  const isUrl = withoutScheme !== key;
  const namespace = isUrl || slash === -1 ? '' : withoutScheme.slice(slash).replace(/\/+$/, '');
  return registryKey(host) + namespace;
}

const authEntryFields = ['auth', 'username', 'password', 'identitytoken', 'registrytoken'] as const;

/** undefined for marker entries ({} left where a helper holds the secret) and entries with nothing usable. */
function authEntryCredential(key: string, entry: unknown, fail: Fail): Credential | undefined {
  const where = `auths[${JSON.stringify(key)}]`;
  if (!isRecord(entry)) return fail(`${where} must be an object`);
  const fields: Partial<Record<(typeof authEntryFields)[number], string>> = {};
  for (const field of authEntryFields) {
    const value = entry[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') return fail(`${where}.${field} must be a string`);
    fields[field] = value;
  }
  if (fields.registrytoken) return { kind: 'registryToken', token: fields.registrytoken };
  if (fields.identitytoken) return { kind: 'identityToken', token: fields.identitytoken };
  if (fields.auth) return decodeAuth(fields.auth, where, fail);
  return basicCredential(fields.username ?? '', fields.password ?? '');
}

/** base64("user:password"), split at the first ':' because passwords may contain ':'. */
function decodeAuth(auth: string, where: string, fail: Fail): Credential | undefined {
  const encoded = auth.trim();
  if (!base64Pattern.test(encoded)) return fail(`${where}.auth is not valid base64`);
  const decoded = Buffer.from(encoded, 'base64').toString('utf8').replace(/^\0+|\0+$/g, '');
  const colon = decoded.indexOf(':');
  if (colon === -1) return fail(`${where}.auth must encode "username:password" but has no ":"`);
  return basicCredential(decoded.slice(0, colon), decoded.slice(colon + 1));
}

/** Basic auth needs both halves (containerd refuses it otherwise); an entry without them is a marker. */
function basicCredential(username: string, password: string): Credential | undefined {
  return username === '' || password === '' ? undefined : { kind: 'basic', username, password };
}

function runHelperProgram(program: string, serverUrl: string, timeoutMs: number) {
  return new Promise<{ Username: string; Secret: string } | undefined>((resolve, reject) => {
    const child = execFile(program, ['get'], { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) {
        try {
          resolve(parseHelperAnswer(program, serverUrl, stdout));
        } catch (parseError) {
          reject(parseError);
        }
      } else if (helperNotFoundPattern.test(`${stdout}\n${stderr}`)) {
        resolve(undefined);
      } else {
        reject(new ConfigError(describeHelperFailure(program, serverUrl, error, `${stderr}\n${stdout}`, timeoutMs)));
      }
    });
    // A helper may exit without reading stdin; its exit status says what happened, not the broken pipe.
    child.stdin?.on('error', () => {});
    child.stdin?.end(serverUrl);
  });
}

function parseHelperAnswer(program: string, serverUrl: string, stdout: string): { Username: string; Secret: string } | undefined {
  if (stdout.trim() === '') return undefined;
  let answer: unknown;
  try {
    answer = JSON.parse(stdout);
  } catch {
    throw new ConfigError(`credential helper ${program} answered for ${serverUrl} with something other than JSON`);
  }
  if (!isRecord(answer) || typeof answer['Username'] !== 'string' || typeof answer['Secret'] !== 'string') {
    throw new ConfigError(`credential helper ${program} answered for ${serverUrl} without a Username and Secret string`);
  }
  return { Username: answer['Username'], Secret: answer['Secret'] };
}

function describeHelperFailure(
  program: string,
  serverUrl: string,
  error: Error & { code?: unknown; killed?: boolean },
  output: string,
  timeoutMs: number,
): string {
  const prefix = `credential helper ${program}`;
  if (error.code === 'ENOENT') return `${prefix} is not installed (not found on PATH)`;
  if (error.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return `${prefix} answered for ${serverUrl} with too much output`;
  if (error.killed) return `${prefix} did not answer for ${serverUrl} within ${timeoutMs / 1000} s`;
  const exit = typeof error.code === 'number' ? `exit code ${error.code}` : String(error.code ?? error.message);
  return `${prefix} failed for ${serverUrl} (${exit})${helperReason(output)}`;
}

/**
 * The helper's first line of complaint, which usually says what to do ("not logged in"). A line that
 * looks like JSON is left out: it could be an answer carrying the secret.
 */
function helperReason(output: string): string {
  const line = output
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '');
  if (line === undefined || line.startsWith('{')) return '';
  return `: ${line.length > 200 ? `${line.slice(0, 200)}…` : line}`;
}

function describeFileError(code: string | undefined, error: unknown): string {
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

function errorCode(error: unknown): string | undefined {
  return isRecord(error) && typeof error['code'] === 'string' ? error['code'] : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
