// One place for configuration: flags > environment (IMAGE_CLONE_*) > config file > defaults.
// Options are declared to yargs without defaults, so that "not given" stays visible here and a
// lower layer can still supply the value.
import { UsageError } from '../errors.ts';

export type OptionKind = 'string' | 'number' | 'boolean' | 'list';

export interface OptionSource {
  /** Parsed flags, keyed by the option's long name (kebab-case). */
  flags: Record<string, unknown>;
  env: Record<string, string | undefined>;
  /** Values from --config FILE, keyed by the option's long name. */
  file?: Record<string, unknown>;
}

/** IMAGE_CLONE_ + the option's name in upper snake case: --insecure-registry -> IMAGE_CLONE_INSECURE_REGISTRY. */
export function envName(option: string): string {
  return `IMAGE_CLONE_${option.replace(/-/g, '_').toUpperCase()}`;
}

export function resolveOption(source: OptionSource, option: string, kind: 'list', fallback: string[]): string[];
export function resolveOption(source: OptionSource, option: string, kind: 'boolean', fallback: boolean): boolean;
export function resolveOption(source: OptionSource, option: string, kind: 'number', fallback: number): number;
export function resolveOption(source: OptionSource, option: string, kind: 'string', fallback: string): string;
export function resolveOption(source: OptionSource, option: string, kind: 'string'): string | undefined;
export function resolveOption(source: OptionSource, option: string, kind: OptionKind, fallback?: unknown): unknown {
  const flag = source.flags[option];
  if (Array.isArray(flag) && kind !== 'list' && flag.length > 1) throw new UsageError(`--${option} was given ${flag.length} times; give it once`);
  if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0)) return coerce(flag, kind, `--${option}`);
  const env = source.env[envName(option)];
  if (env !== undefined && env !== '') return coerce(env, kind, envName(option));
  const file = source.file?.[option];
  if (file !== undefined) return coerce(file, kind, `${option} in the config file`);
  return fallback;
}

function coerce(value: unknown, kind: OptionKind, where: string): unknown {
  switch (kind) {
    case 'list': {
      const items = Array.isArray(value) ? value : [value];
      // Environment variables carry lists comma-separated.
      return items.flatMap((item) => String(item).split(',')).map((item) => item.trim()).filter(Boolean);
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (/^(true|1|yes)$/i.test(String(value))) return true;
      if (/^(false|0|no)$/i.test(String(value))) return false;
      throw new UsageError(`${where} must be true or false, not ${JSON.stringify(String(value))}`);
    case 'number': {
      const n = typeof value === 'number' ? value : Number(String(value).trim());
      // yargs has already turned a non-number flag into NaN: the text it was is gone.
      if (Number.isNaN(value)) throw new UsageError(`${where} must be a number`);
      if (!Number.isFinite(n) || String(value).trim() === '') throw new UsageError(`${where} must be a number, not ${JSON.stringify(String(value))}`);
      return n;
    }
    case 'string':
      return String(value);
  }
}

/** A whole number in [min, max], or a UsageError that says so. */
export function wholeNumber(value: number, option: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`--${option} must be a whole number from ${min} to ${max}, not ${value}`);
  }
  return value;
}
