// Which proxy a URL goes through, decided the way Go's clients (kubectl, skopeo, containerd, crane,
// Helm) decide it: HTTPS_PROXY for https, HTTP_PROXY for http (upper case first, then lower case),
// none for localhost and loopback addresses, and none for a host NO_PROXY names. NO_PROXY holds
// comma-separated entries: `*` (nothing is proxied), an IP address, a CIDR block, a domain (which
// covers itself and its subdomains), `.domain` or `*.domain` (subdomains only), each optionally with
// `:port`. Pure: the environment is passed in.
import { BlockList, isIP } from 'node:net';

export interface ProxyEnvironment {
  /** For https URLs (HTTPS_PROXY / https_proxy). */
  https?: URL;
  /** For http URLs (HTTP_PROXY / http_proxy). */
  http?: URL;
  /** NO_PROXY / no_proxy as given. */
  noProxy: string;
}

/** A proxy variable that does not hold a usable proxy URL; the message names the variable, never its credentials. */
export class ProxyVariableError extends Error {
  override name = 'ProxyVariableError';
}

function lookup(env: Record<string, string | undefined>, name: string): [string, string] | undefined {
  for (const key of [name.toUpperCase(), name.toLowerCase()]) {
    const value = env[key]?.trim();
    if (value) return [key, value];
  }
  return undefined;
}

/** Parses a proxy URL as Go does: a value without a scheme is an http:// proxy. Only http and https proxies are supported. */
function parseProxyUrl(variable: string, value: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
  } catch {
    url = undefined;
  }
  if (!url || !url.hostname) throw new ProxyVariableError(`${variable} is not a proxy URL (expected http://host:port or https://host:port)`);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ProxyVariableError(`${variable} names a ${url.protocol.replace(':', '')} proxy; only http:// and https:// proxies are supported`);
  }
  return url;
}

/** The proxy settings in an environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY and their lower-case forms). */
export function readProxyEnvironment(env: Record<string, string | undefined>): ProxyEnvironment {
  const https = lookup(env, 'https_proxy');
  const http = lookup(env, 'http_proxy');
  return {
    ...(https ? { https: parseProxyUrl(...https) } : {}),
    ...(http ? { http: parseProxyUrl(...http) } : {}),
    noProxy: lookup(env, 'no_proxy')?.[1] ?? '',
  };
}

/** The proxy to send a request for `target` through, or undefined to go direct. */
export function proxyForUrl(target: URL, proxies: ProxyEnvironment): URL | undefined {
  const proxy = target.protocol === 'https:' ? proxies.https : target.protocol === 'http:' ? proxies.http : undefined;
  if (!proxy) return undefined;
  const host = unbracket(target.hostname.toLowerCase()).replace(/\.$/, '');
  if (host === 'localhost' || isLoopback(host)) return undefined;
  const port = Number(target.port) || (target.protocol === 'https:' ? 443 : 80);
  return excludedBy(proxies.noProxy, host, port) ? undefined : proxy;
}

/** A proxy URL fit for a message: scheme, host and port, never credentials. */
export function describeProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function isLoopback(host: string): boolean {
  const family = isIP(host);
  if (family === 4) return host.startsWith('127.');
  if (family === 6) return inBlock(host, '::1', 128) || inBlock(host, '::ffff:127.0.0.0', 104);
  return false;
}

function inBlock(ip: string, network: string, prefix: number): boolean {
  try {
    const list = new BlockList();
    const type = isIP(network) === 6 ? 'ipv6' : 'ipv4';
    list.addSubnet(network, prefix, type);
    return list.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
  } catch {
    return false;
  }
}

/** An entry's host and port: `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. */
function splitHostPort(entry: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { host: bracketed[1]!, port: Number(bracketed[2] ?? 0) };
  const withPort = /^([^:]+):(\d+)$/.exec(entry);
  if (withPort) return { host: withPort[1]!, port: Number(withPort[2]) };
  return { host: entry, port: 0 };
}

function excludedBy(noProxy: string, host: string, port: number): boolean {
  const hostIsIp = isIP(host) !== 0;
  for (const raw of noProxy.split(',')) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    if (entry.includes('/')) {
      const [network, bits] = entry.split('/');
      if (hostIsIp && network && isIP(network) && /^\d+$/.test(bits ?? '') && inBlock(host, network, Number(bits))) return true;
      continue;
    }
    const { host: entryHost, port: entryPort } = splitHostPort(entry);
    if (entryPort && entryPort !== port) continue;
    if (isIP(entryHost)) {
      if (hostIsIp && inBlock(host, entryHost, isIP(entryHost) === 6 ? 128 : 32)) return true;
      continue;
    }
    const domain = entryHost.replace(/^\*\./, '.').replace(/\.$/, '');
    if (domain.startsWith('.')) {
      if (host.endsWith(domain)) return true;
    } else if (host === domain || host.endsWith(`.${domain}`)) {
      return true;
    }
  }
  return false;
}
