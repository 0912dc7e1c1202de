// ACR and Entra ID for the tests. No emulator of either exists, so both are STAND-INS written here,
// answering with the request and response shapes their documentation gives (Azure/acr
// docs/AAD-OAuth.md; Microsoft identity platform, client credentials with a federated assertion):
// - Entra ID: POST /{tenant}/oauth2/v2.0/token, grant_type=client_credentials with
//   client_assertion_type jwt-bearer and the federated token as client_assertion, scope ACR's;
//   {token_type, expires_in, access_token}, or a 400 {error, error_description: "AADSTS…", error_codes}.
//   It accepts only the assertion the test says is current, for the one client it knows.
// - ACR's token service, in front of a REAL registry (the harness's distribution with its token
//   issuer, whose tokens it alone accepts): POST /oauth2/exchange (grant_type=access_token, service,
//   tenant, access_token: only an unexpired token this Entra stand-in issued, for the registry's
//   tenant) answers {refresh_token} (a JWT with exp); /oauth2/token takes the null-GUID user with an
//   unexpired refresh token (or the registry's admin user) and answers with a token from the
//   harness's issuer. Everything else (/v2/…) goes through to the registry, its challenge rewritten
//   to name this token service, as ACR's does. So the registry accepts exactly the credentials the
//   Workload Identity chain produces.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { acrRefreshTokenUser, acrScope } from '../../src/auth/azure.ts';
import type { HarnessRegistry } from '../harness/harness.ts';
import { proxyHandle, startFaultProxy } from './fault-proxy.ts';

const jwtBearer = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

async function formOf(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}

/** An unsigned JWT (the stand-ins check tokens by lookup, not by signature). */
function jwt(claims: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.${randomUUID()}`;
}

export interface EntraStandIn {
  /** AZURE_AUTHORITY_HOST for it (http on loopback: name its host with --insecure-registry). */
  authority: string;
  host: string;
  clientId: string;
  tenants: string[];
  /** Seconds an access token lasts (change it between runs). */
  expiresIn: number;
  /** The federated token it accepts as client_assertion now (the test "rotates" it). */
  acceptedAssertion: string;
  /** The client_assertion of every token request, in order. */
  assertions: string[];
  /** Every access token issued. */
  issued: string[];
  /** The tenant an unexpired access token of ours was issued in, or undefined. */
  tenantOf(token: string): string | undefined;
  close(): Promise<void>;
}

/**
 * `assertion`: the federated token accepted at first; `verify`, when given, decides instead (the
 * in-cluster test asks the real API server whether the pod's token is its own, as Entra ID checks a
 * federated credential's issuer, subject and audience).
 */
export async function startEntraStandIn(options: { clientId: string; tenants: string[]; assertion: string; verify?: (assertion: string) => Promise<boolean>; expiresIn?: number; ip?: string }): Promise<EntraStandIn> {
  const tokens = new Map<string, { tenant: string; expiresAt: number }>();
  const refuse = (res: ServerResponse, status: number, error: string, code: number, text: string) => json(res, status, {
    error, error_description: `AADSTS${code}: ${text}\r\nTrace ID: ${randomUUID()}\r\nCorrelation ID: ${randomUUID()}\r\nTimestamp: ${new Date().toISOString()}`,
    error_codes: [code], timestamp: new Date().toISOString(), trace_id: randomUUID(), correlation_id: randomUUID(),
  });
  const server = createServer(async (req, res) => {
    const match = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match) return json(res, 404, { error: 'not_found' });
    const tenant = decodeURIComponent(match[1]!);
    const form = await formOf(req);
    const assertion = form.get('client_assertion') ?? '';
    stand.assertions.push(assertion);
    if (!options.tenants.includes(tenant)) return refuse(res, 400, 'invalid_request', 90002, `Tenant '${tenant}' not found.`);
    if (form.get('grant_type') !== 'client_credentials') return refuse(res, 400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
    if (form.get('client_id') !== options.clientId) {
      return refuse(res, 400, 'unauthorized_client', 700016, `Application with identifier '${form.get('client_id')}' was not found in the directory '${tenant}'.`);
    }
    if (form.get('scope') !== acrScope) return refuse(res, 400, 'invalid_scope', 70011, `The provided value for the input parameter 'scope' is not valid.`);
    const trusted = options.verify ? await options.verify(assertion) : assertion === stand.acceptedAssertion;
    if (form.get('client_assertion_type') !== jwtBearer || !trusted) {
      return refuse(res, 400, 'invalid_client', 70021, 'No matching federated identity record found for presented assertion.');
    }
    const token = jwt({ aud: 'https://containerregistry.azure.net', tid: tenant, appid: options.clientId, exp: Math.floor(Date.now() / 1000) + stand.expiresIn });
    tokens.set(token, { tenant, expiresAt: Date.now() + stand.expiresIn * 1000 });
    stand.issued.push(token);
    json(res, 200, { token_type: 'Bearer', expires_in: stand.expiresIn, ext_expires_in: stand.expiresIn, access_token: token });
  });
  await new Promise<void>((resolve) => server.listen(0, options.ip ?? '127.0.0.1', resolve));
  const { address, port } = server.address() as AddressInfo;
  const state = { requests: 0 };
  const stand: EntraStandIn = {
    authority: `http://${address}:${port}/`, host: `${address}:${port}`, clientId: options.clientId, tenants: options.tenants,
    expiresIn: options.expiresIn ?? 3599, acceptedAssertion: options.assertion, assertions: [], issued: [],
    tenantOf(token) {
      const known = tokens.get(token);
      return known && known.expiresAt > Date.now() ? known.tenant : undefined;
    },
    close: proxyHandle(server, {}, state).close,
  };
  return stand;
}

