import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import type { Dispatcher } from 'undici';
import { AuthError } from '../../../src/errors.ts';
import { Authenticator, type TokenFetch } from '../../../src/oci/transport/auth.ts';
import type { Credential } from '../../../src/auth/credential.ts';

const registryUrl = new URL('https://registry.example/v2/');
const bearer = [{ scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example' } }];

interface Call { url: URL; method: string; headers: Record<string, string>; body?: string }

/** A token server double: answers with `answer(call)` and records each call. */
function tokenServer(answer: (call: Call) => { status?: number; body: string }) {
  const calls: Call[] = [];
  const fetch: TokenFetch = async (url, init) => {
    const call = { url, method: init.method, headers: init.headers, ...(init.body ? { body: init.body } : {}) };
    calls.push(call);
    await new Promise((resolve) => setImmediate(resolve));
    const { status = 200, body } = answer(call);
    return { statusCode: status, headers: {}, body: Readable.from([Buffer.from(body)]) } as unknown as Dispatcher.ResponseData;
  };
  return { calls, fetch };
}

const credentials = (credential?: Credential) => ({ lookup: async () => credential });
const alice: Credential = { kind: 'basic', username: 'alice', password: 's3cr:et' };

describe('Authenticator', () => {
  test('concurrent requests for the same scopes share one token fetch', async () => {
    const server = tokenServer(() => ({ body: JSON.stringify({ token: 'T1', expires_in: 300 }) }));
    const auth = new Authenticator(credentials(alice), server.fetch);
    auth.learn('registry.example', bearer, registryUrl);
    const headers = await Promise.all(Array.from({ length: 10 }, () => auth.authorization('registry.example', 'registry.example', 'app', ['repository:app:pull'])));
    assert.deepEqual(new Set(headers), new Set(['Bearer T1']));
    assert.equal(server.calls.length, 1);
    const call = server.calls[0]!;
    assert.equal(call.url.searchParams.get('service'), 'registry.example');
    assert.deepEqual(call.url.searchParams.getAll('scope'), ['repository:app:pull']);
    assert.equal(call.headers.authorization, `Basic ${Buffer.from('alice:s3cr:et').toString('base64')}`);
  });

  test('a token is reused until it nears expiry, then fetched anew', async () => {
    let now = 1_000_000;
    let issued = 0;
    const server = tokenServer(() => ({ body: JSON.stringify({ access_token: `T${++issued}`, expires_in: 120 }) }));
    const auth = new Authenticator(credentials(alice), server.fetch, () => now);
    auth.learn('registry.example', bearer, registryUrl);
    const get = (minValidityMs?: number) => auth.authorization('registry.example', 'registry.example', 'app', ['repository:app:pull'], minValidityMs);
    assert.equal(await get(), 'Bearer T1');
    now += 60_000;
    assert.equal(await get(), 'Bearer T1', 'still valid for 60 s');
    assert.equal(await get(10 * 60_000), 'Bearer T2', 'a long upload wants more life than is left');
    now += 40_000;
    assert.equal(await get(), 'Bearer T2', 'T2 has 80 s left');
    now += 60_000;
    assert.equal(await get(), 'Bearer T3', 'under 30 s left: refreshed before it can expire mid-request');
  });

  test('different scope sets and different credentials get different tokens', async () => {
    let issued = 0;
    const server = tokenServer(() => ({ body: JSON.stringify({ token: `T${++issued}` }) }));
    let current: Credential = alice;
    const auth = new Authenticator({ lookup: async () => current }, server.fetch);
    auth.learn('registry.example', bearer, registryUrl);
    const a = await auth.authorization('registry.example', 'registry.example', 'app', ['repository:app:pull']);
    const b = await auth.authorization('registry.example', 'registry.example', 'app', ['repository:app:pull,push']);
    current = { kind: 'basic', username: 'bob', password: 'x' };
    const c = await auth.authorization('registry.example', 'registry.example', 'app', ['repository:app:pull']);
    assert.deepEqual([a, b, c], ['Bearer T1', 'Bearer T2', 'Bearer T3']);
  });

  test('a token server refusing several scopes at once is asked for one, and remembered', async () => {
    const server = tokenServer((call) => call.url.searchParams.getAll('scope').length > 1
      ? { status: 401, body: '{"details":"multiple scopes"}' }
      : { body: JSON.stringify({ token: 'ONE' }) });
    const auth = new Authenticator(credentials(alice), server.fetch);
    auth.learn('gcr.example', bearer, new URL('https://gcr.example/v2/'));
    const scopes = ['repository:dst:pull,push', 'repository:src:pull'];
    assert.equal(await auth.authorization('gcr.example', 'gcr.example', 'dst', scopes), 'Bearer ONE');
    assert.equal(await auth.authorization('gcr.example', 'gcr.example', 'dst', scopes), 'Bearer ONE');
    assert.deepEqual(server.calls.map((c) => c.url.searchParams.getAll('scope').length), [2, 1]);
  });

  test('refused credentials and garbage answers give one clear AuthError without the secret', async () => {
    const refused = new Authenticator(credentials(alice), tokenServer(() => ({ status: 401, body: 'nope' })).fetch);
    refused.learn('registry.example', bearer, registryUrl);
    await assert.rejects(refused.authorization('registry.example', 'registry.example', 'app', ['repository:app:pull']), (err: unknown) => {
      assert.ok(err instanceof AuthError);
      assert.equal(err.message, 'registry.example: could not get an access token (HTTP 401): the configured credentials were refused');
      return true;
    });
    for (const body of ['<html>login</html>', '{"token":""}', 'x'.repeat(70_000)]) {
      const garbage = new Authenticator(credentials(), tokenServer(() => ({ body })).fetch);
      garbage.learn('registry.example', bearer, registryUrl);
      await assert.rejects(garbage.authorization('registry.example', 'registry.example', 'app', ['repository:app:pull']), /answered without a token/);
    }
  });

  test('a cloud credential refused says whose it is; a cloud identity that gave none says why', async () => {
    const cloud: Credential = { kind: 'basic', username: 'oauth2accesstoken', password: 'ya29.x', refused: 'the Google identity of the metadata server was refused' };
    const refused = new Authenticator(credentials(cloud), tokenServer(() => ({ status: 403, body: '{}' })).fetch);
    refused.learn('registry.example', bearer, registryUrl);
    await assert.rejects(refused.authorization('registry.example', 'registry.example', 'app', ['repository:app:push']),
      (err: unknown) => err instanceof AuthError && err.message === 'registry.example: could not get an access token (HTTP 403): the Google identity of the metadata server was refused');
    const source = { lookup: async () => undefined, absence: () => 'no Google identity was found' };
    const missing = new Authenticator(source, tokenServer(() => ({ status: 401, body: '{}' })).fetch);
    missing.learn('registry.example', bearer, registryUrl);
    await assert.rejects(missing.authorization('registry.example', 'registry.example', 'app', ['repository:app:pull']),
      (err: unknown) => err instanceof AuthError && err.message === 'registry.example: could not get an access token (HTTP 401): it requires credentials, and no Google identity was found');
    assert.equal(await missing.anonymousBecause('registry.example', 'app'), 'no Google identity was found');
    assert.equal(await new Authenticator(credentials(), tokenServer(() => ({ body: '' })).fetch).anonymousBecause('registry.example', 'app'), '');
    assert.equal(await new Authenticator(credentials(alice), tokenServer(() => ({ body: '' })).fetch).anonymousBecause('registry.example', 'app'), undefined);
  });

  test('Basic hosts get Basic, and say so when no credentials are configured', async () => {
    const auth = new Authenticator(credentials(alice), tokenServer(() => ({ body: '' })).fetch);
    auth.learn('nexus.example', [{ scheme: 'basic', params: { realm: 'Sonatype' } }], new URL('https://nexus.example/v2/'));
    assert.equal(await auth.authorization('nexus.example', 'nexus.example', 'app', []), `Basic ${Buffer.from('alice:s3cr:et').toString('base64')}`);
    const none = new Authenticator(credentials(), tokenServer(() => ({ body: '' })).fetch);
    none.learn('nexus.example', [{ scheme: 'basic', params: {} }], new URL('https://nexus.example/v2/'));
    await assert.rejects(none.authorization('nexus.example', 'nexus.example', 'app', []), /requires a username and password, and none is configured/);
  });

  test('identity tokens use the OAuth2 refresh grant; registry tokens are sent as they are', async () => {
    const server = tokenServer(() => ({ body: JSON.stringify({ access_token: 'FROM-REFRESH' }) }));
    const identity = new Authenticator(credentials({ kind: 'identityToken', token: 'REFRESH' }), server.fetch);
    identity.learn('acr.example', bearer, new URL('https://acr.example/v2/'));
    assert.equal(await identity.authorization('acr.example', 'acr.example', 'app', ['repository:app:pull']), 'Bearer FROM-REFRESH');
    assert.equal(server.calls[0]!.method, 'POST');
    const form = new URLSearchParams(server.calls[0]!.body);
    assert.deepEqual([form.get('grant_type'), form.get('refresh_token'), form.get('scope')], ['refresh_token', 'REFRESH', 'repository:app:pull']);

    const direct = new Authenticator(credentials({ kind: 'registryToken', token: 'RAW' }), server.fetch);
    direct.learn('r.example', bearer, new URL('https://r.example/v2/'));
    assert.equal(await direct.authorization('r.example', 'r.example', 'app', ['repository:app:pull']), 'Bearer RAW');
    assert.equal(server.calls.length, 1);
  });

  test('relative realms resolve against the registry; https registries cannot send us to an http realm', async () => {
    const server = tokenServer(() => ({ body: JSON.stringify({ token: 'T' }) }));
    const auth = new Authenticator(credentials(), server.fetch);
    auth.learn('forgejo.example', [{ scheme: 'bearer', params: { realm: '/v2/token', service: 's' } }], new URL('https://forgejo.example/v2/app/manifests/1'));
    await auth.authorization('forgejo.example', 'forgejo.example', 'app', ['repository:app:pull']);
    assert.equal(server.calls[0]!.url.origin + server.calls[0]!.url.pathname, 'https://forgejo.example/v2/token');
    assert.throws(() => auth.learn('evil.example', [{ scheme: 'bearer', params: { realm: 'http://evil.example/token' } }], new URL('https://evil.example/v2/')), /only https/);
  });

  test('a token without expires_in lives the spec minimum of 60 s', async () => {
    let now = 0;
    let issued = 0;
    const server = tokenServer(() => ({ body: JSON.stringify({ token: `T${++issued}` }) }));
    const auth = new Authenticator(credentials(), server.fetch, () => now);
    auth.learn('r.example', bearer, registryUrl);
    const get = () => auth.authorization('r.example', 'r.example', 'app', ['repository:app:pull']);
    assert.equal(await get(), 'Bearer T1');
    now = 29_000;
    assert.equal(await get(), 'Bearer T1');
    now = 31_000;
    assert.equal(await get(), 'Bearer T2', 'less than 30 s left: refreshed');
  });
});
