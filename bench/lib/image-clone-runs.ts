// Running image-clone sync in the harness: its arguments and how RESULTS.md shows them,
// a run under GNU time with the registry requests it made, and its version.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot, type Harness } from '../../test/harness/harness.ts';
import { dockerfileRuntimeConfig } from '../../test/harness/dockerfile.ts';
import { timedWithVmHwm } from './peak-rss.ts';
import { firstLine, run, type TimedResult } from './processes.ts';
import { fileSize, readTraceFrom, type TraceLine } from './registry-trace.ts';

export const cli = join(repoRoot, 'bin', 'image-clone.js');

/**
 * Node's own flags in the container image's ENTRYPOINT, for runs that stand for the CronJob's pod:
 * read from the Dockerfile (as the node tests' image is), so a benchmark measures what ships.
 */
export function imageNodeFlags(): string[] {
  const entrypoint = dockerfileRuntimeConfig().entrypoint ?? [];
  const launcher = entrypoint.findIndex((a) => a.endsWith('image-clone.js'));
  if (entrypoint[0] !== 'node' || launcher < 0) throw new Error(`manifests/image/Dockerfile: expected ENTRYPOINT ["node", ..., ".../image-clone.js"], found ${JSON.stringify(entrypoint)}`);
  return entrypoint.slice(1, launcher);
}

/**
 * A docker config.json with the admin credentials of `backup` (and backup-basic), as the issue's
 * runs use; `alias` adds other addresses of those registries (the WAN proxies'), by registry name.
 */
export async function writeRegistryConfig(h: Harness, dir: string, alias: Record<string, string> = {}): Promise<string> {
  const auths: Record<string, { auth: string }> = {};
  const auth = (name: string) => ({ auth: Buffer.from(`${h.env.registries[name]!.username}:${h.env.registries[name]!.password}`).toString('base64') });
  for (const name of ['backup', 'backup-basic']) auths[h.env.registries[name]!.host] = auth(name);
  for (const [host, name] of Object.entries(alias)) auths[host] = auth(name);
  const path = join(dir, 'config.json');
  await writeFile(path, JSON.stringify({ auths }), { mode: 0o600 });
  return path;
}

export interface SyncInvocation {
  h: Harness;
  backupPrefix: string;
  registryConfig: string;
  dryRun: boolean;
  extra?: string[];
}

export function syncArgs(x: SyncInvocation): string[] {
  const insecure = Object.values(x.h.env.registries).flatMap((r) => ['--insecure-registry', r.host]);
  return [
    'sync', '--backup', `${x.h.env.registries.backup.host}/${x.backupPrefix}`, '--kubeconfig', x.h.env.kubeconfig,
    '--registry-config', x.registryConfig, ...insecure, '-o', 'json', ...(x.dryRun ? ['--dry-run'] : []), ...(x.extra ?? []),
  ];
}

export function syncDisplay(x: { backupPrefix: string; dryRun: boolean; extra?: string[] }): string {
  return `node bin/image-clone.js sync --backup BACKUP/${x.backupPrefix} --kubeconfig KUBECONFIG --registry-config config.json ` +
    `--insecure-registry SOURCE --insecure-registry BACKUP --insecure-registry BACKUP_BASIC -o json${x.dryRun ? ' --dry-run' : ''}${x.extra?.length ? ` ${x.extra.join(' ')}` : ''}`;
}

export interface CliRun {
  run: TimedResult;
  /** VmHWM of the node process, sampled from /proc every 20 ms (cross-check of GNU time's figure). */
  vmHwmKiB?: number;
  /** The registries' request trace lines written during the run. */
  trace: TraceLine[];
  /** The JSON report on stdout, when it parsed. */
  report?: any;
}

/** Runs image-clone under GNU time, sampling VmHWM, and collects the registry requests made meanwhile. */
export async function runImageClone(h: Harness, args: string[], options: { env: NodeJS.ProcessEnv; nodeFlags?: string[]; cli?: string; wrap?: string[] }): Promise<CliRun> {
  const offset = await fileSize(h.env.registryTrace);
  // wrap: a prefix that execs the command (same pid), e.g. into a memory cgroup (memory-cgroup.ts).
  const [cmd, ...cmdArgs] = [...(options.wrap ?? []), process.execPath, ...(options.nodeFlags ?? []), options.cli ?? cli, ...args];
  const { run: r, vmHwmKiB: hwm } = await timedWithVmHwm(cmd!, cmdArgs, { env: options.env });
  // The trace line is written before the response reaches the client, so everything is in by now.
  const trace = await readTraceFrom(h.env.registryTrace, offset);
  let report: any;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    report = undefined;
  }
  return { run: { ...r, stdout: r.stdout.length > 2_000_000 ? '' : r.stdout }, vmHwmKiB: hwm, trace, report };
}

export async function imageCloneVersion(): Promise<string> {
  const v = firstLine((await run(process.execPath, [cli, '--version'])).stdout);
  const commit = firstLine((await run('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'])).stdout) || 'unknown';
  const dirty = (await run('git', ['-C', repoRoot, 'status', '--porcelain', '--', 'src'])).stdout.trim().split('\n').filter(Boolean).length;
  return `${v} (${commit}${dirty ? `, ${dirty} uncommitted change(s) under src/` : ''})`;
}
