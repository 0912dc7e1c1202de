// A network where the only way to some registries is an HTTP proxy, for the proxy tests. Three
// network namespaces the tests create (root needed) and delete again, even when a test fails:
//
//   this process (root namespace) 10.231.77.1 ── 10.231.77.2  icpx-proxy: tinyproxy (Debian's)
//                                                10.232.77.1 ── 10.232.77.2  icpx-behind: registries
//   this process (root namespace) 10.233.77.1 ── 10.233.77.2  icpx-direct: a registry
//
// The root namespace has no route to icpx-behind (an `unreachable` route makes a direct attempt
// fail at once), and icpx-proxy does not forward packets, so a request that reaches icpx-behind went
// through tinyproxy, which logs it. icpx-proxy has no route to icpx-direct: a request for it that
// NO_PROXY did not send direct fails. No address is on loopback, so loopback rules hide nothing.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../harness/harness.ts';

export const ns = { proxy: 'icpx-proxy', behind: 'icpx-behind', direct: 'icpx-direct' } as const;
export type Namespace = keyof typeof ns;
export const ip = { root: '10.231.77.1', proxy: '10.231.77.2', behind: '10.232.77.2', directGateway: '10.233.77.1', direct: '10.233.77.2' } as const;
const rootLinks = ['icpx-a', 'icpx-b'];
const unreachableRoute = '10.232.77.0/30';
export const regharness = join(repoRoot, '.harness/bin/regharness');

function ipCmd(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function tryIp(...args: string[]): void {
  try {
    ipCmd(...args);
  } catch {
    // already gone
  }
}

/** Deletes the namespaces, links and route (those of an earlier run that died included). */
export function tearDownNetwork(): void {
  for (const name of Object.values(ns)) tryIp('netns', 'del', name);
  for (const link of rootLinks) tryIp('link', 'del', link);
  tryIp('route', 'del', 'unreachable', unreachableRoute);
}

export function setUpNetwork(): void {
  tearDownNetwork();
  for (const name of Object.values(ns)) {
    ipCmd('netns', 'add', name);
    ipCmd('-n', name, 'link', 'set', 'lo', 'up');
  }
  // A veth pair: `a` (in aNs, else the root namespace) and `b` in bNs, each with its address, both up.
  const pair = (a: string, aAddr: string, b: string, bAddr: string, bNs: string, aNs?: string) => {
    const inA = aNs ? ['-n', aNs] : [];
    ipCmd(...inA, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', bNs);
    ipCmd(...inA, 'addr', 'add', aAddr, 'dev', a);
    ipCmd(...inA, 'link', 'set', a, 'up');
    ipCmd('-n', bNs, 'addr', 'add', bAddr, 'dev', b);
    ipCmd('-n', bNs, 'link', 'set', b, 'up');
  };
  pair('icpx-a', `${ip.root}/30`, 'eth0', `${ip.proxy}/30`, ns.proxy);
  pair('eth1', '10.232.77.1/30', 'eth0', `${ip.behind}/30`, ns.behind, ns.proxy);
  ipCmd('-n', ns.behind, 'route', 'add', 'default', 'via', '10.232.77.1');
  pair('icpx-b', `${ip.directGateway}/30`, 'eth0', `${ip.direct}/30`, ns.direct);
  ipCmd('-n', ns.direct, 'route', 'add', 'default', 'via', ip.directGateway);
  ipCmd('route', 'add', 'unreachable', unreachableRoute);
  execFileSync('ip', ['netns', 'exec', ns.proxy, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
}

/** Processes started in the namespaces, stopped by teardown. */
const children = new Set<ChildProcess>();

/** Starts `command` in a namespace (`ip netns exec` execs it: the child is the command itself). */
export function spawnIn(where: Namespace, command: string, args: string[], stdin: 'pipe' | 'ignore' = 'ignore'): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns[where], command, ...args], { stdio: [stdin, 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  (child as ChildProcess & { stderrTail: () => string }).stderrTail = () => stderr;
  return child;
}

/** Runs a command in a namespace to its end; rejects with its stderr when it fails. */
export async function runIn(where: Namespace, command: string, args: string[]): Promise<string> {
  const child = spawnIn(where, command, args);
  let stdout = '';
  child.stdout!.on('data', (d) => (stdout += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${command} ${args.slice(0, 3).join(' ')} in ${ns[where]} exited ${code}: ${(child as ChildProcess & { stderrTail: () => string }).stderrTail()}`);
  return stdout;
}

export async function stopChildren(): Promise<void> {
  await Promise.all([...children].map(async (child) => {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    clearTimeout(timer);
  }));
}

/** Waits until something accepts TCP connections at host:port (from the root namespace). */
export async function waitForPort(host: string, port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs / 1000}s`);
    await sleep(100);
  }
}

export interface Tinyproxy {
  /** http://10.231.77.2:PORT (no credentials). */
  url: string;
  /** The requests it logged since the last call: "GET http://…" or "CONNECT host:port". */
  requests(): Promise<string[]>;
}

/** A tinyproxy in icpx-proxy on `port`, with extra configuration lines (BasicAuth, Allow, …). */
export async function startTinyproxy(dir: string, port: number, extra: string[] = []): Promise<Tinyproxy> {
  const log = join(dir, `tinyproxy-${port}.log`);
  const config = join(dir, `tinyproxy-${port}.conf`);
  await writeFile(config, [
    `Port ${port}`, `Listen ${ip.proxy}`, 'Timeout 60', `LogFile "${log}"`, 'LogLevel Info', 'MaxClients 200', ...extra, '',
  ].join('\n'));
  await writeFile(log, '');
  spawnIn('proxy', 'tinyproxy', ['-d', '-c', config]);
  await waitForPort(ip.proxy, port);
  let seen = 0;
  return {
    url: `http://${ip.proxy}:${port}`,
    async requests() {
      const lines = (await readFile(log, 'utf8')).split('\n');
      const requests = lines.slice(seen).flatMap((l) => /Request \(file descriptor \d+\): (\S+ \S+)/.exec(l)?.[1] ?? []);
      seen = lines.length - 1;
      return requests;
    },
  };
}

export interface RegistriesJson {
  registries: Record<string, { host: string; auth: string; username?: string; password?: string; realm?: string }>;
}

/** regharness serve in icpx-behind, on its address. */
export async function startRegharness(dir: string): Promise<RegistriesJson> {
  const child = spawnIn('behind', regharness, ['serve', '--dir', dir, '--listen-ip', ip.behind], 'pipe');
  const ready = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('regharness serve: not ready after 120 s')), 120_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^READY (.+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`regharness serve exited ${code}: ${(child as ChildProcess & { stderrTail: () => string }).stderrTail()}`)));
  });
  return JSON.parse(await readFile(ready, 'utf8')) as RegistriesJson;
}

