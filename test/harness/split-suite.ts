// Runs a test suite as N shards at once, each shard on a harness of its own (API server and
// registries: with-harness.ts), so that no shard sees another's namespaces, workloads or images and
// a cluster-wide sync in one cannot touch the other's. CI has two cores and the integration suite
// keeps about one busy (most of its time is spent waiting on API servers, registries and child
// processes), so two shards cut its wall time without changing a test.
//
//   node test/harness/split-suite.ts SHARDS GLOB
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

const [shardsArg, pattern] = process.argv.slice(2);
const shards = Number(shardsArg);
if (!Number.isInteger(shards) || shards < 1 || !pattern) {
  process.stderr.write('usage: node test/harness/split-suite.ts SHARDS GLOB\n');
  process.exit(2);
}

const files: string[] = [];
for await (const file of glob(pattern, { cwd: repoRoot })) files.push(relative(repoRoot, `${repoRoot}/${file}`));
const weight = (file: string) => measuredSeconds[file.replace(/^.*\//, '')] ?? typicalSeconds;
const groups = Array.from({ length: Math.min(shards, files.length) }, () => ({ files: [] as string[], seconds: 0 }));
for (const file of files.sort((a, b) => weight(b) - weight(a) || a.localeCompare(b))) {
  const lightest = groups.reduce((min, g) => (g.seconds < min.seconds ? g : min));
  lightest.files.push(file);
  lightest.seconds += weight(file);
}

const runs = groups.map((group, index) => {
  process.stderr.write(`split-suite: shard ${index + 1}/${groups.length}: ${group.files.length} files, about ${group.seconds} s in CI\n`);
  const child = spawn(process.execPath, ['test/harness/with-harness.ts', process.execPath, '--test', '--test-concurrency=1', ...group.files], {
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
