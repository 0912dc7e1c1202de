// Requests counted per registry: the benchmarks and the idempotency tests read these.
import type { Method } from './types.ts';

export interface RequestStats {
  requests: number;
  byMethod: Partial<Record<Method, number>>;
  retries: number;
  /** Manifest GETs: what Docker Hub counts against its pull quota (HEADs are free). */
  manifestGets: number;
}

export class RequestCounter {
  readonly byRegistry = new Map<string, RequestStats>();

  of(registry: string): RequestStats {
    let stats = this.byRegistry.get(registry);
    if (!stats) {
      stats = { requests: 0, byMethod: {}, retries: 0, manifestGets: 0 };
      this.byRegistry.set(registry, stats);
    }
    return stats;
  }

  /** One request on the wire; `path` is given for the first hop only (a redirect is not another pull). */
  request(registry: string, method: Method, path?: string): void {
    const stats = this.of(registry);
    stats.requests++;
    stats.byMethod[method] = (stats.byMethod[method] ?? 0) + 1;
    if (method === 'GET' && path !== undefined && /\/manifests\/[^/]+$/.test(path)) stats.manifestGets++;
  }

  retry(registry: string): void {
    this.of(registry).retries++;
  }
}
