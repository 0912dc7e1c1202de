// The harness registries' request trace (regharness --trace-requests, one JSON line per request):
// reading what a run added, and counting it by registry, kind of request and status.
import { readFile, stat } from 'node:fs/promises';

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

export interface RegistryRequests {
  /** Every request the registry saw. */
  total: number;
  /** 401 challenges (the client's first unauthenticated request, or a token refresh). */
  challenges: number;
  authenticated: number;
  byKind: Record<string, number>;
}

export function registryRequests(lines: TraceLine[], registry: string): RegistryRequests {
  const mine = lines.filter((l) => l.registry === registry);
  const byKind: Record<string, number> = {};
  for (const l of mine) {
    const k = `${registry === 'issuer' ? `${l.method} token` : requestKind(l.method, l.path)} ${l.status}`;
    byKind[k] = (byKind[k] ?? 0) + 1;
  }
  const challenges = mine.filter((l) => l.status === 401).length;
  return { total: mine.length, challenges, authenticated: mine.length - challenges, byKind };
}

export const fmtKinds = (byKind: Record<string, number>) => Object.entries(byKind).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} x${n}`).join(', ') || 'none';
