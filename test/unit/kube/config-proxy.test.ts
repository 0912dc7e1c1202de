// The API server is reached through a proxy as kubectl would reach it: the kubeconfig's proxy-url
// when it names one, else the proxy the environment names for the server's URL.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UsageError } from '../../../src/errors.ts';
import { apiProxy, loadKubeConfig } from '../../../src/kube/kubeconfig.ts';
import { kubeError } from '../../../src/kube/api-failures.ts';

function kubeconfig(server: string, proxyUrl?: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'ic-kubeconfig-')), 'config');
  writeFileSync(path, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
    clusters: [{ name: 'k', cluster: { server, ...(proxyUrl ? { 'proxy-url': proxyUrl } : {}) } }, { name: 'other', cluster: { server: 'https://other.example' } }],
    users: [{ name: 'u', user: { token: 't' } }],
    contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
  }));
  return path;
}

const proxyEnv = { HTTPS_PROXY: 'http://user:s3cret@proxy.corp:3128' };

test('HTTPS_PROXY becomes the current cluster\'s proxy-url; NO_PROXY and loopback keep it direct', () => {
  const { kc } = loadKubeConfig({ kubeconfig: kubeconfig('https://api.example:6443'), env: proxyEnv });
  assert.equal(kc.getCurrentCluster()?.proxyUrl, 'http://user:s3cret@proxy.corp:3128/');
  assert.equal(apiProxy(kc), 'http://proxy.corp:3128', 'messages never show the credentials');
  assert.equal(kc.getCluster('other')?.proxyUrl, undefined, 'only the cluster in use is touched');
  for (const [server, env] of [['https://10.96.0.1', { ...proxyEnv, NO_PROXY: '10.96.0.0/12' }], ['https://127.0.0.1:6443', proxyEnv], ['https://api.example', {}]] as const) {
    const loaded = loadKubeConfig({ kubeconfig: kubeconfig(server), env });
    assert.equal(loaded.kc.getCurrentCluster()?.proxyUrl, undefined, server);
    assert.equal(apiProxy(loaded.kc), undefined);
  }
});

test('a proxy-url in the kubeconfig wins over the environment, as in kubectl', () => {
  const { kc } = loadKubeConfig({ kubeconfig: kubeconfig('https://api.example', 'http://named.proxy:8080'), env: { ...proxyEnv, NO_PROXY: '*' } });
  assert.equal(kc.getCurrentCluster()?.proxyUrl, 'http://named.proxy:8080');
});

test('a proxy variable that is no proxy URL is a usage error', () => {
  assert.throws(() => loadKubeConfig({ kubeconfig: kubeconfig('https://api.example'), env: { HTTPS_PROXY: 'socks5://proxy:1080' } }), UsageError);
});

test('kubeError names the proxy: a refused tunnel, proxy authentication, an unreachable proxy (fetch wraps the cause twice)', () => {
  // The chain as undici's fetch throws it: TypeError -> DOMException -> the ProxyAgent's error.
  const wrapped = (inner: Error) => new TypeError('fetch failed', { cause: Object.assign(new DOMException('Request was cancelled.'), { cause: inner }) });
  const refused = kubeError(wrapped(new Error('Proxy response (403) !== 200 when HTTP Tunneling')), 'list pods', 'http://proxy:3128');
  assert.equal(refused.message, 'cannot list pods: proxy http://proxy:3128 refused CONNECT to the API server (HTTP 403); if the API server is reachable directly, add it to NO_PROXY');
  assert.equal(refused.status, 403);
  const auth = kubeError(wrapped(new Error('Proxy response (407) !== 200 when HTTP Tunneling')), 'list pods', 'http://proxy:3128');
  assert.equal(auth.status, 407);
  assert.match(auth.message, /^cannot list pods: proxy http:\/\/proxy:3128 requires authentication \(HTTP 407\)/);
  const down = kubeError(wrapped(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), 'list pods', 'http://proxy:3128');
  assert.equal(down.message, 'cannot list pods: the API server is unreachable through proxy http://proxy:3128 (ECONNREFUSED)');
  assert.equal(down.status, undefined);
});
