// Errors that name the real cause, as one line with the registry's own words and a documented exit
// code, and no retry line after it: a push the token server's ACL refuses, a token server that is
// down while the registry answers, a media type the registry refuses, a source that is down.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { HarnessEnv } from '../harness/harness.ts';
import { startFaultProxy } from './fault-proxy.ts';
import { harnessFixtures } from './fixtures.ts';
import { freePort, registryRead, runCli, seedImage, uniqueRepo, writeRegistryConfig } from './helpers.ts';

let env: HarnessEnv;
let registryConfig: string;
let insecureArgs: string[];

before(async () => {
  ({ env, registryConfig, insecure: insecureArgs } = await harnessFixtures({ registryConfig: ['backup', 'backup-basic', 'distribution2'] }));
});

/** stderr's lines: retries first, then exactly one error line, which ends the output. */
function errorLines(stderr: string): { retries: string[]; errors: string[]; last: string } {
  const lines = stderr.trim().split('\n').filter(Boolean);
  return { retries: lines.filter((l) => l.startsWith('retry: ')), errors: lines.filter((l) => !l.startsWith('retry: ')), last: lines.at(-1) ?? '' };
}

describe('errors that name the real cause', () => {
  for (const targetName of ['backup', 'distribution2']) {
    test(`${targetName}: a push the token server does not grant names the repository and the scope, not the password`, async () => {
      const target = env.registries[targetName]!;
      const repo = uniqueRepo('acl');
      await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 1024, seed: 90 });
      // `reader` has a valid password and may pull, not push (the issuer grants the intersection). The
      // scope is the registry's own words: distribution 2.8 names its actions in either order.
      const readerConfig = await writeRegistryConfig({ ...env, registries: { ...env.registries, [targetName]: { ...target, ...target.reader! } } }, [targetName]);
      const run = await runCli(['copy', `${env.registries.source.host}/${repo}:1`, `${target.host}/mirror/${repo}:1`, '--registry-config', readerConfig, ...insecureArgs]);
      assert.equal(run.code, 2, run.stderr);
      const { errors, last } = errorLines(run.stderr);
      assert.equal(errors.length, 1, run.stderr);
      // A retry of a request whose kept-alive connection the registry had closed may come first; none after.
      assert.equal(last, errors[0], 'the error line ends the output');
      assert.match(errors[0]!, new RegExp(`^image-clone: ${target.host}: the credentials are valid but may not push to mirror/${repo}: the token server did not grant the scope "repository:mirror/${repo}:(pull,push|push,pull)" \\(HTTP 401 insufficient_scope`));
      assert.doesNotMatch(run.stderr, new RegExp(target.reader!.password));
    });
  }

  test('a token server that is down is named, not the registry that answers', async () => {
    const repo = uniqueRepo('token-down');
    await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 1024, seed: 91 });
    const port = await freePort();
    // The real registry behind a proxy that only points its challenge at a token server that is down.
    const front = await startFaultProxy({
      upstream: env.registries.backup.host, rates: {},
      responseHeaders: (headers) => ({ ...headers, ...(headers['www-authenticate'] ? { 'www-authenticate': String(headers['www-authenticate']).replace(/realm="[^"]*"/, `realm="http://127.0.0.1:${port}/token"`) } : {}) }),
    });
    const config = await writeRegistryConfig({ ...env, registries: { ...env.registries, backup: { ...env.registries.backup, host: front.host } } }, ['backup']);
    const run = await runCli(['copy', `${env.registries.source.host}/${repo}:1`, `${front.host}/${repo}:1`, '--registry-config', config, ...insecureArgs, '--insecure-registry', front.host]);
    await front.close();
    assert.equal(run.code, 1, run.stderr);
    const { errors, retries, last } = errorLines(run.stderr);
    assert.equal(errors.length, 1, run.stderr);
    assert.match(last, new RegExp(`^image-clone: ${front.host}: cannot reach its token server http://127\\.0\\.0\\.1:${port}/token \\(connection refused\\); the registry itself answers$`));
    assert.ok(retries.length <= 4, `retried once per request, not once per layer: ${run.stderr}`);
  });

  test('a media type the registry refuses is named; nothing is tagged and the other images go on', async () => {
    // No registry available here refuses Docker media types (distribution, olareg and ggcr all take
    // them; zot, which does, is not on the Go module proxy), so a proxy in front of the real backup
    // answers a Docker manifest PUT the way an OCI-only registry does: 415.
    const docker = uniqueRepo('docker-type');
    const oci = uniqueRepo('oci-type');
    await seedImage(env.registries.source, `${docker}:1`, { layers: 1, layerSize: 1024, seed: 92, format: 'docker' });
    await seedImage(env.registries.source, `${oci}:1`, { layers: 1, layerSize: 1024, seed: 93, format: 'oci' });
    const front = await startFaultProxy({
      upstream: env.registries.backup.host, rates: {},
      intercept: (req, res) => {
        if (req.method !== 'PUT' || !/\/manifests\//.test(req.url ?? '') || !/^application\/vnd\.docker\./.test(req.headers['content-type'] ?? '')) return false;
        req.resume();
        res.writeHead(415, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: `media type ${req.headers['content-type']} is not supported` }] }));
        return true;
      },
    });
    const config = await writeRegistryConfig({ ...env, registries: { ...env.registries, backup: { ...env.registries.backup, host: front.host } } }, ['backup']);
    const list = join(await mkdtemp(join(tmpdir(), 'image-clone-pairs-')), 'pairs.txt');
    const src = env.registries.source.host;
    await writeFile(list, `${src}/${docker}:1 ${front.host}/${docker}:1\n${src}/${oci}:1 ${front.host}/${oci}:1\n`);
    const run = await runCli(['copy', '--from-file', list, '--registry-config', config, ...insecureArgs, '--insecure-registry', front.host, '-o', 'json']);
    await front.close();
    assert.equal(run.code, 1, run.stderr);
    const report = JSON.parse(run.stdout);
    assert.deepEqual(report.images.map((i: { status: string }) => i.status), ['failed', 'copied'], 'the OCI image went on');
    const { errors, last } = errorLines(run.stderr);
    assert.equal(errors.length, 1, run.stderr);
    assert.equal(last, errors[0], 'no retry line after the error line');
    assert.match(errors[0]!, new RegExp(`^image-clone: ${front.host}/${docker}: the registry does not accept the media type application/vnd\\.docker\\.distribution\\.manifest\\.v2\\+json \\(HTTP 415: MANIFEST_INVALID: media type .* is not supported\\); nothing was tagged\\. Some registries have a setting to accept Docker media types$`));
    assert.equal((await registryRead(env.registries.backup, 'HEAD', `/v2/${docker}/manifests/1`, 'application/vnd.docker.distribution.manifest.v2+json')).status, 404, 'no tag');
  });

  test('a source that is down is retried once per request, not once per layer of the retry stack', async () => {
    const port = await freePort();
    const started = Date.now();
    const run = await runCli(['copy', `127.0.0.1:${port}/app:1`, `${env.registries.backup.host}/dead/app:1`, '--registry-config', registryConfig, ...insecureArgs, '--insecure-registry', `127.0.0.1:${port}`]);
    assert.equal(run.code, 1, run.stderr);
    const { errors, retries, last } = errorLines(run.stderr);
    assert.equal(errors.length, 1, run.stderr);
    assert.match(last, new RegExp(`^image-clone: 127\\.0\\.0\\.1:${port}: cannot reach the registry: connection refused$`));
    assert.equal(retries.length, 4, `one round of retries (5 attempts): ${run.stderr}`);
    assert.ok(Date.now() - started < 10_000);
  });
});
