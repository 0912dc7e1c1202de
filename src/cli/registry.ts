// Registry wiring shared by the commands that talk to registries: options, credentials, transport.
import { homedir } from 'node:os';
import type { CredentialSource } from '../oci/credentials.ts';
import type { RegistryClient } from '../oci/registry.ts';
import type { Transport } from '../oci/transport/transport.ts';
import { resolveOption, wholeNumber, type OptionSource } from './config.ts';
import type { CliContext } from './context.ts';
import { formatDuration } from './output/format.ts';
import { UsageError } from '../errors.ts';
import { ProxyVariableError, readProxyEnvironment, type ProxyEnvironment } from '../util/proxy.ts';

export const registryOptions = {
  'insecure-registry': { type: 'string', array: true, nargs: 1, describe: 'Reach this registry host over plain HTTP or unverified TLS (one per use, repeatable)' },
  'registry-config': { type: 'string', describe: 'Registry credentials in docker config.json format, read before ~/.docker/config.json' },
  concurrency: { type: 'number', describe: 'Blob transfers (and registry lookups) in flight at once [default: 8]' },
  'rate-limit-wait': { type: 'number', describe: 'Seconds to wait for a registry that answers 429 (a pull quota); asked to wait longer, the run stops asking it and names the cause [default: 60]' },
  'registry-timeout': { type: 'number', describe: 'Seconds to wait for a registry to answer a request; a registry that never answers is given up for the rest of the run after its retries [default: 60]' },
} as const;

export interface RegistrySettings {
  insecure: string[];
  registryConfig: string | undefined;
  concurrency: number;
  rateLimitWaitMs: number;
  timeoutMs: number;
}

export function registrySettings(source: OptionSource): RegistrySettings {
  return {
    insecure: resolveOption(source, 'insecure-registry', 'list', []),
    registryConfig: resolveOption(source, 'registry-config', 'string'),
    concurrency: wholeNumber(resolveOption(source, 'concurrency', 'number', 8), 'concurrency', 1, 256),
    rateLimitWaitMs: wholeNumber(resolveOption(source, 'rate-limit-wait', 'number', 60), 'rate-limit-wait', 0, 3600) * 1000,
    timeoutMs: wholeNumber(resolveOption(source, 'registry-timeout', 'number', 60), 'registry-timeout', 1, 3600) * 1000,
  };
}

export interface OpenRegistry {
  credentials: CredentialSource;
  transport: Transport;
  client: RegistryClient;
}

/** Credentials, transport and client for a run; the caller closes the transport. */
export async function openRegistry(settings: RegistrySettings, context: CliContext, log: (line: string) => void): Promise<OpenRegistry> {
  const { loadCredentialSource } = await import('../oci/credentials.ts');
  const { Transport } = await import('../oci/transport/transport.ts');
  const { RegistryClient } = await import('../oci/registry.ts');
  const proxies = proxySettings(context.env);
  const credentials = await loadCredentialSource({ ...(settings.registryConfig ? { configFile: settings.registryConfig } : {}), env: context.env, homeDir: homedir() });
  const transport = new Transport({
    credentials,
    insecureHosts: settings.insecure,
    proxies,
    connectionsPerHost: settings.concurrency * 2 + 4,
    headersTimeoutMs: settings.timeoutMs,
    bodyTimeoutMs: settings.timeoutMs,
    retry: { throttlePatienceMs: settings.rateLimitWaitMs },
    userAgent: `image-clone/${context.version}`,
    onRetry: (e) => log(`retry: ${e.registry}: ${e.method} ${e.path}: ${e.reason}; attempt ${e.attempt + 1} in ${formatDuration(e.delayMs)}`),
  });
  return { credentials, transport, client: new RegistryClient(transport) };
}

/** HTTPS_PROXY, HTTP_PROXY and NO_PROXY (either case) from the environment, as every other cluster tool reads them. */
export function proxySettings(env: Record<string, string | undefined>): ProxyEnvironment {
  try {
    return readProxyEnvironment(env);
  } catch (err) {
    if (err instanceof ProxyVariableError) throw new UsageError(err.message);
    throw err;
  }
}
