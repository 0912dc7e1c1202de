// The AWS SDK's ECR client, loaded only when an ECR registry is involved (a dynamic import: a run
// without one never reads the SDK). Credentials, endpoints and retries follow the SDK's own
// settings: its default credential chain (environment keys, AWS_PROFILE and the shared files, IRSA's
// AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, EKS Pod Identity, the instance role), AWS_REGION,
// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_ECR / _STS. Errors become one line naming the action and
// the resource; no credential or token is ever part of one.
import type { ECRClient } from '@aws-sdk/client-ecr';
import { AuthError, RegistryError } from '../errors.ts';
import type { ProxyEnvironment } from '../util/proxy-for-url.ts';
import { tunnellingAgents } from '../util/proxy-tunnel.ts';
import { errorLine } from './credential.ts';

export type EcrSdk = typeof import('@aws-sdk/client-ecr');

let sdk: Promise<EcrSdk> | undefined;

export function loadEcrSdk(): Promise<EcrSdk> {
  sdk ??= import('@aws-sdk/client-ecr');
  return sdk;
}

/**
 * One ECR client per region (undefined: the SDK's default region), shared by the token source and
 * repository creation. Its idle connections do not keep the process alive, so nothing closes it.
 * Through HTTPS_PROXY / NO_PROXY when the environment names a proxy: the SDK's STS client (IRSA's
 * web identity exchange) inherits the ECR client's request handler, so it goes the same way.
 */
export class EcrClients {
  readonly #clients = new Map<string, Promise<ECRClient>>();
  readonly #agents: ReturnType<typeof tunnellingAgents>;

  constructor(proxies?: ProxyEnvironment) {
    this.#agents = tunnellingAgents(proxies);
  }

  client(region: string | undefined): Promise<ECRClient> {
    const key = region ?? '';
    let client = this.#clients.get(key);
    if (client === undefined) {
      client = loadEcrSdk().then(({ ECRClient }) => new ECRClient({
        ...(region === undefined ? {} : { region }),
        ...(this.#agents ? { requestHandler: this.#agents } : {}),
      }));
      this.#clients.set(key, client);
    }
    return client;
  }
}

const deniedNames = new Set(['AccessDeniedException', 'AccessDenied', 'UnauthorizedOperation', 'UnrecognizedClientException', 'InvalidSignatureException', 'ExpiredTokenException', 'InvalidIdentityToken', 'InvalidIdentityTokenException']);

/**
 * One line for an SDK failure of `action` (e.g. 'ecr:CreateRepository') on `resource`, for
 * `registry`: a missing identity, a missing region or a refusal is a configuration problem
 * (AuthError, exit 2); anything else is the registry's control plane failing (RegistryError).
 */
export function awsError(err: unknown, registry: string, action: string, resource: string): Error {
  const name = err instanceof Error ? err.name : '';
  const message = errorLine(err);
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(message)) {
    return new AuthError(registry, `${registry}: no AWS identity for ${action}: the SDK's default chain found none (environment keys, AWS_PROFILE, IRSA's AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, EKS Pod Identity, an instance role)`);
  }
  if (/region is missing/i.test(message)) {
    return new AuthError(registry, `${registry}: no AWS region for ${action}: set AWS_REGION (the host name does not say one)`);
  }
  if (deniedNames.has(name)) {
    return new AuthError(registry, `${registry}: AWS refused ${action} on ${resource} (${name}): ${message}`, 403);
  }
  // A 403 whose body the SDK could not read (not the service's JSON: a proxy's, an emulator's) is a refusal all the same.
  if ((err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode === 403) {
    return new AuthError(registry, `${registry}: AWS refused ${action} on ${resource} (HTTP 403, access denied): grant it to the identity image-clone runs as`, 403);
  }
  return new RegistryError(registry, `${registry}: ${action} on ${resource} failed${name && name !== 'Error' ? ` (${name})` : ''}: ${message}`, { transient: false, cause: err });
}
