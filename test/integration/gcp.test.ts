// Artifact Registry in process: the CLI gets its credentials from Google's Application Default
// Credentials with no config file. Google's side is a stand-in (gcp-stand-in.ts: no Google emulator
// exists); the registry is the harness's real one (regharness: distribution behind its token
// issuer), started here with --oauth2-tokeninfo so that its token endpoint accepts exactly the user
// oauth2accesstoken with an access token the stand-in handed out and has not expired, as Artifact
// Registry's does. The backup host is loopback, so --registry-provider HOST=gcp names it Google's.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startRegistries, type HarnessEnv } from '../harness/harness.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { googleEnv, type GoogleStandIn, startGoogleStandIn } from './gcp-stand-in.ts';
import { runCli, seedImage, uniqueRepo, verifyCopy, writeRegistryConfig } from './helpers.ts';

let dir: string;
let google: GoogleStandIn;
let registries: Awaited<ReturnType<typeof startRegistries>>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-clone-gcp-'));
  google = await startGoogleStandIn();
  // Registry tokens last 3 s, so a long copy asks the token endpoint again, with the access token of the moment.
  registries = await startRegistries(join(dir, 'registries'), { tokeninfo: google.tokeninfo, tokenTtl: '3s' });
});

after(async () => {
  await registries?.stop();
  await google?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  google.options.lifetimeSeconds = 3600;
  google.options.denied = false;
});

const source = () => registries.registries.source;
const backup = () => registries.registries.backup;

const copyArgs = (repo: string, target: string, ...more: string[]) => [
  'copy', `${source().host}/${repo}:1`, `${target}/${repo}:1`,
  '--insecure-registry', source().host, '--insecure-registry', target, '--registry-provider', `${target}=gcp`, ...more,
];

/** Lines the CLI printed as errors. */
const errorLines = (stderr: string) => stderr.trim().split('\n').filter((l) => l.startsWith('image-clone:'));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The registry's token endpoint, asked directly with an access token (as a user would with curl). */
async function tokenEndpointStatus(accessToken: string): Promise<number> {
  const { realm, service } = backup();
  const url = `${realm}?service=${service}&scope=repository:any/thing:pull`;
  const response = await fetch(url, { headers: { authorization: `Basic ${Buffer.from(`oauth2accesstoken:${accessToken}`).toString('base64')}` } });
  await response.arrayBuffer();
  return response.status;
}

