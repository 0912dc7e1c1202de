// The benchmarks cannot rot (issue 15: "a small smoke run of each is part of npm test"): each of
// bench/copy.ts, plan.ts, sync.ts, scale.ts and startup.ts runs with --smoke (the smallest shape that
// goes through every code path: a couple of images, one workload of each kind, one round, only the
// peers already installed) and must exit 0, print its verdict lines and ratios, install nothing and
// leave RESULTS.md alone. Each starts its own fresh harness, as the real runs do; the numbers it prints
// mean nothing, so two run at a time (issue 21: the smoke runs cost a minute at most).
// Not run here: the WAN profiles (`--profile wan` of bench:copy and bench:sync). They run the same
// code on the same shapes with the tools pointed at Toxiproxy's addresses; what only they exercise is
// bench/lib/wan.ts (starting wanproxy, routing through it) and the two --profile wan branches.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { execFile } from 'node:child_process';
import { repoRoot } from '../harness/harness.ts';

/** GNU time, which the benchmarks run every timed command under. */
const gnuTime = '/usr/bin/time';

const resultsPath = join(repoRoot, 'bench', 'RESULTS.md');

async function smoke(t: TestContext, script: string, extra: string[] = []): Promise<string> {
  const before = await readFile(resultsPath, 'utf8');
  const started = performance.now();
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(process.execPath, [join(repoRoot, 'bench', script), '--smoke', ...extra], { cwd: repoRoot, maxBuffer: 64 * 2 ** 20 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
  t.diagnostic(`${script} --smoke ${extra.join(' ')}: exit ${r.code} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  assert.equal(r.code, 0, `${script} --smoke failed:\n${r.stderr.slice(-3000)}`);
  assert.doesNotMatch(r.stderr, /: go install |: apt-get install |building k8s\.io/, 'smoke mode downloads and builds nothing');
  assert.equal(await readFile(resultsPath, 'utf8'), before, 'smoke mode does not write RESULTS.md');
  return r.stdout;
}

// The longest first, so that the two slots finish close together.
describe('benchmarks in smoke mode', { concurrency: 2 }, () => {
  test('GNU time is there (.ci/run installs the Debian package time): the benchmarks time every run with it', () => {
    assert.ok(existsSync(gnuTime), `${gnuTime} is missing: apt-get install time`);
  });

  test('bench:sync', { timeout: 300_000 }, async (t) => {
    const out = await smoke(t, 'sync.ts');
    assert.match(out, /^Cold sync of 8 workloads over 2 images: image-clone sync/m);
    assert.match(out, /^Cold sync checks \(every round\): 7\/7 workloads .* regharness verify 2\/2 identical \(1 with --full\), exit 0$/m);
    assert.match(out, /^No-op sync of 8 workloads/m);
    assert.match(out, /^No-op sync: at most \d+ authenticated backup requests per run for 2 distinct images/m);
    assert.match(out, /^Total \d+ s$/m);
  });

  test('bench:scale: dry run and no-op sync at two pod counts, one data set', { timeout: 300_000 }, async (t) => {
    const out = await smoke(t, 'scale.ts');
    assert.match(out, /^Cluster: 1 namespaces x 8 workloads .*; 2 images; pods 10, 20$/m);
    assert.match(out, /^10 +18 +[\d.]+ \(/m, 'the 10-pod point lists 8 workloads, 1 ReplicaSet, 10 pods');
    assert.match(out, /^20 +28 +[\d.]+ \(/m);
    assert.match(out, /^Dry run \(bench:plan\) at 20 pods \(28 objects\): .* backup requests at most \d+ for 2 distinct images, target <= 1 per image: (MET|MISSED)$/m);
    assert.match(out, /^No-op sync \(bench:sync\) at 20 pods \(28 objects\): .*peak RSS \d+ MiB, target <= 400: (MET|MISSED)/m);
    assert.match(out, /^Memory per pod, from 10 to 20 pods: /m);
    // The CronJob's limit: a run in a 512 MiB memory cgroup (root only; the line says why when it cannot).
    // It runs node with the flags of the image's ENTRYPOINT, read from the Dockerfile.
    assert.match(out, /^No-op sync at 20 pods (in a memory cgroup of 512 MiB \(.*\) with the image's `node --max-semi-space-size=2`, as in the CronJob's pod: [\d.]+ s, .* exit 0,|under a 512 MiB memory limit: not run)/m);
    assert.match(out, /^Total \d+ s$/m);
  });

  test('bench:plan', { timeout: 300_000 }, async (t) => {
    const out = await smoke(t, 'plan.ts');
    assert.match(out, /^Cluster: 1 namespaces x 8 workloads/m);
    assert.match(out, /^Backup-registry requests per dry run: at most \d+ authenticated .* for 2 distinct images = [\d.]+ per image; target <= 1: (MET|MISSED)$/m);
    assert.match(out, /^Time: image-clone sync --dry-run median [\d.]+ s/m);
    assert.match(out, /^Peak RSS of image-clone: \d+ MiB .*: (MET|MISSED)$/m);
    assert.match(out, /^Diagnostics:$/m);
    assert.match(out, /^start-up \(process start to first request/m, 'the profiled run\'s phases');
    assert.match(out, /^no registry lookups \(--include-image none\.invalid\/\*: lists and plans only\): [\d.]+ s/m);
    assert.match(out, /^Total \d+ s$/m);
  });

  test('bench:copy', { timeout: 300_000 }, async (t) => {
    const out = await smoke(t, 'copy.ts');
    assert.match(out, /^Fleet: 2 images x 2 platforms/m);
    assert.match(out, /^image-clone .* yes \(1 run: 2\/2 identical, 1 --full\)/m);
    assert.match(out, /^Fleet copy vs the best peer the issue names: /m);
    assert.match(out, /^Peak RSS of image-clone copying one image with a single 1 MiB layer: \d+ MiB .* verified with --full: yes; target < 200 MiB: (MET|MISSED)$/m);
    assert.match(out, /^image-clone's requests \(bench\/undici-trace\.ts\): \d+ over \d+ TCP connections/m, 'the profiled run\'s request timeline');
    assert.match(out, /^image-clone's CPU profile \(node --cpu-prof\): [\d.]+ s sampled$/m);
    assert.match(out, /^Total benchmark time \d+ s$/m);
    assert.match(out, /^Second round into new repositories \(2 images, one process each\): MiB sent to the target per image: image-clone [\d.]+.*: (MET|MISSED)$/m);
    assert.match(out, /^image-clone {2,}[\d.]+ {2,}[\d.]+ {2,}[\d.]+ {2,}[\d.]+ {2,}1\.00 {2,}2\/2$/m, 'image-clone\'s row: both rounds measured, round two verified');
  });

  test('bench:startup', { timeout: 300_000 }, async (t) => {
    const out = await smoke(t, 'startup.ts');
    assert.match(out, /^image-clone {2}--version {2}.* 1\.00 /m);
    assert.match(out, /^image-clone {2}copy one small image .* yes \(1\/1, --full\)/m);
    assert.match(out, /^(copy of one small image per process, image-clone vs skopeo copy: .*target <= 1\.00 x skopeo: (MET|MISSED)|no peer installed: .*)$/m);
    assert.match(out, /^Total benchmark time \d+ s$/m);
  });
});
