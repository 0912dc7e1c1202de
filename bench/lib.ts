// Helpers for bench/copy.ts: running and timing processes, installing the peer tools, reading
// /proc, summarising the registries' request trace, image-clone's own request timeline
// (bench/undici-trace.ts) and its CPU profile, and (re)writing our section of RESULTS.md.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, homedir, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

// ---------------------------------------------------------------- processes

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  wallMs: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  cwd?: string;
  /** Called with the child's pid once it is running. */
  onSpawn?: (pid: number) => void;
}

/** Runs a program to completion; never throws for a non-zero exit (the caller decides). */
export function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(cmd, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('spawn', () => { if (child.pid) options.onSpawn?.(child.pid); });
    child.once('error', (e) => resolve({ code: 127, stdout: '', stderr: String(e.message), wallMs: performance.now() - started }));
    child.once('close', (code, signal) => resolve({
      code: code ?? (signal ? 128 : 1),
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      wallMs: performance.now() - started,
    }));
    child.stdin.on('error', () => {}); // a child that exits without reading its input
    child.stdin.end(options.input ?? '');
  });
}

export interface TimedResult extends RunResult {
  /** CPU seconds of the process and every child it waited for (GNU time's %U and %S). */
  userS: number;
  sysS: number;
  /** Largest resident set of the process or any of its waited-for children, KiB (GNU time's %M). */
  maxRssKiB: number;
}

export const gnuTime = '/usr/bin/time';

/** Runs under GNU time: wall clock measured here, CPU and peak RSS from time(1). */
export async function timed(cmd: string, args: string[], options: RunOptions = {}): Promise<TimedResult> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-time-'));
  const out = join(dir, 'time.txt');
  try {
    const result = await run(gnuTime, ['-o', out, '-f', '%e %U %S %M', cmd, ...args], options);
    const fields = (await readFile(out, 'utf8').catch(() => '')).trim().split('\n').pop()?.split(' ').map(Number) ?? [];
    return { ...result, userS: fields[1] ?? NaN, sysS: fields[2] ?? NaN, maxRssKiB: fields[3] ?? NaN };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function commandExists(name: string): string | undefined {
  try {
    return execFileSync('bash', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

// ---------------------------------------------------------------- peer tools

export const cacheRoot = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'image-clone-bench');

export interface Tool {
  name: string;
  /** Absolute path of the binary, when it is available. */
  bin?: string;
  version: string;
  /** How it got here, or why it is missing. */
  note: string;
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** `go install MODULE/cmd/NAME@VERSION` into the cache (a folder per version), unless already there. */
export async function goInstall(name: string, pkg: string, version: string, log: (s: string) => void): Promise<Tool> {
  const gobin = join(cacheRoot, 'bin', `${name}@${version}`);
  const bin = join(gobin, name);
  if (existsSync(bin)) return { name, bin, version, note: `cached in ${gobin}` };
  if (!commandExists('go')) return { name, version, note: 'not installed: go is not on PATH' };
  await mkdir(gobin, { recursive: true });
  log(`installing ${name} ${version}: go install ${pkg}@${version}`);
  const env = { ...process.env, GOBIN: gobin, GOTOOLCHAIN: 'local', CGO_ENABLED: '0' };
  const r = await run('go', ['install', `${pkg}@${version}`], { env });
  if (r.code !== 0 || !existsSync(bin)) {
    await rm(gobin, { recursive: true, force: true });
    return { name, version, note: `not installed: go install failed: ${lastLines(r.stderr, 3)}` };
  }
  return { name, bin, version, note: `go install ${pkg}@${version} (GOBIN=${gobin})` };
}

/** skopeo from the distribution's package (Debian: apt-get install skopeo), only as root. */
export async function ensureSkopeo(log: (s: string) => void): Promise<Tool> {
  let bin = commandExists('skopeo');
  let note = 'already installed';
  if (!bin) {
    if (!isRoot() || !commandExists('apt-get')) {
      return { name: 'skopeo', version: '-', note: 'not installed: missing, and apt-get needs root' };
    }
    log('installing skopeo: apt-get install -y skopeo');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'skopeo'], { env });
    if (r.code !== 0) {
      await run('apt-get', ['update'], { env });
      r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'skopeo'], { env });
    }
    bin = commandExists('skopeo');
    if (!bin) return { name: 'skopeo', version: '-', note: `not installed: apt-get failed: ${lastLines(r.stderr, 2)}` };
    note = 'apt-get install -y skopeo';
  }
  const v = await run(bin, ['--version']);
  const pkg = await run('dpkg-query', ['-W', '-f', '${Version}', 'skopeo']);
  return { name: 'skopeo', bin, version: `${firstLine(v.stdout).replace(/^skopeo version /, '')}${pkg.code === 0 ? ` (Debian ${pkg.stdout.trim()})` : ''}`, note };
}

