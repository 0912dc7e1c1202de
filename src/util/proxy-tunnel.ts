// node:http(s) agents that honour HTTPS_PROXY, HTTP_PROXY and NO_PROXY as the registry client does
// (proxy-for-url.ts decides), for the libraries that speak node:https themselves: the AWS SDK's ECR
// and STS calls. A request that goes through a proxy gets a CONNECT tunnel (TLS to the endpoint
// inside it, verified as ever); one that does not goes direct. Node's own `proxyEnv` would do this
// from 24.5 / 22.21 only, and with its own reading of NO_PROXY.
import type { ClientRequestArgs } from 'node:http';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { describeProxy, proxyForUrl, type ProxyEnvironment } from './proxy-for-url.ts';

type Done = (err: Error | null, stream: Duplex) => void;

/** The status line and headers of a CONNECT answer are read up to this size; a proxy that sends more is broken. */
const maxHeadBytes = 16 * 1024;

/** An error the proxy caused: it names the proxy (never its credentials) and what it did. */
class ProxyTunnelError extends Error {
  override name = 'ProxyTunnelError';
}

/** Opens a CONNECT tunnel to host:port through `proxy`; `done` gets the socket ready for the target's bytes. */
function openTunnel(proxy: URL, host: string, port: number, done: (err: Error | null, socket?: Socket) => void): void {
  const secureProxy = proxy.protocol === 'https:';
  const proxyHost = proxy.hostname.replace(/^\[(.*)\]$/, '$1');
  const proxyPort = Number(proxy.port) || (secureProxy ? 443 : 80);
  const socket: Socket = secureProxy
    ? tlsConnect({ host: proxyHost, port: proxyPort, ...(isIP(proxyHost) ? {} : { servername: proxyHost }) })
    : netConnect({ host: proxyHost, port: proxyPort });
  const authority = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  const name = describeProxy(proxy);
  let head = Buffer.alloc(0);
  let settled = false;
  const settle = (err: Error | null) => {
    if (settled) return;
    settled = true;
    socket.off('data', onData).off('error', onError).off('end', onEnd);
    if (err) {
      socket.destroy();
      done(err);
    } else {
      done(null, socket);
    }
  };
  const onError = (err: Error) => settle(new ProxyTunnelError(`proxy ${name}: ${err.message}`));
  const onEnd = () => settle(new ProxyTunnelError(`proxy ${name} closed the connection before answering CONNECT ${authority}`));
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > maxHeadBytes) settle(new ProxyTunnelError(`proxy ${name} sent no end to its answer to CONNECT ${authority}`));
      return;
    }
    const statusLine = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
    const status = Number(statusLine.split(' ')[1]);
    if (status < 200 || status > 299) {
      settle(new ProxyTunnelError(`proxy ${name} refused CONNECT ${authority}: ${statusLine.replace(/^HTTP\/\S+\s*/, '')}`));
      return;
    }
    // Bytes after the answer belong to the tunnel (a server that speaks first).
    if (end + 4 < head.length) socket.unshift(head.subarray(end + 4));
    settle(null);
  };
  socket.on('data', onData).once('error', onError).once('end', onEnd);
  socket.once(secureProxy ? 'secureConnect' : 'connect', () => {
    const credentials = proxy.username
      ? `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}\r\n`
      : '';
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${credentials}\r\n`);
  });
}

function target(options: ClientRequestArgs, protocol: 'http:' | 'https:'): { host: string; port: number; url: URL } {
  const host = (options.host ?? options.hostname ?? 'localhost').replace(/^\[(.*)\]$/, '$1');
  const port = Number(options.port) || (protocol === 'https:' ? 443 : 80);
  return { host, port, url: new URL(`${protocol}//${isIP(host) === 6 ? `[${host}]` : host}:${port}`) };
}

/** https: TLS to the endpoint, inside a tunnel when a proxy applies; the request's TLS options (verification, CA, SNI) kept. */
class TunnellingHttpsAgent extends HttpsAgent {
  readonly #proxies: ProxyEnvironment;

  constructor(proxies: ProxyEnvironment) {
    super({ keepAlive: true });
    this.#proxies = proxies;
  }

  override createConnection(options: ClientRequestArgs, callback?: Done): Duplex | null | undefined {
    const { host, port, url } = target(options, 'https:');
    const proxy = proxyForUrl(url, this.#proxies);
    if (!proxy) return super.createConnection(options, callback);
    openTunnel(proxy, host, port, (err, socket) => {
      if (err) return callback?.(err, undefined as unknown as Duplex);
      const tls: ConnectionOptions = { ...(options as ConnectionOptions), socket: socket!, ...(isIP(host) ? {} : { servername: host }) };
      callback?.(null, tlsConnect(tls));
    });
    return undefined;
  }
}

/** http: the tunnel itself carries the plain request when a proxy applies. */
class TunnellingHttpAgent extends HttpAgent {
  readonly #proxies: ProxyEnvironment;

  constructor(proxies: ProxyEnvironment) {
    super({ keepAlive: true });
    this.#proxies = proxies;
  }

  override createConnection(options: ClientRequestArgs, callback?: Done): Duplex | null | undefined {
    const { host, port, url } = target(options, 'http:');
    const proxy = proxyForUrl(url, this.#proxies);
    if (!proxy) return super.createConnection(options, callback);
    openTunnel(proxy, host, port, (err, socket) => callback?.(err, socket as Duplex));
    return undefined;
  }
}

/** The pair of agents for `proxies`, or undefined when the environment names no proxy (the library's own agents then). */
export function tunnellingAgents(proxies: ProxyEnvironment | undefined): { httpAgent: HttpAgent; httpsAgent: HttpsAgent } | undefined {
  if (!proxies?.https && !proxies?.http) return undefined;
  return { httpAgent: new TunnellingHttpAgent(proxies), httpsAgent: new TunnellingHttpsAgent(proxies) };
}