export interface AcrStandIn {
  /** The "ACR" host: name it with --registry-provider HOST=azure and --insecure-registry. */
  host: string;
  /** Seconds a refresh token lasts (change it between runs). */
  refreshSeconds: number;
  /** The registry's admin user (ACR's admin account), for a docker config entry. */
  admin: { username: string; password: string };
  /** The form of every /oauth2/exchange, and every refresh token issued. */
  exchanges: Array<Record<string, string>>;
  issued: string[];
  /** /oauth2/token answers by how the caller authenticated. */
  tokenRequests: { refreshToken: number; admin: number; refused: number };
  close(): Promise<void>;
}

/**
 * ACR in front of `registry` (a harness registry with token auth), trusting Entra tokens of
 * `tenant` only. `bytesPerSecond` slows the link (a run that outlives its tokens).
 */
export async function startAcrStandIn(options: { registry: HarnessRegistry; entra: EntraStandIn; tenant: string; refreshSeconds?: number; bytesPerSecond?: number; ip?: string }): Promise<AcrStandIn> {
  const { registry, entra } = options;
  const refreshTokens = new Map<string, number>();
  let host = '';
  const unauthorized = (res: ServerResponse, message: string) => json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message, detail: null }] });

  const exchange = async (req: IncomingMessage, res: ServerResponse) => {
    const form = await formOf(req);
    stand.exchanges.push(Object.fromEntries(form));
    const tenant = entra.tenantOf(form.get('access_token') ?? '');
    if (req.method !== 'POST' || form.get('grant_type') !== 'access_token') return json(res, 400, { errors: [{ code: 'UNSUPPORTED', message: 'unsupported grant_type' }] });
    if (form.get('service') !== host) return unauthorized(res, `service ${form.get('service')} is not this registry`);
    if (tenant === undefined) return unauthorized(res, 'the access token is invalid or expired');
    if (tenant !== options.tenant || form.get('tenant') !== options.tenant) return unauthorized(res, `the registry does not trust tenant ${form.get('tenant')}`);
    const token = jwt({ iss: 'Azure Container Registry', aud: host, tenant, grant_type: 'refresh_token', exp: Math.floor(Date.now() / 1000) + stand.refreshSeconds, jti: randomUUID() });
    refreshTokens.set(token, Date.now() + stand.refreshSeconds * 1000);
    stand.issued.push(token);
    json(res, 200, { refresh_token: token });
  };

  const validRefresh = (token: string | null | undefined) => token != null && (refreshTokens.get(token) ?? 0) > Date.now();

  /** The caller's identity checked, the harness issuer's token for the scopes asked. */
  const token = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    let scopes = url.searchParams.getAll('scope');
    let allowed = false;
    if (req.method === 'POST') {
      const form = await formOf(req);
      scopes = form.getAll('scope').flatMap((s) => s.split(' '));
      allowed = form.get('grant_type') === 'refresh_token' && validRefresh(form.get('refresh_token'));
      if (allowed) stand.tokenRequests.refreshToken++;
    } else {
      const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /i, ''), 'base64').toString('utf8');
      const colon = basic.indexOf(':');
      const [user, password] = [basic.slice(0, colon), basic.slice(colon + 1)];
      if (user === acrRefreshTokenUser && validRefresh(password)) {
        allowed = true;
        stand.tokenRequests.refreshToken++;
      } else if (colon > 0 && user === stand.admin.username && password === stand.admin.password) {
        allowed = true;
        stand.tokenRequests.admin++;
      }
    }
    if (!allowed) {
      stand.tokenRequests.refused++;
      return unauthorized(res, 'invalid or expired credentials');
    }
    const issuer = new URL(registry.realm!);
    issuer.searchParams.set('service', registry.service!);
    for (const scope of scopes) issuer.searchParams.append('scope', scope);
    const answer = await fetch(issuer, { headers: { authorization: `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}` } });
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(Buffer.from(await answer.arrayBuffer()));
  };

  const proxy = await startFaultProxy({
    upstream: registry.host, rates: {}, host: options.ip,
    ...(options.bytesPerSecond ? { bytesPerSecond: options.bytesPerSecond } : {}),
    intercept: (req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (path === '/oauth2/exchange') void exchange(req, res).catch(() => res.destroy());
      else if (path === '/oauth2/token') void token(req, res).catch(() => res.destroy());
      else return false;
      return true;
    },
    // ACR's challenge names its own token service and itself as the service.
    responseHeaders: (headers) => {
      const challenge = headers['www-authenticate'];
      if (typeof challenge !== 'string') return headers;
      return { ...headers, 'www-authenticate': challenge.replace(/realm="[^"]*"/, `realm="http://${host}/oauth2/token"`).replace(/service="[^"]*"/, `service="${host}"`) };
    },
  });
  host = proxy.host;
  const stand: AcrStandIn = {
    host, refreshSeconds: options.refreshSeconds ?? 10_800, admin: { username: 'acradmin', password: randomUUID() },
    exchanges: [], issued: [], tokenRequests: { refreshToken: 0, admin: 0, refused: 0 },
    close: () => proxy.close(),
  };
  return stand;
}