/** GNU time, from the `time` package when missing (as root). */
export async function ensureGnuTime(log: (s: string) => void): Promise<boolean> {
  if (existsSync(gnuTime)) return true;
  if (!isRoot()) return false;
  log('installing GNU time: apt-get install -y time');
  await run('apt-get', ['install', '-y', 'time'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return existsSync(gnuTime);
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

// ---------------------------------------------------------------- /proc

export const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, in seconds (0 when it is gone). */
export function processCpuSeconds(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return 0;
  }
}

/** Whole-machine CPU: busy and total seconds summed over all cores, from /proc/stat. */
export function systemCpu(): { busyS: number; totalS: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busyS: (total - idle) / clockTicks, totalS: total / clockTicks };
}

/** The pid of the process whose command line contains every one of `parts`. */
export function findProcess(parts: string[]): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      if (parts.every((p) => cmdline.includes(p))) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

/** Direct children of a process (Linux /proc/PID/task/PID/children). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** VmHWM (peak resident set) of a process in KiB, or undefined when it is gone. */
export function vmHwmKiB(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export async function loadAverage(): Promise<string> {
  return (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
}

// ---------------------------------------------------------------- machine

export interface Machine {
  date: string;
  host: string;
  cpu: string;
  nproc: number;
  memory: string;
  kernel: string;
  os: string;
  node: string;
  go: string;
}

export async function machineInfo(): Promise<Machine> {
  const os = readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)"?/m)?.[1] ?? 'unknown';
  const go = await run('go', ['version']);
  const nproc = await run('nproc', []);
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    host: firstLine((await run('uname', ['-n'])).stdout),
    cpu: `${cpus()[0]?.model ?? 'unknown'}${/\bsha_ni\b/.test(readFileSync('/proc/cpuinfo', 'utf8')) ? ' (SHA-NI)' : ''}`,
    nproc: Number(nproc.stdout.trim()) || cpus().length,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: firstLine((await run('uname', ['-sr'])).stdout),
    os,
    node: process.version,
    go: go.code === 0 ? firstLine(go.stdout) : 'go not found',
  };
}

// ---------------------------------------------------------------- registry trace (harness)

export interface TraceLine {
  registry: string;
  method: string;
  path: string;
  status: number;
}

/** Bytes in a file now, so that a later read can start after what is already there. */
export async function fileSize(path: string): Promise<number> {
  return (await stat(path).catch(() => ({ size: 0 }))).size;
}

export async function readTraceFrom(path: string, offset: number): Promise<TraceLine[]> {
  const text = (await readFile(path).catch(() => Buffer.alloc(0))).subarray(offset).toString('utf8');
  const lines: TraceLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      lines.push(JSON.parse(line) as TraceLine);
    } catch {
      // a half-written last line
    }
  }
  return lines;
}

export function requestKind(method: string, path: string): string {
  if (path.includes('/blobs/uploads')) return `${method} upload`;
  if (path.includes('/blobs/')) return `${method} blob`;
  if (path.includes('/manifests/')) return `${method} manifest`;
  if (path.includes('/referrers/')) return `${method} referrers`;
  if (path.includes('/tags/list')) return `${method} tags`;
  if (/^\/v2\/?$/.test(path)) return `${method} /v2/`;
  return `${method} other`;
}

/** Requests per registry, and per registry by kind and status ("HEAD blob 404": 240). */
export function countRequests(lines: TraceLine[]): Record<string, { total: number; byKind: Record<string, number> }> {
  const out: Record<string, { total: number; byKind: Record<string, number> }> = {};
  for (const l of lines) {
    const r = (out[l.registry] ??= { total: 0, byKind: {} });
    r.total++;
    const k = `${requestKind(l.method, l.path)} ${l.status}`;
    r.byKind[k] = (r.byKind[k] ?? 0) + 1;
  }
  return out;
}

// ---------------------------------------------------------------- image-clone request timeline

interface UndiciRecord {
  method: string;
  origin: string;
  path: string;
  t0: number;
  t1?: number;
  t2?: number;
  t3?: number;
  t4: number;
  status?: number;
  error?: string;
  socket?: number;
}

