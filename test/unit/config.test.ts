// Configuration precedence: flags > IMAGE_CLONE_* > --config FILE > defaults, for every option kind
// (string, boolean, list, number), through the real parser and settings code.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { CommandModule } from 'yargs';
import { syncSettings } from '../../src/cli/settings.ts';
import { envName, resolveOption, type OptionSource } from '../../src/cli/config-layers.ts';
import type { CliContext } from '../../src/cli/context.ts';
import { parser } from '../../src/cli/main.ts';
import { registrySettings } from '../../src/cli/registry-wiring.ts';
import { UsageError } from '../../src/errors.ts';

const context: CliContext = {
  version: '0.0.0', env: {}, stdout: process.stdout, stderr: process.stderr, interactive: false, signal: new AbortController().signal, exitCode: 0,
};

async function argvOf(args: string[]): Promise<Record<string, unknown>> {
  let given: Record<string, unknown> | undefined;
  await parser(args, context, (command: CommandModule) => ({ ...command, handler: (argv) => void (given = argv as Record<string, unknown>) })).parseAsync();
  return given!;
}

async function configFile(yaml: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'image-clone-config-')), 'config.yaml');
  await writeFile(path, yaml);
  return path;
}

/** The sync settings for a command line, an environment and (when given) a config file's text. */
async function settingsOf(flags: string[], env: Record<string, string>, file?: string) {
  const args = ['sync', ...flags, ...(file === undefined ? [] : ['--config', await configFile(file)])];
  const argv = await argvOf(args);
  const { settings, source } = await syncSettings(argv, env);
  return { settings, registry: registrySettings(source) };
}

const base = ['--backup', 'flag.example.com/m'];

