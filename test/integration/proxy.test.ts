// image-clone where the only way to the registries is an HTTP proxy: a real forward proxy (Debian's
// tinyproxy) in a network namespace, real registries (regharness, Debian's docker-registry) in
// namespaces only the proxy reaches (see proxy-net.ts), the harness's real API server. Copies and a
// sync go through HTTP_PROXY / HTTPS_PROXY (token server included), https through CONNECT; NO_PROXY
// sends hosts direct in each of its forms; proxy authentication; a proxy that refuses or is not
// there fails in one line that names it. "Went through the proxy" is read from tinyproxy's log.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import type { HarnessEnv } from '../harness/harness.ts';
import { deployment, createIn, harnessFixtures, type Namespaces } from './fixtures.ts';
import { runCli, uniqueRepo, type CliRun, type KubeClients } from './helpers.ts';
import {
  ip, regharness, runIn, setUpNetwork, spawnIn, selfSignedCertificate, startDockerRegistry, startRedirector, startRegharness, startTinyproxy, stopChildren,
  tearDownNetwork, waitForPort, type RegistriesJson, type Tinyproxy,
} from './proxy-net.ts';
import { awsEnv, motoAccount, motoServer, startEcrDataPlane, type EcrDataPlane } from './ecr-stand-in.ts';

const proxyUser = 'alice';
const proxyPassword = 'pr0xy-s3cret';

let env: HarnessEnv;
let kube: KubeClients;
let namespaces: Namespaces;
let dir: string;
let plain: Tinyproxy;
let authenticating: Tinyproxy;
let refusing: Tinyproxy;
let behind: RegistriesJson['registries'];
let registryConfig: string;
let tlsCert: string;
let tlsKey: string;
const tlsRegistry = `${ip.behind}:5443`;
const directRegistry = `${ip.direct}:5000`;
/** In front of the source registry behind the proxy; sends blob GETs to the direct-only registry (a CDN). */
const redirector = `${ip.behind}:5080`;

before(async () => {
  ({ env, kube, namespaces } = await harnessFixtures());
  dir = await mkdtemp(join(tmpdir(), 'image-clone-proxy-'));
  // after() deletes the namespaces; this also does if the process ends without it.
  process.once('exit', tearDownNetwork);
  setUpNetwork();
  plain = await startTinyproxy(dir, 8888);
  authenticating = await startTinyproxy(dir, 8889, [`BasicAuth ${proxyUser} ${proxyPassword}`]);
  // Serves no client: tinyproxy answers 403 to every request, CONNECT included.
  refusing = await startTinyproxy(dir, 8890, ['Allow 192.0.2.1']);
  behind = (await startRegharness(join(dir, 'regharness'))).registries;
  const tls = selfSignedCertificate(dir, ip.behind);
  tlsCert = tls.cert;
  tlsKey = tls.key;
  await startDockerRegistry('behind', dir, tlsRegistry, tls);
  await startDockerRegistry('direct', dir, directRegistry);
  await waitForPort(ip.direct, 5000);
  await startRedirector('behind', dir, ip.behind, 5080, `http://${behind.source!.host}`, `http://${directRegistry}`);
  // The https registry is reachable from the proxy's namespace only.
  for (const port of [5443, 5080]) await runIn('proxy', 'timeout', ['30', 'bash', '-c', `until (: </dev/tcp/${ip.behind}/${port}) 2>/dev/null; do sleep 0.1; done`]);
  const auths = { [behind.backup!.host]: { auth: Buffer.from(`${behind.backup!.username}:${behind.backup!.password}`).toString('base64') } };
  registryConfig = join(dir, 'config.json');
  await writeFile(registryConfig, JSON.stringify({ auths }), { mode: 0o600 });
});

