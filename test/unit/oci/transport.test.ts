import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MockAgent } from 'undici';
import { AuthError, RegistryError } from '../../../src/errors.ts';
import type { Credential } from '../../../src/auth/credential.ts';
import { Transport } from '../../../src/oci/transport/transport.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { withDigest } from '../../../src/oci/registry.ts';
import { createLimiter } from '../../../src/util/limit.ts';
import { backoffMs, retryAfterMs, throttleWaitMs } from '../../../src/util/retry-policy.ts';

test('Retry-After in seconds or as an HTTP date, capped at two minutes; garbage ignored', () => {
  const now = Date.parse('2026-11-21T12:00:00Z');
  assert.equal(retryAfterMs('3', now), 3000);
  assert.equal(retryAfterMs(['7'], now), 7000);
  assert.equal(retryAfterMs('Sat, 21 Nov 2026 12:00:05 GMT', now), 5000);
  assert.equal(retryAfterMs('Sat, 21 Nov 2026 11:00:00 GMT', now), 0, 'a date in the past means now');
  assert.equal(retryAfterMs('86400', now), 120_000);
  assert.equal(retryAfterMs('soon', now), undefined);
  assert.equal(retryAfterMs(undefined, now), undefined);
});

test('how long a 429 asks to wait, uncapped: Retry-After, else RateLimit-Reset, else a spent quota\'s window', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  assert.equal(throttleWaitMs({ 'retry-after': '86400' }, now), 86_400_000, 'not capped: the decision to give up needs the real figure');
  assert.equal(throttleWaitMs({ 'retry-after': 'Mon, 07 Dec 2026 12:10:00 GMT' }, now), 600_000);
  assert.equal(throttleWaitMs({ 'ratelimit-reset': '90' }, now), 90_000);
  assert.equal(throttleWaitMs({ 'ratelimit-reset': String(now / 1000 + 300) }, now), 300_000, 'a Unix time');
  assert.equal(throttleWaitMs({ 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600' }, now), 21_600_000, "Docker Hub's spent quota: its window");
  assert.equal(throttleWaitMs({ 'ratelimit-remaining': '12;w=21600' }, now), undefined, 'quota left: nothing said');
  assert.equal(throttleWaitMs({}, now), undefined);
});

test('backoff grows exponentially with jitter inside [ceiling/2, ceiling], never past the maximum', () => {
  const policy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };
  for (let i = 0; i < 200; i++) {
    const first = backoffMs(1, policy);
    const third = backoffMs(3, policy);
    const tenth = backoffMs(10, policy);
    assert.ok(first >= 50 && first <= 100, `attempt 1: ${first}`);
    assert.ok(third >= 200 && third <= 400, `attempt 3: ${third}`);
    assert.ok(tenth >= 500 && tenth <= 1000, `attempt 10: ${tenth}`);
  }
});

test('withDigest appends to an upload Location without re-encoding its state token', () => {
  assert.equal(withDigest('http://r/v2/a/blobs/uploads/u?_state=a+b%2Fc%3D%3D', 'sha256:00'),
    'http://r/v2/a/blobs/uploads/u?_state=a+b%2Fc%3D%3D&digest=sha256%3A00');
  assert.equal(withDigest('/v2/a/blobs/uploads/u', 'sha256:00'), '/v2/a/blobs/uploads/u?digest=sha256%3A00');
});

test('the limiter never runs more than n tasks at once, and runs them all', async () => {
  const limit = createLimiter(3);
  let running = 0;
  let peak = 0;
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => limit(async () => {
    running++;
    peak = Math.max(peak, running);
    await sleep(i % 3);
    running--;
    return i;
  })));
  assert.equal(peak, 3);
  assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => i));
  assert.throws(() => createLimiter(0), /at least 1/);
});

test('a failing task frees its slot', async () => {
  const limit = createLimiter(1);
  await assert.rejects(limit(async () => { throw new Error('boom'); }), /boom/);
  assert.equal(await limit(async () => 'next'), 'next');
});

