// Promise 6, "secrets stay secret": every command, in every output mode and log format, on
// success and on failure, run with known secrets (registry passwords, a registry token, a
// Kubernetes token); none of them may appear in stdout, stderr, annotations or the reports.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { request } from 'undici';
import type { HarnessEnv } from '../harness/harness.ts';
import { clusterAdminToken, deployment, harnessFixtures, type Namespaces } from './fixtures.ts';
import { runCli, seedImage, serviceAccountToken, tokenKubeConfig, uniqueRepo, writeKubeconfig, type CliRun, insecureFlags } from './helpers.ts';

let env: HarnessEnv;
let core: CoreV1Api;
let apps: AppsV1Api;
let namespaces: Namespaces;
let dir: string;
let ns: string;
let home: string;
let repo: string;
const secrets: Record<string, string> = {};
const files: Record<string, string> = {};
const runs: Array<{ args: string[]; run: CliRun }> = [];

/** Every form a secret could leak in: as is, and inside a Basic header. */
function forms(): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(secrets)) {
    out.push([name, value]);
    if (name.endsWith('password')) {
      const user = name.startsWith('reader') ? env.registries.backup.reader!.username : name.startsWith('basic') ? env.registries['backup-basic'].username! : env.registries.backup.username!;
      out.push([`${name} (base64 user:password)`, Buffer.from(`${user}:${value}`).toString('base64')]);
    }
  }
  return out;
}

async function cli(args: string[]): Promise<CliRun> {
  const run = await runCli(args, { TERM: 'xterm-256color' });
  runs.push({ args, run });
  return run;
}

before(async () => {
  const fixtures = await harnessFixtures();
  ({ env, namespaces } = fixtures);
  ({ core, apps } = fixtures.kube);
  dir = await mkdtemp(join(tmpdir(), 'image-clone-secrets-'));
  const backup = env.registries.backup;
  secrets['backup password'] = backup.password!;
  secrets['reader password'] = backup.reader!.password;
  secrets['basic password'] = env.registries['backup-basic'].password!;

  // A registry token: issued by the backup's token server for the repositories the runs write,
  // configured as a registrytoken (sent as it is, never exchanged).
  repo = uniqueRepo('secrets');
  const tokenUrl = new URL(backup.realm!);
  tokenUrl.searchParams.set('service', backup.service!);
  tokenUrl.searchParams.append('scope', 'repository:secrets/copied:pull,push');
  tokenUrl.searchParams.append('scope', `repository:secrets/${env.registries.source.host.replace(':', '_')}/${repo}:pull,push`);
  const issued = await request(tokenUrl, { headers: { authorization: `Basic ${Buffer.from(`${backup.username}:${backup.password}`).toString('base64')}` } });
  secrets['registry token'] = ((await issued.body.json()) as { token: string }).token;

  const auth = (user: string, password: string) => ({ auth: Buffer.from(`${user}:${password}`).toString('base64') });
  const writeConfig = async (name: string, auths: Record<string, unknown>) => {
    files[name] = join(dir, `${name}.json`);
    await writeFile(files[name]!, JSON.stringify({ auths }), { mode: 0o600 });
  };
  await writeConfig('passwords', { [backup.host]: auth(backup.username!, backup.password!), [env.registries['backup-basic'].host]: auth(env.registries['backup-basic'].username!, secrets['basic password']!) });
  await writeConfig('reader', { [backup.host]: auth(backup.reader!.username, backup.reader!.password) });
  await writeConfig('token', { [backup.host]: { registrytoken: secrets['registry token'] } });

  // A Kubernetes token: a ServiceAccount allowed everything, and one allowed nothing.
  home = await namespaces.create('secrets-home');
  ns = await namespaces.create('secrets');
  secrets['kube token (mighty)'] = await clusterAdminToken(fixtures.kube, home, 'mighty');
  await core.createNamespacedServiceAccount({ namespace: home, body: { metadata: { name: 'powerless' } } });
  secrets['kube token (powerless)'] = await serviceAccountToken(core, home, 'powerless');
  for (const sa of ['mighty', 'powerless']) files[`kube-${sa}`] = await writeKubeconfig(tokenKubeConfig(env.server, env.caFile, sa, secrets[`kube token (${sa})`]!), sa);

  await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 4096, seed: 80 });
  await apps.createNamespacedDeployment({ namespace: ns, body: deployment('web', `${env.registries.source.host}/${repo}:1`, { replicas: 0 }) });
});

