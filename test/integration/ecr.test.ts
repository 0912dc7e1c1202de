// ECR in process: the CLI against moto (ECR's and STS's control plane) and distribution 2.8 behind
// htpasswd (its data plane), see ecr-stand-in.ts. Shows the repositories created with the
// configured settings (read back from moto), the copy pushed and verified with moto's token, a
// second run that creates nothing, keys and IRSA (web identity exchanged at moto's STS, with no
// keys, no config files and no instance metadata), and one-line refusals with exit 2.
// The source images are pushed here with plain fetch, independent of image-clone's client.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DescribeRepositoriesCommand, type ECRClient, GetLifecyclePolicyCommand, GetRepositoryPolicyCommand, ListTagsForResourceCommand } from '@aws-sdk/client-ecr';
import { awsEnv, type EcrDataPlane, type Moto, motoAccount, motoEcr, repositoryNames, startEcrDataPlane, startMoto } from './ecr-stand-in.ts';
import { runCli } from './helpers.ts';

let moto: Moto;
let ecr: EcrDataPlane;
let source: EcrDataPlane;
let home: string;
let ecrApi: ECRClient;

before(async () => {
  [moto, ecr, source] = await Promise.all([startMoto(), startEcrDataPlane(), startEcrDataPlane()]);
  home = await mkdtemp(join(tmpdir(), 'image-clone-ecr-home-'));
  ecrApi = motoEcr(moto);
});

after(async () => {
  ecrApi?.destroy();
  await Promise.all([moto?.stop(), ecr?.stop(), source?.stop()]);
  if (home) await rm(home, { recursive: true, force: true });
});

const sha256 = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const basic = (r: EcrDataPlane) => `Basic ${Buffer.from(`${r.username}:${r.password}`).toString('base64')}`;

/** Pushes a one-layer OCI image with plain fetch; returns its manifest digest and blob digests. */
async function pushImage(registry: EcrDataPlane, repository: string, tag: string, seed: string) {
  const layer = Buffer.from(`layer of ${seed} ${Date.now()}`);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
  for (const blob of [layer, config]) {
    const start = await fetch(`http://${registry.host}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: { authorization: basic(registry) } });
    assert.equal(start.status, 202);
    const location = new URL(start.headers.get('location')!, `http://${registry.host}`);
    location.searchParams.set('digest', sha256(blob));
    const put = await fetch(location, { method: 'PUT', body: blob, headers: { authorization: basic(registry), 'content-type': 'application/octet-stream' } });
    assert.equal(put.status, 201, await put.text());
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
  }));
  const put = await fetch(`http://${registry.host}/v2/${repository}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { authorization: basic(registry), 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(put.status, 201, await put.text());
  return { digest: sha256(manifest), blobs: [sha256(layer), sha256(config)] };
}

/** The target holds the manifest with the same digest under the tag, and every blob with matching bytes. */
async function assertCopied(repository: string, tag: string, image: { digest: string; blobs: string[] }) {
  const manifest = await fetch(`http://${ecr.host}/v2/${repository}/manifests/${tag}`, { headers: { authorization: basic(ecr), accept: 'application/vnd.oci.image.manifest.v1+json' } });
  const bytes = Buffer.from(await manifest.arrayBuffer());
  assert.equal(manifest.status, 200);
  assert.equal(sha256(bytes), image.digest);
  for (const digest of image.blobs) {
    const blob = await fetch(`http://${ecr.host}/v2/${repository}/blobs/${digest}`, { headers: { authorization: basic(ecr) } });
    assert.equal(sha256(Buffer.from(await blob.arrayBuffer())), digest);
  }
}

const copyArgs = (src: string, dst: string, ...more: string[]) => [
  'copy', `${source.host}/${src}`, `${ecr.host}/${dst}`,
  '--insecure-registry', source.host, '--insecure-registry', ecr.host,
  '--registry-provider', `${ecr.host}=aws`, ...more,
];

