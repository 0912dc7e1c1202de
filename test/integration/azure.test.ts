// ACR with AKS Workload Identity, in process: the CLI with no config file, only the AZURE_*
// variables AKS's webhook sets, against STAND-INS for Entra ID and ACR's token service (no emulator
// of either exists; acr-stand-in.ts says what they check) in front of a real registry of the
// harness, whose token issuer's tokens it alone accepts. Shows: copy and sync with no config file
// (ACR as the target and as a source);
// the federated token file's content is what reaches Entra ID, and a rotated file is read again;
// a run that outlives its Entra, refresh and access tokens renews them and completes; refusals
// (identity missing, Entra ID's, the registry's) are one line each, exit 2; a config-file entry
// for the host wins, and then Entra ID is never asked.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startRegistries, type HarnessEnv, type HarnessRegistry } from '../harness/harness.ts';
import { type AcrStandIn, type EntraStandIn, startAcrStandIn, startEntraStandIn } from './acr-stand-in.ts';
import { createIn, deployment, harnessFixtures, type Namespaces } from './fixtures.ts';
import { runCli, seedImage, uniqueRepo, verifyCopy, waitUntil, type KubeClients } from './helpers.ts';

const tenant = '72f988bf-0000-4000-8000-000000000001';
const otherTenant = '72f988bf-0000-4000-8000-000000000002';
const clientId = '5a1b2c3d-0000-4000-8000-00000000c11e';

let env: HarnessEnv;
let kube: KubeClients;
let namespaces: Namespaces;
let dir: string;
let registries: Awaited<ReturnType<typeof startRegistries>>;
let entra: EntraStandIn;
let acr: AcrStandIn;
let tokenFile: string;

before(async () => {
  ({ env, kube, namespaces } = await harnessFixtures());
  dir = await mkdtemp(join(tmpdir(), 'image-clone-azure-'));
  // The registry's own tokens last 3 s (see token-expiry.test.ts): every run renews them too.
  registries = await startRegistries(join(dir, 'registries'), { tokenTtl: '3s' });
  tokenFile = join(dir, 'azure-identity-token');
  await writeFile(tokenFile, 'federated-token-1');
  entra = await startEntraStandIn({ clientId, tenants: [tenant, otherTenant], assertion: 'federated-token-1' });
  acr = await startAcrStandIn({ registry: registries.registries.backup, entra, tenant });
});

