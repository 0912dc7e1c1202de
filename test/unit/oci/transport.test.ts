import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { withDigest } from '../../../src/oci/blob.ts';
import { createLimiter } from '../../../src/util/limit.ts';
import { backoffMs, retryAfterMs } from '../../../src/util/retry.ts';

test('Retry-After in seconds or as an HTTP date, capped at two minutes; garbage ignored', () => {
  const now = Date.parse('2026-11-21T12:00:00Z');
  assert.equal(retryAfterMs('3', now), 3000);
  assert.equal(retryAfterMs(['7'], now), 7000);
  assert.equal(retryAfterMs('Sat, 21 Nov 2026 12:00:05 GMT', now), 5000);
  assert.equal(retryAfterMs('Sat, 21 Nov 2026 11:00:00 GMT', now), 0, 'a date in the past means now');
  assert.equal(retryAfterMs('86400', now), 120_000);
  assert.equal(retryAfterMs('soon', now), undefined);
  assert.equal(retryAfterMs(undefined, now), undefined);
});

test('backoff grows exponentially with jitter inside [ceiling/2, ceiling], never past the maximum', () => {
  const policy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };
  for (let i = 0; i < 200; i++) {
    const first = backoffMs(1, policy);
    const third = backoffMs(3, policy);
    const tenth = backoffMs(10, policy);
    assert.ok(first >= 50 && first <= 100, `attempt 1: ${first}`);
    assert.ok(third >= 200 && third <= 400, `attempt 3: ${third}`);
    assert.ok(tenth >= 500 && tenth <= 1000, `attempt 10: ${tenth}`);
  }
});

test('withDigest appends to an upload Location without re-encoding its state token', () => {
  assert.equal(withDigest('http://r/v2/a/blobs/uploads/u?_state=a+b%2Fc%3D%3D', 'sha256:00'),
    'http://r/v2/a/blobs/uploads/u?_state=a+b%2Fc%3D%3D&digest=sha256%3A00');
  assert.equal(withDigest('/v2/a/blobs/uploads/u', 'sha256:00'), '/v2/a/blobs/uploads/u?digest=sha256%3A00');
});

test('the limiter never runs more than n tasks at once, and runs them all', async () => {
  const limit = createLimiter(3);
  let running = 0;
  let peak = 0;
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => limit(async () => {
    running++;
    peak = Math.max(peak, running);
    await sleep(i % 3);
    running--;
    return i;
  })));
  assert.equal(peak, 3);
  assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => i));
  assert.throws(() => createLimiter(0), /at least 1/);
});

test('a failing task frees its slot', async () => {
  const limit = createLimiter(1);
  await assert.rejects(limit(async () => { throw new Error('boom'); }), /boom/);
  assert.equal(await limit(async () => 'next'), 'next');
});
