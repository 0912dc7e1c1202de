// Where a sync's or dry run's time and memory go (bench:plan and bench:sync, when a target is
// missed or --profile asks): a profiled run, then single runs that each change one knob.
import { repoRoot, type Harness } from '../../test/harness/harness.ts';
import { s2 } from './format.ts';
import { cli, runImageClone } from './image-clone-runs.ts';
import { listBytes } from './kubectl.ts';
import { timed, type TimedResult } from './processes.ts';
import { phaseText, profileRun } from './profiling.ts';
import { registryRequests } from './registry-trace.ts';

export interface Diagnosis {
  lines: string[];
  /** A short reading of the numbers above, for RESULTS.md (only what the measurements show). */
  findings: string[];
}

/**
 * Where a sync's (or dry run's) time and memory go, without touching src/: one profiled run
 * (request timeline + CPU profile), then single runs that each take one cost away or change one
 * knob: no registry lookups (--include-image matching nothing), more lookups in flight
 * (--concurrency 32), V8's old space capped (NODE_OPTIONS=--max-old-space-size), and the bare
 * process start (--version).
 */
export async function diagnose(h: Harness, args: string[], env: NodeJS.ProcessEnv, work: string, log: (s: string) => void, opts: { kubectl?: string | undefined; dryRun: boolean; smoke?: boolean }): Promise<Diagnosis> {
  const kubectl = opts.kubectl;
  const lines: string[] = [];
  const findings: string[] = [];
  log('diagnostics: a profiled run (request timeline from bench/undici-trace.ts, node --cpu-prof)');
  const prof = await profileRun(h, args, env, work);
  lines.push(prof.phases ? phaseText(prof.phases) : `profile: ${prof.note}`);
  lines.push('');
  const variant = async (label: string, extraArgs: string[], extraEnv: NodeJS.ProcessEnv = {}) => {
    log(`diagnostics: ${label}`);
    const r = await runImageClone(h, [...args, ...extraArgs], { env: { ...env, ...extraEnv } });
    const b = registryRequests(r.trace, 'backup');
    lines.push(`${label}: ${s2(r.run.wallMs)} s, CPU ${(r.run.userS + r.run.sysS).toFixed(2)} s, peak RSS ${(r.run.maxRssKiB / 1024).toFixed(0)} MiB, exit ${r.run.code}, backup requests ${b.authenticated} + ${b.challenges}x401`);
    return r.run;
  };
  const asMeasured = await variant('as measured (one more run)', []);
  // For a dry run this leaves listing and planning; workloads already on their backup copy are still checked, so not for a no-op sync.
  const noLookups = opts.dryRun ? await variant('no registry lookups (--include-image none.invalid/*: lists and plans only)', ['--include-image', 'none.invalid/*']) : undefined;
  // --smoke: the runs above prove the code path of every variant; the knobs below are more of the same runs.
  const c32 = opts.smoke ? undefined : await variant('32 lookups in flight (--concurrency 32; default 8)', ['--concurrency', '32']);
  const capped = opts.smoke ? undefined : await variant('old space capped (NODE_OPTIONS=--max-old-space-size=96)', [], { NODE_OPTIONS: '--max-old-space-size=96' });
  if (!opts.smoke) await variant('old space capped (NODE_OPTIONS=--max-old-space-size=160)', [], { NODE_OPTIONS: '--max-old-space-size=160' });
  const semi = opts.smoke ? undefined : await variant('young generation capped (NODE_OPTIONS=--max-semi-space-size=4)', [], { NODE_OPTIONS: '--max-semi-space-size=4' });
  const version = await timed(process.execPath, [cli, '--version'], { env });
  const clientNode = await timed(process.execPath, ['--input-type=module', '-e', "await import('@kubernetes/client-node')"], { env, cwd: repoRoot });
  lines.push(`process start: node bin/image-clone.js --version ${s2(version.wallMs)} s, ${(version.maxRssKiB / 1024).toFixed(0)} MiB; importing @kubernetes/client-node alone ${s2(clientNode.wallMs)} s, ${(clientNode.maxRssKiB / 1024).toFixed(0)} MiB`);
  let raw: { bytes: number; managedFieldsBytes: number } | undefined;
  if (kubectl) {
    const kv = await timed(kubectl, ['version', '--client'], { env });
    lines.push(`kubectl version --client: ${s2(kv.wallMs)} s, ${(kv.maxRssKiB / 1024).toFixed(0)} MiB`);
    raw = await listBytes(kubectl, h.env.kubeconfig);
    lines.push(`list responses (kubectl get --raw, all namespaces, uncompressed): ${(raw.bytes / 1e6).toFixed(1)} MB of JSON, of which metadata.managedFields ${(raw.managedFieldsBytes / 1e6).toFixed(1)} MB (${((100 * raw.managedFieldsBytes) / Math.max(raw.bytes, 1)).toFixed(0)}%)`);
  }
  const mb = (t: TimedResult) => (t.maxRssKiB / 1024).toFixed(0);
  // Findings: stated only when the measurements above support them.
  findings.push(`Start-up: ${prof.phases ? `${prof.phases.firstRequestMs.toFixed(0)} ms pass before the first request (profiled run); ` : ''}importing @kubernetes/client-node alone takes ${s2(clientNode.wallMs)} s and ${mb(clientNode)} MiB of RSS (\`--version\`, which does not load it: ${s2(version.wallMs)} s, ${mb(version)} MiB).`);
  if (noLookups && noLookups.code === 0) {
    const addMiB = asMeasured.maxRssKiB / 1024 - noLookups.maxRssKiB / 1024;
    findings.push(`Listing and planning alone (no registry lookup) peak at ${mb(noLookups)} MiB and take ${s2(noLookups.wallMs)} s: the listing is what sets the peak. ` +
      `The registry lookups add ${Math.abs(addMiB) < 15 ? `no measurable memory (${addMiB.toFixed(0)} MiB)` : `${addMiB.toFixed(0)} MiB`} and ${s2(asMeasured.wallMs - noLookups.wallMs)} s (one run each).`);
  }
  if (capped?.code === 0) {
    findings.push(`The live heap is small: with V8's old space capped at 96 MiB the run still completes (peak RSS ${mb(capped)} MiB, ${s2(capped.wallMs)} s, CPU ${(capped.userS + capped.sysS).toFixed(2)} s vs ${(asMeasured.userS + asMeasured.sysS).toFixed(2)} s uncapped). ` +
      'So most of the peak is memory V8 has not reclaimed yet (transient allocations while the lists are read and parsed), not data the run keeps; capping the heap trades it for GC time.' +
      (raw ? ` The lists are ${(raw.bytes / 1e6).toFixed(1)} MB of JSON, ${((100 * raw.managedFieldsBytes) / Math.max(raw.bytes, 1)).toFixed(0)}% of it managedFields.` : ''));
  }
  if (semi && c32) findings.push(`Young generation capped (--max-semi-space-size=4): peak ${mb(semi)} MiB, ${s2(semi.wallMs)} s; 32 lookups in flight instead of 8: ${s2(c32.wallMs)} s vs ${s2(asMeasured.wallMs)} s (single runs on a shared machine: indicative only).`);
  return { lines, findings };
}
