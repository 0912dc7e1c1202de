// Requests counted per registry: the benchmarks and the idempotency tests read these.
import type { Method } from './types.ts';

export interface RequestStats {
  requests: number;
  byMethod: Partial<Record<Method, number>>;
  retries: number;
}

export class RequestCounter {
  readonly byRegistry = new Map<string, RequestStats>();

  of(registry: string): RequestStats {
    let stats = this.byRegistry.get(registry);
    if (!stats) {
      stats = { requests: 0, byMethod: {}, retries: 0 };
      this.byRegistry.set(registry, stats);
    }
    return stats;
  }

  request(registry: string, method: Method): void {
    const stats = this.of(registry);
    stats.requests++;
    stats.byMethod[method] = (stats.byMethod[method] ?? 0) + 1;
  }

  retry(registry: string): void {
    this.of(registry).retries++;
  }
}
