// `npm run harness` (test/harness/main.ts): READY <env.json>, and a clean stop on SIGTERM, SIGINT
// or when its stdin closes: the control plane and the registries gone, their files removed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { repoRoot, type HarnessEnv } from '../harness/harness.ts';
import { kubeletTunables, nodeLeftovers, nodeRunDir } from '../harness/node.ts';
import { waitUntil } from './helpers.ts';

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

async function startProcess(args: string[] = []) {
  const child = spawn(process.execPath, [join(repoRoot, 'test/harness/main.ts'), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  // Its stderr, kept for the failure message: a harness that dies says why there.
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-4000); });
  const envPath = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^READY (\/\S+\/env\.json)$/.exec(line);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code, signal) => reject(new Error(`harness exited before READY (${signal ?? code}): ${stderr}`)));
  });
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? `exit code ${code}`)));
  return { child, envPath, exited, stderr: () => stderr };
}

async function startAndStop(stop: 'SIGTERM' | 'SIGINT' | 'stdin'): Promise<void> {
  const { child, envPath, exited, stderr } = await startProcess();
  const env = JSON.parse(await readFile(envPath, 'utf8')) as HarnessEnv;
  assert.ok(existsSync(env.kubeconfig), 'an admin kubeconfig');
  assert.deepEqual(Object.fromEntries(Object.entries(env.registries).map(([name, r]) => [name, r.auth])),
    { source: 'none', backup: 'token', 'backup-basic': 'basic', distribution2: 'token', ggcr: 'none', olareg: 'none' });
  const server = new URL(env.server).host;
  assert.ok(await listening(server), 'the API server is up');
  assert.ok(await listening(env.registries.backup.host), 'the registries are up');

  if (stop === 'stdin') child.stdin!.end();
  else child.kill(stop);
  assert.equal(await exited, 'exit code 0', `it exits cleanly; its stderr:\n${stderr()}`);
  assert.equal(await listening(server), false, 'the API server is gone');
  for (const [name, registry] of Object.entries(env.registries)) assert.equal(await listening(registry.host), false, `${name} is gone`);
  assert.equal(existsSync(dirname(envPath)), false, 'its temporary files are removed');
}

for (const stop of ['SIGTERM', 'SIGINT', 'stdin'] as const) {
  test(`npm run harness prints READY <env.json> and stops cleanly on ${stop === 'stdin' ? 'stdin closing' : stop}`, async () => {
    await startAndStop(stop);
  });
}

const readTunables = (names: string[]) => Object.fromEntries(names.map((t) => [t, readFileSync(`/proc/sys/${t}`, 'utf8').trim()]));

test('npm run harness -- --node: a harness killed with SIGKILL leaves its pods behind, the next start clears them, and a stop leaves the machine as it was', async () => {
  // The machine may be dirty already (a run killed before its stop, here or in another clone): then the
  // kernel settings read now are kubelet's, not the machine's. The start clears such a machine first
  // and records the originals (tunables.json): the stop must put those back. On a clean machine they
  // must also be what was read before the start.
  const clean = nodeLeftovers().length === 0;
  const before = readTunables(kubeletTunables);
  const first = await startProcess(['--node']);
  const env = JSON.parse(await readFile(first.envPath, 'utf8')) as HarnessEnv;
  assert.ok(env.node, 'env.json describes the node');
  const recorded = JSON.parse(await readFile(join(nodeRunDir, 'tunables.json'), 'utf8')) as Record<string, string>;
  assert.deepEqual(Object.keys(recorded), kubeletTunables, 'the start recorded the kernel settings kubelet changes');
  const kc = new KubeConfig();
  kc.loadFromFile(env.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of ['a', 'b']) {
    await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name }, spec: { containers: [{ name, image: env.node.images.busybox.ref }] } } });
  }
  await waitUntil('two pods running on the node', async () => (await core.listNamespacedPod({ namespace: 'default' })).items.filter((p) => p.status?.phase === 'Running').length === 2);

  first.child.kill('SIGKILL');
  await first.exited;
  await rm(dirname(first.envPath), { recursive: true, force: true });
  // The pods outlive their harness (containerd's shims are made to outlive containerd).
  const left = nodeLeftovers();
  assert.ok(left.some((l) => l.startsWith('pod process')), left.join('\n'));

  const second = await startProcess(['--node']);
  const secondEnv = JSON.parse(await readFile(second.envPath, 'utf8')) as HarnessEnv;
  assert.ok(secondEnv.node);
  assert.ok(!nodeLeftovers().some((l) => left.includes(l) && l.startsWith('pod process')), 'the killed run\'s pods are gone');
  second.child.stdin!.end();
  assert.equal(await second.exited, 'exit code 0', `it stops cleanly (a stop that finds anything left fails); its stderr:\n${second.stderr()}`);
  assert.deepEqual(nodeLeftovers(), []);
  assert.deepEqual(readTunables(kubeletTunables), recorded, 'the kernel settings kubelet changed are restored to what the first start recorded');
  if (clean) assert.deepEqual(recorded, before, 'on a clean machine, what the start recorded is what the machine had');
});