async function describeRepository(name: string) {
  const { repositories } = await ecrApi.send(new DescribeRepositoriesCommand({ repositoryNames: [name] }));
  const repository = repositories![0]!;
  const { tags } = await ecrApi.send(new ListTagsForResourceCommand({ resourceArn: repository.repositoryArn! }));
  return { repository, tags };
}

/** A docker config.json for the source stand-in only: the ECR host must get its credentials from the AWS identity. */
async function sourceConfig(): Promise<string> {
  const path = join(home, `source-config-${Date.now()}.json`);
  await writeFile(path, JSON.stringify({ auths: { [source.host]: { auth: Buffer.from(`AWS:${source.password}`).toString('base64') } } }));
  return path;
}

describe('ECR with access keys', () => {
  test('creates the repository with the configured settings, pushes the copy with the token, and a second run creates nothing', async () => {
    const image = await pushImage(source, 'app/web', '1.0', 'keys');
    const keys = awsEnv(moto, home, { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example-secret' });
    const lifecycle = JSON.stringify({ rules: [{ rulePriority: 1, description: 'untagged after 14 days', selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 14 }, action: { type: 'expire' } }] });
    const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'pull', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${motoAccount}:root` }, Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'] }] });
    await writeFile(join(home, 'lifecycle.json'), lifecycle);
    await writeFile(join(home, 'policy.json'), policy);
    const args = copyArgs('app/web:1.0', 'mirror/app/web:1.0', '--registry-config', await sourceConfig(),
      '--ecr-tag-mutability', 'IMMUTABLE', '--ecr-scan-on-push', '--ecr-kms-key', `arn:aws:kms:us-east-1:${motoAccount}:key/backup`, '--ecr-repository-tag', 'team=platform', '--ecr-repository-tag', 'purpose=backup',
      '--ecr-lifecycle-policy', join(home, 'lifecycle.json'), '--ecr-repository-policy', join(home, 'policy.json'));
    const first = await runCli(args, keys);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /created ECR repository 127\.0\.0\.1:\d+\/mirror\/app\/web \(IMMUTABLE, scan on push on, KMS arn:aws:kms/);
    assert.doesNotMatch(first.stderr + first.stdout, /auth-token|example-secret/, 'no credential or token is printed');
    await assertCopied('mirror/app/web', '1.0', image);

    const { repository, tags } = await describeRepository('mirror/app/web');
    assert.equal(repository.imageTagMutability, 'IMMUTABLE');
    assert.equal(repository.imageScanningConfiguration?.scanOnPush, true);
    assert.equal(repository.encryptionConfiguration?.encryptionType, 'KMS');
    assert.equal(repository.encryptionConfiguration?.kmsKey, `arn:aws:kms:us-east-1:${motoAccount}:key/backup`);
    assert.deepEqual(Object.fromEntries((tags ?? []).map((t) => [t.Key, t.Value])), { team: 'platform', purpose: 'backup' });
    const { lifecyclePolicyText } = await ecrApi.send(new GetLifecyclePolicyCommand({ repositoryName: 'mirror/app/web' }));
    assert.deepEqual(JSON.parse(lifecyclePolicyText!), JSON.parse(lifecycle));
    const { policyText } = await ecrApi.send(new GetRepositoryPolicyCommand({ repositoryName: 'mirror/app/web' }));
    assert.deepEqual(JSON.parse(policyText!), JSON.parse(policy));

    const second = await runCli(args, keys);
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stderr, /created ECR repository/);
    assert.ok((await repositoryNames(ecrApi)).filter((n) => n === 'mirror/app/web').length === 1);
  });

  test('a policy file that is not JSON stops the run before anything is created: one line, exit 2', async () => {
    await pushImage(source, 'app/badpolicy', '1', 'badpolicy');
    await writeFile(join(home, 'bad.json'), '{ "rules": [');
    const run = await runCli(copyArgs('app/badpolicy:1', 'mirror/app/badpolicy:1', '--registry-config', await sourceConfig(), '--ecr-lifecycle-policy', join(home, 'bad.json')), awsEnv(moto, home, { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example-secret' }));
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /image-clone: --ecr-lifecycle-policy .*bad\.json is not valid JSON/);
    assert.ok(!(await repositoryNames(ecrApi)).includes('mirror/app/badpolicy'));
  });

  test('two runs creating the same repository at once both succeed; it is created once', async () => {
    const image = await pushImage(source, 'app/race', '1', 'race');
    const keys = awsEnv(moto, home, { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example-secret' });
    const config = await sourceConfig();
    const runs = await Promise.all([1, 2].map(() => runCli(copyArgs('app/race:1', 'mirror/app/race:1', '--registry-config', config), keys)));
    for (const run of runs) assert.equal(run.code, 0, run.stderr);
    // One of the two creates it; the other meets RepositoryAlreadyExistsException, which is success.
    assert.equal(runs.filter((r) => /created ECR repository/.test(r.stderr)).length, 1, runs.map((r) => r.stderr).join('\n'));
    assert.equal((await repositoryNames(ecrApi)).filter((n) => n === 'mirror/app/race').length, 1);
    await assertCopied('mirror/app/race', '1', image);
  });

  test('defaults: MUTABLE, no scan on push, AES256, no tags', async () => {
    const image = await pushImage(source, 'app/api', '2', 'defaults');
    const run = await runCli(copyArgs('app/api:2', 'mirror/app/api:2', '--registry-config', await sourceConfig()), awsEnv(moto, home, { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example-secret' }));
    assert.equal(run.code, 0, run.stderr);
    await assertCopied('mirror/app/api', '2', image);
    const { repository, tags } = await describeRepository('mirror/app/api');
    assert.equal(repository.imageTagMutability, 'MUTABLE');
    assert.equal(repository.imageScanningConfiguration?.scanOnPush, false);
    assert.equal(repository.encryptionConfiguration?.encryptionType, 'AES256');
    assert.deepEqual(tags ?? [], []);
  });

  test('--no-create-repositories creates nothing (the push then meets what the registry says)', async () => {
    await pushImage(source, 'app/nocreate', '1', 'nocreate');
    const run = await runCli(copyArgs('app/nocreate:1', 'mirror/app/nocreate:1', '--registry-config', await sourceConfig(), '--no-create-repositories'), awsEnv(moto, home, { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example-secret' }));
    // The stand-in's data plane accepts any repository, unlike ECR: the copy succeeds, and moto shows none was created.
    assert.equal(run.code, 0, run.stderr);
    assert.ok(!(await repositoryNames(ecrApi)).includes('mirror/app/nocreate'));
  });
});

describe('ECR as a source', () => {
  test('images pulled from a private ECR repository get their credentials from the AWS identity too', async () => {
    const image = await pushImage(ecr, 'team/tool', '3', 'ecr-source');
    const run = await runCli(['copy', `${ecr.host}/team/tool:3`, `${source.host}/from-ecr/tool:3`, '--insecure-registry', source.host, '--insecure-registry', ecr.host,
      '--registry-provider', `${ecr.host}=aws`, '--registry-config', await sourceConfig()], awsEnv(moto, home, { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example-secret' }));
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /created ECR repository/, 'the target is not ECR: nothing to create');
    const manifest = await fetch(`http://${source.host}/v2/from-ecr/tool/manifests/3`, { headers: { authorization: basic(source), accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(sha256(Buffer.from(await manifest.arrayBuffer())), image.digest);
  });
});

describe('ECR with IRSA (web identity), no keys, no config files, no instance metadata', () => {
  test('the web identity token is exchanged at STS and the copy goes through', async () => {
    const image = await pushImage(source, 'app/irsa', '1', 'irsa');
    const tokenFile = join(home, 'web-identity-token');
    // moto does not check the JWT; the real test of the token's issuer is EKS's (and the in-cluster test's) job.
    await writeFile(tokenFile, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6aW1hZ2UtY2xvbmU6aW1hZ2UtY2xvbmUifQ.c2ln');
    const irsa = awsEnv(moto, home, { AWS_ROLE_ARN: `arn:aws:iam::${motoAccount}:role/image-clone`, AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile });
    const run = await runCli(copyArgs('app/irsa:1', 'mirror/app/irsa:1', '--registry-config', await sourceConfig()), irsa);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /created ECR repository .*mirror\/app\/irsa/);
    await assertCopied('mirror/app/irsa', '1', image);
  });

  test('with no identity at all: one line naming what the SDK looked for, exit 2, nothing created', async () => {
    await pushImage(source, 'app/none', '1', 'none');
    const run = await runCli(copyArgs('app/none:1', 'mirror/app/none:1', '--registry-config', await sourceConfig()), awsEnv(moto, home));
    assert.equal(run.code, 2, run.stderr);
    const lines = run.stderr.trim().split('\n').filter((l) => l.startsWith('image-clone:'));
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /no AWS identity for ecr:(CreateRepository|GetAuthorizationToken): the SDK's default chain found none/);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    assert.ok(!(await repositoryNames(ecrApi)).includes('mirror/app/none'));
  });
});

describe('ECR refusing creation (moto with its IAM checks on)', () => {
  let strict: Moto;
  let keys: { id: string; secret: string };

  before(async () => {
    // moto checks IAM only after its first N requests: these three make a user whose policy allows
    // pulling a token and describing repositories, but not ecr:CreateRepository. moto reads the
    // service from the Authorization header's scope, and checks no signature within the N.
    strict = await startMoto({ INITIAL_NO_AUTH_ACTION_COUNT: '3' });
    const iam = async (params: Record<string, string>) => {
      const response = await fetch(`${strict.endpoint}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'AWS4-HMAC-SHA256 Credential=AKIASETUP/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0' },
        body: new URLSearchParams({ Version: '2010-05-08', ...params }),
      });
      const text = await response.text();
      assert.equal(response.status, 200, text);
      return text;
    };
    await iam({ Action: 'CreateUser', UserName: 'pusher' });
    const key = await iam({ Action: 'CreateAccessKey', UserName: 'pusher' });
    await iam({ Action: 'PutUserPolicy', UserName: 'pusher', PolicyName: 'pull-only', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['ecr:GetAuthorizationToken', 'ecr:DescribeRepositories'], Resource: '*' }] }) });
    keys = { id: /<AccessKeyId>([^<]+)</.exec(key)![1]!, secret: /<SecretAccessKey>([^<]+)</.exec(key)![1]! };
  });

  after(async () => {
    await strict?.stop();
  });

  test('AccessDenied on ecr:CreateRepository is one line naming the action and the repository, exit 2, nothing pushed', async () => {
    await pushImage(source, 'app/denied', '1', 'denied');
    const env = awsEnv(strict, home, { AWS_ACCESS_KEY_ID: keys.id, AWS_SECRET_ACCESS_KEY: keys.secret });
    const run = await runCli(copyArgs('app/denied:1', 'mirror/app/denied:1', '--registry-config', await sourceConfig()), env);
    assert.equal(run.code, 2, run.stderr);
    const lines = run.stderr.trim().split('\n').filter((l) => l.startsWith('image-clone:'));
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /AWS refused ecr:CreateRepository on mirror\/app\/denied/);
    assert.doesNotMatch(run.stderr, /\n\s+at |auth-token/);
    const manifest = await fetch(`http://${ecr.host}/v2/mirror/app/denied/manifests/1`, { headers: { authorization: basic(ecr) } });
    await manifest.arrayBuffer();
    assert.equal(manifest.status, 404, 'nothing was pushed');
  });

  test('with --no-create-repositories the same identity, allowed only a token, pushes (its signed requests pass IAM; the stand-in accepts any repository)', async () => {
    const image = await pushImage(source, 'app/allowed', '1', 'allowed');
    const env = awsEnv(strict, home, { AWS_ACCESS_KEY_ID: keys.id, AWS_SECRET_ACCESS_KEY: keys.secret });
    const run = await runCli(copyArgs('app/allowed:1', 'mirror/app/allowed:1', '--registry-config', await sourceConfig(), '--no-create-repositories'), env);
    assert.equal(run.code, 0, run.stderr);
    await assertCopied('mirror/app/allowed', '1', image);
  });
});