describe('precedence through the command line: flags > IMAGE_CLONE_* > --config > defaults', () => {
  // One row per option kind: how to read it back, its value at each layer, and its default.
  const kinds = [
    {
      kind: 'string', option: 'naming', read: (s: Awaited<ReturnType<typeof settingsOf>>) => s.settings.plan.naming,
      flag: ['--naming', 'flat'], flagValue: 'flat', env: 'nested', envValue: 'nested', file: 'naming: flat', fileValue: 'flat', defaultValue: 'nested',
      // the env value must differ from the file's to show which won
      envOverFile: { env: 'flat', file: 'naming: nested', expect: 'flat' },
    },
    {
      kind: 'boolean', option: 'pin', read: (s: Awaited<ReturnType<typeof settingsOf>>) => s.settings.plan.pin,
      flag: ['--no-pin'], flagValue: false, env: 'true', envValue: true, file: 'pin: false', fileValue: false, defaultValue: true,
      envOverFile: { env: 'true', file: 'pin: false', expect: true },
    },
    {
      kind: 'list', option: 'exclude-namespace', read: (s: Awaited<ReturnType<typeof settingsOf>>) => s.settings.selection.excludeNamespaces,
      flag: ['--exclude-namespace', 'from-flag', '--exclude-namespace', 'second'], flagValue: ['from-flag', 'second'], env: 'env-a,env-b', envValue: ['env-a', 'env-b'],
      file: 'exclude-namespace: [file-a, file-b]', fileValue: ['file-a', 'file-b'], defaultValue: undefined,
      envOverFile: { env: 'env-a', file: 'exclude-namespace: [file-a]', expect: ['env-a'] },
    },
    {
      kind: 'number', option: 'concurrency', read: (s: Awaited<ReturnType<typeof settingsOf>>) => s.registry.concurrency,
      flag: ['--concurrency', '3'], flagValue: 3, env: '5', envValue: 5, file: 'concurrency: 7', fileValue: 7, defaultValue: 8,
      envOverFile: { env: '5', file: 'concurrency: 7', expect: 5 },
    },
  ] as const;

  for (const k of kinds) {
    const env = { [envName(k.option)]: k.env };
    test(`${k.kind} (--${k.option}): the default when nothing sets it`, async () => {
      assert.deepEqual(k.read(await settingsOf(base, {})), k.defaultValue);
    });
    test(`${k.kind} (--${k.option}): the config file over the default`, async () => {
      assert.deepEqual(k.read(await settingsOf(base, {}, k.file)), k.fileValue);
    });
    test(`${k.kind} (--${k.option}): ${envName(k.option)} over the config file`, async () => {
      assert.deepEqual(k.read(await settingsOf(base, { [envName(k.option)]: k.envOverFile.env }, k.envOverFile.file)), k.envOverFile.expect);
    });
    test(`${k.kind} (--${k.option}): ${envName(k.option)} over the default`, async () => {
      assert.deepEqual(k.read(await settingsOf(base, env)), k.envValue);
    });
    test(`${k.kind} (--${k.option}): the flag over ${envName(k.option)} and the config file`, async () => {
      assert.deepEqual(k.read(await settingsOf([...base, ...k.flag], env, k.file)), k.flagValue);
    });
  }

  test('--no-x over an environment true, for every boolean option of sync', async () => {
    const booleans: Array<[string, (s: Awaited<ReturnType<typeof settingsOf>>) => boolean]> = [
      ['pin', (s) => s.settings.plan.pin], ['signatures', (s) => s.settings.signatures], ['lock', (s) => s.settings.lock],
      ['patch-managed', (s) => s.settings.plan.patchManaged], ['dry-run', (s) => s.settings.dryRun],
    ];
    for (const [option, read] of booleans) {
      const env = { [envName(option)]: 'true' };
      assert.equal(read(await settingsOf(base, env)), true, `${envName(option)}=true alone sets it`);
      assert.equal(read(await settingsOf([...base, `--no-${option}`], env, `${option}: true`)), false, `--no-${option} wins over ${envName(option)}=true and the file`);
    }
  });

  test('--x over an environment false; an empty variable counts as unset', async () => {
    assert.equal((await settingsOf([...base, '--patch-managed'], { IMAGE_CLONE_PATCH_MANAGED: 'false' })).settings.plan.patchManaged, true);
    assert.equal((await settingsOf(base, { IMAGE_CLONE_PIN: '' }, 'pin: false')).settings.plan.pin, false);
  });

  test('--backup itself: flag > IMAGE_CLONE_BACKUP > file; IMAGE_CLONE_CONFIG names the file', async () => {
    const file = await configFile('backup: file.example.com/m\nnaming: flat\n');
    const fromFile = await syncSettings(await argvOf(['sync']), { IMAGE_CLONE_CONFIG: file });
    assert.deepEqual([fromFile.settings.plan.backup.registry, fromFile.settings.plan.naming], ['file.example.com', 'flat']);
    const fromEnv = await syncSettings(await argvOf(['sync']), { IMAGE_CLONE_CONFIG: file, IMAGE_CLONE_BACKUP: 'env.example.com' });
    assert.equal(fromEnv.settings.plan.backup.registry, 'env.example.com');
    const fromFlag = await syncSettings(await argvOf(['sync', '--backup', 'flag.example.com']), { IMAGE_CLONE_CONFIG: file, IMAGE_CLONE_BACKUP: 'env.example.com' });
    assert.equal(fromFlag.settings.plan.backup.registry, 'flag.example.com');
  });

  test('a layer holding a bad value is named in the error, even when it is the environment', async () => {
    await assert.rejects(settingsOf(base, { IMAGE_CLONE_CONCURRENCY: 'lots' }), (err: Error) => err instanceof UsageError && /IMAGE_CLONE_CONCURRENCY must be a number, not "lots"/.test(err.message));
    await assert.rejects(settingsOf(base, { IMAGE_CLONE_PIN: 'maybe' }), (err: Error) => err instanceof UsageError && /IMAGE_CLONE_PIN must be true or false/.test(err.message));
    await assert.rejects(settingsOf(base, {}, 'concurrency: many'), (err: Error) => err instanceof UsageError && /concurrency in the config file must be a number/.test(err.message));
  });
});

