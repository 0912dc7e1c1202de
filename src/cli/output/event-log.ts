// Sync events for people and machines watching: a live spinner line on a terminal, one plain line
// per event in CronJob logs, or JSON lines with --log-format json. All on stderr.
import type { SyncEvent } from '../../core/execute.ts';
import { level } from './colour.ts';
import { formatBytes, shortDigest } from './format.ts';
import type { Progress } from './progress.ts';

export type LogFormat = 'text' | 'json';

export interface EventLog {
  event(event: SyncEvent): void;
  /** Bytes moved so far, for the live line. */
  bytes(n: number): void;
  /** A line that is not an event (warnings, retries). */
  line(level: 'info' | 'warn' | 'error', message: string): void;
  /** A phase of the run begins: the live line on a terminal, one event line elsewhere. */
  phase(name: Phase, text: string): void;
}

export type Phase = 'listing' | 'resolving' | 'patching';

export function createEventLog(progress: Progress, format: LogFormat, stream: NodeJS.WritableStream, now: () => Date = () => new Date()): EventLog {
  const counts = { images: 0, copied: 0, failed: 0, patched: 0, bytes: 0 };
  const started = Date.now();
  const live = () => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    progress.update(`Copying images: ${counts.copied + counts.failed}/${counts.images} done, ${formatBytes(counts.bytes)} (${formatBytes(counts.bytes / seconds)}/s); ${counts.patched} workloads patched`);
  };
  const write = (kind: 'info' | 'warn' | 'error', text: string, fields: Record<string, unknown>) => {
    if (format === 'json') stream.write(`${JSON.stringify({ time: now().toISOString(), level: kind, ...fields })}\n`);
    else progress.log(kind === 'info' ? text : level(kind, text));
  };
  return {
    event(e) {
      switch (e.kind) {
        case 'copying':
          counts.images = e.images;
          write('info', `copying ${e.images} image${e.images === 1 ? '' : 's'}`, { event: 'copying', images: e.images });
          break;
        case 'image-copied':
          counts.copied++;
          write('info', `${{ present: 'already present', tagged: 'tagged', copied: 'copied' }[e.status]} ${e.source} -> ${e.backup}@${shortDigest(e.digest)} (${formatBytes(e.bytes)})`, { event: 'image-copied', ...withoutKind(e) });
          break;
        case 'image-failed':
          counts.failed++;
          write('error', `failed to copy ${e.source}: ${e.message}`, { event: 'image-failed', ...withoutKind(e) });
          break;
        case 'workload-patched':
          counts.patched++;
          write('info', `patched ${e.workload} (${e.containers} container${e.containers === 1 ? '' : 's'})`, { event: 'workload-patched', ...withoutKind(e) });
          break;
        case 'workload-conflict':
          write('warn', `${e.workload} changed while we patched it; re-reading (attempt ${e.attempt})`, { event: 'workload-conflict', ...withoutKind(e) });
          break;
        case 'tag-warning':
          write('warn', `${e.backup}: ${e.message}`, { event: 'tag-warning', ...withoutKind(e) });
          break;
        case 'workload-failed':
          write('error', `failed to patch ${e.workload}: ${e.message}`, { event: 'workload-failed', ...withoutKind(e) });
          break;
      }
      live();
    },
    bytes(n) {
      counts.bytes += n;
      live();
    },
    phase(name, text) {
      if (progress.interactive && format === 'text') progress.update(text);
      else write('info', text, { event: name });
    },
    line(kind, message) {
      write(kind, `${kind === 'info' ? '' : `${level(kind, kind === 'warn' ? 'warning' : 'error')}: `}${message}`, { event: 'message', message });
    },
  };
}

function withoutKind<T extends { kind: string }>(e: T): Omit<T, 'kind'> {
  const { kind: _, ...rest } = e;
  return rest;
}
