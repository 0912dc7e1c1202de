// proxyForUrl decides as Go's net/http (ProxyFromEnvironment) does, the rules kubectl, skopeo and
// containerd follow; each case below is one of those rules.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeProxy, ProxyVariableError, proxyForUrl, readProxyEnvironment } from '../../../src/util/proxy-for-url.ts';

const base = { HTTPS_PROXY: 'http://proxy.corp:3128', HTTP_PROXY: 'http://plain-proxy.corp:8080' };

function via(url: string, env: Record<string, string | undefined>): string | undefined {
  return proxyForUrl(new URL(url), readProxyEnvironment(env))?.host;
}

describe('proxyForUrl', () => {
  test('https goes through HTTPS_PROXY, http through HTTP_PROXY; neither falls back to the other', () => {
    assert.equal(via('https://registry-1.docker.io/v2/', base), 'proxy.corp:3128');
    assert.equal(via('http://registry.lan:5000/v2/', base), 'plain-proxy.corp:8080');
    assert.equal(via('https://ghcr.io/v2/', { HTTP_PROXY: base.HTTP_PROXY }), undefined);
    assert.equal(via('http://registry.lan/v2/', { HTTPS_PROXY: base.HTTPS_PROXY }), undefined);
  });

  test('no variables: direct', () => {
    assert.equal(via('https://ghcr.io/v2/', {}), undefined);
    assert.deepEqual(readProxyEnvironment({}), { noProxy: '' });
  });

  test('lower-case forms are read; upper case wins when both are set (as Go does)', () => {
    assert.equal(via('https://ghcr.io/', { https_proxy: 'http://lower:1' }), 'lower:1');
    assert.equal(via('https://ghcr.io/', { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:2' }), 'upper:2');
    assert.equal(via('https://ghcr.io/', { ...base, no_proxy: 'ghcr.io' }), undefined);
    assert.equal(via('https://ghcr.io/', { ...base, NO_PROXY: 'quay.io', no_proxy: 'ghcr.io' }), 'proxy.corp:3128');
  });

  test('a proxy without a scheme is an http proxy; an empty variable is unset', () => {
    assert.equal(proxyForUrl(new URL('https://ghcr.io/'), readProxyEnvironment({ HTTPS_PROXY: 'proxy.corp:3128' }))?.href, 'http://proxy.corp:3128/');
    assert.equal(via('https://ghcr.io/', { HTTPS_PROXY: '  ', https_proxy: 'http://lower:1' }), 'lower:1');
  });

  test('localhost and loopback addresses are never proxied by the variables', () => {
    for (const url of ['https://localhost:5000/', 'http://127.0.0.1:5000/', 'http://127.9.9.9/', 'https://[::1]:5000/', 'http://LOCALHOST./']) {
      assert.equal(via(url, base), undefined, url);
    }
    assert.equal(via('http://10.0.0.1:5000/', base), 'plain-proxy.corp:8080');
  });

  test('NO_PROXY: a domain covers itself and its subdomains, not a name that merely ends the same', () => {
    const env = { ...base, NO_PROXY: 'corp.example' };
    assert.equal(via('https://corp.example/', env), undefined);
    assert.equal(via('https://registry.corp.example/', env), undefined);
    assert.equal(via('https://notcorp.example/', env), 'proxy.corp:3128');
  });

  test('NO_PROXY: .domain and *.domain cover subdomains only', () => {
    for (const entry of ['.corp.example', '*.corp.example']) {
      const env = { ...base, NO_PROXY: entry };
      assert.equal(via('https://registry.corp.example/', env), undefined, entry);
      assert.equal(via('https://corp.example/', env), 'proxy.corp:3128', entry);
    }
  });

  test('NO_PROXY: * turns proxying off', () => {
    assert.equal(via('https://ghcr.io/', { ...base, NO_PROXY: 'quay.io, *' }), undefined);
  });

  test('NO_PROXY: IP addresses and CIDR blocks match IP hosts', () => {
    const env = { ...base, NO_PROXY: '10.96.0.0/12,192.168.1.7,fd00::/8,2001:db8::1' };
    assert.equal(via('https://10.96.0.1/', env), undefined);
    assert.equal(via('https://10.111.255.255:6443/', env), undefined);
    assert.equal(via('https://10.112.0.1/', env), 'proxy.corp:3128');
    assert.equal(via('http://192.168.1.7:5000/', env), undefined);
    assert.equal(via('http://192.168.1.8:5000/', env), 'plain-proxy.corp:8080');
    assert.equal(via('https://[fd00::5]/', env), undefined);
    assert.equal(via('https://[2001:db8::1]:5000/', env), undefined);
    assert.equal(via('https://[2001:db8::2]/', env), 'proxy.corp:3128');
    // A CIDR block does not match a name, even one that resolves into it.
    assert.equal(via('https://kubernetes.default.svc/', env), 'proxy.corp:3128');
  });

  test('NO_PROXY: host:port matches that port only; the scheme gives the default port', () => {
    const env = { ...base, NO_PROXY: 'registry.lan:5000,ghcr.io:443,[2001:db8::1]:8443,10.0.0.9:80' };
    assert.equal(via('http://registry.lan:5000/', env), undefined);
    assert.equal(via('http://registry.lan:5001/', env), 'plain-proxy.corp:8080');
    assert.equal(via('https://ghcr.io/', env), undefined);
    assert.equal(via('https://ghcr.io:8443/', env), 'proxy.corp:3128');
    assert.equal(via('https://[2001:db8::1]:8443/', env), undefined);
    assert.equal(via('http://10.0.0.9/', env), undefined);
    assert.equal(via('https://10.0.0.9/', env), 'proxy.corp:3128');
  });

  test('NO_PROXY: case, spaces, trailing dots and empty entries do not matter', () => {
    const env = { ...base, NO_PROXY: ' , Quay.IO. ,, ' };
    assert.equal(via('https://quay.io/', env), undefined);
    assert.equal(via('https://CDN.QUAY.IO./', env), undefined);
  });
});

describe('readProxyEnvironment', () => {
  test('a proxy URL that cannot be used is an error naming the variable, never the credentials', () => {
    assert.throws(() => readProxyEnvironment({ HTTPS_PROXY: 'socks5://user:s3cret@proxy:1080' }), (err: unknown) => {
      assert.ok(err instanceof ProxyVariableError);
      assert.match(err.message, /^HTTPS_PROXY names a socks5 proxy/);
      assert.doesNotMatch(err.message, /s3cret/);
      return true;
    });
    assert.throws(() => readProxyEnvironment({ http_proxy: 'http://us:s3cret@' }), (err: unknown) => {
      assert.ok(err instanceof ProxyVariableError);
      assert.match(err.message, /^http_proxy is not a proxy URL/);
      assert.doesNotMatch(err.message, /s3cret/);
      return true;
    });
  });

  test('describeProxy drops the credentials', () => {
    assert.equal(describeProxy(new URL('http://user:s3cret@proxy.corp:3128')), 'http://proxy.corp:3128');
  });
});
