// Starts the test harness: a real Kubernetes control plane (kubeharness) and real OCI registries
// (regharness), both Go programs built by test/harness/build.sh. `npm run harness`, the
// integration tests and the demo all start it through startHarness(), so they share one code path.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pauseImage, pushImage, testImage } from './images.ts';
import { nodeFromEnv, PrerequisiteError } from './prerequisites.ts';
import { acquireNodeLock, checkNodePrerequisites, nodeAddress, setUpNodeNetwork, startNode, stopNode, type NodeFacts, type RunningNode } from './node.ts';

export const repoRoot = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const binDir = join(repoRoot, '.harness', 'bin');

export type RegistryAuth = 'none' | 'basic' | 'token';

export interface HarnessRegistry {
  host: string;
  auth: RegistryAuth;
  username?: string;
  password?: string;
  /** Token auth: the issuer's endpoint and service name. */
  realm?: string;
  service?: string;
  /** A second identity that may only pull (token auth) */
  reader?: { username: string; password: string };
}

/** The contents of env.json. */
export interface HarnessEnv {
  /** Absolute path of an admin (system:masters) kubeconfig. */
  kubeconfig: string;
  server: string;
  caFile: string;
  k8sVersion: string;
  registries: Record<'source' | 'backup' | 'backup-basic', HarnessRegistry> & Record<string, HarnessRegistry>;
  tokenServer: string;
  /** Every request the registries received, one JSON line each. */
  registryTrace: string;
  /** kube-apiserver's audit log: every API request, one JSON line each (metadata level). */
  auditLog: string;
  logs: Record<string, string>;
  /** Present when the harness runs a node (see node.ts); the registries then listen on its bridge address. */
  node?: NodeFacts & {
    /** Runnable test images in `source`: busybox (linux/amd64) and multi (an index: linux/amd64 runs, linux/arm64). */
    images: Record<'pause' | 'busybox' | 'multi', { ref: string; digest: string }>;
  };
}

export interface Harness {
  env: HarnessEnv;
  envPath: string;
  dir: string;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  /** Log harness output here (default: a log file per program in the harness folder). */
  stderr?: 'inherit' | 'ignore';
  /** Keep the working folder after stop, for debugging. */
  keep?: boolean;
  /** Also run one real node (containerd, kubelet, kube-scheduler); default: IMAGE_CLONE_HARNESS_NODE=1. Needs root. */
  node?: boolean;
  /** kube-controller-manager's controllers (kubeharness --controllers; default: kubeharness's list, every workload controller). */
  controllers?: string;
}


const readyTimeoutMs = 180_000;

