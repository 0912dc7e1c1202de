// Black-box tests of the built CLI (npm test builds it first).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const bin = new URL('../../bin/image-clone.js', import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

function run(...args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('--version prints the package version on stdout', () => {
  const { code, stdout, stderr } = run('--version');
  assert.equal(code, 0);
  assert.equal(stdout, `${version}\n`);
  assert.equal(stderr, '');
});

test('--help prints usage and the documented exit codes on stdout', () => {
  const { code, stdout } = run('--help');
  assert.equal(code, 0);
  assert.match(stdout, /^image-clone <command> \[options\]/);
  assert.match(stdout, /Exit codes:\n {2}0 {2}success\n {2}1 {2}some items failed or are lost\n {2}2 {2}usage/);
});

test('an unknown flag gives one actionable line on stderr, exit 2 and no stack trace', () => {
  const { code, stdout, stderr } = run('--no-such-flag');
  assert.equal(code, 2);
  assert.equal(stdout, '');
  assert.equal(stderr, "image-clone: unknown option --no-such-flag\nRun 'image-clone --help' for usage.\n");
});

test('an unknown command is named as typed', () => {
  const { code, stderr } = run('frobnicate');
  assert.equal(code, 2);
  assert.equal(stderr, "image-clone: unknown command 'frobnicate'\nRun 'image-clone --help' for usage.\n");
});

test('--debug adds the stack trace to a usage error', () => {
  const { code, stderr } = run('--no-such-flag', '--debug');
  assert.equal(code, 2);
  assert.match(stderr, /UsageError: unknown option --no-such-flag\n\s+at /);
});

test('no command prints help on stderr and exits 2', () => {
  const { code, stdout, stderr } = run();
  assert.equal(code, 2);
  assert.equal(stdout, '');
  assert.match(stderr, /image-clone <command> \[options\]/);
});

test('an error image-clone did not anticipate exits 70 (not 2, which means bad usage) and asks for a report with its stack', async () => {
  const { reportError } = await import('../../src/cli/main.ts');
  const { UsageError } = await import('../../src/errors.ts');
  let written = '';
  const code = reportError(new TypeError("Cannot read properties of undefined (reading 'spec')"), false, (text) => { written += text; });
  assert.equal(code, 70);
  assert.match(written, /^image-clone: internal error \(a bug in image-clone; please report it with this output\): TypeError: Cannot read properties/);
  assert.match(written, /\n {4}at /, 'the stack trace, to report');
  written = '';
  assert.equal(reportError(new UsageError('--backup is required'), false, (text) => { written += text; }), 2);
  assert.doesNotMatch(written, /\n {4}at /, 'a usage error is one line, no stack');
  assert.match(run('--help').stdout, /\n {2}70 {2}internal error/);
});
