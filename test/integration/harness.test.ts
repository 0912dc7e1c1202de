// `npm run harness` (test/harness/main.ts): READY <env.json>, and a clean stop on SIGTERM, SIGINT
// or when its stdin closes: the control plane and the registries gone, their files removed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { repoRoot, type HarnessEnv } from '../harness/harness.ts';

/** Whether something still accepts connections on host:port. */
function listening(host: string): Promise<boolean> {
  const [address, port] = [host.slice(0, host.lastIndexOf(':')), Number(host.slice(host.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const socket = connect({ host: address, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function startAndStop(stop: 'SIGTERM' | 'SIGINT' | 'stdin'): Promise<void> {
  const child = spawn(process.execPath, [join(repoRoot, 'test/harness/main.ts')], { stdio: ['pipe', 'pipe', 'ignore'] });
  const envPath = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^READY (\/\S+\/env\.json)$/.exec(line);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`harness exited before READY (${code})`)));
  });
  const env = JSON.parse(await readFile(envPath, 'utf8')) as HarnessEnv;
  assert.ok(existsSync(env.kubeconfig), 'an admin kubeconfig');
  assert.deepEqual(Object.fromEntries(Object.entries(env.registries).map(([name, r]) => [name, r.auth])),
    { source: 'none', backup: 'token', 'backup-basic': 'basic', distribution2: 'token', ggcr: 'none', olareg: 'none' });
  const server = new URL(env.server).host;
  assert.ok(await listening(server), 'the API server is up');
  assert.ok(await listening(env.registries.backup.host), 'the registries are up');

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  if (stop === 'stdin') child.stdin!.end();
  else child.kill(stop);
  assert.equal(await exited, 0, 'it exits cleanly');
  assert.equal(await listening(server), false, 'the API server is gone');
  for (const [name, registry] of Object.entries(env.registries)) assert.equal(await listening(registry.host), false, `${name} is gone`);
  assert.equal(existsSync(dirname(envPath)), false, 'its temporary files are removed');
}

for (const stop of ['SIGTERM', 'SIGINT', 'stdin'] as const) {
  test(`npm run harness prints READY <env.json> and stops cleanly on ${stop === 'stdin' ? 'stdin closing' : stop}`, async () => {
    await startAndStop(stop);
  });
}
