// Shared by the integration tests: polling, the harness's seeding and checking tool, running the CLI.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  AppsV1Api, AuthorizationV1Api, BatchV1Api, CoordinationV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { load as yamlLoad } from 'js-yaml';
import { repoRoot, type HarnessEnv, type HarnessRegistry } from '../harness/harness.ts';
import { validate } from '../schema.ts';

/** Polls check() until it returns true; fails with what it was waiting for after timeoutMs. */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(250);
  }
}


const execFileAsync = promisify(execFile);
const regharness = join(repoRoot, '.harness/bin/regharness');

export interface SeedResult {
  ref: string;
  digest: string;
  mediaType: string;
  children: Array<{ digest: string; platform: string }>;
  blobs: Array<{ digest: string; size: number }>;
  bytes: number;
}

export interface SeedOptions {
  platforms?: string[];
  layers?: number;
  layerSize?: number;
  seed?: number;
  format?: 'oci' | 'docker';
  sharedLayers?: number;
  sharedSeed?: number;
}

function credentialArgs(registry: HarnessRegistry, prefix = ''): string[] {
  return registry.username ? [`--${prefix}username`, registry.username, `--${prefix}password`, registry.password ?? ''] : [];
}

/** Pushes a random image with the harness's own tool (go-containerregistry), independent of our client. */
export async function seedImage(registry: HarnessRegistry, repositoryAndTag: string, options: SeedOptions = {}): Promise<SeedResult> {
  const args = ['seed', '--ref', `${registry.host}/${repositoryAndTag}`, ...credentialArgs(registry)];
  if (options.platforms) args.push('--platforms', options.platforms.join(','));
  if (options.layers !== undefined) args.push('--layers', String(options.layers));
  if (options.layerSize !== undefined) args.push('--layer-size', String(options.layerSize));
  if (options.seed !== undefined) args.push('--seed', String(options.seed));
  if (options.format) args.push('--format', options.format);
  if (options.sharedLayers !== undefined) args.push('--shared-layers', String(options.sharedLayers));
  if (options.sharedSeed !== undefined) args.push('--shared-seed', String(options.sharedSeed));
  const { stdout } = await execFileAsync(regharness, args, { maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

export interface VerifyResult {
  identical: boolean;
  manifests?: number;
  blobs?: number;
  differences?: string[];
}

/** Compares two copies with the harness's own tool: index, every child manifest, every blob in the target repository. */
export async function verifyCopy(src: { registry: HarnessRegistry; ref: string }, dst: { registry: HarnessRegistry; ref: string }): Promise<VerifyResult> {
  const args = ['verify', '--src', `${src.registry.host}/${src.ref}`, '--dst', `${dst.registry.host}/${dst.ref}`,
    ...credentialArgs(src.registry, 'src-'), ...credentialArgs(dst.registry, 'dst-')];
  const result = await execFileAsync(regharness, args).catch((err: { code?: number; stdout?: string; stderr?: string }) => {
    if (err.code === 1 && err.stdout) return { stdout: err.stdout };
    throw new Error(`regharness verify failed: ${err.stderr ?? err}`);
  });
  return JSON.parse(result.stdout.trim().split('\n').pop()!);
}

/** A docker config.json holding the harness registries' admin credentials (by default, of every registry that has any). */
export async function writeRegistryConfig(env: HarnessEnv, names: string[] = Object.keys(env.registries).filter((name) => env.registries[name]!.username)): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'image-clone-auth-'));
  const auths: Record<string, { auth: string }> = {};
  for (const name of names) {
    const registry = env.registries[name]!;
    auths[registry.host] = { auth: Buffer.from(`${registry.username}:${registry.password}`).toString('base64') };
  }
  const path = join(dir, 'config.json');
  await writeFile(path, JSON.stringify({ auths }), { mode: 0o600 });
  return path;
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Every JSON or YAML document a command prints is checked against schema/report.schema.json, in
 * every test that runs the CLI: a document that does not match fails the test that produced it.
 */
function checkDocument(args: string[], stdout: string): void {
  const at = Math.max(args.lastIndexOf('-o'), args.lastIndexOf('--output'));
  const format = at >= 0 ? args[at + 1] : args.find((a) => a.startsWith('--output='))?.slice(9);
  if ((format !== 'json' && format !== 'yaml') || !stdout.trim() || args.includes('--help')) return;
  const document = format === 'json' ? JSON.parse(stdout) : yamlLoad(stdout);
  const problems = validate(document);
  if (problems.length) throw new Error(`image-clone ${args.slice(0, 2).join(' ')} -o ${format} does not match schema/report.schema.json:\n${problems.slice(0, 10).join('\n')}`);
}

/** Runs the built CLI (npm test builds it first) as a user would. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin/image-clone.js'), ...args], {
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => {
      try {
        checkDocument(args, stdout);
      } catch (err) {
        reject(err);
        return;
      }
      resolve({ code, stdout, stderr });
    });
  });
}

let uniqueCounter = 0;
/** A repository path no other test uses. */
export function uniqueRepo(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${uniqueCounter++}`;
}

/** `--insecure-registry HOST` for each of these registries (the harness's are plain HTTP on loopback). */
export function insecureFlags(registries: Record<string, { host: string }> | Array<{ host: string }>): string[] {
  return Object.values(registries).flatMap((r) => ['--insecure-registry', r.host]);
}

/** The API clients the tests use, for one KubeConfig (each made when first asked for). */
export function kubeClients(kc: KubeConfig) {
  const once = <T>(make: () => T) => {
    let made: T | undefined;
    return () => (made ??= make());
  };
  const clients = {
    core: once(() => kc.makeApiClient(CoreV1Api)), apps: once(() => kc.makeApiClient(AppsV1Api)), batch: once(() => kc.makeApiClient(BatchV1Api)),
    leases: once(() => kc.makeApiClient(CoordinationV1Api)), authz: once(() => kc.makeApiClient(AuthorizationV1Api)),
    rbac: once(() => kc.makeApiClient(RbacAuthorizationV1Api)), objects: once(() => KubernetesObjectApi.makeApiClient(kc)),
  };
  return {
    kc,
    get core() { return clients.core(); }, get apps() { return clients.apps(); }, get batch() { return clients.batch(); },
    get leases() { return clients.leases(); }, get authz() { return clients.authz(); }, get rbac() { return clients.rbac(); },
    get objects() { return clients.objects(); },
  };
}

export type KubeClients = ReturnType<typeof kubeClients>;

/** The harness's admin (system:masters) KubeConfig. */
export function adminKubeConfig(env: HarnessEnv): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(env.kubeconfig);
  return kc;
}

/** A ServiceAccount's token from the TokenRequest API. */
export async function serviceAccountToken(core: CoreV1Api, namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
  const request = await core.createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences: [], expirationSeconds } } });
  return request.status?.token ?? '';
}

/** A KubeConfig that talks to `server` (verifying it against `caFile`) with a bearer token. */
export function tokenKubeConfig(server: string, caFile: string, user: string, token: string, namespace?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'harness', server, caFile }],
    users: [{ name: user, token }],
    contexts: [{ name: user, cluster: 'harness', user, ...(namespace ? { namespace } : {}) }],
    currentContext: user,
  });
  return kc;
}

/** Writes a KubeConfig into a new private folder; returns the file's path. */
export async function writeKubeconfig(kc: KubeConfig, name: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'image-clone-kube-')), `${name}.kubeconfig`);
  await writeFile(path, kc.exportConfig(), { mode: 0o600 });
  return path;
}

export interface AttachResult {
  ref: string;
  digest: string;
  mediaType: string;
  size: number;
}

/**
 * Pushes an artifact about `subject` (REPO@DIGEST) with the harness's own tool (go-containerregistry):
 * as a referrer with a subject (go-containerregistry keeps the fallback tag itself where the registry
 * has no referrers API), or with `tag` under a cosign-style tag.
 */
export async function attachArtifact(registry: HarnessRegistry, subject: string, options: { seed: number; artifactType?: string; tag?: string }): Promise<AttachResult> {
  const args = ['attach', '--subject', `${registry.host}/${subject}`, '--seed', String(options.seed), ...credentialArgs(registry)];
  if (options.artifactType) args.push('--artifact-type', options.artifactType);
  if (options.tag) args.push('--tag', options.tag);
  const { stdout } = await execFileAsync(regharness, args);
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

/**
 * One GET or HEAD against a harness registry, authenticated as its admin the way the token spec
 * says (an independent reading of the registry's state, without image-clone's client).
 */
export async function registryRead(registry: HarnessRegistry, method: 'GET' | 'HEAD', path: string, accept = 'application/vnd.oci.image.index.v1+json'): Promise<{ status: number; body: string; headers: Headers }> {
  const url = `http://${registry.host}${path}`;
  const send = (authorization?: string) => fetch(url, { method, headers: { accept, ...(authorization ? { authorization } : {}) } });
  let response = await send();
  const challenge = response.headers.get('www-authenticate');
  if (response.status === 401 && challenge && registry.username) {
    await response.arrayBuffer();
    const basic = `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}`;
    if (/^bearer/i.test(challenge)) {
      const param = (name: string) => new RegExp(`${name}="([^"]*)"`, 'i').exec(challenge)?.[1];
      const tokenUrl = new URL(param('realm')!);
      tokenUrl.searchParams.set('service', param('service') ?? '');
      if (param('scope')) tokenUrl.searchParams.set('scope', param('scope')!);
      const token = (await (await fetch(tokenUrl, { headers: { authorization: basic } })).json()) as { token: string };
      response = await send(`Bearer ${token.token}`);
    } else {
      response = await send(basic);
    }
  }
  return { status: response.status, body: method === 'GET' ? await response.text() : '', headers: response.headers };
}

const manifestAccept = [
  'application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/**
 * A request to a harness registry as its admin, answering its Basic or Bearer challenge: what the
 * registry itself holds, read without image-clone's client.
 */
export async function registryRequest(registry: HarnessRegistry, path: string, method = 'GET', scope?: string): Promise<Response> {
  const url = `http://${registry.host}${path}`;
  const headers: Record<string, string> = { accept: manifestAccept };
  const basic = registry.username ? `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}` : undefined;
  if (registry.auth === 'basic' && basic) headers.authorization = basic;
  if (registry.auth === 'token' && basic && registry.realm) {
    const query = new URLSearchParams({ service: registry.service ?? '', ...(scope ? { scope } : {}) });
    const token = await fetch(`${registry.realm}?${query}`, { headers: { authorization: basic } }).then((r) => r.json()) as { token?: string; access_token?: string };
    headers.authorization = `Bearer ${token.token ?? token.access_token}`;
  }
  return fetch(url, { method, headers });
}

/** The digest a registry holds under a tag or digest, undefined when it has none. */
export async function manifestDigest(registry: HarnessRegistry, repository: string, reference: string): Promise<string | undefined> {
  const response = await registryRequest(registry, `/v2/${repository}/manifests/${reference}`, 'HEAD', `repository:${repository}:pull`);
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`HEAD ${repository}:${reference}: HTTP ${response.status}`);
  return response.headers.get('docker-content-digest') ?? undefined;
}

/** Every tag of a repository and the digest it names. */
export async function tagsOf(registry: HarnessRegistry, repository: string): Promise<Map<string, string>> {
  const response = await registryRequest(registry, `/v2/${repository}/tags/list`, 'GET', `repository:${repository}:pull`);
  if (response.status === 404) return new Map();
  const { tags } = await response.json() as { tags: string[] | null };
  const entries = await Promise.all((tags ?? []).map(async (tag) => [tag, await manifestDigest(registry, repository, tag)] as const));
  return new Map(entries.filter((e): e is readonly [string, string] => e[1] !== undefined));
}

/** A loopback port nothing listens on now (for a server that binds it itself, or for a dead host). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
