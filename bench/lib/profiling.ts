// One profiled image-clone run (bench/undici-trace.ts and node --cpu-prof) split into phases:
// start-up, the kube API, each registry, after the last response.
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot, type Harness } from '../../test/harness/harness.ts';
import { summarizeCpuProfile, type CpuProfileSummary } from './cpu-profile.ts';
import { median } from './format.ts';
import { runImageClone, type CliRun } from './image-clone-runs.ts';
import { readRequestTrace, type TracedRequest } from './request-timeline.ts';

export interface PhaseProfile {
  /** Time from process start to its first HTTP request (module loading, config, credentials). */
  firstRequestMs: number;
  /** Requests to the API server: reads (lists, gets) and writes (patches, leases). */
  kube: { requests: number; firstMs: number; lastMs: number; sumMs: number; maxMs: number };
  kubeWrites: { requests: number; firstMs: number; lastMs: number; sumMs: number; maxMs: number };
  registries: Array<{ name: string; requests: number; firstMs: number; lastMs: number; p50Ms: number; sumMs: number }>;
  lastResponseMs: number;
  exitMs: number;
  wallMs: number;
  cpu?: CpuProfileSummary;
}

/**
 * Runs image-clone once with bench/undici-trace.ts preloaded (every HTTP request it makes: kube
 * API and registries, with timestamps since process start) and `node --cpu-prof`, and splits the
 * run into phases: start-up, listing the workloads, registry lookups, after the last response.
 */
export async function profileRun(h: Harness, args: string[], env: NodeJS.ProcessEnv, work: string): Promise<{ phases?: PhaseProfile; note: string; run: CliRun }> {
  const preload = join(repoRoot, 'bench', 'undici-trace.ts');
  const profDir = join(work, `prof-${Date.now()}`);
  await mkdir(profDir, { recursive: true });
  const traceFile = join(profDir, 'undici.jsonl');
  const nodeFlags = [...(existsSync(preload) ? ['--import', preload] : []), '--cpu-prof', `--cpu-prof-dir=${profDir}`];
  const r = await runImageClone(h, args, { env: { ...env, IMAGE_CLONE_BENCH_TRACE: traceFile }, nodeFlags });
  const prof = (await readdir(profDir).catch(() => [])).find((f) => f.endsWith('.cpuprofile'));
  const cpu = prof ? await summarizeCpuProfile(join(profDir, prof)).catch(() => undefined) : undefined;
  const trace = await readRequestTrace(traceFile).catch(() => undefined);
  if (!trace || !(trace.requests.length || trace.summary)) return { note: `no request trace (${existsSync(preload) ? 'the preload wrote nothing' : 'bench/undici-trace.ts is missing'}); exit ${r.run.code}`, run: r };
  const { requests: recs, summary } = trace;
  const names = new Map<string, string>();
  for (const [name, reg] of Object.entries(h.env.registries)) {
    names.set(`http://${reg.host}`, name);
    names.set(`https://${reg.host}`, `${name} over https (probe before plain HTTP)`);
  }
  names.set(new URL(h.env.tokenServer).origin, 'issuer');
  const server = new URL(h.env.server).origin;
  const kubeAll = recs.filter((x) => x.origin.replace(/\/$/, '') === server);
  const kube = kubeAll.filter((x) => x.method === 'GET');
  const kubeWrites = kubeAll.filter((x) => x.method !== 'GET');
  const groups = new Map<string, TracedRequest[]>();
  for (const x of recs) {
    if (x.origin.replace(/\/$/, '') === server) continue;
    const name = names.get(x.origin.replace(/\/$/, '')) ?? x.origin;
    groups.set(name, [...(groups.get(name) ?? []), x]);
  }
  const span = (xs: TracedRequest[]) => ({
    requests: xs.length,
    firstMs: xs.length ? Math.min(...xs.map((x) => x.t0)) : NaN,
    lastMs: xs.length ? Math.max(...xs.map((x) => x.t4)) : NaN,
    sumMs: xs.reduce((a, x) => a + (x.t4 - x.t0), 0),
  });
  return {
    note: `exit ${r.run.code}`,
    run: r,
    phases: {
      firstRequestMs: Math.min(...recs.map((x) => x.t0)),
      kube: { ...span(kube), maxMs: Math.max(0, ...kube.map((x) => x.t4 - x.t0)) },
      kubeWrites: { ...span(kubeWrites), maxMs: Math.max(0, ...kubeWrites.map((x) => x.t4 - x.t0)) },
      registries: [...groups.entries()].map(([name, xs]) => ({ name, ...span(xs), p50Ms: median(xs.map((x) => x.t4 - x.t0)) })),
      lastResponseMs: Math.max(...recs.map((x) => x.t4)),
      exitMs: summary?.exitAt ?? NaN,
      wallMs: r.run.wallMs,
      ...(cpu ? { cpu } : {}),
    },
  };
}

export function phaseText(p: PhaseProfile): string {
  const rows = [
    `start-up (process start to first request: module loading, kubeconfig, credentials): ${p.firstRequestMs.toFixed(0)} ms`,
    `kube API reads (lists, gets): ${p.kube.requests} requests from ${p.kube.firstMs.toFixed(0)} to ${p.kube.lastMs.toFixed(0)} ms (longest ${p.kube.maxMs.toFixed(0)} ms, sum ${p.kube.sumMs.toFixed(0)} ms)`,
    ...(p.kubeWrites.requests ? [`kube API writes (patches, lease): ${p.kubeWrites.requests} requests from ${p.kubeWrites.firstMs.toFixed(0)} to ${p.kubeWrites.lastMs.toFixed(0)} ms (longest ${p.kubeWrites.maxMs.toFixed(0)} ms, sum ${p.kubeWrites.sumMs.toFixed(0)} ms)`] : []),
    ...p.registries.map((r) => `${r.name}: ${r.requests} requests from ${r.firstMs.toFixed(0)} to ${r.lastMs.toFixed(0)} ms (p50 ${r.p50Ms.toFixed(1)} ms, sum ${r.sumMs.toFixed(0)} ms)`),
    `last response at ${p.lastResponseMs.toFixed(0)} ms; process exit at ${Number.isFinite(p.exitMs) ? p.exitMs.toFixed(0) : '?'} ms (after the last response: ${(p.exitMs - p.lastResponseMs).toFixed(0)} ms: building the plan, JSON output, teardown); wall clock seen by the parent ${p.wallMs.toFixed(0)} ms`,
  ];
  if (p.cpu) {
    rows.push(`CPU profile (node --cpu-prof): ${p.cpu.sampledS.toFixed(2)} s sampled; by bucket: ${p.cpu.buckets.slice(0, 6).map((b) => `${b.name} ${b.s.toFixed(2)} s`).join(', ')}`);
    rows.push(`top self time: ${p.cpu.topSelf.slice(0, 8).map((t) => `${t.fn} ${t.s.toFixed(2)} s`).join('; ')}`);
  }
  return rows.join('\n');
}
