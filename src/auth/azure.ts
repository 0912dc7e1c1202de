// ACR's registry credentials from AKS Workload Identity, in three steps, each one form POST that
// the registry client sends with its own TLS, insecure-host and proxy rules (ExchangeChannel):
// 1. Entra ID: the federated token AKS projects into the pod (AZURE_FEDERATED_TOKEN_FILE, read
//    again for every new token: the kubelet rotates it) is the client assertion of a
//    client_credentials grant for AZURE_CLIENT_ID in AZURE_TENANT_ID at AZURE_AUTHORITY_HOST, with
//    ACR's scope (the same in every cloud). The answer is an access token for about an hour.
// 2. The registry's POST /oauth2/exchange trades it for an ACR refresh token (about 3 hours; a JWT
//    whose exp says when).
// 3. The refresh token is the password of the null-GUID user in the registry's ordinary token flow
//    (oci/transport/auth.ts), as `docker login` uses it after `az acr login`.
// Entra tokens are cached per identity and refresh tokens per registry, each renewed before it
// expires (renewing.ts). This file is loaded only when an azure host is asked for (keychain.ts).
// Every refusal is one line naming its cause; no token is ever part of one.
import { readFile } from 'node:fs/promises';
import { AuthError, RegistryError } from '../errors.ts';
import { errorCode, isTransientNetworkError } from '../util/retry-policy.ts';
import { type Credential, type CredentialSource, type ExchangeChannel, isRecord } from './credential.ts';
import { type Renewable, RenewingCache, renewalTime } from './renewing.ts';

/** The Entra ID scope of ACR's data plane, in the public and the sovereign clouds alike. */
export const acrScope = 'https://containerregistry.azure.net/.default';
/** The user name that tells ACR the password is one of its refresh tokens: the null GUID. */
export const acrRefreshTokenUser = '00000000-0000-0000-0000-000000000000';
const defaultAuthorityHost = 'https://login.microsoftonline.com/';
const identityVariables = ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_FEDERATED_TOKEN_FILE'] as const;
/** Lifetimes assumed when an answer does not say: Entra's access tokens, ACR's refresh tokens. */
const entraLifetimeMs = 3600_000;
const refreshLifetimeMs = 3 * 3600_000;
/** Renew this long before expiry (or at three quarters of a shorter lifetime). */
const renewMarginMs = 5 * 60_000;

interface Identity {
  clientId: string;
  tenantId: string;
  tokenFile: string;
  /** {authority}/{tenant}/oauth2/v2.0/token */
  tokenUrl: URL;
}

export class AcrCredentials implements CredentialSource {
  readonly #env: Record<string, string | undefined>;
  readonly #channel: ExchangeChannel;
  readonly #now: () => number;
  readonly #entraTokens: RenewingCache<string>;
  readonly #refreshTokens: RenewingCache<string>;

  constructor(env: Record<string, string | undefined>, channel: ExchangeChannel, now: () => number = Date.now) {
    this.#env = env;
    this.#channel = channel;
    this.#now = now;
    this.#entraTokens = new RenewingCache(now);
    this.#refreshTokens = new RenewingCache(now);
  }

  async lookup(registry: string): Promise<Credential> {
    const identity = this.#identity(registry);
    const refreshToken = await this.#refreshTokens.get(registry.toLowerCase(), () => this.#exchange(registry, identity));
    return { kind: 'basic', username: acrRefreshTokenUser, password: refreshToken };
  }

  /** The workload identity the environment names, or one line saying what is missing. */
  #identity(registry: string): Identity {
    const missing = identityVariables.filter((name) => !this.#env[name]);
    if (missing.length > 0) {
      throw new AuthError(registry, `${registry}: no Azure workload identity for ACR: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set (AKS sets them in a pod labelled azure.workload.identity/use: "true" whose ServiceAccount is annotated azure.workload.identity/client-id); for a registry read anonymously, --registry-provider ${registry}=generic`);
    }
    const authority = this.#env.AZURE_AUTHORITY_HOST || defaultAuthorityHost;
    let base: URL;
    try {
      base = new URL(authority.endsWith('/') ? authority : `${authority}/`);
    } catch {
      throw new AuthError(registry, `${registry}: AZURE_AUTHORITY_HOST is not a URL: ${JSON.stringify(authority.slice(0, 100))}`);
    }
    if (base.protocol !== 'https:' && !(base.protocol === 'http:' && this.#channel.isInsecure(base.host))) {
      throw new AuthError(registry, `${registry}: AZURE_AUTHORITY_HOST must be an https URL (plain http only for a host named with --insecure-registry), not ${base.origin}`);
    }
    const tenantId = this.#env.AZURE_TENANT_ID!;
    return {
      clientId: this.#env.AZURE_CLIENT_ID!, tenantId, tokenFile: this.#env.AZURE_FEDERATED_TOKEN_FILE!,
      tokenUrl: new URL(`${encodeURIComponent(tenantId)}/oauth2/v2.0/token`, base),
    };
  }

  /** Step 2: an Entra ID access token traded at the registry for an ACR refresh token. */
  async #exchange(registry: string, identity: Identity): Promise<Renewable<string>> {
    const accessToken = await this.#entraTokens.get(`${identity.tokenUrl.href}\n${identity.clientId}`, () => this.#entraToken(registry, identity));
    const started = this.#now();
    const form = new URLSearchParams({ grant_type: 'access_token', service: registry, tenant: identity.tenantId, access_token: accessToken });
    const answer = await this.#post(registry, '/oauth2/exchange', form, 'its token exchange (/oauth2/exchange)');
    const body = parseObject(answer.body);
    if (answer.status !== 200) {
      const said = `HTTP ${answer.status}${describeRefusal(body)}`;
      failIfTransient(registry, answer.status, `${registry}: its token exchange (/oauth2/exchange) failed (${said})`);
      throw new AuthError(registry, `${registry}: the registry refused the Entra ID token of client ${identity.clientId} at /oauth2/exchange (${said}): the identity needs a role on the registry (AcrPush to back up into it), in tenant ${identity.tenantId}`, answer.status);
    }
    const refreshToken = typeof body.refresh_token === 'string' ? body.refresh_token : '';
    if (!refreshToken) {
      throw new AuthError(registry, `${registry}: /oauth2/exchange answered without a refresh token (not an ACR registry? --registry-provider ${registry}=generic turns the Azure identity off for it)`);
    }
    const expiresAt = jwtExpiry(refreshToken);
    const lifetime = expiresAt !== undefined && expiresAt > started ? expiresAt - started : refreshLifetimeMs;
    return { value: refreshToken, renewAt: renewalTime(started, lifetime, renewMarginMs) };
  }

