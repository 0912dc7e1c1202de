// A small HTTP proxy in front of a real registry that injects faults: connection resets in the
// middle of a body, 5xx answers, 429 with Retry-After, stalls, flipped bytes, and a slow link. Faults are drawn
// from a seeded generator, so a failing run can be replayed.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform } from 'node:stream';

export type Fault = 'reset' | 'error500' | 'error503' | 'tooMany' | 'stall' | 'flip';

export interface FaultProxyOptions {
  /** host:port of the registry behind the proxy (plain HTTP). */
  upstream: string;
  /** Which faults to inject and how often (0..1 per eligible request). */
  rates: Partial<Record<Fault, number>>;
  seed?: number;
  /** Only requests whose path matches are eligible (default: blob GETs, where faults hurt most). */
  eligible?: (method: string, path: string) => boolean;
  /** Answer this request yourself (e.g. a redirect); return true when handled. */
  intercept?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** How long a stall lasts. */
  stallMs?: number;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Eligible requests wait for this before they are forwarded (to hold a run at a known point). */
  gate?: Promise<void>;
  /** Told when an eligible request arrives (before the gate). */
  onEligible?: () => void;
  /** Rewrites the upstream's response headers (e.g. a challenge's realm). */
  responseHeaders?: (headers: IncomingMessage['headers']) => IncomingMessage['headers'];
  /** Caps each connection's bandwidth, both ways (a slow link): bytes per second. */
  bytesPerSecond?: number;
}

export interface FaultProxy {
  /** host:port to use instead of the upstream. */
  host: string;
  /** Faults injected so far, by kind. */
  injected: Record<Fault, number>;
  requests: number;
  close(): Promise<void>;
}

/** mulberry32: tiny, fast, good enough to spread faults; seeded so runs repeat. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What both proxies hand back once listening: the faults injected so far, the requests seen, close(). */
export function proxyHandle<F extends string>(server: { closeAllConnections(): void; close(done: () => void): unknown }, injected: Record<F, number>, state: { requests: number }) {
  return {
    injected,
    get requests() {
      return state.requests;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const blobGet = (method: string, path: string) => method === 'GET' && /\/blobs\/sha256:/.test(path);

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const random = seededRandom(options.seed ?? 1);
  const eligible = options.eligible ?? blobGet;
  const injected: Record<Fault, number> = { reset: 0, error500: 0, error503: 0, tooMany: 0, stall: 0, flip: 0 };
  const state = { requests: 0 };
  const [upstreamHost, upstreamPort] = splitHost(options.upstream);

  const pickFault = (method: string, path: string): Fault | undefined => {
    if (!eligible(method, path)) return undefined;
    for (const [fault, rate] of Object.entries(options.rates) as Array<[Fault, number]>) {
      if (random() < rate) return fault;
    }
    return undefined;
  };

  const server: Server = createServer(async (req, res) => {
    state.requests++;
    if (options.intercept?.(req, res)) return;
    if (eligible(req.method ?? 'GET', req.url ?? '/')) {
      options.onEligible?.();
      if (options.gate) await options.gate;
    }
    const fault = pickFault(req.method ?? 'GET', req.url ?? '/');
    if (fault === 'error500' || fault === 'error503') {
      injected[fault]++;
      req.resume();
      res.writeHead(fault === 'error500' ? 500 : 503, { 'content-type': 'text/plain' }).end('injected failure');
      return;
    }
    if (fault === 'tooMany') {
      injected.tooMany++;
      req.resume();
      res.writeHead(429, { 'retry-after': '1', 'content-type': 'text/plain' }).end('slow down');
      return;
    }
    // No pooled upstream connections: each one ends with its client's, so none outlives the proxy.
    const upstream = httpRequest({ host: upstreamHost, port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent: false }, (up) => {
      res.writeHead(up.statusCode ?? 502, options.responseHeaders ? options.responseHeaders(up.headers) : up.headers);
      if (!fault || (up.statusCode ?? 0) >= 300) {
        (options.bytesPerSecond ? up.pipe(throttle(options.bytesPerSecond)) : up).pipe(res);
        return;
      }
      injected[fault]++;
      forwardWithFault(fault, up, res, options.stallMs ?? 5_000);
    });
    upstream.on('error', () => res.destroy());
    // A client that goes away mid-response (a killed CLI) must not leave the upstream transfer paused.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    (options.bytesPerSecond ? req.pipe(throttle(options.bytesPerSecond)) : req).pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, options.host ?? '127.0.0.1', resolve));
  const { port, address } = server.address() as AddressInfo;
  return Object.assign(proxyHandle(server, injected, state), { host: `${address}:${port}` });
}

/** Sends part of the body, then breaks it the way the fault says. */
function forwardWithFault(fault: Exclude<Fault, 'error500' | 'error503' | 'tooMany'>, up: IncomingMessage, res: ServerResponse, stallMs: number): void {
  let sent = 0;
  let broken = false;
  up.on('data', (chunk: Buffer) => {
    if (broken) return;
    if (fault === 'flip') {
      // Flip one bit of the first chunk's middle byte: same length, wrong digest.
      if (sent === 0 && chunk.length > 0) {
        chunk = Buffer.from(chunk);
        chunk[chunk.length >> 1]! ^= 0x01;
      }
      sent += chunk.length;
      res.write(chunk);
      return;
    }
    const half = chunk.subarray(0, Math.max(1, chunk.length >> 1));
    res.write(half);
    broken = true;
    up.destroy();
    if (fault === 'reset') res.socket?.destroy();
    else setTimeout(() => res.socket?.destroy(), stallMs).unref(); // stall: silence, then give up
  });
  up.on('end', () => {
    if (!broken) res.end();
  });
}

/** Passes each chunk on after the time it takes at `bytesPerSecond`. */
function throttle(bytesPerSecond: number): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      setTimeout(() => done(null, chunk), (chunk.length * 1000) / bytesPerSecond);
    },
  });
}

function splitHost(host: string): [string, number] {
  const colon = host.lastIndexOf(':');
  return [host.slice(0, colon), Number(host.slice(colon + 1))];
}
