// Runs the integration and node suites at once: the integration files in N shards, each on a harness
// of its own (API server and registries: with-harness.ts), so that no shard sees another's
// namespaces, workloads or images and a cluster-wide sync in one cannot touch another's; and the
// node files (real kubelet and containerd, one node per machine) beside them on a node harness. CI
// has two cores and these suites keep about one busy (most of their time is spent waiting on API
// servers, registries, pods and child processes), so running them together cuts the wall time
// without changing a test.
//
//   node test/harness/split-suite.ts SHARDS GLOB [--node GLOB]
//
// Files are dealt to shards longest first, by the seconds each took in CI (an unlisted file counts
// as `typicalSeconds`). Shard 1's output streams; the others' follow it, whole. The exit code is the
// first non-zero one.
import { spawn } from 'node:child_process';
import { glob } from 'node:fs/promises';
import { relative } from 'node:path';

const repoRoot = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

/** Seconds per file in a warm CI run (December 2026); only the slow ones matter for the balance. */
const measuredSeconds: Record<string, number> = {
  'nothing-lost.test.ts': 165, 'rbac.test.ts': 55, 'bench-smoke.test.ts': 57, 'proxy.test.ts': 46, 'bad-day.test.ts': 30,
  'image.test.ts': 35, 'copy.test.ts': 28, 'moving-tags.test.ts': 27, 'sync.test.ts': 25, 'exit-codes.test.ts': 25,
  'secrets.test.ts': 23, 'sync-plan.test.ts': 22, 'gc-distribution2.test.ts': 18, 'token-expiry.test.ts': 30,
  'package.test.ts': 18, 'referrers.test.ts': 15, 'interrupt.test.ts': 13, 'harness.test.ts': 33,
};
const typicalSeconds = 6;
/** The node files, one after the other (CI, December 2026): the node shard's head start. */
const nodeSuiteSeconds = 230;

/**
 * Integration files that start a node of their own (and wait for the node lock, harness/node.ts,
 * while another harness holds it): with --node they run after the node files, on the node shard,
 * with whatever integration files are dealt to that shard.
 */
const startsANode = new Set(['harness.test.ts']);

const [shardsArg, pattern, nodeFlag, nodePattern] = process.argv.slice(2);
const shards = Number(shardsArg);
if (!Number.isInteger(shards) || shards < 1 || !pattern || (nodeFlag !== undefined && (nodeFlag !== '--node' || !nodePattern))) {
  process.stderr.write('usage: node test/harness/split-suite.ts SHARDS GLOB [--node GLOB]\n');
  process.exit(2);
}

async function filesOf(globPattern: string): Promise<string[]> {
  const found: string[] = [];
  for await (const file of glob(globPattern, { cwd: repoRoot })) found.push(relative(repoRoot, `${repoRoot}/${file}`));
  return found.sort();
}

/** A shard runs its steps one after the other, each on a harness of its own (with the node or not). */
interface Step { node: boolean; files: string[] }

const baseName = (file: string) => file.replace(/^.*\//, '');
const weight = (file: string) => measuredSeconds[baseName(file)] ?? typicalSeconds;
const all = await filesOf(pattern);
const afterNode = nodePattern ? all.filter((f) => startsANode.has(baseName(f))) : [];
const files = all.filter((f) => !afterNode.includes(f));
const dealt = Array.from({ length: Math.min(shards, files.length) }, () => ({ files: [] as string[], seconds: 0 }));
const nodeShard = { files: [...afterNode], seconds: nodeSuiteSeconds + afterNode.reduce((sum, f) => sum + weight(f), 0) };
if (nodePattern) dealt.push(nodeShard);
for (const file of files.sort((a, b) => weight(b) - weight(a) || a.localeCompare(b))) {
  const lightest = dealt.reduce((min, g) => (g.seconds < min.seconds ? g : min));
  lightest.files.push(file);
  lightest.seconds += weight(file);
}
const nodeFiles = nodePattern ? await filesOf(nodePattern) : [];
const groups: Step[][] = dealt.map((g) => (g === nodeShard
  ? [{ node: true, files: nodeFiles }, ...(g.files.length ? [{ node: false, files: g.files }] : [])]
  : [{ node: false, files: g.files }]));

function runStep(step: Step, stream: boolean, output: Buffer[]): Promise<number> {
  const child = spawn(process.execPath, ['test/harness/with-harness.ts', ...(step.node ? ['--node'] : []), process.execPath, '--test', '--test-concurrency=1', ...step.files], {
    cwd: repoRoot, stdio: ['ignore', stream ? 'inherit' : 'pipe', stream ? 'inherit' : 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk));
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
}

const describeStep = (step: Step) => `${step.files.length} ${step.node ? 'node' : 'integration'} files${step.node ? ', on the node' : ''}`;
const runs = groups.map(async (steps, index) => {
  process.stderr.write(`split-suite: shard ${index + 1}/${groups.length}: ${steps.map(describeStep).join(', then ')} (about ${dealt[index]!.seconds} s, run alone)\n`);
  const output: Buffer[] = [];
  let code = 0;
  for (const step of steps) {
    const stepCode = await runStep(step, index === 0, output);
    code ||= stepCode;
  }
  return { code, output: Buffer.concat(output) };
});
// Ctrl-C reaches every shard through the process group; nothing to forward.

let exitCode = 0;
for (const [index, run] of runs.entries()) {
  const { code, output } = await run;
  if (index > 0) {
    process.stdout.write(`\nsplit-suite: shard ${index + 1}/${groups.length} (${groups[index]!.map(describeStep).join(', then ')}):\n`);
    process.stdout.write(output);
  }
  process.stderr.write(`split-suite: shard ${index + 1}/${groups.length} exited ${code}\n`);
  if (code !== 0 && exitCode === 0) exitCode = code;
}
process.exit(exitCode);
