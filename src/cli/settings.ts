// Settings from flags > IMAGE_CLONE_* > --config file > defaults, resolved in one place for sync and
// restore (see config.ts for the precedence), and the workload selection they make.
import { readFile } from 'node:fs/promises';
import { UsageError } from '../errors.ts';
import { customKindSpecs, knownCustomKinds, parseWorkloadKind, type CustomKindSpec } from '../core/custom-kinds.ts';
import { qualifiedKind, workloadKinds, type WorkloadKind } from '../core/workloads.ts';
import type { PlanConfig } from '../core/plan.ts';
import type { SettingNames } from '../core/setting-names.ts';
import { resolveOption, type OptionSource } from './config-layers.ts';
import { syncOptions } from './options.ts';
import { load as loadYaml } from 'js-yaml';
import { InvalidSettingError } from '../core/errors.ts';
import { parseBackupLocation } from '../core/naming.ts';

export interface Selection {
  ownNamespace: string | undefined;
  namespaces: string[];
  excludeNamespaces: string[] | undefined;
  selector: string | undefined;
  kinds: WorkloadKind[];
  /** Custom kinds to look for: the known ones and --workload-kind. */
  customKinds: CustomKindSpec[];
  kubeconfig: string | undefined;
  context: string | undefined;
}

export function selectionSettings(source: OptionSource): Selection {
  const excluded = resolveOption(source, 'exclude-namespace', 'list', []);
  const customKinds = customKindSpecs(resolveOption(source, 'workload-kind', 'list', []).map((text) => fromOption('workload-kind', text, parseWorkloadKind)));
  return {
    ownNamespace: resolveOption(source, 'own-namespace', 'string'),
    namespaces: resolveOption(source, 'namespace', 'list', []),
    excludeNamespaces: excluded.length ? excluded : undefined,
    selector: resolveOption(source, 'selector', 'string'),
    kinds: parseKinds(resolveOption(source, 'kinds', 'list', []), customKinds),
    customKinds,
    kubeconfig: resolveOption(source, 'kubeconfig', 'string'),
    context: resolveOption(source, 'context', 'string'),
  };
}

/** Parses an option's value with a core parser; what the core refuses becomes a UsageError naming the option. */
function fromOption<T>(option: string, value: string, parse: (value: string) => T): T {
  try {
    return parse(value);
  } catch (err) {
    if (err instanceof InvalidSettingError) throw new UsageError(`--${option} ${value}: ${err.problem}`);
    throw err;
  }
}

/** The flags that plan reasons point to (core spells none). */
export const flagNames: SettingNames = {
  includeImages: '--include-image', excludeImages: '--exclude-image', patchManaged: '--patch-managed', kustomizeOutput: '-o kustomize', workloadKind: '--workload-kind',
};

type SyncOptionName = keyof typeof syncOptions;

const kindAliases: Record<string, WorkloadKind> = {
  deploy: 'Deployment', deployments: 'Deployment', sts: 'StatefulSet', statefulsets: 'StatefulSet', ds: 'DaemonSet', daemonsets: 'DaemonSet',
  cj: 'CronJob', cronjobs: 'CronJob', rc: 'ReplicationController', replicationcontrollers: 'ReplicationController', rs: 'ReplicaSet',
  replicasets: 'ReplicaSet', jobs: 'Job', po: 'Pod', pods: 'Pod',
};

/**
 * --kinds: built-in kinds by name or kubectl's short names; custom kinds as Kind.group, GROUP/KIND,
 * or their kind alone when no built-in kind has that name. All of them when none is named.
 */
export function parseKinds(values: string[], custom: CustomKindSpec[] = [...knownCustomKinds]): WorkloadKind[] {
  const customNames = custom.map((c) => qualifiedKind(c.group, c.kind));
  if (!values.length) return [...workloadKinds, ...customNames];
  return values.map((value) => {
    const lower = value.toLowerCase();
    const kind = workloadKinds.find((k) => k.toLowerCase() === lower) ?? kindAliases[lower]
      ?? custom.find((c) => [qualifiedKind(c.group, c.kind), `${c.group}/${c.kind}`, c.kind].some((n) => n.toLowerCase() === lower));
    if (!kind) throw new UsageError(`--kinds: unknown kind "${value}" (known: ${[...workloadKinds, ...customNames].join(', ')})`);
    return typeof kind === 'string' ? kind : qualifiedKind(kind.group, kind.kind);
  });
}

