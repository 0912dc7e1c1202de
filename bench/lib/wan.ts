// The WAN profile of bench:copy and bench:sync (`--profile wan`, issue 15): the harness's registries
// behind TCP proxies that add round-trip latency and cap each connection's bandwidth. The proxies are
// Toxiproxy's (github.com/Shopify/toxiproxy/v2), run as .harness/bin/wanproxy (built and cached by
// test/harness/build.sh like the rest of the harness) and configured through its HTTP API.
//
// What it models and what it does not: every byte between a tool and a registry passes a proxy that
// holds it back by half the round trip in each direction (Toxiproxy's latency toxic, per chunk, so
// a stream is delayed, not slowed) and lets each TCP connection through at most `mbitPerConnection`
// (its bandwidth toxic: a per-connection cap, like a long-distance TCP flow, not a shared link). The
// proxy accepts a connection at once and dials the registry then: the TCP handshake itself costs no
// round trip, which favours the tools that open the most connections (the per-image peers).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { repoRoot, type HarnessEnv } from '../../test/harness/harness.ts';

export const wanproxy = join(repoRoot, '.harness', 'bin', 'wanproxy');

export interface WanLink {
  /** Round trip added between a tool and this registry, ms (half on the way there, half back). */
  rttMs: number;
  /** Bandwidth of each TCP connection, in each direction, Mbit/s. */
  mbitPerConnection: number;
}

/**
 * Links by the harness name of the registry behind them. Only registries whose clients need no
 * token issuer: a Bearer realm names the issuer's own address (regharness builds it), which would
 * bypass the proxy, so the token registry `backup` has no WAN link here.
 */
export type WanProfile = Record<string, WanLink>;

const mbit = Number(process.env.BENCH_WAN_MBIT ?? 200);

/**
 * The profile: the source (a public registry) 20 ms away, the backup (the user's own
 * registry, basic auth, nearer) 10 ms; BENCH_WAN_MBIT Mbit/s per connection (default 200).
 */
export const wanProfile: WanProfile = {
  source: { rttMs: 20, mbitPerConnection: mbit },
  'backup-basic': { rttMs: 10, mbitPerConnection: mbit },
};

export function describeWan(profile: WanProfile): string {
  return Object.entries(profile).map(([name, l]) => `${name} ${l.rttMs} ms round trip, ${l.mbitPerConnection} Mbit/s per connection`).join('; ');
}

export interface Wan {
  /** The proxy's pid, for its CPU time. */
  pid: number;
  /**
   * Proxies in front of the named registries of a (fresh) harness, replacing those of an earlier
   * one; returns the address each is reached at (host:port on 127.0.0.1), by name.
   */
  route(registries: HarnessEnv['registries'], names: string[]): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Starts wanproxy (build it first: npm run harness:build) and waits for its API. */
export async function startWan(profile: WanProfile): Promise<Wan> {
  if (!existsSync(wanproxy)) throw new Error(`${wanproxy} is missing: run npm run harness:build`);
  const port = await freePort();
  const child: ChildProcess = spawn(wanproxy, ['--host', '127.0.0.1', '--port', String(port)], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-2000); });
  const api = `http://127.0.0.1:${port}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${api}${path}`, { method, ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}) });
    const text = await res.text();
    if (!res.ok && !(method === 'DELETE' && res.status === 404)) throw new Error(`wanproxy ${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
    try {
      return text ? JSON.parse(text) : undefined;
    } catch {
      return text; // GET /version answers with plain text
    }
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`wanproxy exited (${child.exitCode}): ${stderr}`);
    try {
      await call('GET', '/version');
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    pid: child.pid!,
    async route(registries, names) {
      const out: Record<string, string> = {};
      for (const name of names) {
        const link = profile[name];
        if (!link) throw new Error(`the WAN profile has no link for ${name}`);
        await call('DELETE', `/proxies/${name}`);
        const created = await call('POST', '/proxies', { name, listen: '127.0.0.1:0', upstream: registries[name]!.host, enabled: true }) as { listen: string };
        for (const stream of ['upstream', 'downstream']) {
          await call('POST', `/proxies/${name}/toxics`, { name: `latency-${stream}`, type: 'latency', stream, attributes: { latency: link.rttMs / 2, jitter: 0 } });
          // Toxiproxy's rate is in KB/s of 1000 bytes.
          await call('POST', `/proxies/${name}/toxics`, { name: `bandwidth-${stream}`, type: 'bandwidth', stream, attributes: { rate: Math.round((link.mbitPerConnection * 1e6) / 8 / 1000) } });
        }
        out[name] = created.listen;
      }
      return out;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin?.end();
      child.kill('SIGTERM');
      await exited;
    },
  };
}