// The transport's layers against undici's MockAgent. These answers are written by hand on purpose:
// redirects to a credential-less host, revoked tokens and https-to-http downgrades are what the
// harness's registries never do, and the integration tests cover what real registries do answer.
describe('Transport layers (MockAgent)', () => {
  const registry = 'registry.test';
  const alice: Credential = { kind: 'basic', username: 'alice', password: 'pw' };
  const basicHeader = `Basic ${Buffer.from('alice:pw').toString('base64')}`;
  const blobPath = '/v2/app/blobs/sha256:00';

  function setUp(credential?: Credential, insecureHosts: string[] = []) {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const transport = new Transport({
      credentials: { lookup: async () => credential }, dispatcher: agent, insecureHosts,
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
    });
    return { agent, transport };
  }

  const authorizationOf = (opts: { headers?: Headers | Record<string, string> }) =>
    opts.headers instanceof Headers ? opts.headers.get('authorization') ?? undefined : opts.headers?.authorization;

  test('credentials reach the registry, never the host it redirects a blob to', async () => {
    const { agent, transport } = setUp(alice);
    const seen: Array<string | undefined> = [];
    const origin = agent.get(`https://${registry}`);
    origin.intercept({ path: blobPath, method: 'GET' }).reply(401, '', { headers: { 'www-authenticate': 'Basic realm="r"' } });
    origin.intercept({ path: blobPath, method: 'GET' }).reply((opts) => {
      seen.push(authorizationOf(opts));
      return { statusCode: 307, data: '', responseOptions: { headers: { location: 'https://cdn.test/blob?sig=1' } } };
    });
    agent.get('https://cdn.test').intercept({ path: '/blob?sig=1', method: 'GET' }).reply((opts) => {
      seen.push(authorizationOf(opts));
      return { statusCode: 200, data: 'bytes' };
    });
    const response = await transport.send({ registry, repository: 'app', method: 'GET', path: blobPath, scopes: ['repository:app:pull'], followRedirects: true });
    assert.equal(await response.body.text(), 'bytes');
    assert.equal(response.url.host, 'cdn.test');
    assert.deepEqual(seen, [basicHeader, undefined]);
    assert.equal(transport.stats.get(registry)?.requests, 3);
    agent.assertNoPendingInterceptors();
  });

  test('a redirect from https to http is refused, not followed', async () => {
    const { agent, transport } = setUp();
    agent.get(`https://${registry}`).intercept({ path: blobPath, method: 'GET' }).reply(302, '', { headers: { location: 'http://cdn.test/blob' } });
    await assert.rejects(transport.send({ registry, method: 'GET', path: blobPath, scopes: [], followRedirects: true }),
      (err: Error) => err instanceof RegistryError && /refused a redirect from https to http/.test(err.message));
  });

  test('a revoked token is fetched anew once, and the request goes through', async () => {
    const { agent, transport } = setUp(alice);
    const origin = agent.get(`https://${registry}`);
    const challenge = { 'www-authenticate': `Bearer realm="https://auth.test/token",service="${registry}",scope="repository:app:pull"` };
    let tokens = 0;
    agent.get('https://auth.test').intercept({ path: (p) => p.startsWith('/token?'), method: 'GET' }).reply((opts) => {
      assert.equal(authorizationOf(opts), basicHeader, 'the token server gets the credentials');
      return { statusCode: 200, data: JSON.stringify({ token: `T${++tokens}`, expires_in: 300 }) };
    }).persist();
    const answered: Array<string | undefined> = [];
    const answer = (status: number) => origin.intercept({ path: '/v2/app/manifests/1', method: 'HEAD' }).reply((opts) => {
      answered.push(authorizationOf(opts));
      return { statusCode: status, data: '', responseOptions: { headers: status === 401 ? challenge : {} } };
    });
    answer(401); // first contact: the challenge
    answer(200); // with T1
    const head = { registry, repository: 'app', method: 'HEAD' as const, path: '/v2/app/manifests/1', scopes: ['repository:app:pull'] };
    assert.equal((await transport.send(head)).status, 200);
    answer(401); // T1 revoked
    answer(200); // with T2
    assert.equal((await transport.send(head)).status, 200);
    assert.deepEqual(answered, [undefined, 'Bearer T1', 'Bearer T1', 'Bearer T2']);
    assert.equal(tokens, 2);
  });

  test('429 waits for Retry-After and counts the retry; a 404 is an error at once', async () => {
    const { agent, transport } = setUp();
    const origin = agent.get(`https://${registry}`);
    origin.intercept({ path: '/v2/app/manifests/1', method: 'GET' }).reply(429, '', { headers: { 'retry-after': '0' } });
    origin.intercept({ path: '/v2/app/manifests/1', method: 'GET' }).reply(200, '{}');
    const events: string[] = [];
    const response = await transport.send({ registry, method: 'GET', path: '/v2/app/manifests/1', scopes: [] });
    assert.equal(await response.body.text(), '{}');
    assert.deepEqual(transport.stats.get(registry)?.retries, 1);
    origin.intercept({ path: '/v2/app/manifests/2', method: 'GET' })
      .reply(404, JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
    await assert.rejects(transport.send({ registry, method: 'GET', path: '/v2/app/manifests/2', scopes: [] }), (err: Error) => {
      events.push(err.message);
      return err instanceof RegistryError && err.status === 404 && err.code === 'MANIFEST_UNKNOWN' && !err.transient;
    });
    assert.match(events[0]!, /GET \/v2\/app\/manifests\/2 failed \(HTTP 404: MANIFEST_UNKNOWN: manifest unknown\)/);
  });

  test('a 429 asking for longer than the run waits is not retried, and gives the registry up: later requests fail without being sent', async () => {
    const { agent, transport } = setUp();
    const origin = agent.get(`https://${registry}`);
    origin.intercept({ path: '/v2/app/manifests/1', method: 'GET' }).reply(429,
      JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'You have reached your pull rate limit.' }] }),
      { headers: { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600' } });
    await assert.rejects(transport.send({ registry, method: 'GET', path: '/v2/app/manifests/1', scopes: [] }), (err: Error) =>
      err instanceof RegistryError && err.condition === 'rate-limited' && !err.transient
      && /^registry\.test: rate limit reached \(HTTP 429: TOOMANYREQUESTS: You have reached your pull rate limit\.\); wait until \d\d:\d\d UTC$/.test(err.message));
    assert.equal(transport.stats.get(registry)?.retries, 0, 'not retried');
    // No interceptor is left: a request that reached the wire would fail differently.
    await assert.rejects(transport.send({ registry, method: 'HEAD', path: '/v2/other/manifests/2', scopes: [] }), (err: Error) =>
      err instanceof RegistryError && /rate limit reached/.test(err.message));
    assert.equal(transport.stats.get(registry)?.requests, 1);
    assert.match(transport.givenUp.get(registry)?.message ?? '', /rate limit reached/);
    assert.equal(transport.stats.get(registry)?.manifestGets, 1);
  });

  test("Docker Hub's 429 says to authenticate; a short Retry-After is waited out as before", async () => {
    const { agent, transport } = setUp();
    agent.get('https://registry-1.docker.io').intercept({ path: '/v2/library/nginx/manifests/1', method: 'GET' }).reply(429, '', { headers: { 'retry-after': '7200' } });
    await assert.rejects(transport.send({ registry: 'docker.io', method: 'GET', path: '/v2/library/nginx/manifests/1', scopes: [] }), (err: Error) =>
      /^docker\.io pull rate limit reached \(HTTP 429\); authenticate with a Docker Hub account, or wait until \d\d:\d\d UTC$/.test(err.message));
  });

  test("an error's detail is shown: a registry out of space says so", async () => {
    const { agent, transport } = setUp();
    agent.get(`https://${registry}`).intercept({ path: '/v2/app/blobs/uploads/x', method: 'PUT' })
      .reply(500, JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'unknown error', detail: 'write /var/lib/registry/x/data: no space left on device' }] })).times(3);
    await assert.rejects(transport.send({ registry, method: 'PUT', path: '/v2/app/blobs/uploads/x', scopes: [] }), (err: Error) =>
      err instanceof RegistryError && err.condition === 'storage-full'
      && /the registry is out of storage space: PUT \/v2\/app\/blobs\/uploads\/x failed \(HTTP 500: UNKNOWN: unknown error: write .*: no space left on device\)/.test(err.message));
  });

  test('an insecure host that does not answer https is reached over http; a secure one never is', async () => {
    const { agent, transport } = setUp(undefined, ['plain.test:5000']);
    agent.get('https://plain.test:5000').intercept({ path: '/v2/', method: 'GET' }).replyWithError(Object.assign(new Error('wrong version number'), { code: 'EPROTO' }));
    agent.get('http://plain.test:5000').intercept({ path: '/v2/app/tags/list', method: 'GET' }).reply(200, '{"tags":[]}');
    const response = await transport.send({ registry: 'plain.test:5000', method: 'GET', path: '/v2/app/tags/list', scopes: [] });
    assert.equal(response.url.protocol, 'http:');
    assert.equal(await response.body.text(), '{"tags":[]}');
    assert.equal(transport.isInsecure('plain.test:5000'), true);
    assert.equal(transport.isInsecure(registry), false);
  });

  test('refused scope names the repository and the scope, and says the credentials are valid', async () => {
    const { agent, transport } = setUp(alice);
    const origin = agent.get(`https://${registry}`);
    origin.intercept({ path: '/v2/app/blobs/uploads/', method: 'POST' }).reply(401, '', { headers: { 'www-authenticate': 'Basic realm="r"' } });
    origin.intercept({ path: '/v2/app/blobs/uploads/', method: 'POST' })
      .reply(401, '', { headers: { 'www-authenticate': 'Bearer realm="x",error="insufficient_scope",scope="repository:app:pull,push"' } });
    await assert.rejects(transport.send({ registry, repository: 'app', method: 'POST', path: '/v2/app/blobs/uploads/', scopes: ['repository:app:pull,push'] }),
      (err: Error) => err instanceof AuthError && /the credentials are valid but may not push to app: the token server did not grant the scope "repository:app:pull,push"/.test(err.message));
  });
  test("postForm (ACR's token exchange): a path goes to the registry's origin, a URL as it is; no credential is added; any status comes back", async () => {
    const { agent, transport } = setUp(alice, ['plain.test:5000']);
    const seen: Array<{ authorization: string | undefined; body: string }> = [];
    const record = (status: number, data: string) => (opts: { headers?: Headers | Record<string, string>; body?: unknown }) => {
      seen.push({ authorization: authorizationOf(opts), body: String(opts.body) });
      return { statusCode: status, data };
    };
    agent.get('https://plain.test:5000').intercept({ path: '/v2/', method: 'GET' }).replyWithError(Object.assign(new Error('wrong version number'), { code: 'EPROTO' }));
    agent.get('http://plain.test:5000').intercept({ path: '/oauth2/exchange', method: 'POST' }).reply(record(401, '{"errors":[{"code":"UNAUTHORIZED"}]}'));
    agent.get('https://login.test').intercept({ path: '/tenant/oauth2/v2.0/token', method: 'POST' }).reply(record(200, '{"access_token":"t"}'));
    const exchange = await transport.postForm('plain.test:5000', '/oauth2/exchange', new URLSearchParams({ grant_type: 'access_token' }));
    assert.deepEqual(exchange, { status: 401, body: '{"errors":[{"code":"UNAUTHORIZED"}]}' }, 'an insecure host is probed as for every request');
    const entra = await transport.postForm(registry, 'https://login.test/tenant/oauth2/v2.0/token', new URLSearchParams({ a: '1 2' }));
    assert.deepEqual(entra, { status: 200, body: '{"access_token":"t"}' });
    assert.deepEqual(seen, [{ authorization: undefined, body: 'grant_type=access_token' }, { authorization: undefined, body: 'a=1+2' }]);
  });
});