after(async () => {
  await Promise.all([acr?.close(), entra?.close(), namespaces?.deleteAll()]);
  await registries?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A run's environment: the workload identity AKS's webhook sets, and no docker or Podman config anywhere. */
function azureEnv(identity: Record<string, string> = {}): Record<string, string> {
  return {
    HOME: join(dir, 'home'), DOCKER_CONFIG: join(dir, 'no-docker-config'), REGISTRY_AUTH_FILE: join(dir, 'no-auth.json'), XDG_RUNTIME_DIR: join(dir, 'no-runtime'),
    AZURE_CLIENT_ID: clientId, AZURE_TENANT_ID: tenant, AZURE_FEDERATED_TOKEN_FILE: tokenFile, AZURE_AUTHORITY_HOST: entra.authority,
    ...identity,
  };
}

const source = () => env.registries.source;
const flags = (host = acr.host) => ['--insecure-registry', source().host, '--insecure-registry', host, '--insecure-registry', entra.host, '--registry-provider', `${host}=azure`];
const copy = (repo: string, host = acr.host, ...more: string[]) => ['copy', `${source().host}/${repo}:1`, `${host}/${repo}:1`, ...flags(host), ...more];
const backup = (): HarnessRegistry => registries.registries.backup;

/** No token of any kind, nor the federated token, in what a run printed. */
function assertNoSecret(output: string): void {
  for (const secret of [...entra.issued, ...acr.issued, ...new Set(entra.assertions)]) assert.ok(!output.includes(secret), 'a token was printed');
}

/** The one `image-clone:` line a refused run printed. */
function refusal(run: { code: number | null; stderr: string }): string {
  assert.equal(run.code, 2, run.stderr);
  const lines = run.stderr.trim().split('\n').filter((l) => l.startsWith('image-clone:'));
  assert.equal(lines.length, 1, run.stderr);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  return lines[0]!;
}

describe('ACR with AKS Workload Identity, no config file', () => {
  test('copy: the federated token reaches Entra ID, its token is exchanged, and the copy is verified', async () => {
    const repo = uniqueRepo('acr-copy');
    await seedImage(source(), `${repo}:1`, { layers: 2, layerSize: 32 * 1024, seed: 2201 });
    const [asked, exchanged] = [entra.assertions.length, acr.exchanges.length];
    const run = await runCli(copy(repo), azureEnv());
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(entra.assertions.slice(asked), ['federated-token-1'], 'the file, as it is, was the client assertion');
    const exchanges = acr.exchanges.slice(exchanged);
    assert.equal(exchanges.length, 1);
    assert.deepEqual({ ...exchanges[0], access_token: undefined }, { grant_type: 'access_token', service: acr.host, tenant, access_token: undefined });
    assert.ok(entra.issued.includes(exchanges[0]!.access_token!), 'what was exchanged is the token Entra ID issued');
    const check = await verifyCopy({ registry: source(), ref: `${repo}:1` }, { registry: backup(), ref: `${repo}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));
    assertNoSecret(run.stdout + run.stderr);
  });

  test('sync: copies into ACR and patches the workload', async (t) => {
    const repo = uniqueRepo('acr-sync');
    const seeded = await seedImage(source(), `${repo}/web:1.0`, { layers: 1, layerSize: 16 * 1024, seed: 2202 });
    const ns = await namespaces.create('acr-sync', t);
    await createIn(kube.objects, ns, deployment('web', `${source().host}/${repo}/web:1.0`, { replicas: 0 }));
    const run = await runCli(['sync', '--backup', `${acr.host}/mirror`, '-n', ns, '--no-lock', '--kubeconfig', env.kubeconfig, ...flags()], azureEnv());
    assert.equal(run.code, 0, run.stderr);
    const backupRepository = `mirror/${source().host.replace(':', '_')}/${repo}/web`;
    const patched = (await kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec!.template.spec!.containers[0]!.image!;
    assert.equal(patched, `${acr.host}/${backupRepository}:1.0@${seeded.digest}`);
    const check = await verifyCopy({ registry: source(), ref: `${repo}/web:1.0` }, { registry: backup(), ref: `${backupRepository}:1.0` });
    assert.equal(check.identical, true, check.differences?.join('; '));
    assertNoSecret(run.stdout + run.stderr);
  });

  test('ACR as a source: images pulled from it get their credentials from the workload identity too', async () => {
    const repo = uniqueRepo('acr-source');
    await seedImage(backup(), `${repo}:1`, { layers: 1, layerSize: 16 * 1024, seed: 2208 });
    const exchanged = acr.exchanges.length;
    const run = await runCli(['copy', `${acr.host}/${repo}:1`, `${source().host}/from-acr/${repo}:1`, ...flags()], azureEnv());
    assert.equal(run.code, 0, run.stderr);
    assert.equal(acr.exchanges.length, exchanged + 1);
    const check = await verifyCopy({ registry: backup(), ref: `${repo}:1` }, { registry: source(), ref: `from-acr/${repo}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));
  });

  test('a config-file entry for the host wins: Entra ID is never asked', async () => {
    const repo = uniqueRepo('acr-config');
    await seedImage(source(), `${repo}:1`, { layers: 1, layerSize: 16 * 1024, seed: 2203 });
    const config = join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ auths: { [acr.host]: { auth: Buffer.from(`${acr.admin.username}:${acr.admin.password}`).toString('base64') } } }));
    const [asked, exchanged, admin] = [entra.assertions.length, acr.exchanges.length, acr.tokenRequests.admin];
    const run = await runCli(copy(repo, acr.host, '--registry-config', config), azureEnv());
    assert.equal(run.code, 0, run.stderr);
    assert.equal(entra.assertions.length, asked, 'Entra ID was not asked');
    assert.equal(acr.exchanges.length, exchanged, 'nothing was exchanged');
    assert.ok(acr.tokenRequests.admin > admin, "the registry's tokens were had with the config file's entry");
    const check = await verifyCopy({ registry: source(), ref: `${repo}:1` }, { registry: backup(), ref: `${repo}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));
  });
});

describe('renewal: a run that outlives its tokens', () => {
  let slow: AcrStandIn;

  before(async () => {
    // The same registry behind a 1 MiB/s link; refresh tokens for 7 s, Entra tokens for 6 s.
    slow = await startAcrStandIn({ registry: registries.registries.backup, entra, tenant, refreshSeconds: 7, bytesPerSecond: 1024 * 1024 });
  });
  after(async () => {
    entra.expiresIn = 3599;
    entra.acceptedAssertion = 'federated-token-1';
    await writeFile(tokenFile, 'federated-token-1');
    await slow?.close();
  });

  test('Entra, refresh and access tokens are renewed (the rotated token file read again) and the copy completes', async () => {
    const repo = uniqueRepo('acr-renew');
    await seedImage(source(), `${repo}:1`, { layers: 1, layerSize: 12 * 1024 * 1024, seed: 2204 });
    entra.expiresIn = 6;
    const asked = entra.assertions.length;
    const started = Date.now();
    const running = runCli(copy(repo, slow.host), azureEnv());
    // The kubelet rotates the projected token: once the run has used it, the file holds a new one,
    // and Entra ID accepts only that from then on.
    await waitUntil('the first Entra ID request', async () => entra.assertions.length > asked, 30_000);
    await writeFile(tokenFile, 'federated-token-2');
    entra.acceptedAssertion = 'federated-token-2';
    const run = await running;
    const seconds = (Date.now() - started) / 1000;
    assert.equal(run.code, 0, run.stderr);
    assert.ok(seconds > 9, `the copy took ${seconds} s: it must outlive several tokens to prove anything`);
    const assertions = entra.assertions.slice(asked);
    assert.equal(assertions[0], 'federated-token-1');
    assert.ok(assertions.length >= 2, `Entra ID was asked ${assertions.length} time(s) in ${seconds} s`);
    assert.ok(assertions.slice(1).every((a) => a === 'federated-token-2'), `after the rotation, only the new file's token: ${assertions.join(', ')}`);
    assert.ok(slow.exchanges.length >= 2, `${slow.exchanges.length} exchange(s) in ${seconds} s`);
    assert.equal(slow.tokenRequests.refused, 0, 'no expired refresh token was ever offered');
    const check = await verifyCopy({ registry: source(), ref: `${repo}:1` }, { registry: backup(), ref: `${repo}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));
    assertNoSecret(run.stdout + run.stderr);
  });
});

describe('refusals: one line, exit 2, no token', () => {
  test('the workload identity missing from the environment', async () => {
    const repo = uniqueRepo('acr-noenv');
    await seedImage(source(), `${repo}:1`, { layers: 1, layerSize: 1024, seed: 2205 });
    const asked = entra.assertions.length;
    const line = refusal(await runCli(copy(repo), azureEnv({ AZURE_CLIENT_ID: '', AZURE_FEDERATED_TOKEN_FILE: '' })));
    assert.equal(line, `image-clone: ${acr.host}: no Azure workload identity for ACR: AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE are not set (AKS sets them in a pod labelled azure.workload.identity/use: "true" whose ServiceAccount is annotated azure.workload.identity/client-id); for a registry read anonymously, --registry-provider ${acr.host}=generic`);
    assert.equal(entra.assertions.length, asked);
  });

  test("Entra ID's refusal (an unknown application, AADSTS700016)", async () => {
    const repo = uniqueRepo('acr-noapp');
    await seedImage(source(), `${repo}:1`, { layers: 1, layerSize: 1024, seed: 2206 });
    const run = await runCli(copy(repo), azureEnv({ AZURE_CLIENT_ID: 'not-a-client' }));
    const line = refusal(run);
    assert.match(line, new RegExp(`^image-clone: ${acr.host}: Entra ID refused the workload identity of client not-a-client in tenant ${tenant} \\(HTTP 400: unauthorized_client: AADSTS700016: Application with identifier 'not-a-client' was not found in the directory '${tenant}'\\.\\)$`));
    assertNoSecret(run.stdout + run.stderr);
  });

  test("the registry's refusal at /oauth2/exchange (an identity of another tenant)", async () => {
    const repo = uniqueRepo('acr-tenant');
    await seedImage(source(), `${repo}:1`, { layers: 1, layerSize: 1024, seed: 2207 });
    const run = await runCli(copy(repo), azureEnv({ AZURE_TENANT_ID: otherTenant }));
    const line = refusal(run);
    assert.match(line, /the registry refused the Entra ID token of client .* at \/oauth2\/exchange \(HTTP 401: UNAUTHORIZED: the registry does not trust tenant 72f988bf-0000-4000-8000-000000000002\)/);
    assertNoSecret(run.stdout + run.stderr);
  });
});
