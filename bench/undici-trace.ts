// Preload for profiling image-clone without touching src/: `node --import ./bench/undici-trace.ts
// bin/image-clone.js ...` with IMAGE_CLONE_BENCH_TRACE=FILE records one JSON line per HTTP request
// the CLI makes, from undici's diagnostics channels (no monkey-patching):
//   t0 created (queued in the Agent), t1 headers sent on a socket, t2 request body fully sent,
//   t3 response headers received, t4 response body finished (or error).
// Times are milliseconds since the process started (performance.now()). Query strings are dropped
// (distribution's upload _state tokens), and no header is recorded, so no credential can leak.
import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';

const file = process.env.IMAGE_CLONE_BENCH_TRACE;

/** One line of the trace per request (the readers are in bench/lib/request-timeline.ts). */
export interface RequestRecord {
  method: string;
  origin: string;
  path: string;
  t0: number;
  t1?: number;
  t2?: number;
  t3?: number;
  t4?: number;
  status?: number;
  error?: string;
  /** Which connection carried it (numbered in order of first use). */
  socket?: number;
}

/** The last line of the trace, written when the process exits. */
export interface TraceSummary {
  summary: true;
  /** Connections opened. */
  sockets: number;
  exitAt: number;
}

if (file) {
  const records = new WeakMap<object, RequestRecord>();
  const done: RequestRecord[] = [];
  let sockets = 0;
  const now = () => Math.round(performance.now() * 100) / 100;
  const rec = (request: object) => records.get(request);
  subscribe('undici:request:create', (m) => {
    const { request } = m as { request: { method: string; origin: string | URL; path: string } };
    records.set(request, { method: request.method, origin: String(request.origin), path: String(request.path).split('?')[0]!, t0: now() });
  });
  const socketIds = new WeakMap<object, number>();
  let nextSocket = 0;
  subscribe('undici:client:sendHeaders', (m) => {
    const { request, socket } = m as { request: object; socket: object };
    const r = rec(request);
    if (r && r.t1 === undefined) {
      r.t1 = now();
      let id = socketIds.get(socket);
      if (id === undefined) socketIds.set(socket, (id = nextSocket++));
      r.socket = id;
    }
  });
  subscribe('undici:client:connected', () => { sockets++; });
  subscribe('undici:request:bodySent', (m) => {
    const r = rec((m as { request: object }).request);
    if (r) r.t2 = now();
  });
  subscribe('undici:request:headers', (m) => {
    const { request, response } = m as { request: object; response: { statusCode: number } };
    const r = rec(request);
    if (r) {
      r.t3 = now();
      r.status = response.statusCode;
    }
  });
  const finish = (request: object, error?: unknown) => {
    const r = rec(request);
    if (!r || r.t4 !== undefined) return;
    r.t4 = now();
    if (error) r.error = (error as { code?: string; message?: string }).code ?? String((error as Error).message ?? error);
    done.push(r);
  };
  subscribe('undici:request:trailers', (m) => finish((m as { request: object }).request));
  subscribe('undici:request:error', (m) => finish((m as { request: object }).request, (m as { error: unknown }).error));
  process.on('exit', () => {
    const lines = done.map((r) => JSON.stringify(r));
    const summary: TraceSummary = { summary: true, sockets, exitAt: now() };
    lines.push(JSON.stringify(summary));
    writeFileSync(file, `${lines.join('\n')}\n`);
  });
}
