// What a failure through an HTTP proxy means, said once and naming the proxy (never its
// credentials): a tunnel the proxy refused (CONNECT answered 403, or another status), a proxy that
// wants credentials (407), a proxy that cannot be reached. Anything else that went through a proxy
// keeps its usual meaning and says which proxy it went through.
import { AuthError, RegistryError } from '../../errors.ts';
import { describeProxy } from '../../util/proxy-for-url.ts';
import { errorCode, isTransientNetworkError, retryableStatuses } from '../../util/retry-policy.ts';
import { classifyNetworkError } from './error.ts';

/** The error a request to `target` through `proxy` failed with, as an AuthError or RegistryError naming the proxy. */
export function proxyFailure(registry: string, target: URL, proxy: URL, err: unknown): unknown {
  if (err instanceof AuthError || err instanceof RegistryError) return err;
  const name = describeProxy(proxy);
  const variable = target.protocol === 'https:' ? 'HTTPS_PROXY' : 'HTTP_PROXY';
  const message = err instanceof Error ? err.message : '';
  const status = Number(/Proxy response \((\d{3})\) !== 200/.exec(message)?.[1] ?? (/Proxy Authentication Required \(407\)/.test(message) ? 407 : 0));
  // Proxies answer wrong credentials with 407, or (tinyproxy) 401.
  if (status === 407 || (status === 401 && proxy.username)) {
    const fix = proxy.username ? `the credentials in ${variable} were refused` : `put them in ${variable} as ${proxy.protocol}//USER:PASSWORD@${proxy.host}`;
    return new AuthError(registry, `${registry}: proxy ${name} requires authentication (HTTP ${status}): ${fix}`, status);
  }
  if (status === 403) {
    return new AuthError(registry, `${registry}: proxy ${name} refused CONNECT to ${target.host} (HTTP 403): the proxy does not allow this host or port; if the registry is reachable directly, add it to NO_PROXY`, 403);
  }
  if (status) {
    return new RegistryError(registry, `${registry}: proxy ${name} could not open a tunnel to ${target.host} (HTTP ${status})`, {
      status, transient: retryableStatuses.has(status), cause: err,
    });
  }
  if (err instanceof Error && err.name === 'AbortError') return err;
  const code = errorCode(err);
  if (code === undefined) return err;
  const unreachable: Record<string, string> = {
    ECONNREFUSED: 'connection refused', ENOTFOUND: 'host not found', EAI_AGAIN: 'host not found', EHOSTUNREACH: 'no route to host',
    ENETUNREACH: 'network unreachable', UND_ERR_CONNECT_TIMEOUT: 'connect timeout', ETIMEDOUT: 'timed out',
  };
  if (unreachable[code]) {
    return new RegistryError(registry, `${registry}: cannot reach proxy ${name} (${variable}): ${unreachable[code]}`, { transient: isTransientNetworkError(err), cause: err });
  }
  if (code === 'UND_ERR_PRX_TLS') {
    return new RegistryError(registry, `${registry}: TLS to proxy ${name} failed: its certificate does not match its name`, { transient: false, cause: err });
  }
  const classified = classifyNetworkError(registry, err);
  return classified instanceof RegistryError
    ? new RegistryError(registry, `${classified.message} (through proxy ${name})`, { transient: classified.transient, cause: err })
    : classified;
}
