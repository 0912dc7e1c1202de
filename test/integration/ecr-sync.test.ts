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
import { awsEnv, type EcrDataPlane, type Moto, motoEcr, repositoryNames, startEcrDataPlane, startMoto } from './ecr-stand-in.ts';
import { createIn, deployment, harnessFixtures, type Namespaces } from './fixtures.ts';
import { runCli, seedImage, uniqueRepo, verifyCopy, type KubeClients } from './helpers.ts';

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