/** Builds the Go programs unless the cache already holds them for these sources (see build.sh). */
export function ensureBuilt(): void {
  try {
    execFileSync('bash', [join(repoRoot, 'test/harness/build.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    throw new PrerequisiteError("the harness build (test/harness/build.sh) failed: its errors are above");
  }
}

/** Starts both programs in parallel and resolves once both are ready and env.json is written. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const withNode = options.node ?? nodeFromEnv();
  let releaseNode: (() => void) | undefined;
  if (withNode) {
    checkNodePrerequisites(binDir);
    releaseNode = await acquireNodeLock(); // one node per machine: wait for another harness's
    try {
      await stopNode(); // whatever a crashed run left
      setUpNodeNetwork(); // the registries listen on the bridge address
    } catch (err) {
      releaseNode();
      throw err;
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'image-clone-harness-'));
  const stderr = options.stderr ?? 'inherit';
  const kube = startProgram('kubeharness', ['--dir', join(dir, 'kube'), ...(options.controllers !== undefined ? ['--controllers', options.controllers] : [])], stderr);
  const registryTrace = join(dir, 'registry-requests.jsonl');
  const registry = startProgram('regharness', ['serve', '--dir', join(dir, 'registry'), '--trace-requests', registryTrace,
    ...(withNode ? ['--listen-ip', nodeAddress] : [])], stderr);
  const programs = [kube, registry];
  let node: RunningNode | undefined;
  const stop = async () => {
    // The node first (its pods may still pull from the registries); its leftovers are an error.
    const nodeStopped = withNode ? (node ? node.stop() : stopNode().then(() => {})).catch((err: Error) => err) : undefined;
    const nodeError = await nodeStopped;
    releaseNode?.();
    await Promise.all(programs.map((p) => stopProgram(p.child)));
    if (!options.keep) await rm(dir, { recursive: true, force: true });
    if (nodeError) throw nodeError;
  };
  try {
    const [kubePath, registryPath] = await Promise.all([kube.ready, registry.ready]);
    const kubeEnv = JSON.parse(await readFile(kubePath, 'utf8'));
    const registryEnv = JSON.parse(await readFile(registryPath, 'utf8'));
    const env: HarnessEnv = { ...kubeEnv, ...registryEnv, registryTrace };
    if (withNode) {
      const source = env.registries.source.host;
      const pause = pauseImage();
      const busybox = testImage('harness/busybox');
      const multi = testImage('harness/multi', ['linux/amd64', 'linux/arm64']);
      const images = {
        pause: { ref: `${source}/harness/pause:1`, digest: pause.digest },
        busybox: { ref: `${source}/harness/busybox:1`, digest: busybox.digest },
        multi: { ref: `${source}/harness/multi:1`, digest: multi.digest },
      };
      node = await startNode(binDir, dir, {
        kubeconfig: env.kubeconfig, caFile: env.caFile, server: env.server,
        registryHosts: Object.values(env.registries).map((r) => r.host),
        sandboxImage: images.pause.ref,
        pushImages: async () => {
          await pushImage(source, 'harness/pause', '1', pause);
          await pushImage(source, 'harness/busybox', '1', busybox);
          await pushImage(source, 'harness/multi', '1', multi);
        },
      });
      env.node = { ...node.facts, images };
    }
    const envPath = join(dir, 'env.json');
    await writeFile(`${envPath}.tmp`, `${JSON.stringify(env, null, 2)}\n`, { mode: 0o600 });
    await rename(`${envPath}.tmp`, envPath);
    return { env, envPath, dir, stop };
  } catch (err) {
    await stop().catch((stopErr: Error) => process.stderr.write(`harness: ${stopErr.message}\n`));
    throw err;
  }
}

/**
 * A second Kubernetes control plane (its own API server, etcd and controllers): a second cluster,
 * for tests of several clusters sharing one backup registry.
 */
export async function startControlPlane(): Promise<{ kubeconfig: string; server: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'image-clone-kube-'));
  const kube = startProgram('kubeharness', ['--dir', dir], 'ignore');
  const stop = async () => {
    await stopProgram(kube.child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const env = JSON.parse(await readFile(await kube.ready, 'utf8'));
    return { kubeconfig: env.kubeconfig, server: env.server, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * A registry set of its own (source, backup, backup-basic, token issuer) in `dir`. Started again on
 * the same folder after stop(), it serves the same storage on the same addresses with the same
 * passwords: a test can stop it, garbage-collect a registry's storage, and start it again.
 * `tokenTtl` (a Go duration, e.g. '3s'): how long the token registries accept an issued token.
 * `tokeninfo` (a URL): the issuer also accepts user oauth2accesstoken with an access token that URL
 * vouches for, as Google's registries do (regharness's --oauth2-tokeninfo). `listenIp`: see regharness.
 */
export async function startRegistries(dir: string, options: { tokenTtl?: string; tokeninfo?: string; listenIp?: string } = {}): Promise<{ registries: HarnessEnv['registries']; trace: string; stop(): Promise<void> }> {
  const trace = join(dir, 'requests.jsonl');
  const more = [
    ...(options.tokenTtl ? ['--token-ttl', options.tokenTtl] : []),
    ...(options.tokeninfo ? ['--oauth2-tokeninfo', options.tokeninfo] : []),
    ...(options.listenIp ? ['--listen-ip', options.listenIp] : []),
  ];
  const registry = startProgram('regharness', ['serve', '--dir', dir, '--keep', '--trace-requests', trace, ...more], 'ignore');
  const info = JSON.parse(await readFile(await registry.ready, 'utf8').catch(async (err) => {
    await stopProgram(registry.child);
    throw err;
  }));
  return { registries: info.registries, trace, stop: () => stopProgram(registry.child) };
}

/** Runs distribution's garbage collector on one registry of a stopped startRegistries() folder. */
export function collectGarbage(dir: string, registry: string, options: { deleteUntagged: boolean }): string {
  return execFileSync(join(binDir, 'regharness'), ['gc', '--dir', dir, '--registry', registry, ...(options.deleteUntagged ? ['--delete-untagged'] : [])], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

interface Program {
  child: ChildProcess;
  /** Resolves with the path the program printed after READY. */
  ready: Promise<string>;
}

function startProgram(name: string, args: string[], stderr: 'inherit' | 'ignore'): Program {
  // stdin stays open as a pipe: when this process dies, the pipe closes and the program stops.
  const child = spawn(join(binDir, name), args, { stdio: ['pipe', 'pipe', stderr] });
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} was not ready after ${readyTimeoutMs / 1000}s`)), readyTimeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${name} could not start (${err.message}); run 'npm run harness:build' first`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready (${signal ?? `exit code ${code}`})`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^READY (.+)$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
  });
  ready.catch(() => {}); // observed by startHarness; avoid an unhandled rejection if the other one fails first
  return { child, ready };
}

/** Closes stdin and sends SIGTERM, then SIGKILL if the program has not exited after 15 s. */
async function stopProgram(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Reads env.json in a process started by with-harness.ts (or pointed at a running `npm run harness`). */
export async function harnessEnv(): Promise<HarnessEnv> {
  const path = process.env.IMAGE_CLONE_HARNESS_ENV;
  if (!path) {
    throw new Error('IMAGE_CLONE_HARNESS_ENV is not set: run integration tests with `npm run test:integration`, ' +
      'or start `npm run harness` and export IMAGE_CLONE_HARNESS_ENV=<the path it prints>');
  }
  return JSON.parse(await readFile(path, 'utf8'));
}
