// image-clone's own request timeline, from the trace bench/undici-trace.ts writes (a preload, one
// JSON line per HTTP request): reading it, and summarising it (time by kind of request, requests in
// flight, connection reuse, upload speed per stream).
import { readFile } from 'node:fs/promises';
import type { RequestRecord, TraceSummary } from '../undici-trace.ts';
import { requestKind } from './registry-trace.ts';

/** A request as the trace holds it: finished (t4 set) or failed. */
export type TracedRequest = RequestRecord & { t4: number };

/** The requests of a trace file, and its summary line (written when the process exits). Throws when the file is missing. */
export async function readRequestTrace(path: string): Promise<{ requests: TracedRequest[]; summary?: TraceSummary | undefined }> {
  const all = (await readFile(path, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as TracedRequest | TraceSummary);
  return {
    requests: all.filter((r): r is TracedRequest => !('summary' in r)),
    summary: all.find((r): r is TraceSummary => 'summary' in r),
  };
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

function inFlight(records: TracedRequest[]): { avg: number; max: number; idleMs: number; spanStart: number; spanEnd: number } {
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
  const { requests: recs, summary } = await readRequestTrace(path);
  const groups = new Map<string, TracedRequest[]>();
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
  const bySocket = new Map<number, TracedRequest[]>();
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