describe('resolveOption, layer by layer', () => {
  const layers = (flag: unknown, env: string | undefined, file: unknown): OptionSource => ({
    flags: flag === undefined ? {} : { x: flag }, env: env === undefined ? {} : { IMAGE_CLONE_X: env }, ...(file === undefined ? {} : { file: { x: file } }),
  });
  test('each kind takes the highest layer that is set', () => {
    assert.equal(resolveOption(layers('f', 'e', 'c'), 'x', 'string', 'd'), 'f');
    assert.equal(resolveOption(layers(undefined, 'e', 'c'), 'x', 'string', 'd'), 'e');
    assert.equal(resolveOption(layers(undefined, undefined, 'c'), 'x', 'string', 'd'), 'c');
    assert.equal(resolveOption(layers(undefined, undefined, undefined), 'x', 'string', 'd'), 'd');
    assert.equal(resolveOption(layers(false, 'true', true), 'x', 'boolean', true), false);
    assert.equal(resolveOption(layers(undefined, 'no', true), 'x', 'boolean', true), false);
    assert.equal(resolveOption(layers(undefined, undefined, false), 'x', 'boolean', true), false);
    assert.equal(resolveOption(layers(2, '3', 4), 'x', 'number', 5), 2);
    assert.equal(resolveOption(layers(undefined, '3', 4), 'x', 'number', 5), 3);
    assert.equal(resolveOption(layers(undefined, undefined, 4), 'x', 'number', 5), 4);
    assert.deepEqual(resolveOption(layers(['a', 'b,c'], 'd', ['e']), 'x', 'list', []), ['a', 'b', 'c']);
    assert.deepEqual(resolveOption(layers(undefined, 'd, e', ['f']), 'x', 'list', []), ['d', 'e']);
    assert.deepEqual(resolveOption(layers(undefined, undefined, ['f']), 'x', 'list', []), ['f']);
    // An empty array is what yargs gives for a list flag not given: the next layer decides.
    assert.deepEqual(resolveOption(layers([], 'd', undefined), 'x', 'list', []), ['d']);
  });
  test('a one-value option given twice is refused, not silently the last', () => {
    assert.throws(() => resolveOption(layers(['a', 'b'], undefined, undefined), 'x', 'string'), /--x was given 2 times; give it once/);
  });
});

describe('--registry-provider', () => {
  test('flag, IMAGE_CLONE_REGISTRY_PROVIDER and the config file each give HOST=PROVIDER pairs', async () => {
    const flag = await settingsOf([...base, '--registry-provider', 'LOCALHOST:5000=aws', '--registry-provider', 'mirror.example.com=generic'], {});
    assert.deepEqual([...flag.registry.providers], [['localhost:5000', 'aws'], ['mirror.example.com', 'generic']]);
    const env = await settingsOf(base, { IMAGE_CLONE_REGISTRY_PROVIDER: 'a.example=aws,b.example=gcp' });
    assert.deepEqual([...env.registry.providers], [['a.example', 'aws'], ['b.example', 'gcp']]);
    const file = await settingsOf(base, {}, 'registry-provider: [c.example=azure]');
    assert.deepEqual([...file.registry.providers], [['c.example', 'azure']]);
  });

  test('a value that is not HOST=aws|gcp|azure|generic, or a host named twice differently, is one usage line', async () => {
    for (const [value, message] of [['localhost:5000', /must be HOST=aws\|gcp\|azure\|generic/], ['localhost:5000=amazon', /not "localhost:5000=amazon"/], ['a=aws,a=gcp', /names a twice, as aws and gcp/]] as const) {
      await assert.rejects(settingsOf(base, { IMAGE_CLONE_REGISTRY_PROVIDER: value }), (err: unknown) => err instanceof UsageError && message.test(err.message));
    }
  });
});

