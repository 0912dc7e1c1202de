// `image-clone sync` into ECR: the harness's API server and source registry, moto as ECR's control
// plane and distribution 2.8 as its data plane (ecr-stand-in.ts). The dry run names the repository
// it would create and creates nothing; the run creates it, copies, verifies and patches; the next
// run creates nothing and copies nothing.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ECRClient } from '@aws-sdk/client-ecr';
import type { HarnessEnv, HarnessRegistry } from '../harness/harness.ts';
import { startFaultProxy } from './fault-proxy.ts';
import { awsEnv, type EcrDataPlane, type Moto, motoEcr, repositoryNames, startEcrDataPlane, startMoto } from './ecr-stand-in.ts';
import { createIn, deployment, harnessFixtures, type Namespaces } from './fixtures.ts';
import { manifestDigest, runCli, seedImage, uniqueRepo, verifyCopy, type KubeClients } from './helpers.ts';

let env: HarnessEnv;
let kube: KubeClients;
let namespaces: Namespaces;
let registryConfig: string;
let insecure: string[];
let moto: Moto;
let ecr: EcrDataPlane;
let home: string;
let ecrApi: ECRClient;

before(async () => {
  ({ env, kube, namespaces, registryConfig, insecure } = await harnessFixtures());
  [moto, ecr] = await Promise.all([startMoto(), startEcrDataPlane()]);
  home = await mkdtemp(join(tmpdir(), 'image-clone-ecr-sync-'));
  ecrApi = motoEcr(moto);
});

after(async () => {
  ecrApi?.destroy();
  await Promise.all([moto?.stop(), ecr?.stop(), namespaces?.deleteAll()]);
  if (home) await rm(home, { recursive: true, force: true });
});

