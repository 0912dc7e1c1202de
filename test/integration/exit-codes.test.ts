// Every exit code docs/sync.md documents, produced exactly when it says, and only then. The
// table is read from docs/sync.md itself, so a code added there without a case here fails this test.
// 130 (interrupted) has its own file, interrupt.test.ts, one case per phase of each command.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { repoRoot, type HarnessEnv } from '../harness/harness.ts';
import { startFaultProxy } from './fault-proxy.ts';
import { deployment, harnessFixtures, type Namespaces } from './fixtures.ts';
import { runCli, seedImage, uniqueRepo, writeKubeconfig, type CliRun, type KubeClients } from './helpers.ts';

let env: HarnessEnv;
let kube: KubeClients;
let namespaces: Namespaces;
let registryConfig: string;
let insecure: string[];
let ns: string;
let own: string;
let image: string;
const tested = new Set<number>([130]); // 130: interrupt.test.ts

before(async () => {
  ({ env, kube, namespaces, registryConfig, insecure } = await harnessFixtures());
  ns = await namespaces.create('codes');
  own = await namespaces.create('codes-own');
  const repo = uniqueRepo('codes');
  await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 4096, seed: 81 });
  image = `${env.registries.source.host}/${repo}:1`;
  await deploy('web', image);
});

after(async () => {
  await namespaces?.deleteAll();
});

async function deploy(name: string, img: string, namespace = ns) {
  await kube.apps.createNamespacedDeployment({ namespace, body: deployment(name, img, { replicas: 0 }) });
}

const sync = (backup: string, extra: string[], namespace = ns) => runCli(['sync', '--backup', backup, '--kubeconfig', env.kubeconfig, '--registry-config', registryConfig,
  ...insecure, '--own-namespace', own, '-n', namespace, ...extra]);

/** The code, and (for failures) one line on stderr without a stack trace. */
function expectCode(run: CliRun, code: number, line?: RegExp) {
  assert.equal(run.code, code, `expected exit ${code}:\n${run.stderr}`);
  assert.doesNotMatch(run.stderr, /\n\s+at \S+/, 'no stack trace');
  if (line) assert.match(run.stderr, line);
  tested.add(code);
}

