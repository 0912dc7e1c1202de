// A V8 CPU profile (node --cpu-prof) summarised: self time by bucket (hashing, GC, socket writes,
// HTTP parsing, ...) and the functions with the most self time.
import { readFile } from 'node:fs/promises';

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