describe('ECR repository settings', () => {
  test('defaults: create, MUTABLE, no scan on push, AES256, no tags; a KMS key implies KMS', async () => {
    assert.deepEqual((await settingsOf(base, {})).registry.repositories, { create: true, ecr: { tagMutability: 'MUTABLE', scanOnPush: false, encryption: 'AES256', kmsKey: undefined, tags: {} }, policyFiles: { lifecycle: undefined, repository: undefined } });
    const set = await settingsOf([...base, '--no-create-repositories', '--ecr-tag-mutability', 'IMMUTABLE', '--ecr-scan-on-push', '--ecr-kms-key', 'alias/backup', '--ecr-repository-tag', 'team=platform', '--ecr-repository-tag', 'note=a=b',
      '--ecr-lifecycle-policy', 'lifecycle.json', '--ecr-repository-policy', 'policy.json'], {});
    assert.deepEqual(set.registry.repositories, {
      create: false, ecr: { tagMutability: 'IMMUTABLE', scanOnPush: true, encryption: 'KMS', kmsKey: 'alias/backup', tags: { team: 'platform', note: 'a=b' } },
      policyFiles: { lifecycle: 'lifecycle.json', repository: 'policy.json' },
    });
    const env = await settingsOf(base, { IMAGE_CLONE_ECR_TAG_MUTABILITY: 'immutable', IMAGE_CLONE_CREATE_REPOSITORIES: 'false' });
    assert.equal(env.registry.repositories.ecr.tagMutability, 'IMMUTABLE');
    assert.equal(env.registry.repositories.create, false);
  });

  test('a tag without =, a KMS key with AES256, or an unknown mutability is one usage line', async () => {
    for (const [env, message] of [
      [{ IMAGE_CLONE_ECR_REPOSITORY_TAG: 'team' }, /--ecr-repository-tag must be KEY=VALUE, not "team"/],
      [{ IMAGE_CLONE_ECR_KMS_KEY: 'alias/x', IMAGE_CLONE_ECR_ENCRYPTION: 'AES256' }, /--ecr-kms-key goes with --ecr-encryption KMS/],
      [{ IMAGE_CLONE_ECR_TAG_MUTABILITY: 'sometimes' }, /--ecr-tag-mutability must be MUTABLE or IMMUTABLE/],
    ] as const) {
      await assert.rejects(settingsOf(base, env), (err: unknown) => err instanceof UsageError && message.test(err.message));
    }
  });
});

describe('--workload-kind through every layer', () => {
  const userKinds = async (flags: string[], env: Record<string, string>, file?: string) =>
    (await settingsOf([...base, ...flags], env, file)).settings.selection.customKinds.filter((k) => k.group === 'example.com').map((k) => `${k.kind}=${k.path.join('.')}`);

  test('flag (repeated) > IMAGE_CLONE_WORKLOAD_KIND (comma-separated) > the config file (a list); the known kinds always', async () => {
    const file = 'workload-kind: [example.com/FromFile=spec.template]';
    const env = { IMAGE_CLONE_WORKLOAD_KIND: 'example.com/A=spec.a,example.com/B=spec.b' };
    assert.deepEqual(await userKinds([], {}, file), ['FromFile=spec.template']);
    assert.deepEqual(await userKinds([], env, file), ['A=spec.a', 'B=spec.b']);
    assert.deepEqual(await userKinds(['--workload-kind', 'example.com/C=spec.c', '--workload-kind', 'example.com/D=spec.d.e'], env, file), ['C=spec.c', 'D=spec.d.e']);
    const { settings } = await settingsOf(base, {});
    assert.ok(settings.selection.customKinds.some((k) => k.group === 'argoproj.io' && k.kind === 'Rollout'), 'the known kinds without any option');
    assert.ok(settings.selection.kinds.includes('Rollout.argoproj.io'), 'and selected by default');
  });

  test('--kinds names custom kinds as Kind.group, GROUP/KIND or the kind alone; a bad --workload-kind is a usage error', async () => {
    const { settings } = await settingsOf([...base, '--kinds', 'Rollout,apps.kruise.io/CloneSet,WebApp.example.com', '--workload-kind', 'example.com/WebApp=spec.template'], {});
    assert.deepEqual(settings.selection.kinds, ['Rollout.argoproj.io', 'CloneSet.apps.kruise.io', 'WebApp.example.com']);
    await assert.rejects(settingsOf(base, { IMAGE_CLONE_WORKLOAD_KIND: 'nonsense' }), (err: Error) => err instanceof UsageError && /--workload-kind nonsense: expected GROUP\/KIND=PATH/.test(err.message));
  });
});
