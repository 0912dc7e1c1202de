// Registry wiring shared by the commands that talk to registries: options, credentials, transport.
import { homedir } from 'node:os';
import type { CredentialSource } from '../auth/credential.ts';
import { type RegistryProvider, registryProviders } from '../auth/provider.ts';
import { UsageError } from '../errors.ts';
import { resolveOption, wholeNumber, type OptionSource } from './config-layers.ts';
import type { CliContext } from './context.ts';
import { formatDuration } from './output/format.ts';
import { ProxyVariableError, readProxyEnvironment, type ProxyEnvironment } from '../util/proxy-for-url.ts';
import { repositorySettings, type RepositorySettings } from './repositories.ts';
import { loadCredentialSource } from '../auth/docker-config.ts';
import { createKeychain, type Keychain } from '../auth/keychain.ts';
import { RegistryClient } from '../oci/registry.ts';
import { Transport } from '../oci/transport/transport.ts';

export interface RegistrySettings {
  insecure: string[];
  registryConfig: string | undefined;
  /** Registry host -> provider, from --registry-provider. */
  providers: Map<string, RegistryProvider>;
  concurrency: number;
  rateLimitWaitMs: number;
  timeoutMs: number;
  /** Backup repositories a registry needs created (ECR). */
  repositories: RepositorySettings;
}

export function registrySettings(source: OptionSource): RegistrySettings {
  return {
    insecure: resolveOption(source, 'insecure-registry', 'list', []),
    registryConfig: resolveOption(source, 'registry-config', 'string'),
    providers: parseProviders(resolveOption(source, 'registry-provider', 'list', [])),
    concurrency: wholeNumber(resolveOption(source, 'concurrency', 'number', 8), 'concurrency', 1, 256),
    rateLimitWaitMs: wholeNumber(resolveOption(source, 'rate-limit-wait', 'number', 60), 'rate-limit-wait', 0, 3600) * 1000,
    timeoutMs: wholeNumber(resolveOption(source, 'registry-timeout', 'number', 60), 'registry-timeout', 1, 3600) * 1000,
    repositories: repositorySettings(source),
  };
}

/** HOST=PROVIDER pairs; a host named twice with different providers is a mistake worth a line. */
function parseProviders(values: string[]): Map<string, RegistryProvider> {
  const providers = new Map<string, RegistryProvider>();
  for (const value of values) {
    const match = /^([^=\s/]+)=([a-z]+)$/.exec(value);
    const provider = registryProviders.find((p) => p === match?.[2]);
    if (match === null || provider === undefined) {
      throw new UsageError(`--registry-provider must be HOST=${registryProviders.join('|')}, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com=aws, not ${JSON.stringify(value)}`);
    }
    const host = match[1]!.toLowerCase();
    if (providers.has(host) && providers.get(host) !== provider) throw new UsageError(`--registry-provider names ${host} twice, as ${providers.get(host)} and ${provider}`);
    providers.set(host, provider);
  }
  return providers;
}

export interface OpenRegistry {
  credentials: CredentialSource;
  keychain: Keychain;
  transport: Transport;
  client: RegistryClient;
}

/** Credentials, transport and client for a run; the caller closes the transport. */
export async function openRegistry(settings: RegistrySettings, context: CliContext, log: (line: string) => void): Promise<OpenRegistry> {
  const proxies = proxySettings(context.env);
  const files = await loadCredentialSource({ ...(settings.registryConfig ? { configFile: settings.registryConfig } : {}), env: context.env, homeDir: homedir() });
  // An entry in the config files wins; the cloud identity answers for the hosts no entry names.
  // ACR's token exchange goes through the transport, made next with the keychain's credentials.
  let transport: Transport | undefined;
  const channel = {
    postForm: (registry: string, target: string, form: URLSearchParams) => transport!.postForm(registry, target, form),
    isInsecure: (host: string) => transport!.isInsecure(host),
  };
  const keychain = createKeychain(files, settings.providers, { env: context.env, channel, proxies });
  const { credentials } = keychain;
  transport = new Transport({
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
  return { credentials, keychain, transport, client: new RegistryClient(transport) };
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
