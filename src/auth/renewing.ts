// Cloud tokens that expire, cached for the run: one per key, shared by concurrent lookups, and
// fetched again once its renewal time has passed, so a run that outlives a token keeps working.
// A failed fetch is not cached: the next lookup tries again.

export interface Renewable<T> {
  value: T;
  /** Epoch ms from which a lookup fetches a new one. */
  renewAt: number;
}

/** Renew `marginMs` before expiry, or at three quarters of a lifetime shorter than four margins. */
export function renewalTime(fetchedAt: number, lifetimeMs: number, marginMs: number): number {
  return fetchedAt + lifetimeMs - Math.min(marginMs, lifetimeMs / 4);
}

export class RenewingCache<T> {
  readonly #entries = new Map<string, Promise<Renewable<T>>>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async get(key: string, fetch: () => Promise<Renewable<T>>): Promise<T> {
    for (;;) {
      const cached = this.#entries.get(key);
      if (cached === undefined) break;
      const entry = await cached.catch(() => undefined);
      if (entry !== undefined && entry.renewAt > this.#now()) return entry.value;
      if (this.#entries.get(key) !== cached) continue; // someone else is renewing it
      this.#entries.delete(key);
      break;
    }
    const pending = fetch();
    this.#entries.set(key, pending);
    pending.catch(() => {
      if (this.#entries.get(key) === pending) this.#entries.delete(key);
    });
    return (await pending).value;
  }
}
