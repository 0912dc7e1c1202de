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
  'nothing-lost.test.ts': 165, 'rbac.test.ts': 60, 'bench-smoke.test.ts': 57, 'proxy.test.ts': 35, 'bad-day.test.ts': 30,
  'image.test.ts': 35, 'copy.test.ts': 28, 'moving-tags.test.ts': 27, 'sync.test.ts': 25, 'exit-codes.test.ts': 25,
  'secrets.test.ts': 23, 'sync-plan.test.ts': 22, 'harness.test.ts': 33, 'gc-distribution2.test.ts': 18, 'token-expiry.test.ts': 30,
  'package.test.ts': 18, 'referrers.test.ts': 15, 'interrupt.test.ts': 13,
};
const typicalSeconds = 6;

/**
 * Integration files that start a node of their own: they wait for the node lock (harness/node.ts)
 * while the node shard holds it, so each goes last in its shard, by when the node shard is done.
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

const baseName = (file: string) => file.replace(/^.*\//, '');
const weight = (file: string) => measuredSeconds[baseName(file)] ?? typicalSeconds;
const files = await filesOf(pattern);
const groups = Array.from({ length: Math.min(shards, files.length) }, () => ({ files: [] as string[], seconds: 0, node: false }));
for (const file of files.sort((a, b) => weight(b) - weight(a) || a.localeCompare(b))) {
  const lightest = groups.reduce((min, g) => (g.seconds < min.seconds ? g : min));
  lightest.files.push(file);
  lightest.seconds += weight(file);
}
for (const group of groups) group.files.sort((a, b) => Number(startsANode.has(baseName(a))) - Number(startsANode.has(baseName(b))));
if (nodePattern) groups.push({ files: await filesOf(nodePattern), seconds: 0, node: true });

const runs = groups.map((group, index) => {
  process.stderr.write(`split-suite: shard ${index + 1}/${groups.length}: ${group.files.length} ${group.node ? 'node files, on the node' : `files, about ${group.seconds} s in CI`}\n`);
  const child = spawn(process.execPath, ['test/harness/with-harness.ts', ...(group.node ? ['--node'] : []), process.execPath, '--test', '--test-concurrency=1', ...group.files], {
    cwd: repoRoot, stdio: ['ignore', index === 0 ? 'inherit' : 'pipe', index === 0 ? 'inherit' : 'pipe'],
  });
  const output: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk));
  return new Promise<{ code: number; output: Buffer }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), output: Buffer.concat(output) }));
  });
});
// Ctrl-C reaches every shard through the process group; nothing to forward.

let exitCode = 0;
for (const [index, run] of runs.entries()) {
  const { code, output } = await run;
  if (index > 0) {
    process.stdout.write(`\nsplit-suite: shard ${index + 1}/${groups.length} (${groups[index]!.files.length} files):\n`);
    process.stdout.write(output);
  }
  process.stderr.write(`split-suite: shard ${index + 1}/${groups.length} exited ${code}\n`);
  if (code !== 0 && exitCode === 0) exitCode = code;
}
process.exit(exitCode);