test('sync into ECR: the dry run names the repository, the run creates it and patches, the next run creates nothing', async (t) => {
  const repo = uniqueRepo('ecr');
  const seeded = await seedImage(env.registries.source, `${repo}/web:1.0`, { layers: 1, layerSize: 16 * 1024, seed: 41 });
  const ns = await namespaces.create('ecr-sync', t);
  const image = `${env.registries.source.host}/${repo}/web:1.0`;
  await createIn(kube.objects, ns, deployment('web', image, { replicas: 0 }));
  const sourceDir = env.registries.source.host.replace(':', '_');
  const backupRepository = `mirror/${sourceDir}/${repo}/web`;
  const sync = (...args: string[]) => runCli(['sync', '--backup', `${ecr.host}/mirror`, '-n', ns, '--no-lock', '--kubeconfig', env.kubeconfig,
    '--registry-config', registryConfig, ...insecure, '--insecure-registry', ecr.host, '--registry-provider', `${ecr.host}=aws`, ...args],
  awsEnv(moto, home, { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example-secret' }));

  const dry = await sync('--dry-run');
  assert.equal(dry.code, 0, dry.stderr);
  assert.ok(dry.stderr.includes(`would create ECR repository ${ecr.host}/${backupRepository} (MUTABLE, scan on push off, AES256)`), dry.stderr);
  assert.ok(!(await repositoryNames(ecrApi)).includes(backupRepository), 'the dry run created nothing');

  const run = await sync();
  assert.equal(run.code, 0, run.stderr);
  assert.ok(run.stderr.includes(`created ECR repository ${ecr.host}/${backupRepository}`), run.stderr);
  assert.ok((await repositoryNames(ecrApi)).includes(backupRepository));
  const patched = (await kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec!.template.spec!.containers[0]!.image!;
  assert.equal(patched, `${ecr.host}/${backupRepository}:1.0@${seeded.digest}`);
  const dataPlane: HarnessRegistry = { host: ecr.host, auth: 'basic', username: ecr.username, password: ecr.password };
  const verified = await verifyCopy({ registry: env.registries.source, ref: `${repo}/web:1.0` }, { registry: dataPlane, ref: `${backupRepository}:1.0` });
  assert.equal(verified.identical, true, JSON.stringify(verified.differences));
  assert.doesNotMatch(run.stderr + run.stdout, /auth-token|example-secret/);

  const again = await sync('-o', 'json');
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /created ECR repository/);
  const report = JSON.parse(again.stdout);
  assert.equal(report.summary.images.copied, 0, again.stdout);
  assert.equal(report.summary.images.present, 1, again.stdout);
});

test('IMMUTABLE repositories: a human tag that would have to move is left and reported, never an error', async (t) => {
  // ECR refuses to overwrite a tag in an IMMUTABLE repository; distribution does not. This proxy
  // stands in for that one rule (a second PUT of a tag is refused as ECR words it, 400 TAG_INVALID)
  // in front of the real data plane, because no emulator serves ECR's /v2/ API.
  const written = new Set<string>();
  const immutable = await startFaultProxy({
    upstream: ecr.host, rates: {},
    intercept: (req, res) => {
      const match = /^\/v2\/(.+)\/manifests\/([^/?]+)$/.exec(req.url ?? '');
      if (req.method !== 'PUT' || !match || match[2]!.startsWith('sha256:')) return false;
      const key = `${match[1]}:${match[2]}`;
      if (!written.has(key)) {
        written.add(key);
        return false;
      }
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'TAG_INVALID', message: `The image tag '${match[2]}' already exists in the '${match[1]}' repository and cannot be overwritten because the repository is immutable.` }] }));
      return true;
    },
  });
  t.after(() => immutable.close());
  const repo = uniqueRepo('ecr-immutable');
  const first = await seedImage(env.registries.source, `${repo}/app:1`, { layers: 1, layerSize: 8 * 1024, seed: 51 });
  const ns = await namespaces.create('ecr-immutable', t);
  const image = `${env.registries.source.host}/${repo}/app:1`;
  await createIn(kube.objects, ns, deployment('app', image, { replicas: 0 }));
  const backupRepository = `mirror/${env.registries.source.host.replace(':', '_')}/${repo}/app`;
  const sync = () => runCli(['sync', '--backup', `${immutable.host}/mirror`, '-n', ns, '--no-lock', '--kubeconfig', env.kubeconfig, '--log-format', 'json',
    '--registry-config', registryConfig, ...insecure, '--insecure-registry', immutable.host, '--registry-provider', `${immutable.host}=aws`, '--ecr-tag-mutability', 'IMMUTABLE'],
  awsEnv(moto, home, { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example-secret' }));
  const imageOf = async () => (await kube.apps.readNamespacedDeployment({ name: 'app', namespace: ns })).spec!.template.spec!.containers[0]!.image!;

  const one = await sync();
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stderr, /created ECR repository .*\(IMMUTABLE/);
  assert.equal(await imageOf(), `${immutable.host}/${backupRepository}:1@${first.digest}`);

  // Upstream moves the tag, and the workload is deployed from upstream again.
  const second = await seedImage(env.registries.source, `${repo}/app:1`, { layers: 1, layerSize: 8 * 1024, seed: 52 });
  assert.notEqual(second.digest, first.digest);
  await kube.apps.patchNamespacedDeployment({ name: 'app', namespace: ns, body: [{ op: 'replace', path: '/spec/template/spec/containers/0/image', value: image }] });

  const two = await sync();
  assert.equal(two.code, 0, two.stderr);
  const warnings = two.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((e) => e.event === 'tag-warning');
  assert.equal(warnings.length, 1, two.stderr);
  assert.match(warnings[0].message, /could not set the human tag .*TAG_INVALID|could not set the human tag .*immutable/);
  assert.equal(await imageOf(), `${immutable.host}/${backupRepository}:1@${second.digest}`, 'the workload runs the new digest, held by its anchor');
  const dataPlane: HarnessRegistry = { host: ecr.host, auth: 'basic', username: ecr.username, password: ecr.password };
  assert.equal(await manifestDigest(dataPlane, backupRepository, '1'), first.digest, 'the human tag stayed where it was');
  assert.equal(await manifestDigest(dataPlane, backupRepository, `ic-${second.digest.replace(':', '-')}`), second.digest);
});