/** --config FILE: a YAML mapping of option names (as on the command line, without dashes) to values. */
async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --config ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = loadYaml(text);
  } catch (err) {
    throw new UsageError(`--config ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (parsed === undefined || parsed === null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`--config ${path} must be a mapping of option names to values`);
  const known = new Set<string>(Object.keys(syncOptions));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key) || key === 'config') throw new UsageError(`--config ${path}: unknown option "${key}"`);
  }
  return parsed as Record<string, unknown>;
}

export interface SyncSettings {
  plan: PlanConfig;
  dryRun: boolean;
  exitCode: boolean;
  selection: Selection;
  output: 'table' | 'json' | 'yaml' | 'kustomize';
  signatures: boolean;
  /** --verify: every manifest and blob of what runs is looked for in the backup. */
  verify: boolean;
  lock: boolean;
  pullSecret: string | undefined;
  logFormat: 'text' | 'json';
}

/** Every sync setting from flags > IMAGE_CLONE_* > --config > defaults, in one place. */
export async function syncSettings(argv: Record<string, unknown>, env: Record<string, string | undefined>): Promise<{ settings: SyncSettings; source: OptionSource }> {
  const configPath = resolveOption({ flags: argv, env }, 'config', 'string');
  const source: OptionSource = { flags: argv, env, ...(configPath ? { file: await readConfigFile(configPath) } : {}) };
  const option = (name: SyncOptionName) => name;
  const backupText = resolveOption(source, option('backup'), 'string');
  if (!backupText) throw new UsageError('--backup is required (or IMAGE_CLONE_BACKUP): the registry and path to copy images into, e.g. registry.example.com/mirror');
  const settings: SyncSettings = {
    plan: {
      backup: parseBackupLocation(backupText),
      naming: resolveOption(source, option('naming'), 'string', 'nested') as PlanConfig['naming'],
      pin: resolveOption(source, option('pin'), 'boolean', true),
      patchManaged: resolveOption(source, option('patch-managed'), 'boolean', false),
      includeImages: resolveOption(source, option('include-image'), 'list', []),
      excludeImages: resolveOption(source, option('exclude-image'), 'list', []),
      names: flagNames,
    },
    dryRun: resolveOption(source, option('dry-run'), 'boolean', false),
    exitCode: resolveOption(source, option('exit-code'), 'boolean', false),
    selection: selectionSettings(source),
    output: resolveOption(source, option('output'), 'string', 'table') as SyncSettings['output'],
    signatures: resolveOption(source, option('signatures'), 'boolean', true),
    verify: resolveOption(source, option('verify'), 'boolean', false),
    lock: resolveOption(source, option('lock'), 'boolean', true),
    pullSecret: resolveOption(source, option('pull-secret'), 'string'),
    logFormat: resolveOption(source, option('log-format'), 'string', 'text') as SyncSettings['logFormat'],
  };
  return { settings, source };
}

/** What sync's settings must say together, checked before anything is contacted. */
export function validateSyncSettings(settings: SyncSettings): void {
  oneOf('naming', settings.plan.naming, ['nested', 'flat']);
  oneOf('output', settings.output, ['table', 'json', 'yaml', 'kustomize']);
  oneOf('log-format', settings.logFormat, ['text', 'json']);
  if (settings.exitCode && !settings.dryRun) throw new UsageError('--exit-code goes with --dry-run');
}

/** A setting with a fixed set of values, whichever layer (flag, environment, file) gave it. */
export function oneOf<T extends string>(option: string, value: string, choices: readonly T[]): asserts value is T {
  if (choices.includes(value as T)) return;
  const listed = choices.length === 2 ? choices.join(' or ') : `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}`;
  throw new UsageError(`--${option} must be ${listed}, not ${JSON.stringify(value)}`);
}
