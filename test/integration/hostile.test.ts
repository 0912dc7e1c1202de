// Hostile input: lying registries, broken references in workloads, bad flags and files. Each gives
// one clear line, a documented exit code and no stack trace; the other items continue.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HarnessEnv } from '../harness/harness.ts';
import { deployment, harnessFixtures, type Namespaces } from './fixtures.ts';
import { startHostileRegistry, type HostileRegistry } from './hostile-registry.ts';
import { insecureFlags, runCli, seedImage, uniqueRepo, verifyCopy, type CliRun, type KubeClients } from './helpers.ts';

let env: HarnessEnv;
let hostile: HostileRegistry;
let garbageTokens: HostileRegistry;
let registryConfig: string;
let dir: string;
let kube: KubeClients;
let namespaces: Namespaces;
let harnessInsecure: string[];

const noStack = (run: CliRun) => assert.doesNotMatch(run.stderr, /\n\s+at \S+ \(|\n\s+at file:/, `no stack trace:\n${run.stderr}`);
const insecure = () => [...harnessInsecure, ...insecureFlags([hostile, garbageTokens])];

before(async () => {
  ({ env, kube, namespaces, registryConfig, insecure: harnessInsecure } = await harnessFixtures());
  hostile = await startHostileRegistry();
  garbageTokens = await startHostileRegistry({ tokenGarbage: true });
  dir = await mkdtemp(join(tmpdir(), 'image-clone-hostile-'));
});

after(async () => {
  await hostile.close();
  await garbageTokens.close();
  await namespaces?.deleteAll();
});

describe('lying registries', () => {
  test('each bad image fails alone with one clear line; the good one is copied', async () => {
    const good = uniqueRepo('good');
    await seedImage(env.registries.source, `${good}:1`, { layers: 1, layerSize: 4096, seed: 70 });
    const dst = env.registries.backup.host;
    const cases: Array<[string, RegExp]> = [
      [`${hostile.host}/oversize:1`, /manifest of 9437184 bytes is larger than the 8388608-byte limit/],
      [`${hostile.host}/mismatch:1`, /the registry sent a manifest whose digest is sha256:[a-f0-9]{64}/],
      [`${hostile.host}/selfloop:1`, /refers to itself|the registry sent a manifest whose digest is/],
      [`${hostile.host}/weird:1`, /unknown manifest media type "application\/vnd\.example\.weird\+json"/],
      [`${hostile.host}/ancient:1`, /is a Docker schema 1 image, which registries no longer accept/],
      [`${hostile.host}/nothing-here:1`, /no such image in the source registry/],
      [`${garbageTokens.host}/anything:1`, /the token server answered without a token/],
    ];
    const pairs = join(dir, 'pairs.txt');
    await writeFile(pairs, [...cases.map(([src], i) => `${src} ${dst}/hostile/case-${i}:1`), `${env.registries.source.host}/${good}:1 ${dst}/hostile/${good}:1`].join('\n'));
    const run = await runCli(['copy', '--from-file', pairs, '--registry-config', registryConfig, ...insecure(), '-o', 'json']);
    assert.equal(run.code, 2, 'a refused token is a credentials problem: exit 2');
    noStack(run);
    const report = JSON.parse(run.stdout);
    cases.forEach(([src, message], i) => {
      assert.equal(report.images[i].status, 'failed', src);
      assert.match(report.images[i].error, message, src);
    });
    assert.equal(report.images.at(-1).status, 'copied', 'the good image went through');
    assert.equal(run.stderr.trim().split('\n').length, cases.length, 'one line per failure');
    const check = await verifyCopy({ registry: env.registries.source, ref: `${good}:1` }, { registry: env.registries.backup, ref: `hostile/${good}:1` });
    assert.equal(check.identical, true);
    for (let i = 0; i < cases.length; i++) {
      const tag = await fetch(`http://${env.registries.source.host}/v2/hostile/case-${i}/manifests/1`);
      assert.notEqual(tag.status, 200, 'nothing bad was tagged');
    }
  });
});

describe('hostile workloads', () => {
  test('invalid references and a lying registry fail their own workloads only; the rest are patched', async (t) => {
    const ns = await namespaces.create('hostile', t);
    const good = uniqueRepo('fine');
    await seedImage(env.registries.source, `${good}:1`, { layers: 1, layerSize: 4096, seed: 71 });
    const images: Record<string, string> = {
      upper: `${env.registries.source.host}/Upper/Case:1`,
      baddigest: `${env.registries.source.host}/app@sha256:zzzz`,
      toolong: `${env.registries.source.host}/${'a'.repeat(300)}:1`,
      liar: `${hostile.host}/mismatch:1`,
      fine: `${env.registries.source.host}/${good}:1`,
    };
    for (const [name, image] of Object.entries(images)) {
      await kube.apps.createNamespacedDeployment({ namespace: ns, body: deployment(name, image, { replicas: 0 }) });
    }
    const run = await runCli(['sync', '--backup', `${env.registries.backup.host}/hostile`, '--kubeconfig', env.kubeconfig, '--registry-config', registryConfig,
      ...insecure(), '-n', ns, '--own-namespace', 'none', '-o', 'json']);
    assert.equal(run.code, 1, run.stderr);
    noStack(run);
    const report = JSON.parse(run.stdout);
    const result = (name: string) => report.workloads.find((w: any) => w.name === name);
    assert.match(result('upper').reason, /repository path must be lower-case/);
    assert.match(result('baddigest').reason, /digest/);
    assert.match(result('toolong').reason, /255/);
    assert.equal(result('liar').result, 'failed');
    assert.match(result('liar').resultReason, /copy failed: .*digest/);
    assert.equal(result('fine').result, 'patched');
    for (const name of ['upper', 'baddigest', 'toolong', 'liar']) {
      const d = await kube.apps.readNamespacedDeployment({ name, namespace: ns });
      assert.equal(d.spec!.template.spec!.containers[0]!.image, images[name], `${name} untouched`);
    }
  });
});

describe('bad flags and files', () => {
  const expectOneLine = async (args: string[], code: number, message: RegExp, extraEnv: Record<string, string> = {}) => {
    const run = await runCli(args, extraEnv);
    assert.equal(run.code, code, `${args.join(' ')}\n${run.stderr}`);
    assert.match(run.stderr.split('\n')[0]!, message);
    assert.ok(run.stderr.trim().split('\n').length <= 2, `at most the error and a usage hint:\n${run.stderr}`);
    noStack(run);
  };

  test('flags', async () => {
    await expectOneLine(['sync', '--backup', 'r.example/m', '--bogus'], 2, /^image-clone: unknown option --bogus$/);
    await expectOneLine(['copy', 'a', 'b', '--concurrency', 'lots'], 2, /^image-clone: --concurrency must be a number$/);
    await expectOneLine(['copy', 'a', 'b'], 2, /^image-clone: IMAGE_CLONE_CONCURRENCY must be a number, not "lots"$/, { IMAGE_CLONE_CONCURRENCY: 'lots' });
    await expectOneLine(['copy', 'a', 'b', '--concurrency', '0'], 2, /^image-clone: --concurrency must be a whole number from 1 to 256, not 0$/);
    await expectOneLine(['sync', '--backup', 'r.example/m', '--output', 'xml'], 2, /^image-clone: --output must be one of "table", "json", "yaml", "kustomize", not "xml"$/);
    await expectOneLine(['sync', '--backup', 'https://r.example/m'], 2, /^image-clone: invalid backup location/);
    await expectOneLine(['sync', '--backup', 'r.example/m', '--exit-code'], 2, /^image-clone: --exit-code goes with --dry-run$/);
    await expectOneLine(['sync', '--backup', 'r.example/m', '--backup', 'r.example/n'], 2, /^image-clone: --backup was given 2 times; give it once$/);
  });

  test('unreadable, malformed and missing kubeconfigs', async () => {
    const malformed = join(dir, 'malformed.kubeconfig');
    await writeFile(malformed, 'apiVersion: v1\nclusters: [[[\n');
    const aDirectory = join(dir, 'a-directory');
    await mkdir(aDirectory, { recursive: true });
    const base = ['sync', '--dry-run', '--backup', `${env.registries.backup.host}/m`];
    await expectOneLine([...base, '--kubeconfig', malformed], 2, /^image-clone: cannot load kubeconfig .*malformed\.kubeconfig: /);
    await expectOneLine([...base, '--kubeconfig', aDirectory], 2, /^image-clone: cannot load kubeconfig .*a-directory: /);
    await expectOneLine([...base, '--kubeconfig', env.kubeconfig, '--context', 'nope'], 2, /^image-clone: context "nope" is not in .* \(it has: harness\)$/);
    await expectOneLine(base, 2, /^image-clone: no kubeconfig found/, { KUBECONFIG: '', HOME: dir });
  });

  test('a malformed docker config names the file, never its contents', async () => {
    const bad = join(dir, 'config.json');
    await writeFile(bad, '{"auths": {"r.example": {"auth": "c2VjcmV0LXBhc3N3b3Jk"}}, oops}');
    const run = await runCli(['copy', 'r.example/a:1', 'r.example/b:1', '--registry-config', bad]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, new RegExp(`^image-clone: .*${bad.replace(/[.]/g, '\\.')}`));
    assert.doesNotMatch(run.stderr, /c2VjcmV0|secret-password/);
    noStack(run);
  });
});