describe('exit codes', () => {
  test('docs/sync.md, --help and sync --help document the same codes', async () => {
    const manual = await readFile(join(repoRoot, 'docs/sync.md'), 'utf8');
    const table = manual.slice(manual.indexOf('## Exit codes'), manual.indexOf('\n\n', manual.indexOf('| Code |') + 1));
    const documented = [...table.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
    assert.deepEqual(documented, [0, 1, 2, 3, 4, 5, 70, 130]);
    const help = (await runCli(['--help'])).stdout;
    assert.deepEqual([...help.matchAll(/^ {2}(\d+) {2}/gm)].map((m) => Number(m[1])), documented);
    const syncHelp = (await runCli(['sync', '--help'])).stdout.replace(/\s+/g, ' ');
    for (const code of documented) assert.match(syncHelp, new RegExp(`[:,] ${code} `), `sync --help names ${code}`);
  });

  test('0: everything done; and again with nothing to do', async () => {
    const prefix = `${env.registries.backup.host}/codes-ok`;
    expectCode(await sync(prefix, []), 0);
    expectCode(await sync(prefix, []), 0);
  });

  test('1: the run completed, but an image is lost (named)', async (t) => {
    const lostNs = await namespaces.create('codes-lost', t);
    await deploy('gone', `${env.registries.source.host}/${uniqueRepo('never-pushed')}:1`, lostNs);
    await deploy('fine', image, lostNs);
    const run = await sync(`${env.registries.backup.host}/codes-lost`, ['-o', 'json'], lostNs);
    expectCode(run, 1);
    const report = JSON.parse(run.stdout);
    assert.equal(report.summary.images.lost, 1);
    assert.ok(report.images.some((i: { source: string; result: string }) => i.result === 'lost' && i.source.includes('never-pushed')));
  });

  test('2: usage, configuration, credentials, RBAC', async () => {
    expectCode(await runCli(['sync', '--no-such-flag']), 2, /^image-clone: unknown option --no-such-flag\n/);
    expectCode(await runCli(['sync', '--kubeconfig', env.kubeconfig]), 2, /^image-clone: --backup is required/);
    // Refused credentials for the backup registry.
    const badAuth = join(await import('node:os').then((os) => os.tmpdir()), `codes-bad-auth-${process.pid}.json`);
    await import('node:fs/promises').then((fs) => fs.writeFile(badAuth, JSON.stringify({ auths: { [env.registries.backup.host]: { auth: Buffer.from('admin:wrong').toString('base64') } } })));
    expectCode(await runCli(['sync', '--backup', `${env.registries.backup.host}/codes-auth`, '--kubeconfig', env.kubeconfig, '--registry-config', badAuth, ...insecure, '-n', ns, '--own-namespace', own]), 2);
  });

  test('3: changes pending, only with --dry-run --exit-code', async () => {
    const prefix = `${env.registries.backup.host}/codes-pending`;
    expectCode(await sync(prefix, ['--dry-run', '--exit-code']), 3);
    expectCode(await sync(prefix, ['--dry-run']), 0);
  });

  test('4: another sync holds the run lock; nothing was done', async (t) => {
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;
    const lockNs = await namespaces.create('codes-lock', t);
    await kube.leases.createNamespacedLease({ namespace: lockNs, body: { metadata: { name: 'image-clone-sync' }, spec: { holderIdentity: 'other-run', leaseDurationSeconds: 60, acquireTime: now, renewTime: now } } });
    expectCode(await runCli(['sync', '--backup', `${env.registries.backup.host}/codes-lock`, '--kubeconfig', env.kubeconfig, '--registry-config', registryConfig, ...insecure,
      '--own-namespace', lockNs, '-n', ns]), 4, /other-run holds the run lock/);
  });

  test('5: the API server cannot be reached: the run could not start (not "completed with failures")', async () => {
    // A port nothing listens on: bound, then closed.
    const { createServer } = await import('node:net');
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: 'down', server: `https://127.0.0.1:${port}`, skipTLSVerify: true }], users: [{ name: 'u', token: 'x' }], contexts: [{ name: 'down', cluster: 'down', user: 'u' }], currentContext: 'down' });
    const kubeconfig = await writeKubeconfig(kc, 'down');
    for (const args of [['sync', '--backup', `${env.registries.backup.host}/codes-down`], ['sync', '--backup', `${env.registries.backup.host}/codes-down`, '--dry-run'], ['restore']]) {
      const run = await runCli([...args, '--kubeconfig', kubeconfig, ...(args[0] === 'sync' ? ['--registry-config', registryConfig, ...insecure] : []), '-n', ns, '--own-namespace', own]);
      expectCode(run, 5, /^image-clone: .*(unreachable|ECONNREFUSED)/m);
      assert.equal(run.stderr.trim().split('\n').filter((l) => l.startsWith('image-clone:')).length, 1, `one error line:\n${run.stderr}`);
    }
  });

  test('5: the backup registry refuses every request: nothing copied or patched', async () => {
    // Every request to the backup answers 503 (after the client's retries).
    const refusing = await startFaultProxy({ upstream: env.registries.backup.host, rates: { error503: 1 }, eligible: () => true });
    try {
      for (const extra of [[], ['--dry-run']]) {
        const run = await runCli(['sync', '--backup', `${refusing.host}/codes-refused`, '--kubeconfig', env.kubeconfig, '--registry-config', registryConfig, ...insecure,
          '--insecure-registry', refusing.host, '--own-namespace', own, '-n', ns, '-o', 'json', ...extra]);
        expectCode(run, 5, new RegExp(`image-clone: the backup registry ${refusing.host} refused every request \\(\\d+ lookups?\\): .*; nothing was copied or patched`));
        assert.equal(run.stdout, '', 'no report that would read as a finished run');
      }
      const current = (await kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec!.template.spec!.containers[0]!.image!;
      assert.ok(!current.startsWith(refusing.host), 'nothing points at the refusing backup');
    } finally {
      await refusing.close();
    }
  });

  test('every documented code was produced by a case above', () => {
    // 70 (internal error) takes a bug to produce: test/unit/cli.test.ts shows an unanticipated error gets it.
    assert.deepEqual([...tested].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 130]);
  });
});
