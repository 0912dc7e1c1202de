// The check that `npm test`, `npm run demo` and `npm run harness` run first (test/harness/prerequisites.ts):
// a machine that lacks something is told in one line what is missing and the command that fixes it,
// in under a second, with no stack trace. The machine is made to lack things by running the check with
// a PATH that holds only node (no Go, no docker-registry, no gcc) and as an unprivileged user.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { test } from 'node:test';

const script = new URL('../harness/prerequisites.ts', import.meta.url).pathname;

const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
// A clone in a directory only root may enter (`mktemp -d` makes 0700 ones, and Node itself may live
// there) cannot be run by nobody. Then the check runs as root with process.getuid answering 65534: a
// stand-in for the one thing the root check reads, used only where the real unprivileged user cannot run.
const nobodyCanRun = process.getuid?.() === 0 &&
  spawnSync('setpriv', [...nobody, process.execPath, '-e', `require('node:fs').accessSync(${JSON.stringify(script)})`]).status === 0;
const pretendUnprivileged = 'data:text/javascript,process.getuid=()=>65534';

function check(args: string[], options: { path?: string; asNobody?: boolean } = {}) {
  const env = { ...process.env, PATH: options.path ?? process.env.PATH };
  // As root, become nobody for the root check; a test run that is not root already is unprivileged.
  const asNobody = options.asNobody && process.getuid?.() === 0;
  const [cmd, argv] = !asNobody ? [process.execPath, [script, ...args]]
    : nobodyCanRun ? ['setpriv', [...nobody, process.execPath, script, ...args]]
    : [process.execPath, ['--import', pretendUnprivileged, script, ...args]];
  const started = performance.now();
  const result = spawnSync(cmd, argv, { encoding: 'utf8', env });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, ms: performance.now() - started };
}

test('no Go and missing Debian packages: one line naming each with the command that installs it, exit 2, under a second', () => {
  const { code, stdout, stderr, ms } = check(['test'], { path: dirname(process.execPath) });
  assert.equal(code, 2, stderr);
  assert.equal(stdout, '');
  assert.equal(stderr.split('\n').filter(Boolean).length, 1, `one line:\n${stderr}`);
  assert.match(stderr, /^npm test cannot start: /);
  assert.match(stderr, /Go >= 1\.26 is not on PATH/);
  assert.match(stderr, /docker-registry \(Debian package docker-registry\)/);
  assert.match(stderr, /run apt-get install -y --no-install-recommends [a-z0-9 -]*docker-registry/);
  assert.match(stderr, /source scripts\/setup\.sh/);
  assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
  assert.ok(ms < 1000, `answered in ${ms.toFixed(0)} ms`);
});

test('the demo needs root for its node: said in one line with the command to run instead', () => {
  const { code, stderr } = check(['demo'], { asNobody: true });
  assert.equal(code, 2, stderr);
  assert.match(stderr, /^npm run demo cannot start: .*the harness node \(kubelet, containerd, a bridge\) needs root: run it as root \(sudo env "PATH=\$PATH" npm run demo\)\n$/);
});

test('a harness without its node does not ask for root', () => {
  const { code, stderr } = check(['harness'], { asNobody: true });
  assert.doesNotMatch(stderr, /root/);
  // Whatever else this machine lacks is named the same way; a complete machine passes silently.
  if (code !== 0) assert.match(stderr, /^npm run harness cannot start: [^\n]+\n$/);
});
