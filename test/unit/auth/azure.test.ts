// ACR credentials from AKS Workload Identity (src/auth/azure.ts), with a fake channel that answers
// as Entra ID and the registry's /oauth2/exchange do, and a clock the test moves: the request
// shapes, the federated token read again for each new token, renewal before expiry, and one-line
// refusals that never show a token. The same flow against real HTTP is test/integration/azure.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AcrCredentials, acrRefreshTokenUser, acrScope } from '../../../src/auth/azure.ts';
import type { ExchangeChannel } from '../../../src/auth/credential.ts';
import { AuthError, RegistryError } from '../../../src/errors.ts';

const registry = 'myacr.azurecr.io';
let dir: string;
let tokenFile: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-clone-azure-unit-'));
  tokenFile = join(dir, 'azure-identity-token');
});
after(() => rm(dir, { recursive: true, force: true }));

const env = () => ({ AZURE_CLIENT_ID: 'client-1', AZURE_TENANT_ID: 'tenant-1', AZURE_FEDERATED_TOKEN_FILE: tokenFile, AZURE_AUTHORITY_HOST: 'https://login.example/' });

/** An unsigned JWT whose payload says `exp` (seconds). */
const jwt = (exp: number) => `e30.${Buffer.from(JSON.stringify({ exp })).toString('base64url')}.sig`;

interface Call { registry: string; target: string; form: Record<string, string> }

/** Answers Entra ID's token endpoint and the registry's exchange; counts and records every call. */
function fakeChannel(now: () => number, options: { entra?: (form: Record<string, string>) => { status: number; body: unknown }; exchange?: () => { status: number; body: unknown }; refreshSeconds?: number; entraSeconds?: number } = {}) {
  const calls: Call[] = [];
  let issued = 0;
  const channel: ExchangeChannel = {
    isInsecure: () => false,
    async postForm(registry, target, form) {
      const fields = Object.fromEntries(form);
      calls.push({ registry, target, form: fields });
      const answer = target === '/oauth2/exchange'
        ? options.exchange?.() ?? { status: 200, body: { refresh_token: jwt(Math.floor(now() / 1000) + (options.refreshSeconds ?? 10_800)) + `.${++issued}` } }
        : options.entra?.(fields) ?? { status: 200, body: { token_type: 'Bearer', expires_in: options.entraSeconds ?? 3599, access_token: `aad-${++issued}` } };
      return { status: answer.status, body: JSON.stringify(answer.body) };
    },
  };
  return { channel, calls };
}

