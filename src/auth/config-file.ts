// One docker config.json or Podman auth.json, read and checked: its credHelpers, credsStore and
// auths. Secrets never reach an error message: errors name the file, the entry's key and what is wrong.
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.ts';
import { registryKey } from '../reference.ts';
import { errorCode } from '../util/retry-policy.ts';
import { type Credential, isRecord } from './credential.ts';
import { dockerHubAuthKey, helperNamePattern } from './helper.ts';

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

/** One credentials file, read and checked. */
export interface CredentialsFile {
  /** Helper name by registry key. */
  credHelpers: Map<string, string>;
  credsStore: string | undefined;
  /** Credentials by normalised key: a registry key, or a registry key and a namespace ('quay.io/org'). */
  auths: Map<string, Credential>;
}

export async function readCredentialsFile(path: string, required: boolean): Promise<CredentialsFile | undefined> {
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