after(async () => {
  await stopChildren();
  tearDownNetwork();
  await namespaces?.deleteAll();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Pushes a random image into a registry behind the proxy, with the harness's own tool, from inside its namespace. */
async function seedBehind(ref: string, seed: number): Promise<string> {
  const out = await runIn('behind', regharness, ['seed', '--ref', ref, '--platforms', 'linux/amd64,linux/arm64', '--layers', '2', '--layer-size', '8KiB', '--seed', String(seed)]);
  return (JSON.parse(out.trim().split('\n').pop()!) as { digest: string }).digest;
}

/** Compares two copies behind the proxy with the harness's own tool (exits 1, and so throws, when they differ). */
async function verifyBehind(src: string, dst: string, dstRegistry = behind.backup!): Promise<void> {
  const credentials = dstRegistry.username ? ['--dst-username', dstRegistry.username, '--dst-password', dstRegistry.password!] : [];
  await runIn('behind', regharness, ['verify', '--src', src, '--dst', dst, ...credentials]);
}

/** The digest a plain-http registry the test reaches directly holds under a tag. */
async function directDigest(repository: string, tag: string): Promise<string | null> {
  const response = await fetch(`http://${directRegistry}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD', headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json' },
  });
  return response.headers.get('docker-content-digest');
}

const insecure = () => ['--insecure-registry', behind.source!.host, '--insecure-registry', behind.backup!.host, '--insecure-registry', directRegistry, '--insecure-registry', redirector];
const copy = (from: string, to: string, extraEnv: Record<string, string>): Promise<CliRun> =>
  runCli(['copy', from, to, '--registry-config', registryConfig, ...insecure(), '-o', 'json'], { NODE_EXTRA_CA_CERTS: tlsCert, ...extraEnv });
const viaPlain = () => ({ HTTP_PROXY: plain.url, HTTPS_PROXY: plain.url });

/** stderr's lines other than retries: a failure prints exactly one. */
function errorLines(run: CliRun): string[] {
  return run.stderr.trim().split('\n').filter((l) => l && !l.startsWith('retry: '));
}

describe('through an HTTP proxy', () => {
  test('without the proxy the registries behind it cannot be reached (the test network is what it claims)', async () => {
    const run = await copy(`${behind.source!.host}/nothing:1`, `${behind.backup!.host}/nothing:1`, {});
    assert.equal(run.code, 1, run.stderr);
    assert.match(errorLines(run)[0]!, /cannot reach the registry: (EHOSTUNREACH|ENETUNREACH)/);
    assert.deepEqual(await plain.requests(), []);
  });

  test('a copy goes through HTTP_PROXY, the token server too, and is byte-identical', async () => {
    const repo = uniqueRepo('proxy-copy');
    const digest = await seedBehind(`${behind.source!.host}/${repo}:1`, 1);
    await plain.requests();
    const run = await copy(`${behind.source!.host}/${repo}:1`, `${behind.backup!.host}/mirror/${repo}:1`, viaPlain());
    assert.equal(run.code, 0, run.stderr);
    await verifyBehind(`${behind.source!.host}/${repo}:1`, `${behind.backup!.host}/mirror/${repo}@${digest}`);
    const requests = await plain.requests();
    assert.ok(requests.some((r) => r.startsWith(`GET http://${behind.source!.host}/v2/${repo}/blobs/`)), requests.join('\n'));
    assert.ok(requests.some((r) => r.startsWith(`PUT http://${behind.backup!.host}/v2/mirror/${repo}/manifests/`)), requests.join('\n'));
    const issuer = new URL(behind.backup!.realm!).host;
    assert.ok(requests.some((r) => r.startsWith(`GET http://${issuer}/token?`)), `the token request went through the proxy:\n${requests.join('\n')}`);
    assert.doesNotMatch(run.stdout + run.stderr, new RegExp(behind.backup!.password!));
  });

  test('an https registry is reached through CONNECT, TLS verified end to end', async () => {
    const repo = uniqueRepo('proxy-tls');
    await seedBehind(`${behind.source!.host}/${repo}:1`, 2);
    await plain.requests();
    const run = await copy(`${behind.source!.host}/${repo}:1`, `${tlsRegistry}/${repo}:1`, viaPlain());
    assert.equal(run.code, 0, run.stderr);
    const requests = await plain.requests();
    assert.ok(requests.includes(`CONNECT ${tlsRegistry}`), requests.join('\n'));
    assert.ok(!requests.some((r) => r.includes(`http://${tlsRegistry}`)), 'https is tunnelled, never forwarded in the clear');
    // Back again from the https registry, and compared with the original by the harness's tool.
    const back = await copy(`${tlsRegistry}/${repo}:1`, `${behind.source!.host}/${repo}-back:1`, viaPlain());
    assert.equal(back.code, 0, back.stderr);
    await verifyBehind(`${behind.source!.host}/${repo}:1`, `${behind.source!.host}/${repo}-back:1`, behind.source!);
  });

  test('NO_PROXY sends a host direct, as an IP, a CIDR block, host:port, lower case; other hosts still go through the proxy', async () => {
    let repo = '';
    for (const [i, noProxy] of [ip.direct, '10.233.0.0/16', directRegistry, `no_proxy=192.0.2.9,${ip.direct}`].entries()) {
      repo = uniqueRepo('proxy-no-proxy');
      const digest = await seedBehind(`${behind.source!.host}/${repo}:1`, 10 + i);
      await plain.requests();
      const lower = noProxy.startsWith('no_proxy=');
      const variables: Record<string, string> = lower ? { http_proxy: plain.url, https_proxy: plain.url, no_proxy: noProxy.slice(9) } : { ...viaPlain(), NO_PROXY: noProxy };
      const run = await copy(`${behind.source!.host}/${repo}:1`, `${directRegistry}/${repo}:1`, variables);
      assert.equal(run.code, 0, `${noProxy}: ${run.stderr}`);
      assert.equal(await directDigest(repo, '1'), digest, noProxy);
      const requests = await plain.requests();
      assert.ok(requests.some((r) => r.includes(behind.source!.host)), `${noProxy}: the source still went through the proxy`);
      assert.ok(!requests.some((r) => r.includes(ip.direct)), `${noProxy}: nothing for ${ip.direct} went through the proxy:\n${requests.join('\n')}`);
    }
    // Not excluded, the direct-only registry is asked through the proxy, which cannot reach it.
    const run = await copy(`${behind.source!.host}/${repo}:1`, `${directRegistry}/${repo}-proxied:1`, { ...viaPlain(), NO_PROXY: '10.233.77.3,other.example:5000' });
    assert.notEqual(run.code, 0, run.stderr);
    assert.match(errorLines(run).at(-1)!, new RegExp(`^image-clone: ${directRegistry}: .* through proxy ${plain.url} `));
    assert.ok((await plain.requests()).some((r) => r.includes(ip.direct)));
  });

  test('a blob redirect is routed by its own host: the registry through the proxy, the CDN it redirects to direct (NO_PROXY)', async () => {
    const repo = uniqueRepo('proxy-cdn');
    // The same image (same seed) behind the proxy and on the direct-only "CDN".
    const digest = await seedBehind(`${behind.source!.host}/${repo}:1`, 6);
    const cdnSeed = await runIn('direct', regharness, ['seed', '--ref', `${directRegistry}/${repo}:1`, '--platforms', 'linux/amd64,linux/arm64', '--layers', '2', '--layer-size', '8KiB', '--seed', '6']);
    assert.equal((JSON.parse(cdnSeed.trim().split('\n').pop()!) as { digest: string }).digest, digest);
    await plain.requests();
    const run = await copy(`${redirector}/${repo}:1`, `${behind.backup!.host}/mirror/${repo}:1`, { ...viaPlain(), NO_PROXY: ip.direct });
    assert.equal(run.code, 0, run.stderr);
    await verifyBehind(`${behind.source!.host}/${repo}:1`, `${behind.backup!.host}/mirror/${repo}@${digest}`);
    const requests = await plain.requests();
    assert.ok(requests.some((r) => r.startsWith(`GET http://${redirector}/v2/${repo}/blobs/`)), `the blob requests reached the registry through the proxy:\n${requests.join('\n')}`);
    assert.ok(!requests.some((r) => r.includes(ip.direct)), `the redirects to the CDN went direct:\n${requests.join('\n')}`);
  });

  test('proxy authentication: credentials in the proxy URL work and are never printed; missing or wrong ones fail in one line', async () => {
    const repo = uniqueRepo('proxy-auth');
    const digest = await seedBehind(`${behind.source!.host}/${repo}:1`, 3);
    const withCredentials = authenticating.url.replace('//', `//${proxyUser}:${proxyPassword}@`);
    const ok = await copy(`${behind.source!.host}/${repo}:1`, `${tlsRegistry}/${repo}:1`, { HTTP_PROXY: withCredentials, HTTPS_PROXY: withCredentials });
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok((await authenticating.requests()).includes(`CONNECT ${tlsRegistry}`));
    assert.doesNotMatch(ok.stdout + ok.stderr, new RegExp(proxyPassword));
    assert.match(ok.stdout, new RegExp(digest));

    for (const [variable, target] of [['HTTPS_PROXY', `${tlsRegistry}/${repo}:1`], ['HTTP_PROXY', `${behind.source!.host}/${repo}:1`]] as const) {
      const missing = await copy(target, `${tlsRegistry}/${repo}-again:1`, { [variable]: authenticating.url, HTTPS_PROXY: authenticating.url });
      assert.equal(missing.code, 2, missing.stderr);
      assert.deepEqual(errorLines(missing), [`image-clone: ${target.split('/')[0]}: proxy ${authenticating.url} requires authentication (HTTP 407): put them in ${variable} as http://USER:PASSWORD@${authenticating.url.slice(7)}`]);
    }
    const wrong = await copy(`${tlsRegistry}/${repo}:1`, `${tlsRegistry}/${repo}-again:1`, { HTTPS_PROXY: authenticating.url.replace('//', `//${proxyUser}:not-${proxyPassword}@`) });
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.deepEqual(errorLines(wrong), [`image-clone: ${tlsRegistry}: proxy ${authenticating.url} requires authentication (HTTP 401): the credentials in HTTPS_PROXY were refused`]);
    assert.doesNotMatch(wrong.stderr, new RegExp(proxyPassword));
  });

  test('a proxy that refuses, or is not there, is named in one line with its exit code', async () => {
    const refusedTls = await copy(`${tlsRegistry}/any:1`, `${tlsRegistry}/other:1`, { HTTPS_PROXY: refusing.url });
    assert.equal(refusedTls.code, 2, refusedTls.stderr);
    assert.deepEqual(errorLines(refusedTls), [`image-clone: ${tlsRegistry}: proxy ${refusing.url} refused CONNECT to ${tlsRegistry} (HTTP 403): the proxy does not allow this host or port; if the registry is reachable directly, add it to NO_PROXY`]);

    const refusedPlain = await copy(`${behind.source!.host}/any:1`, `${behind.backup!.host}/other:1`, { HTTP_PROXY: refusing.url, HTTPS_PROXY: refusing.url });
    assert.equal(refusedPlain.code, 2, refusedPlain.stderr);
    assert.equal(errorLines(refusedPlain).length, 1, refusedPlain.stderr);
    assert.match(errorLines(refusedPlain)[0]!, new RegExp(`^image-clone: ${behind.source!.host}: access denied for HEAD /v2/any/manifests/1 through proxy ${refusing.url} \\(HTTP 403\\)$`));

    const gone = `http://${ip.proxy}:1`;
    const unreachable = await copy(`${tlsRegistry}/any:1`, `${tlsRegistry}/other:1`, { HTTPS_PROXY: gone });
    assert.equal(unreachable.code, 1, unreachable.stderr);
    assert.deepEqual(errorLines(unreachable), [`image-clone: ${tlsRegistry}: cannot reach proxy ${gone} (HTTPS_PROXY): connection refused`]);

    const malformed = await copy(`${tlsRegistry}/any:1`, `${tlsRegistry}/other:1`, { HTTPS_PROXY: `socks5://${proxyUser}:${proxyPassword}@${ip.proxy}:1080` });
    assert.equal(malformed.code, 2, malformed.stderr);
    // A usage error: its line, then the CLI's pointer to --help.
    assert.deepEqual(errorLines(malformed), ['image-clone: HTTPS_PROXY names a socks5 proxy; only http:// and https:// proxies are supported', "Run 'image-clone --help' for usage."]);
    assert.doesNotMatch(malformed.stderr, new RegExp(proxyPassword));
  });

  test("the AWS SDK's calls (STS for IRSA, ECR's API) go through HTTPS_PROXY: an ECR backup from a network whose only way out is the proxy", async (t) => {
    // moto (the AWS emulator) serves ECR's and STS's API over https behind the proxy, with the test's
    // certificate; the ECR data plane (distribution, accepting moto's token) is on loopback, never proxied.
    const motoPort = 5500;
    spawnIn('behind', motoServer, ['-H', ip.behind, '-p', String(motoPort), '-c', tlsCert, '-k', tlsKey]);
    await runIn('proxy', 'timeout', ['30', 'bash', '-c', `until (: </dev/tcp/${ip.behind}/${motoPort}) 2>/dev/null; do sleep 0.1; done`]);
    const ecr: EcrDataPlane = await startEcrDataPlane();
    t.after(() => ecr.stop());
    const home = join(dir, 'aws-home');
    const tokenFile = join(dir, 'web-identity-token');
    // moto does not check the JWT (ecr.test.ts and the node test cover the token's issuer).
    await writeFile(tokenFile, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6aW1hZ2UtY2xvbmU6aW1hZ2UtY2xvbmUifQ.c2ln');
    const irsa = awsEnv({ endpoint: `https://${ip.behind}:${motoPort}`, stop: async () => {} }, home,
      { AWS_ROLE_ARN: `arn:aws:iam::${motoAccount}:role/image-clone`, AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_MAX_ATTEMPTS: '1' });
    const repo = uniqueRepo('proxy-ecr');
    const digest = await seedBehind(`${behind.source!.host}/${repo}:1`, 6);
    const toEcr = (variables: Record<string, string>) => runCli(['copy', `${behind.source!.host}/${repo}:1`, `${ecr.host}/mirror/${repo}:1`,
      '--registry-config', registryConfig, ...insecure(), '--insecure-registry', ecr.host, '--registry-provider', `${ecr.host}=aws`],
    { NODE_EXTRA_CA_CERTS: tlsCert, ...irsa, ...variables });

    // Without the proxy, moto is out of reach: STS's exchange fails, and nothing is created.
    const direct = await toEcr({ HTTP_PROXY: plain.url });
    // Exit 5: the backup registry's control plane cannot be reached (docs/sync.md, exit codes).
    assert.equal(direct.code, 5, direct.stderr);
    assert.match(errorLines(direct).at(-1)!, new RegExp(`ecr:\\w+ on mirror/${repo} failed: connect (EHOSTUNREACH|ENETUNREACH) ${ip.behind}:${motoPort}`));

    await plain.requests();
    const run = await toEcr(viaPlain());
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`created ECR repository .*mirror/${repo}`));
    const requests = await plain.requests();
    // STS (the web identity exchange), then GetAuthorizationToken and CreateRepository: all tunnelled to moto.
    assert.ok(requests.filter((r) => r === `CONNECT ${ip.behind}:${motoPort}`).length >= 1, requests.join('\n'));
    assert.ok(!requests.some((r) => r.includes(ecr.host)), 'the loopback data plane is reached directly');
    // The data plane holds the source's image under its digest.
    const pulled = await fetch(`http://${ecr.host}/v2/mirror/${repo}/manifests/1`, {
      headers: { authorization: `Basic ${Buffer.from(`${ecr.username}:${ecr.password}`).toString('base64')}`, accept: 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json' },
    });
    assert.equal(pulled.status, 200);
    assert.equal(pulled.headers.get('docker-content-digest'), digest);

    // NO_PROXY naming moto (host:port; the source registry, same address, other port, still proxied)
    // sends the SDK direct, where moto is out of reach.
    const excluded = await toEcr({ ...viaPlain(), NO_PROXY: `${ip.behind}:${motoPort}` });
    assert.equal(excluded.code, 5, excluded.stderr);
    assert.ok(!(await plain.requests()).includes(`CONNECT ${ip.behind}:${motoPort}`), 'NO_PROXY kept the SDK off the proxy');
  });

  test('a sync through the proxy: registries behind it, the API server on loopback direct (never proxied)', async (t) => {
    const repo = uniqueRepo('proxy-sync');
    const digest = await seedBehind(`${behind.source!.host}/${repo}/web:1`, 4);
    const ns = await namespaces.create('proxy-sync', t);
    await createIn(kube.objects, ns, deployment('web', `${behind.source!.host}/${repo}/web:1`, { replicas: 0 }));
    await plain.requests();
    const backup = `${behind.backup!.host}/sync`;
    const run = await runCli(['sync', '--backup', backup, '-n', ns, '--kubeconfig', env.kubeconfig, '--registry-config', registryConfig, ...insecure()], viaPlain());
    assert.equal(run.code, 0, run.stderr);
    const image = (await kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec!.template.spec!.containers[0]!.image!;
    assert.equal(image, `${backup}/${behind.source!.host.replace(':', '_')}/${repo}/web:1@${digest}`);
    await verifyBehind(`${behind.source!.host}/${repo}/web:1`, image);
    const requests = await plain.requests();
    assert.ok(requests.some((r) => r.includes(behind.backup!.host)), requests.join('\n'));
    assert.ok(!requests.some((r) => r.includes('127.0.0.1')), `the loopback API server was reached directly:\n${requests.join('\n')}`);
  });

  test('the API server follows HTTPS_PROXY and NO_PROXY as kubectl does, and a refusing proxy is named', async (t) => {
    // The API server listens on loopback only: a relay on the root namespace's side of the proxy's
    // link makes it reachable at an address the proxy (and the test) can reach.
    const relay = await startRelay(ip.root, new URL(env.server));
    t.after(() => new Promise<void>((resolve) => relay.close(() => resolve())));
    const server = `${ip.root}:${(relay.address() as AddressInfo).port}`;
    const kc = new KubeConfig();
    kc.loadFromFile(env.kubeconfig);
    const cluster = kc.getCurrentCluster()!;
    // The serving certificate names `kubernetes`, not the relay's address.
    kc.clusters = kc.clusters.map((c) => (c === cluster ? { ...c, server: `https://${server}`, tlsServerName: 'kubernetes' } : c));
    const kubeconfig = join(dir, 'relay.kubeconfig');
    await writeFile(kubeconfig, kc.exportConfig(), { mode: 0o600 });
    const ns = await namespaces.create('proxy-api', t);
    const repo = uniqueRepo('proxy-api');
    await seedBehind(`${behind.source!.host}/${repo}/web:1`, 5);
    await createIn(kube.objects, ns, deployment('web', `${behind.source!.host}/${repo}/web:1`, { replicas: 0 }));
    const plan = (variables: Record<string, string>) => runCli(['sync', '--dry-run', '--backup', `${behind.backup!.host}/plan`, '-n', ns,
      '--kubeconfig', kubeconfig, '--registry-config', registryConfig, ...insecure()], variables);

    await plain.requests();
    const proxied = await plan(viaPlain());
    assert.equal(proxied.code, 0, proxied.stderr);
    assert.ok((await plain.requests()).includes(`CONNECT ${server}`), 'the API server was reached through CONNECT');

    const direct = await plan({ ...viaPlain(), NO_PROXY: `${ip.root}` });
    assert.equal(direct.code, 0, direct.stderr);
    assert.ok(!(await plain.requests()).some((r) => r.includes(server)), 'NO_PROXY kept the API server direct');

    const refused = await plan({ ...viaPlain(), HTTPS_PROXY: refusing.url });
    assert.equal(refused.code, 2, refused.stderr);
    // sync's progress lines ("Listing workloads") come first; then the one error line, which ends the output.
    const errors = errorLines(refused).filter((l) => l.startsWith('image-clone:'));
    assert.equal(errors.length, 1, refused.stderr);
    assert.equal(errors[0], errorLines(refused).at(-1));
    // The first request is API discovery (the custom workload kinds), before any list.
    assert.match(errors[0]!, new RegExp(`^image-clone: cannot read the API server's discovery document /apis: proxy ${refusing.url} refused CONNECT to the API server \\(HTTP 403\\)`));
  });
});

/** A TCP relay from host:0 to the API server's address. */
async function startRelay(host: string, upstream: URL): Promise<Server> {
  const server = createServer((socket) => {
    const out = connect({ host: upstream.hostname, port: Number(upstream.port) });
    socket.pipe(out).pipe(socket);
    socket.on('error', () => out.destroy());
    out.on('error', () => socket.destroy());
  });
  server.listen(0, host);
  await once(server, 'listening');
  return server;
}