  /** Step 1: the federated token, as it is in its file now, for an Entra ID access token with ACR's scope. */
  async #entraToken(registry: string, identity: Identity): Promise<Renewable<string>> {
    let assertion: string;
    try {
      assertion = (await readFile(identity.tokenFile, 'utf8')).trim();
    } catch (err) {
      throw new AuthError(registry, `${registry}: cannot read the federated token file AZURE_FEDERATED_TOKEN_FILE=${identity.tokenFile} (${errorCode(err) ?? 'unreadable'})`);
    }
    if (!assertion) throw new AuthError(registry, `${registry}: the federated token file AZURE_FEDERATED_TOKEN_FILE=${identity.tokenFile} is empty`);
    const started = this.#now();
    const form = new URLSearchParams({
      client_id: identity.clientId, grant_type: 'client_credentials', scope: acrScope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion,
    });
    const answer = await this.#post(registry, identity.tokenUrl.href, form, `Entra ID at ${identity.tokenUrl.origin}`);
    const body = parseObject(answer.body);
    if (answer.status !== 200) {
      const said = `HTTP ${answer.status}${describeRefusal(body)}`;
      failIfTransient(registry, answer.status, `${registry}: Entra ID at ${identity.tokenUrl.origin} failed (${said})`);
      throw new AuthError(registry, `${registry}: Entra ID refused the workload identity of client ${identity.clientId} in tenant ${identity.tenantId} (${said})`, answer.status);
    }
    const token = typeof body.access_token === 'string' ? body.access_token : '';
    if (!token) throw new AuthError(registry, `${registry}: Entra ID at ${identity.tokenUrl.origin} answered without an access token (is AZURE_AUTHORITY_HOST an Entra ID authority?)`);
    const expiresIn = Number(body.expires_in);
    const lifetime = expiresIn > 0 ? expiresIn * 1000 : entraLifetimeMs;
    return { value: token, renewAt: renewalTime(started, lifetime, renewMarginMs) };
  }

  /** A POST through the registry client; a network failure is named by whom it could not reach. */
  async #post(registry: string, target: string, form: URLSearchParams, whom: string): Promise<{ status: number; body: string }> {
    try {
      return await this.#channel.postForm(registry, target, form);
    } catch (err) {
      if (err instanceof AuthError || err instanceof RegistryError) throw err;
      const code = errorCode(err);
      if (code === undefined) throw err;
      throw new RegistryError(registry, `${registry}: cannot reach ${whom} (${code === 'ECONNREFUSED' ? 'connection refused' : code})`, { transient: isTransientNetworkError(err), cause: err });
    }
  }
}

/** A server failing or throttling is worth another try (the request that asked retries it), not a refusal. */
function failIfTransient(registry: string, status: number, message: string): void {
  if (status >= 500 || status === 429) throw new RegistryError(registry, message, { status, transient: true });
}

function parseObject(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    return isRecord(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/**
 * What a refusal said, as `: code: first line`: Entra ID's OAuth2 error (`error`, and
 * `error_description` such as "AADSTS700016: Application with identifier … was not found …", whose
 * later lines are trace ids) or a registry's error list (`errors[0].code` and `.message`).
 */
function describeRefusal(body: Record<string, unknown>): string {
  const first = Array.isArray(body.errors) && isRecord(body.errors[0]) ? body.errors[0] : body;
  const code = first.code ?? first.error;
  const text = first.message ?? first.error_description;
  const parts = [code, text].filter((p): p is string => typeof p === 'string' && p.trim() !== '').map((p) => p.split(/\r?\n/)[0]!.trim());
  const said = parts.join(': ');
  return said ? `: ${said.length > 300 ? `${said.slice(0, 300)}…` : said}` : '';
}

/** The expiry (epoch ms) a JWT's payload states, read without checking its signature (the registry checks it). */
function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    const exp = isRecord(claims) ? claims.exp : undefined;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
