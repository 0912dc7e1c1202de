// bin/compile-cache.js: Node's compile cache goes only into a cache folder the user already has and
// can write to ($XDG_CACHE_HOME, else ~/.cache), never anywhere else (the CronJob's root file system
// is read-only: nothing may be written to HOME or TMPDIR), and never fails the run. Black-box: the
// built CLI in real temporary folders.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const bin = new URL('../../bin/image-clone.js', import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'compile-cache-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

function folder(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** --version with only the environment given (no NODE_COMPILE_CACHE or XDG_* of the machine). */
function runVersion(env: Record<string, string>): void {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(NODE_COMPILE_CACHE|NODE_DISABLE_COMPILE_CACHE|XDG_)/.test(k)));
  const r = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8', env: { ...clean, ...env } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${version}\n`);
  assert.equal(r.stderr, '');
}

const files = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' });

test('a HOME without ~/.cache gets nothing written to it, and neither does TMPDIR', () => {
  const home = folder('bare-home');
  const tmp = folder('bare-tmp');
  runVersion({ HOME: home, TMPDIR: tmp });
  assert.deepEqual(files(home), []);
  assert.deepEqual(files(tmp), []);
});

test('an existing ~/.cache gets image-clone/compile-cache, and the next run starts from it', () => {
  const home = folder('home-with-cache');
  const tmp = folder('tmp-with-cache');
  mkdirSync(join(home, '.cache'));
  runVersion({ HOME: home, TMPDIR: tmp });
  const cache = join(home, '.cache', 'image-clone', 'compile-cache');
  assert.ok(files(cache).length > 0, 'the compile cache was written');
  runVersion({ HOME: home, TMPDIR: tmp });
  assert.deepEqual(files(tmp), [], 'nothing in TMPDIR');
});

test('$XDG_CACHE_HOME is used instead of ~/.cache; one that does not exist or is not a folder is left alone', () => {
  const home = folder('home-xdg');
  mkdirSync(join(home, '.cache'));
  const xdg = folder('xdg-cache');
  runVersion({ HOME: home, XDG_CACHE_HOME: xdg });
  assert.ok(files(join(xdg, 'image-clone', 'compile-cache')).length > 0);
  assert.deepEqual(files(join(home, '.cache')), []);

  const missing = join(work, 'no-such-folder');
  runVersion({ HOME: home, XDG_CACHE_HOME: missing });
  assert.throws(() => readdirSync(missing), /ENOENT/, 'not created');
  const file = join(work, 'a-file');
  writeFileSync(file, '');
  runVersion({ HOME: home, XDG_CACHE_HOME: file });
  assert.deepEqual(files(join(home, '.cache')), []);
});

test('NODE_DISABLE_COMPILE_CACHE=1 turns it off', () => {
  const home = folder('home-disabled');
  mkdirSync(join(home, '.cache'));
  runVersion({ HOME: home, NODE_DISABLE_COMPILE_CACHE: '1' });
  assert.deepEqual(files(join(home, '.cache')), []);
});
