// Which client a URL gets (Dispatchers.route) and what a failure through a proxy says (proxyFailure).
// The errors are undici's own, made the way its ProxyAgent makes them; the real proxy is in
// test/integration/proxy.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errors } from 'undici';
import { AuthError, RegistryError } from '../../../src/errors.ts';
import { Dispatchers } from '../../../src/oci/transport/dispatch.ts';
import { proxyFailure } from '../../../src/oci/transport/proxy-failure.ts';
import { readProxyEnvironment } from '../../../src/util/proxy-for-url.ts';

test('route: one proxy agent per proxy and TLS mode, reused; NO_PROXY and loopback direct', async () => {
  const dispatchers = new Dispatchers({
    insecureHosts: ['plain.lan:5000'],
    proxies: readProxyEnvironment({ HTTPS_PROXY: 'http://p:3128', HTTP_PROXY: 'http://q:8080', NO_PROXY: '.internal' }),
  });
  try {
    const a = dispatchers.route(new URL('https://ghcr.io/v2/'));
    const b = dispatchers.route(new URL('https://pkg-containers.githubusercontent.com/blob'));
    assert.equal(a.proxy?.host, 'p:3128');
    assert.equal(a.dispatcher, b.dispatcher, 'hosts behind one proxy share its agent (and its pools)');
    const insecure = dispatchers.route(new URL('https://plain.lan:5000/v2/'));
    assert.notEqual(insecure.dispatcher, a.dispatcher, 'an insecure host gets the unverified agent of that proxy');
    assert.equal(dispatchers.route(new URL('http://plain.lan:5000/v2/')).proxy?.host, 'q:8080');
    const direct = dispatchers.route(new URL('https://registry.internal/v2/'));
    assert.equal(direct.proxy, undefined);
    assert.equal(dispatchers.route(new URL('https://127.0.0.1:5000/v2/')).dispatcher, direct.dispatcher);
  } finally {
    await dispatchers.close();
  }
});

const proxy = new URL('http://user:s3cret@proxy.corp:3128');
const target = new URL('https://ghcr.io/v2/');

test('proxyFailure: a refused CONNECT, proxy authentication, an unreachable proxy, each one line naming the proxy', () => {
  const tunnel = (status: number) => new errors.RequestAbortedError(`Proxy response (${status}) !== 200 when HTTP Tunneling`);
  const refused = proxyFailure('ghcr.io', target, proxy, tunnel(403));
  assert.ok(refused instanceof AuthError);
  assert.match(refused.message, /^ghcr\.io: proxy http:\/\/proxy\.corp:3128 refused CONNECT to ghcr\.io \(HTTP 403\)/);

  const auth = proxyFailure('ghcr.io', target, proxy, tunnel(407));
  assert.ok(auth instanceof AuthError);
  assert.equal(auth.message, 'ghcr.io: proxy http://proxy.corp:3128 requires authentication (HTTP 407): the credentials in HTTPS_PROXY were refused');
  const none = proxyFailure('lan:5000', new URL('http://lan:5000/v2/'), new URL('http://proxy.corp:3128'), new errors.InvalidArgumentError('Proxy Authentication Required (407)'));
  assert.equal((none as Error).message, 'lan:5000: proxy http://proxy.corp:3128 requires authentication (HTTP 407): put them in HTTP_PROXY as http://USER:PASSWORD@proxy.corp:3128');

  const badGateway = proxyFailure('ghcr.io', target, proxy, tunnel(502));
  assert.ok(badGateway instanceof RegistryError && badGateway.transient);

  const down = proxyFailure('ghcr.io', target, proxy, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
  assert.ok(down instanceof RegistryError && down.transient);
  assert.equal(down.message, 'ghcr.io: cannot reach proxy http://proxy.corp:3128 (HTTPS_PROXY): connection refused');

  for (const err of [refused, auth, none, badGateway, down]) assert.doesNotMatch((err as Error).message, /s3cret/);
  const aborted = new DOMException('stopped', 'AbortError');
  assert.equal(proxyFailure('ghcr.io', target, proxy, aborted), aborted, 'an interrupt stays an interrupt');
});
