// The published package: what `npm pack` ships, and that it runs through npx from an empty folder
// the way `npx image-clone` will once it is on the registry.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { repoRoot } from '../harness/harness.ts';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let workDir: string;
let tarball: string;

before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'image-clone-pack-'));
  // npm test has built dist/; prepack's rebuild (rm -rf dist) would pull it from under the other shard (split-suite.ts).
  const [packed] = JSON.parse(execFileSync(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', workDir], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  tarball = join(workDir, packed.filename);
});

after(async () => {
  await rm(workDir, { recursive: true, force: true });
});

test('npm pack ships only the launcher, the compiled CLI, the manifests, the JSON schema and the package docs (README.md, docs/)', () => {
  const [packed] = JSON.parse(execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  const paths: string[] = packed.files.map((f: { path: string }) => f.path);
  assert.ok(paths.includes('bin/image-clone.js'));
  assert.ok(paths.includes('dist/cli/main.js'));
  assert.ok(paths.includes('package.json'));
  assert.ok(paths.includes('schema/report.schema.json'), 'the JSON documents\' schema ships with the package');
  assert.ok(paths.includes('docs/sync.md'), 'the manual that --help points to ships with the package');
  const unexpected = paths.filter((p) => !/^(bin|dist|docs|manifests|schema)\/|^(package\.json|README\.md|LICENSE)$/.test(p));
  assert.deepEqual(unexpected, [], 'nothing else is published (tests, harness, bench, sources, CI)');
  assert.ok(!paths.some((p) => p.endsWith('.ts')), 'no TypeScript sources');
});

test('the packed tarball runs through npx from an empty folder', async () => {
  const emptyDir = await mkdtemp(join(workDir, 'empty-'));
  // A private npm cache keeps the test independent of what this machine installed before.
  const env = { ...process.env, npm_config_cache: join(workDir, 'npm-cache'), npm_config_update_notifier: 'false' };
  const npx = (...args: string[]) => execFileSync('npx', ['--yes', `--package=${tarball}`, 'image-clone', ...args], { cwd: emptyDir, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.match(npx('--help'), /^image-clone <command> \[options\]/);
  const version = npx('--version');
  assert.match(version, /^\d+\.\d+\.\d+\n$/);
});
