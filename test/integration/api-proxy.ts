// A TLS-terminating proxy in front of the harness's kube-apiserver that injects faults: 500/503,
// 429 with Retry-After, and connections reset in the middle of a response. It presents the API
// server's own serving certificate (valid for 127.0.0.1), so clients keep verifying TLS; clients
// authenticate with a bearer token, which passes through (client certificates cannot).
import { readFile } from 'node:fs/promises';
import { createServer, request, type Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { proxyHandle, seededRandom } from './fault-proxy.ts';

export type ApiFault = 'error500' | 'error503' | 'tooMany' | 'reset';

export interface ApiProxy {
  server: string;
  injected: Record<ApiFault, number>;
  requests: number;
  close(): Promise<void>;
}

/** Holds the requests `when` picks until `until` settles (to stop a run at a known point); `onHeld` is told of each. */
export interface ApiGate {
  when: (method: string, path: string) => boolean;
  until: Promise<void>;
  onHeld?: () => void;
}

export async function startApiProxy(options: { server: string; caFile: string; rates: Partial<Record<ApiFault, number>>; seed?: number; gate?: ApiGate }): Promise<ApiProxy> {
  const pki = dirname(options.caFile);
  const [cert, key, ca] = await Promise.all([readFile(join(pki, 'serving.crt')), readFile(join(pki, 'serving.key')), readFile(options.caFile)]);
  const upstream = new URL(options.server);
  const random = seededRandom(options.seed ?? 7);
  const injected: Record<ApiFault, number> = { error500: 0, error503: 0, tooMany: 0, reset: 0 };
  const state = { requests: 0 };
  const pick = (): ApiFault | undefined => {
    for (const [fault, rate] of Object.entries(options.rates) as Array<[ApiFault, number]>) if (random() < rate) return fault;
    return undefined;
  };
  const server = createServer({ cert, key }, async (req, res) => {
    state.requests++;
    if (options.gate?.when(req.method ?? 'GET', req.url ?? '/')) {
      options.gate.onHeld?.();
      await options.gate.until;
    }
    const fault = pick();
    if (fault === 'error500' || fault === 'error503' || fault === 'tooMany') {
      injected[fault]++;
      req.resume();
      const status = fault === 'error500' ? 500 : fault === 'error503' ? 503 : 429;
      res.writeHead(status, { 'content-type': 'application/json', ...(fault === 'tooMany' ? { 'retry-after': '1' } : {}) });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'injected fault', code: status }));
      return;
    }
    const up = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, ca, agent: false as unknown as Agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      if (fault !== 'reset') {
        answer.pipe(res);
        return;
      }
      injected.reset++;
      answer.once('data', (chunk: Buffer) => {
        res.write(chunk.subarray(0, chunk.length >> 1));
        answer.destroy();
        res.socket?.destroy();
      });
    });
    up.on('error', () => res.socket?.destroy());
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(proxyHandle(server, injected, state), { server: `https://127.0.0.1:${(server.address() as AddressInfo).port}` });
}
