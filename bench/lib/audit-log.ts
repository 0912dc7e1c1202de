// The API server's audit log: reading what a run added, and the server-side time of a client's
// list requests.
import { open } from 'node:fs/promises';

export interface AuditEvent {
  verb?: string;
  user?: { username?: string };
  userAgent?: string;
  objectRef?: { resource?: string; namespace?: string; name?: string; subresource?: string };
  requestURI?: string;
  responseStatus?: { code?: number };
  requestReceivedTimestamp?: string;
  stageTimestamp?: string;
  stage?: string;
}

/** Reads the file from `offset` to its current end (only that part: the audit log grows large). */
async function readFrom(path: string, offset: number): Promise<Buffer> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return Buffer.alloc(0);
  try {
    const size = (await fh.stat()).size;
    const buf = Buffer.alloc(Math.max(0, size - offset));
    let read = 0;
    while (read < buf.length) {
      const { bytesRead } = await fh.read(buf, read, buf.length - read, offset + read);
      if (!bytesRead) break;
      read += bytesRead;
    }
    return buf.subarray(0, read);
  } finally {
    await fh.close();
  }
}

export async function readAuditFrom(path: string, offset: number): Promise<{ events: AuditEvent[]; next: number }> {
  const buf = await readFrom(path, offset);
  // Only complete lines: a half-written last one is read next time.
  const end = buf.lastIndexOf(0x0a) + 1;
  const events: AuditEvent[] = [];
  for (const line of buf.subarray(0, end).toString('utf8').split('\n')) {
    if (!line) continue;
    try {
      events.push(JSON.parse(line) as AuditEvent);
    } catch {
      // not an event
    }
  }
  return { events, next: offset + end };
}

/** Server-side time of the list requests a client made (audit log, from receipt to response complete). */
export function listRequestsBy(events: AuditEvent[], userAgent: RegExp): { requests: number; serverMs: number; spanMs: number; byResource: Record<string, { n: number; ms: number }> } {
  const lists = events.filter((e) => e.stage === 'ResponseComplete' && e.verb === 'list' && userAgent.test(e.userAgent ?? ''));
  const byResource: Record<string, { n: number; ms: number }> = {};
  let serverMs = 0;
  let first = Infinity;
  let last = -Infinity;
  for (const e of lists) {
    const t0 = Date.parse(e.requestReceivedTimestamp ?? '');
    const t1 = Date.parse(e.stageTimestamp ?? '');
    // Date.parse drops the microseconds: good enough at the millisecond.
    const ms = t1 - t0;
    serverMs += ms;
    first = Math.min(first, t0);
    last = Math.max(last, t1);
    const r = (byResource[e.objectRef?.resource ?? '?'] ??= { n: 0, ms: 0 });
    r.n++;
    r.ms += ms;
  }
  return { requests: lists.length, serverMs, spanMs: lists.length ? last - first : 0, byResource };
}