export interface RequestTimeline {
  requests: number;
  connections: number;
  /** Connections that carried only one request, and what the last request of each connection was. */
  singleUseConnections: number;
  lastOnConnection: Record<string, number>;
  firstRequestMs: number;
  lastResponseMs: number;
  exitMs: number;
  rows: Array<{ kind: string; status: string; n: number; queueP50: number; serverP50: number; totalP50: number; totalP90: number; sumS: number }>;
  blobPut: { n: number; avgInFlight: number; maxInFlight: number; p50Ms: number; p90Ms: number; mibPerSecPerStream: number };
  blobGet: { n: number; avgInFlight: number; maxInFlight: number; p50Ms: number; p90Ms: number };
  /** Time with no blob upload in flight, between the first request and the last response. */
  noUploadMs: number;
  errors: number;
}

const quantile = (values: number[], q: number) => {
  if (!values.length) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

function inFlight(records: UndiciRecord[]): { avg: number; max: number; idleMs: number; spanStart: number; spanEnd: number } {
  if (!records.length) return { avg: 0, max: 0, idleMs: 0, spanStart: 0, spanEnd: 0 };
  const events = records.flatMap((r) => [[r.t0, 1], [r.t4, -1]] as Array<[number, number]>).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let max = 0;
  let area = 0;
  let idle = 0;
  let last = events[0]![0];
  for (const [t, d] of events) {
    area += current * (t - last);
    if (current === 0) idle += t - last;
    last = t;
    current += d;
    max = Math.max(max, current);
  }
  const spanStart = events[0]![0];
  const spanEnd = events[events.length - 1]![0];
  return { avg: area / Math.max(spanEnd - spanStart, 1), max, idleMs: idle, spanStart, spanEnd };
}

export async function summarizeUndiciTrace(path: string, blobSizes: Map<string, number>): Promise<RequestTimeline> {
  const all = (await readFile(path, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as UndiciRecord & { summary?: boolean; sockets?: number; exitAt?: number });
  const summary = all.find((r) => r.summary);
  const recs = all.filter((r) => !r.summary);
  const groups = new Map<string, UndiciRecord[]>();
  for (const r of recs) {
    const key = `${requestKind(r.method, r.path)}\t${r.status ?? r.error ?? '?'}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const rows = [...groups.entries()].map(([key, rs]) => {
    const [kind, status] = key.split('\t') as [string, string];
    const total = rs.map((r) => r.t4 - r.t0);
    return {
      kind, status, n: rs.length,
      queueP50: quantile(rs.map((r) => (r.t1 ?? r.t0) - r.t0), 0.5),
      serverP50: quantile(rs.map((r) => (r.t3 ?? r.t4) - (r.t2 ?? r.t1 ?? r.t0)), 0.5),
      totalP50: quantile(total, 0.5),
      totalP90: quantile(total, 0.9),
      sumS: total.reduce((a, b) => a + b, 0) / 1000,
    };
  }).sort((a, b) => b.sumS - a.sumS);
  const bySocket = new Map<number, UndiciRecord[]>();
  for (const r of recs) if (r.socket !== undefined) bySocket.set(r.socket, [...(bySocket.get(r.socket) ?? []), r]);
  const lastOnConnection: Record<string, number> = {};
  let singleUse = 0;
  for (const rs of bySocket.values()) {
    if (rs.length === 1) singleUse++;
    const last = rs.reduce((a, b) => ((b.t1 ?? 0) > (a.t1 ?? 0) ? b : a));
    const k = `${requestKind(last.method, last.path)} ${last.status ?? last.error}`;
    lastOnConnection[k] = (lastOnConnection[k] ?? 0) + 1;
  }
  const puts = recs.filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads'));
  const gets = recs.filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.path));
  const putFlight = inFlight(puts);
  const getFlight = inFlight(gets);
  const putDur = puts.map((r) => r.t4 - r.t0);
  // Per-stream speed of an upload: the blob's bytes over its PUT's duration (sizes from the GETs' digests).
  const getBytes = gets.map((r) => blobSizes.get(r.path.slice(r.path.lastIndexOf('/') + 1)) ?? 0);
  const avgBlob = getBytes.reduce((a, b) => a + b, 0) / Math.max(getBytes.length, 1);
  return {
    requests: recs.length,
    connections: summary?.sockets ?? bySocket.size,
    singleUseConnections: singleUse,
    lastOnConnection,
    firstRequestMs: Math.min(...recs.map((r) => r.t0)),
    lastResponseMs: Math.max(...recs.map((r) => r.t4)),
    exitMs: summary?.exitAt ?? NaN,
    rows,
    blobPut: {
      n: puts.length, avgInFlight: putFlight.avg, maxInFlight: putFlight.max, p50Ms: quantile(putDur, 0.5), p90Ms: quantile(putDur, 0.9),
      mibPerSecPerStream: avgBlob / 2 ** 20 / (quantile(putDur, 0.5) / 1000 || 1),
    },
    blobGet: { n: gets.length, avgInFlight: getFlight.avg, maxInFlight: getFlight.max, p50Ms: quantile(gets.map((r) => r.t4 - r.t0), 0.5), p90Ms: quantile(gets.map((r) => r.t4 - r.t0), 0.9) },
    noUploadMs: putFlight.idleMs + Math.max(0, putFlight.spanStart - Math.min(...recs.map((r) => r.t0))) + Math.max(0, Math.max(...recs.map((r) => r.t4)) - putFlight.spanEnd),
    errors: recs.filter((r) => r.error).length,
  };
}

// ---------------------------------------------------------------- CPU profile

export interface CpuProfileSummary {
  sampledS: number;
  /** Self time by bucket (hashing, GC, socket writes, ...), seconds. */
  buckets: Array<{ name: string; s: number }>;
  topSelf: Array<{ fn: string; s: number }>;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** Reads a V8 .cpuprofile (node --cpu-prof) and buckets the self time. */
export async function summarizeCpuProfile(path: string): Promise<CpuProfileSummary> {
  const profile = JSON.parse(await readFile(path, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1e6));
  const label = (n: ProfileNode) => {
    const file = n.callFrame.url.split('/').pop() ?? '';
    return `${n.callFrame.functionName || '(anonymous)'}${file ? ` ${file}:${n.callFrame.lineNumber + 1}` : ''}`;
  };
  const byFn = new Map<string, number>();
  const buckets = new Map<string, number>();
  let total = 0;
  for (const [id, s] of self) {
    const n = nodes.get(id)!;
    total += s;
    const fn = label(n);
    byFn.set(fn, (byFn.get(fn) ?? 0) + s);
    const name = n.callFrame.functionName;
    const bucket = name === '(idle)' ? 'idle (waiting for the network / registries)'
      : name === '(garbage collector)' ? 'garbage collection'
        : /^update$/.test(name) && n.callFrame.url.includes('hash') ? 'sha256 (digest check)'
          : /^(writeBuffer|writev|writeLatin1String|writeUtf8String)$/.test(name) ? 'socket writes (syscalls)'
            : /client-h1|llhttp|wasm/.test(n.callFrame.url) || name.startsWith('wasm') ? 'undici HTTP/1.1 parsing and dispatch'
              : /internalConnect|close/.test(name) ? 'connection set-up and tear-down'
                : /undici/.test(n.callFrame.url) ? 'undici (other)'
                  : /node:internal\/streams|readable|writable|from/.test(n.callFrame.url) ? 'Node streams / async iteration'
                    : name === '(program)' ? 'V8 (program)'
                      : 'other JavaScript';
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + s);
  }
  return {
    sampledS: total,
    buckets: [...buckets.entries()].map(([name, s]) => ({ name, s })).sort((a, b) => b.s - a.s),
    topSelf: [...byFn.entries()].map(([fn, s]) => ({ fn, s })).sort((a, b) => b.s - a.s).slice(0, 12),
  };
}

// ---------------------------------------------------------------- RESULTS.md

export const sectionBegin = '<!-- bench:copy:begin (written by `npm run bench:copy`; edits inside are overwritten) -->';
export const sectionEnd = '<!-- bench:copy:end -->';

/** Replaces our section of the file (between the markers), or appends it; the rest is kept. */
export async function writeSection(path: string, body: string, title: string): Promise<void> {
  const block = `${sectionBegin}\n${body.trim()}\n${sectionEnd}`;
  let text = await readFile(path, 'utf8').catch(() => '');
  const begin = text.indexOf('<!-- bench:copy:begin');
  const end = text.indexOf(sectionEnd);
  if (begin !== -1 && end > begin) text = `${text.slice(0, begin)}${block}${text.slice(end + sectionEnd.length)}`;
  else text = text.trim() ? `${text.trimEnd()}\n\n${block}\n` : `# ${title}\n\n${block}\n`;
  await writeFile(path, text.endsWith('\n') ? text : `${text}\n`);
}

// ---------------------------------------------------------------- formatting

export const mib = (bytes: number) => bytes / 2 ** 20;
export const fmtS = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
export const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));

/** A Markdown table. */
export function mdTable(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** A plain-text table for the terminal. */
export function textTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => pad(c, widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
