// Work done once per key during a run: a blob moved, a manifest read, a tag list fetched. Callers
// that ask while it is in flight share it; a failure is forgotten, so a later caller tries again.

/** The promise for `key`, started by `start` the first time it is asked for. */
export function once<K, V>(cache: Map<K, Promise<V>>, key: K, start: () => Promise<V>): Promise<V> {
  let work = cache.get(key);
  if (!work) {
    const started = start();
    cache.set(key, started);
    started.catch(() => {
      if (cache.get(key) === started) cache.delete(key);
    });
    work = started;
  }
  return work;
}

/**
 * Like Promise.all, but waits for every task before it throws the first failure: an image that
 * fails is reported once the work it started has ended, so no retry of that work is logged after
 * the image's error line.
 */
export async function settleAll(work: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(work);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