/** Debian's docker-registry (distribution 2.8) in a namespace on addr (host:port), with TLS when given a certificate. */
export async function startDockerRegistry(where: Namespace, dir: string, addr: string, tls?: { cert: string; key: string }): Promise<void> {
  const config = join(dir, `docker-registry-${where}.yml`);
  await writeFile(config, [
    'version: 0.1',
    'log: { level: warn }',
    `storage: { filesystem: { rootdirectory: "${join(dir, `storage-${where}`)}" }, delete: { enabled: true } }`,
    `http: { addr: "${addr}"${tls ? `, tls: { certificate: "${tls.cert}", key: "${tls.key}" }` : ''} }`,
    '',
  ].join('\n'));
  spawnIn(where, '/usr/bin/docker-registry', ['serve', config]);
}

/** A self-signed certificate for an IP address (its own CA: clients trust it with NODE_EXTRA_CA_CERTS). */
export function selfSignedCertificate(dir: string, address: string): { cert: string; key: string } {
  const cert = join(dir, 'registry.crt');
  const key = join(dir, 'registry.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=proxy-test-registry', '-addext', `subjectAltName=IP:${address}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

/**
 * A registry front in a namespace, at host:port: answers blob GETs with a 307 to `blobs` (as a
 * registry sends them to a CDN) and passes every other request to `upstream`.
 */
export async function startRedirector(where: Namespace, dir: string, host: string, port: number, upstream: string, blobs: string): Promise<void> {
  const script = join(dir, 'redirector.mjs');
  await writeFile(script, `import http from 'node:http';
const upstream = new URL(${JSON.stringify(upstream)});
http.createServer((req, res) => {
  if (req.method === 'GET' && /\\/blobs\\/sha256:/.test(req.url)) {
    res.writeHead(307, { location: ${JSON.stringify(blobs)} + req.url });
    res.end();
    return;
  }
  const out = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  out.on('error', () => { res.writeHead(502); res.end(); });
  req.pipe(out);
}).listen(${port}, ${JSON.stringify(host)});
`);
  spawnIn(where, process.execPath, [script]);
}
