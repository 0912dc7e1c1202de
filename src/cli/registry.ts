// Registry wiring shared by the commands that talk to registries: options, credentials, transport.
import { homedir } from 'node:os';
import type { CredentialSource } from '../auth/credential.ts';
import type { RegistryClient } from '../oci/registry.ts';
import type { Transport } from '../oci/transport/transport.ts';
import { resolveOption, wholeNumber, type OptionSource } from './config.ts';
import type { CliContext } from './context.ts';
import { formatDuration } from './output/format.ts';

export const registryOptions = {
  'insecure-registry': { type: 'string', array: true, nargs: 1, describe: 'Reach this registry host over plain HTTP or unverified TLS (one per use, repeatable)' },
  'registry-config': { type: 'string', describe: 'Registry credentials in docker config.json format, read before ~/.docker/config.json' },
  concurrency: { type: 'number', describe: 'Blob transfers (and registry lookups) in flight at once [default: 8]' },
} as const;

export interface RegistrySettings {
  insecure: string[];
  registryConfig: string | undefined;
  concurrency: number;
}

export function registrySettings(source: OptionSource): RegistrySettings {
  return {
    insecure: resolveOption(source, 'insecure-registry', 'list', []),
    registryConfig: resolveOption(source, 'registry-config', 'string'),
    concurrency: wholeNumber(resolveOption(source, 'concurrency', 'number', 8), 'concurrency', 1, 256),
  };
}

export interface OpenRegistry {
  credentials: CredentialSource;
  transport: Transport;
  client: RegistryClient;
}

/** Credentials, transport and client for a run; the caller closes the transport. */
export async function openRegistry(settings: RegistrySettings, context: CliContext, log: (line: string) => void): Promise<OpenRegistry> {
  const { loadCredentialSource } = await import('../auth/docker-config.ts');
  const { Transport } = await import('../oci/transport/transport.ts');
  const { RegistryClient } = await import('../oci/registry.ts');
  const credentials = await loadCredentialSource({ ...(settings.registryConfig ? { configFile: settings.registryConfig } : {}), env: context.env, homeDir: homedir() });
  const transport = new Transport({
    credentials,
    insecureHosts: settings.insecure,
    connectionsPerHost: settings.concurrency * 2 + 4,
    userAgent: `image-clone/${context.version}`,
    onRetry: (e) => log(`retry: ${e.registry}: ${e.method} ${e.path}: ${e.reason}; attempt ${e.attempt + 1} in ${formatDuration(e.delayMs)}`),
  });
  return { credentials, transport, client: new RegistryClient(transport) };
}
