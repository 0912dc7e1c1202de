// Proves the harness's registries are real and strict: token auth refuses anonymous pushes, a
// token obtained through the challenge works, and the independent checking tool tells a correct
// copy from a wrong one. Our own registry client is not used here.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { request } from 'undici';
import { parseChallenges } from '../../src/oci/transport/challenge.ts';
import { harnessEnv, type HarnessEnv } from '../harness/harness.ts';
import { seedImage, uniqueRepo, verifyCopy } from './helpers.ts';

let env: HarnessEnv;

before(async () => {
  env = await harnessEnv();
});

describe('harness registries', () => {
  test('backup refuses an anonymous push and accepts one with a token from its challenge', async () => {
    const backup = env.registries.backup;
    const repo = uniqueRepo('auth-check');
    const anonymous = await request(`http://${backup.host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    await anonymous.body.dump();
    assert.equal(anonymous.statusCode, 401);
    const [challenge] = parseChallenges(anonymous.headers['www-authenticate']);
    assert.equal(challenge?.scheme, 'bearer');
    assert.equal(challenge?.params.realm, backup.realm);

    const tokenUrl = new URL(challenge!.params.realm!);
    tokenUrl.searchParams.set('service', challenge!.params.service!);
    tokenUrl.searchParams.set('scope', `repository:${repo}:pull,push`);
    const basic = Buffer.from(`${backup.username}:${backup.password}`).toString('base64');
    const tokenResponse = await request(tokenUrl, { headers: { authorization: `Basic ${basic}` } });
    const { token } = (await tokenResponse.body.json()) as { token: string };
    assert.equal(tokenResponse.statusCode, 200);

    const authorized = await request(`http://${backup.host}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    await authorized.body.dump();
    assert.equal(authorized.statusCode, 202, 'an upload session is opened');

    const anonymousToken = await request(tokenUrl);
    const { token: weak } = (await anonymousToken.body.json()) as { token: string };
    const refused = await request(`http://${backup.host}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${weak}` } });
    await refused.body.dump();
    assert.equal(refused.statusCode, 401, 'an anonymous token carries no push right');
  });

  test('backup-basic wants its htpasswd credentials', async () => {
    const registry = env.registries['backup-basic'];
    const anonymous = await request(`http://${registry.host}/v2/`);
    await anonymous.body.dump();
    assert.equal(anonymous.statusCode, 401);
    const basic = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
    const authorized = await request(`http://${registry.host}/v2/`, { headers: { authorization: `Basic ${basic}` } });
    await authorized.body.dump();
    assert.equal(authorized.statusCode, 200);
  });

  test('the checking tool reports identical digests for a correct copy and differences for a wrong one', async () => {
    const repo = uniqueRepo('check');
    const seeded = await seedImage(env.registries.source, `${repo}:v1`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 64 * 1024, seed: 7 });
    assert.equal(seeded.children.length, 2);

    // The same seed pushed to backup is a byte-identical copy.
    const copy = await seedImage(env.registries.backup, `${repo}:v1`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 64 * 1024, seed: 7 });
    assert.equal(copy.digest, seeded.digest);
    const same = await verifyCopy({ registry: env.registries.source, ref: `${repo}:v1` }, { registry: env.registries.backup, ref: `${repo}:v1` });
    assert.deepEqual([same.identical, same.manifests], [true, 3]);

    // Another seed under the same tag is not.
    await seedImage(env.registries.backup, `${repo}:v2`, { platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 64 * 1024, seed: 8 });
    const different = await verifyCopy({ registry: env.registries.source, ref: `${repo}:v1` }, { registry: env.registries.backup, ref: `${repo}:v2` });
    assert.equal(different.identical, false);
    assert.ok(different.differences?.length, 'the differences are named');
  });
});