describe('AcrCredentials', () => {
  test('sends the documented requests and answers the null-GUID user with the refresh token', async () => {
    await writeFile(tokenFile, 'federated-1\n');
    let clock = 1_000_000;
    const { channel, calls } = fakeChannel(() => clock);
    const credential = await new AcrCredentials(env(), channel, () => clock).lookup(registry);
    assert.equal(calls.length, 2);
    assert.equal(calls[0]!.target, 'https://login.example/tenant-1/oauth2/v2.0/token');
    assert.deepEqual(calls[0]!.form, {
      client_id: 'client-1', grant_type: 'client_credentials', scope: acrScope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: 'federated-1',
    });
    assert.equal(calls[1]!.target, '/oauth2/exchange');
    assert.deepEqual(calls[1]!.form, { grant_type: 'access_token', service: registry, tenant: 'tenant-1', access_token: 'aad-1' });
    assert.equal(credential.kind, 'basic');
    assert.equal(credential.kind === 'basic' && credential.username, acrRefreshTokenUser);
    assert.match(credential.kind === 'basic' ? credential.password : '', /\.2$/);
    clock += 1000;
    await new AcrCredentials(env(), channel, () => clock).lookup(registry); // another instance: its own cache
    assert.equal(calls.length, 4);
  });

  test('tokens are kept until shortly before they expire, then renewed, the rotated file read again', async () => {
    await writeFile(tokenFile, 'federated-a');
    let clock = 5_000_000;
    const { channel, calls } = fakeChannel(() => clock, { refreshSeconds: 40, entraSeconds: 60 });
    const source = new AcrCredentials(env(), channel, () => clock);
    const first = await Promise.all([source.lookup(registry), source.lookup(registry)]);
    assert.deepEqual(first[0], first[1]);
    assert.equal(calls.length, 2, 'concurrent lookups share one exchange');
    clock += 20_000;
    assert.deepEqual(await source.lookup(registry), first[0], 'still well within its 40 s');
    assert.equal(calls.length, 2);
    await writeFile(tokenFile, 'federated-b');
    clock += 11_000; // 31 s: past three quarters of the refresh token's 40 s, within the Entra token's 45 s
    const second = await source.lookup(registry);
    assert.notDeepEqual(second, first[0]);
    assert.deepEqual(calls.slice(2).map((c) => c.target), ['/oauth2/exchange'], 'the Entra token was still good');
    clock += 31_000; // 62 s: the new refresh token (due at 61 s) and the Entra token (due at 45 s)
    await source.lookup(registry);
    assert.deepEqual(calls.slice(3).map((c) => c.target), ['https://login.example/tenant-1/oauth2/v2.0/token', '/oauth2/exchange']);
    assert.equal(calls[3]!.form.client_assertion, 'federated-b', 'the rotated token file is read again');
  });

  test('missing identity variables: one line naming them, never a request', async () => {
    const { channel, calls } = fakeChannel(Date.now);
    const { AZURE_CLIENT_ID: _, AZURE_FEDERATED_TOKEN_FILE: __, ...partial } = env();
    await assert.rejects(new AcrCredentials(partial, channel).lookup(registry), (err: Error) =>
      err instanceof AuthError && /no Azure workload identity for ACR: AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE are not set/.test(err.message) && !err.message.includes('\n'));
    assert.equal(calls.length, 0);
  });

  test('an http authority is refused unless the user named its host insecure', async () => {
    await writeFile(tokenFile, 'federated');
    const { channel, calls } = fakeChannel(Date.now);
    await assert.rejects(new AcrCredentials({ ...env(), AZURE_AUTHORITY_HOST: 'http://login.example' }, channel).lookup(registry), /AZURE_AUTHORITY_HOST must be an https URL/);
    assert.equal(calls.length, 0);
    const insecure = { ...channel, isInsecure: (host: string) => host === 'login.example' };
    await new AcrCredentials({ ...env(), AZURE_AUTHORITY_HOST: 'http://login.example' }, insecure).lookup(registry);
    assert.equal(calls[0]!.target, 'http://login.example/tenant-1/oauth2/v2.0/token');
  });

  test("Entra ID's refusal is one line with its code and the description's first line, without the assertion", async () => {
    await writeFile(tokenFile, 'secret-assertion');
    const { channel, calls } = fakeChannel(Date.now, {
      entra: () => ({ status: 400, body: { error: 'unauthorized_client', error_description: "AADSTS700016: Application with identifier 'client-1' was not found in the directory 'tenant-1'.\r\nTrace ID: 1\r\nCorrelation ID: 2", error_codes: [700016] } }),
    });
    await assert.rejects(new AcrCredentials(env(), channel).lookup(registry), (err: Error) => {
      assert.ok(err instanceof AuthError);
      assert.equal(err.message, `${registry}: Entra ID refused the workload identity of client client-1 in tenant tenant-1 (HTTP 400: unauthorized_client: AADSTS700016: Application with identifier 'client-1' was not found in the directory 'tenant-1'.)`);
      return true;
    });
    assert.equal(calls.length, 1, 'no exchange after a refusal');
  });

  test("the exchange's refusal names the registry's answer; a 5xx is transient, not a refusal", async () => {
    await writeFile(tokenFile, 'federated');
    const refused = fakeChannel(Date.now, { exchange: () => ({ status: 401, body: { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] } }) });
    await assert.rejects(new AcrCredentials(env(), refused.channel).lookup(registry), (err: Error) =>
      err instanceof AuthError && err.message.startsWith(`${registry}: the registry refused the Entra ID token of client client-1 at /oauth2/exchange (HTTP 401: UNAUTHORIZED: authentication required)`) && !err.message.includes('aad-'));
    const failing = fakeChannel(Date.now, { exchange: () => ({ status: 503, body: {} }) });
    await assert.rejects(new AcrCredentials(env(), failing.channel).lookup(registry), (err: Error) => err instanceof RegistryError && err.transient);
  });

  test('an unreadable token file is named by its path', async () => {
    const { channel } = fakeChannel(Date.now);
    await assert.rejects(new AcrCredentials({ ...env(), AZURE_FEDERATED_TOKEN_FILE: join(dir, 'absent') }, channel).lookup(registry), /cannot read the federated token file AZURE_FEDERATED_TOKEN_FILE=.*absent \(ENOENT\)/);
  });
});
