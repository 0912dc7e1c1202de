// kubectl (found or built from the Kubernetes module the harness pins), the listing of every
// workload kind the plan and sync benchmarks are measured against, and the raw list sizes.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../test/harness/harness.ts';
import { cacheRoot, type InstallOptions } from './peers.ts';
import { commandExists, firstLine, run, timed, type TimedResult } from './processes.ts';

export interface Kubectl {
  bin?: string;
  version: string;
  note: string;
}

/**
 * kubectl: $BENCH_KUBECTL, else from PATH (/usr/bin/kubectl on the CI machine), else built from
 * the Kubernetes module the harness already pins (see buildKubectl).
 */
export async function findKubectl(log: (s: string) => void, options: InstallOptions = {}): Promise<Kubectl> {
  const given = process.env.BENCH_KUBECTL;
  if (given) return existsSync(given) ? { bin: given, version: await kubectlVersion(given), note: `BENCH_KUBECTL=${given}` } : { version: '-', note: `BENCH_KUBECTL=${given} does not exist` };
  const onPath = commandExists('kubectl');
  if (onPath) return { bin: onPath, version: await kubectlVersion(onPath), note: `on PATH (${onPath})` };
  return buildKubectl(log, options);
}

/**
 * Builds k8s.io/kubernetes/cmd/kubectl at the version test/harness/kube requires, with
 * GOTOOLCHAIN=local, into the bench cache (once). The build runs in a temporary copy of that
 * module's go.mod and go.sum, so that the harness module itself is never modified.
 */
export async function buildKubectl(log: (s: string) => void, options: InstallOptions = {}): Promise<Kubectl> {
  const modDir = join(repoRoot, 'test', 'harness', 'kube');
  const mod = await readFile(join(modDir, 'go.mod'), 'utf8').catch(() => '');
  const k8sVersion = /^\s*k8s\.io\/kubernetes\s+(v\S+)/m.exec(mod)?.[1];
  if (!k8sVersion) return { version: '-', note: 'kubectl not found, and test/harness/kube/go.mod does not require k8s.io/kubernetes to build it from' };
  const outDir = join(cacheRoot, 'bin', `kubectl@${k8sVersion}`);
  const out = join(outDir, 'kubectl');
  if (!existsSync(out)) {
    if (options.install === false) return { version: '-', note: `kubectl not found, and not built (--smoke builds nothing): not on PATH, not in ${outDir}` };
    if (!commandExists('go')) return { version: '-', note: 'kubectl not found, and go is missing to build it' };
    await mkdir(outDir, { recursive: true });
    const tmp = await mkdtemp(join(tmpdir(), 'bench-kubectl-build-'));
    try {
      await writeFile(join(tmp, 'go.mod'), mod);
      await writeFile(join(tmp, 'go.sum'), await readFile(join(modDir, 'go.sum'), 'utf8').catch(() => ''));
      log(`kubectl not found: building k8s.io/kubernetes/cmd/kubectl ${k8sVersion} (GOTOOLCHAIN=local; several minutes on 2 cores)`);
      const r = await run('go', ['build', '-trimpath', '-ldflags', `-X k8s.io/component-base/version.gitVersion=${k8sVersion}`, '-o', out, 'k8s.io/kubernetes/cmd/kubectl'],
        { cwd: tmp, env: { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0', GOFLAGS: '-mod=mod' } });
      if (r.code !== 0 || !existsSync(out)) return { version: '-', note: `kubectl not found; building it failed: ${r.stderr.trim().split('\n').slice(-2).join(' | ').slice(0, 300)}` };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  return { bin: out, version: await kubectlVersion(out), note: `built from k8s.io/kubernetes ${k8sVersion} (the version test/harness/kube pins) into ${out}` };
}

async function kubectlVersion(bin: string): Promise<string> {
  const r = await run(bin, ['version', '--client', '-o', 'json']);
  try {
    return (JSON.parse(r.stdout) as { clientVersion?: { gitVersion?: string } }).clientVersion?.gitVersion ?? 'unknown';
  } catch {
    return firstLine(r.stdout) || 'unknown';
  }
}

export const kubectlResources = 'deploy,sts,ds,cronjob,job,rs,rc,pod';

export interface ListRun {
  run: TimedResult;
  items: number;
  byKind: Record<string, number>;
}

/**
 * `kubectl get deploy,sts,ds,cronjob,job,rs,rc,pod -A -o json`, under GNU time, output read whole
 * (as image-clone reads its lists) and counted afterwards. HOME is a private folder whose
 * discovery cache the caller warms with a first run, as any user's would be.
 */
export async function kubectlList(kubectl: string, kubeconfig: string, home: string): Promise<ListRun> {
  const env = { PATH: process.env.PATH, HOME: home, LANG: 'C.UTF-8' };
  const r = await timed(kubectl, ['get', kubectlResources, '-A', '-o', 'json', '--kubeconfig', kubeconfig], { env });
  const byKind: Record<string, number> = {};
  let items = 0;
  if (r.code === 0) {
    const doc = JSON.parse(r.stdout) as { items: Array<{ kind: string }> };
    for (const i of doc.items) byKind[i.kind] = (byKind[i.kind] ?? 0) + 1;
    items = doc.items.length;
  }
  return { run: { ...r, stdout: '' }, items, byKind };
}

export const kubectlDisplay = `kubectl get ${kubectlResources} -A -o json --kubeconfig KUBECONFIG`;

const rawListPaths = ['/apis/apps/v1/deployments', '/apis/apps/v1/statefulsets', '/apis/apps/v1/daemonsets', '/apis/batch/v1/cronjobs', '/apis/batch/v1/jobs',
  '/apis/apps/v1/replicasets', '/api/v1/replicationcontrollers', '/api/v1/pods'];

/** Bytes of JSON the API server sends for the lists (uncompressed), and how much of it is metadata.managedFields. */
export async function listBytes(kubectl: string, kubeconfig: string): Promise<{ bytes: number; managedFieldsBytes: number }> {
  let bytes = 0;
  let managed = 0;
  for (const path of rawListPaths) {
    const r = await run(kubectl, ['get', '--raw', path, '--kubeconfig', kubeconfig]);
    if (r.code !== 0) continue;
    bytes += Buffer.byteLength(r.stdout);
    for (const item of (JSON.parse(r.stdout) as { items: Array<{ metadata?: { managedFields?: unknown } }> }).items) {
      if (item.metadata?.managedFields) managed += Buffer.byteLength(JSON.stringify(item.metadata.managedFields));
    }
  }
  return { bytes, managedFieldsBytes: managed };
}