describe('Artifact Registry with the metadata server (GKE Workload Identity)', () => {
  test('a copy works with no config file: the token comes from the metadata server, asked with Metadata-Flavor: Google', async () => {
    const home = await mkdtemp(join(dir, 'home-'));
    const repo = uniqueRepo('gcp');
    await seedImage(source(), `${repo}:1`, { layers: 2, layerSize: 64 * 1024, seed: 71 });
    const before = google.tokenRequests.length;
    const run = await runCli(copyArgs(repo, backup().host), googleEnv(home, { GCE_METADATA_HOST: google.host }));
    assert.equal(run.code, 0, run.stderr);
    const requests = google.tokenRequests.slice(before);
    assert.equal(requests.length, 1, 'one access token serves the whole short run');
    assert.deepEqual(requests, ['Google'], 'the token request carries Metadata-Flavor: Google');
    assert.doesNotMatch(run.stderr + run.stdout, /ya29\./, 'no token is printed');
    const check = await verifyCopy({ registry: source(), ref: `${repo}:1` }, { registry: backup(), ref: `${repo}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));
  });

  test('an entry in the config file wins: the metadata server is never asked', async () => {
    const home = await mkdtemp(join(dir, 'home-'));
    const repo = uniqueRepo('gcp-config');
    await seedImage(source(), `${repo}:1`, { layers: 1, layerSize: 16 * 1024, seed: 72 });
    const config = await writeRegistryConfig({ registries: { backup: backup() } } as unknown as HarnessEnv, ['backup']);
    const before = google.tokenRequests.length;
    const run = await runCli(copyArgs(repo, backup().host, '--registry-config', config), googleEnv(home, { GCE_METADATA_HOST: google.host }));
    assert.equal(run.code, 0, run.stderr);
    assert.equal(google.tokenRequests.length, before, 'the cloud identity is asked only where no entry names the host');
    const check = await verifyCopy({ registry: source(), ref: `${repo}:1` }, { registry: backup(), ref: `${repo}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));
  });

  test('no identity reachable (no key file, no gcloud files, nothing at the metadata address): one line naming what was looked for, exit 2', async () => {
    const home = await mkdtemp(join(dir, 'home-'));
    const repo = uniqueRepo('gcp-none');
    await seedImage(source(), `${repo}:1`, { layers: 1, layerSize: 1024, seed: 73 });
    const nowhere = `127.0.0.1:${await freePort()}`;
    const run = await runCli(copyArgs(repo, backup().host), googleEnv(home, { GCE_METADATA_HOST: nowhere }));
    assert.equal(run.code, 2, run.stderr);
    const lines = errorLines(run.stderr);
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, new RegExp(`no Google identity was found: Application Default Credentials found none \\(GOOGLE_APPLICATION_CREDENTIALS, gcloud's application default credentials, the metadata server at ${nowhere.replace(/\./g, '\\.')}\\)`));
    assert.doesNotMatch(run.stderr, /\n\s+at |Warning/, 'no stack trace, no library warning');
  });

  test("with no identity, a Google host's public images are still read anonymously", async () => {
    const home = await mkdtemp(join(dir, 'home-'));
    const repo = uniqueRepo('gcp-public');
    await seedImage(source(), `${repo}:1`, { layers: 1, layerSize: 1024, seed: 77 });
    const config = await writeRegistryConfig({ registries: { backup: backup() } } as unknown as HarnessEnv, ['backup']);
    const nowhere = `127.0.0.1:${await freePort()}`;
    // The source (anonymous read, like gcr.io/distroless) is named Google's; the backup has a config entry.
    const run = await runCli(['copy', `${source().host}/${repo}:1`, `${backup().host}/${repo}:1`, '--insecure-registry', source().host, '--insecure-registry', backup().host,
      '--registry-provider', `${source().host}=gcp`, '--registry-config', config], googleEnv(home, { GCE_METADATA_HOST: nowhere }));
    assert.equal(run.code, 0, run.stderr);
    const check = await verifyCopy({ registry: source(), ref: `${repo}:1` }, { registry: backup(), ref: `${repo}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));
  });

  test('an identity without permission (the token endpoint answers 403): one line naming the identity and the role, exit 2, no token printed', async () => {
    const home = await mkdtemp(join(dir, 'home-'));
    const repo = uniqueRepo('gcp-denied');
    await seedImage(source(), `${repo}:1`, { layers: 1, layerSize: 1024, seed: 74 });
    google.options.denied = true;
    const run = await runCli(copyArgs(repo, backup().host), googleEnv(home, { GCE_METADATA_HOST: google.host }));
    assert.equal(run.code, 2, run.stderr);
    const lines = errorLines(run.stderr);
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /HTTP 403.*the Google identity of the metadata server \(127\.0\.0\.1:\d+\) was refused: it needs roles\/artifactregistry\.writer/);
    assert.doesNotMatch(run.stderr + run.stdout, /ya29\./);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
  });
});

describe('tokens that expire during the run', () => {
  let slow: FaultProxy;

  before(async () => {
    // 1 MiB/s in front of the registry: a 12 MiB copy takes well over the tokens' lifetime.
    slow = await startFaultProxy({ upstream: backup().host, rates: {}, bytesPerSecond: 1024 * 1024 });
  });

  after(async () => {
    await slow?.close();
  });

  test('access tokens that last 4 s are renewed, the expired ones are refused by the registry, and the copy completes whole', async () => {
    const home = await mkdtemp(join(dir, 'home-'));
    const repo = uniqueRepo('gcp-renew');
    const image = await seedImage(source(), `${repo}:1`, { layers: 1, layerSize: 12 * 1024 * 1024, seed: 75 });
    google.options.lifetimeSeconds = 4;
    const issuedBefore = google.issued.length;
    const traceBefore = (await readFile(registries.trace, 'utf8')).split('\n').filter(Boolean).length;
    const started = Date.now();
    const run = await runCli([...copyArgs(repo, slow.host), '-o', 'json'], googleEnv(home, { GCE_METADATA_HOST: google.host }));
    const seconds = (Date.now() - started) / 1000;
    assert.equal(run.code, 0, run.stderr);
    assert.ok(seconds > 9, `the copy took ${seconds} s: it must outlive several 4 s access tokens to prove anything`);
    assert.equal(JSON.parse(run.stdout).images[0].digest, image.digest);
    const check = await verifyCopy({ registry: source(), ref: `${repo}:1` }, { registry: backup(), ref: `${repo}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));

    const issued = google.issued.slice(issuedBefore);
    assert.ok(issued.length >= 2, `${issued.length} access token(s) for a ${seconds} s run: none was renewed`);
    // The token endpoint was asked again during the run (registry tokens last 3 s), and the first
    // access token is now refused there: the run could only finish with renewed ones.
    const trace = (await readFile(registries.trace, 'utf8')).split('\n').filter(Boolean).slice(traceBefore).map((l) => JSON.parse(l) as { registry: string; status: number });
    assert.ok(trace.filter((r) => r.registry === 'issuer' && r.status === 200).length >= 3, 'registry tokens were fetched several times');
    assert.equal(await tokenEndpointStatus(issued[0]!), 401, 'an expired access token is refused');
  });
});

describe('workload identity federation (an external_account file in GOOGLE_APPLICATION_CREDENTIALS)', () => {
  test('the subject token is exchanged at the token_url the file names, and the copy goes through', async () => {
    const home = await mkdtemp(join(dir, 'home-'));
    const repo = uniqueRepo('gcp-wif');
    await seedImage(source(), `${repo}:1`, { layers: 1, layerSize: 16 * 1024, seed: 76 });
    google.options.subjectToken = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6aW1hZ2UtY2xvbmU6aW1hZ2UtY2xvbmUifQ.c2ln';
    await writeFile(join(home, 'subject-token'), google.options.subjectToken);
    const file = join(home, 'wif.json');
    await writeFile(file, JSON.stringify({
      type: 'external_account',
      audience: '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/pool/providers/cluster',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: google.sts,
      credential_source: { file: join(home, 'subject-token') },
    }));
    const stsBefore = google.stsRequests;
    const nowhere = `127.0.0.1:${await freePort()}`;
    const run = await runCli(copyArgs(repo, backup().host), googleEnv(home, { GOOGLE_APPLICATION_CREDENTIALS: file, GCE_METADATA_HOST: nowhere }));
    assert.equal(run.code, 0, run.stderr);
    assert.equal(google.stsRequests - stsBefore, 1);
    const check = await verifyCopy({ registry: source(), ref: `${repo}:1` }, { registry: backup(), ref: `${repo}:1` });
    assert.equal(check.identical, true, check.differences?.join('; '));
  });
});
