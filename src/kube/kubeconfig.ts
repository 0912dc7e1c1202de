// Kubeconfig loading like kubectl: --kubeconfig, then KUBECONFIG (several files), then
// ~/.kube/config, then the in-cluster ServiceAccount; --context picks a context. The API server is
// reached through the cluster's proxy-url when the kubeconfig names one, else through the proxy
// HTTPS_PROXY / HTTP_PROXY / NO_PROXY name for its URL, as kubectl does; client-node 2.0.1 reads
// only proxy-url, so the environment's choice is written into the loaded cluster as its proxy-url.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { UsageError } from '../errors.ts';
import { describeProxy, proxyForUrl, ProxyVariableError, readProxyEnvironment } from '../util/proxy-for-url.ts';

const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConfigOptions {
  kubeconfig?: string;
  context?: string;
  env: Record<string, string | undefined>;
}

export interface LoadedKubeConfig {
  kc: KubeConfig;
  /** Where it came from, for messages. */
  source: string;
  /** The namespace image-clone runs in, when it runs in a pod. */
  ownNamespace?: string;
}

export function loadKubeConfig(options: KubeConfigOptions): LoadedKubeConfig {
  const kc = new KubeConfig();
  let source: string;
  let ownNamespace: string | undefined;
  const envPaths = options.env.KUBECONFIG?.split(':').filter(Boolean) ?? [];
  const defaultPath = join(homedir(), '.kube', 'config');
  try {
    if (options.kubeconfig) {
      source = options.kubeconfig;
      if (!existsSync(source)) throw new UsageError(`kubeconfig ${source} does not exist`);
      kc.loadFromFile(source);
    } else if (envPaths.length) {
      source = `KUBECONFIG (${envPaths.join(', ')})`;
      const missing = envPaths.filter((p) => !existsSync(p));
      if (missing.length === envPaths.length) throw new UsageError(`KUBECONFIG names no existing file (${envPaths.join(', ')})`);
      // current-context from the first file, as kubectl does.
      kc.loadFromDefault(undefined, true);
    } else if (existsSync(defaultPath)) {
      source = defaultPath;
      kc.loadFromFile(defaultPath);
    } else if (options.env.KUBERNETES_SERVICE_HOST && existsSync(join(serviceAccountDir, 'token'))) {
      source = 'the in-cluster ServiceAccount';
      kc.loadFromCluster();
      ownNamespace = readFileSync(join(serviceAccountDir, 'namespace'), 'utf8').trim() || undefined;
    } else {
      throw new UsageError('no kubeconfig found: pass --kubeconfig FILE, set KUBECONFIG, or run in a pod with a ServiceAccount');
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // client-node's messages name the problem but not the file.
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new UsageError(`cannot load kubeconfig ${options.kubeconfig ?? envPaths.join(':') ?? defaultPath}: ${why}`);
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      throw new UsageError(`context "${options.context}" is not in ${source} (it has: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`);
    }
    kc.setCurrentContext(options.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new UsageError(`${source} has no current context with a cluster; pass --context`);
  }
  proxyFromEnvironment(kc, options.env);
  return { kc, source, ...(ownNamespace ? { ownNamespace } : {}) };
}

/** Sets the current cluster's proxy-url from the environment when the kubeconfig names none. */
function proxyFromEnvironment(kc: KubeConfig, env: Record<string, string | undefined>): void {
  const cluster = kc.getCurrentCluster();
  if (!cluster || cluster.proxyUrl) return;
  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch {
    return; // client-node says what is wrong with it on the first request
  }
  let proxy: URL | undefined;
  try {
    proxy = proxyForUrl(server, readProxyEnvironment(env));
  } catch (err) {
    if (err instanceof ProxyVariableError) throw new UsageError(err.message);
    throw err;
  }
  if (!proxy) return;
  kc.clusters = kc.clusters.map((c) => (c === cluster ? { ...c, proxyUrl: proxy.href } : c));
}

/** The proxy the API server is reached through, for messages (no credentials), or undefined. */
export function apiProxy(kc: KubeConfig): string | undefined {
  const proxyUrl = kc.getCurrentCluster()?.proxyUrl;
  if (!proxyUrl) return undefined;
  try {
    return describeProxy(new URL(proxyUrl));
  } catch {
    return undefined;
  }
}