after(async () => {
  await namespaces?.deleteAll();
});

describe('no secret in any output', () => {
  test('every command, output mode and log format, on success and on failure', async () => {
    const insecure = insecureFlags(env.registries);
    const backup = env.registries.backup.host;
    const src = `${env.registries.source.host}/${repo}:1`;
    const sync = (kube: string, config: string, ...rest: string[]) => cli(['sync', ...(rest.includes('--backup') ? [] : ['--backup', `${backup}/secrets`]),
      '--kubeconfig', files[kube]!, '--registry-config', files[config]!, '--own-namespace', home, '-n', ns, ...insecure, ...rest]);

    for (const output of ['table', 'json', 'yaml', 'kustomize']) assert.equal((await sync('kube-mighty', 'passwords', '--dry-run', '-o', output)).code, 0);
    assert.equal((await sync('kube-mighty', 'passwords', '-o', 'json', '--log-format', 'json')).code, 0);
    assert.equal((await sync('kube-mighty', 'token', '-o', 'table', '--log-format', 'text')).code, 0);
    assert.equal((await sync('kube-mighty', 'passwords', '-o', 'yaml', '--debug')).code, 0);
    assert.equal((await sync('kube-powerless', 'passwords', '--dry-run')).code, 2, 'RBAC refused');
    assert.equal((await sync('kube-powerless', 'passwords', '--debug')).code, 2);
    assert.equal((await sync('kube-mighty', 'reader', '-o', 'json', '--log-format', 'json', '--backup', `${backup}/other`)).code, 1, 'the reader may not push');
    for (const output of ['table', 'json']) {
      assert.equal((await cli(['restore', '--kubeconfig', files['kube-mighty']!, '-n', ns, '--dry-run', '-o', output])).code, 0);
    }
    assert.equal((await cli(['restore', '--kubeconfig', files['kube-powerless']!, '-n', ns, '--debug'])).code, 2);
    for (const output of ['text', 'json']) {
      assert.equal((await cli(['copy', src, `${backup}/secrets/copied:1`, '--registry-config', files.passwords!, ...insecure, '-o', output])).code, 0);
      assert.equal((await cli(['copy', src, `${backup}/secrets/copied:2`, '--registry-config', files.token!, ...insecure, '-o', output])).code, 0);
      assert.equal((await cli(['copy', src, `${backup}/secrets/refused:1`, '--registry-config', files.reader!, ...insecure, '-o', output, '--debug'])).code, 2);
      assert.equal((await cli(['copy', `${backup}/secrets/none:1`, `${env.registries['backup-basic'].host}/x:1`, '--registry-config', files.passwords!, ...insecure, '-o', output])).code, 1);
    }
    assert.equal((await cli(['restore', '--kubeconfig', files['kube-mighty']!, '-n', ns, '-o', 'json'])).code, 0);

    const leaks: string[] = [];
    for (const { args, run } of runs) {
      for (const [name, value] of forms()) {
        if (run.stdout.includes(value) || run.stderr.includes(value)) leaks.push(`${name} in the output of: image-clone ${args.slice(0, 3).join(' ')} …`);
      }
    }
    const objects = JSON.stringify([
      ...(await apps.listNamespacedDeployment({ namespace: ns })).items,
      ...(await apps.listNamespacedReplicaSet({ namespace: ns })).items,
      ...(await core.listNamespacedSecret({ namespace: ns })).items,
    ]);
    for (const [name, value] of forms()) if (objects.includes(value)) leaks.push(`${name} in the cluster's objects`);
    assert.deepEqual(leaks, []);
    assert.equal(runs.length, 22, "every run above was checked");
  });
});
