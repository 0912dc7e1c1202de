// The command line's shape, through the real parser and option tables (the handlers are swapped for
// one that records what it was given): every repeatable option takes exactly one value per
// occurrence, wherever it stands among the positionals and other options.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CommandModule } from 'yargs';
import { copyOptions, restoreOptions, syncOptions } from '../../src/cli/options.ts';
import { syncSettings } from '../../src/cli/settings.ts';
import type { CliContext } from '../../src/cli/context.ts';
import { parser } from '../../src/cli/main.ts';
import { UsageError } from '../../src/errors.ts';

const context: CliContext = {
  version: '0.0.0', env: {}, stdout: process.stdout, stderr: process.stderr, interactive: false, signal: new AbortController().signal, exitCode: 0,
};

/** What the command's handler would have been given, or the error the parser raised. */
async function parse(args: string[]): Promise<Record<string, unknown>> {
  let given: Record<string, unknown> | undefined;
  await parser(args, context, (command: CommandModule) => ({ ...command, handler: (argv) => void (given = argv as Record<string, unknown>) })).parseAsync();
  assert.ok(given, `a command ran for ${args.join(' ')}`);
  return given;
}

const repeatable = (options: object) => Object.entries(options).filter(([, o]) => (o as { array?: boolean }).array).map(([name]) => name).sort();

type Check = (argv: Record<string, unknown>) => void;
const commands: Record<string, { options: object; base: [string[], string[]]; check: Check }> = {
  sync: { options: syncOptions, base: [['--backup', 'backup.example.com/mirror'], ['--dry-run']], check: (a: Record<string, unknown>) => assert.equal(a.backup, 'backup.example.com/mirror') },
  restore: { options: restoreOptions, base: [['--dry-run'], ['-o', 'json']], check: (a: Record<string, unknown>) => assert.equal(a.output, 'json') },
  copy: { options: copyOptions, base: [['docker.io/library/alpine:3'], ['localhost:5000/alpine:3']], check: (a: Record<string, unknown>) => {
    assert.equal(a.source, 'docker.io/library/alpine:3');
    assert.equal(a.target, 'localhost:5000/alpine:3');
  } },
};

const sampleValue: Record<string, string> = {
  namespace: 'shop', 'exclude-namespace': 'kube-public', kinds: 'deploy', 'include-image': 'docker.io/*', 'exclude-image': '*:latest',
  'insecure-registry': 'localhost:5000', platform: 'linux/amd64', 'registry-provider': 'localhost:5000=aws', 'ecr-repository-tag': 'team=platform',
  'workload-kind': 'example.com/WebApp=spec.template',
};

describe('repeatable options', () => {
  test('are exactly the ones this test knows a value for', () => {
    assert.deepEqual(repeatable(syncOptions), ['ecr-repository-tag', 'exclude-image', 'exclude-namespace', 'include-image', 'insecure-registry', 'kinds', 'namespace', 'registry-provider', 'workload-kind']);
    assert.deepEqual(repeatable(restoreOptions), ['exclude-namespace', 'kinds', 'namespace', 'workload-kind']);
    assert.deepEqual(repeatable(copyOptions), ['ecr-repository-tag', 'insecure-registry', 'platform', 'registry-provider']);
  });

  for (const [command, { options, base, check }] of Object.entries(commands)) {
    for (const option of repeatable(options)) {
      const value = sampleValue[option]!;
      // first, between the two base words (the positionals for copy), and last; --x v and --x=v.
      const placements: Array<[string, string[][]]> = [
        ['first', [[`--${option}`, value], ...base]],
        ['between', [base[0], [`--${option}`, value], base[1]]],
        ['last', [...base, [`--${option}`, value]]],
        ['first, as --x=v', [[`--${option}=${value}`], ...base]],
      ];
      for (const [where, words] of placements) {
        test(`${command} --${option} placed ${where} takes one value`, async () => {
          const argv = await parse([command, ...words.flat()]);
          assert.deepEqual(argv[option], [value]);
          assert.deepEqual(argv._, [command]);
          check(argv);
        });
      }
      test(`${command} --${option} given twice, around the other words, collects both`, async () => {
        const argv = await parse([command, `--${option}`, value, ...base[0], `--${option}`, `${value}2`, ...base[1]]);
        assert.deepEqual(argv[option], [value, `${value}2`]);
        check(argv);
      });
      test(`${command} --${option} with its value missing is a usage error naming it`, async () => {
        await assert.rejects(parse([command, ...base.flat(), `--${option}`]), (err: Error) => err instanceof UsageError && err.message === `--${option} needs a value`);
      });
    }
  }

  test('the docs/sync.md example: copy --insecure-registry HOST SRC DST', async () => {
    const argv = await parse(['copy', '--insecure-registry', 'localhost:5000', 'alpine:3', 'localhost:5000/alpine:3']);
    assert.deepEqual([argv['insecure-registry'], argv.source, argv.target], [['localhost:5000'], 'alpine:3', 'localhost:5000/alpine:3']);
  });

  test('-n takes one namespace; a second word after it is an unexpected argument', async () => {
    assert.deepEqual((await parse(['sync', '-n', 'shop', '--backup', 'b.example.com'])).namespace, ['shop']);
    await assert.rejects(parse(['sync', '-n', 'shop', 'web', '--backup', 'b.example.com']), (err: Error) => err instanceof UsageError && err.message === "unknown argument 'web'");
  });

  test('comma lists and repeats add up in the settings', async () => {
    const argv = await parse(['sync', '--backup', 'b.example.com', '-n', 'a,b', '-n', 'c', '--kinds', 'deploy,sts', '--kinds', 'pod', '--exclude-image', 'x/*']);
    const { settings } = await syncSettings(argv, {});
    assert.deepEqual(settings.selection.namespaces, ['a', 'b', 'c']);
    assert.deepEqual(settings.selection.kinds, ['Deployment', 'StatefulSet', 'Pod']);
    assert.deepEqual(settings.plan.excludeImages, ['x/*']);
  });
});
