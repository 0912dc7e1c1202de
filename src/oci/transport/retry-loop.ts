// The retry loop around one registry request, with the shared policy of util/retry-policy.ts: transient
// statuses and network failures are tried again after a backoff or the server's Retry-After, unless
// the body cannot be sent again or the caller handles that status itself.
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs, errorCode, retryableStatuses, retryAfterMs, throttleWaitMs, type RetryPolicy } from '../../util/retry-policy.ts';
import { isRetryableError, redactPath } from './error.ts';
import type { Method, RegistryRequest, RegistryResponse, Send } from './types.ts';

export interface RetryEvent {
  registry: string;
  method: Method;
  path: string;
  attempt: number;
  delayMs: number;
  reason: string;
}

/** The last attempt's response (whatever its status), or its error once retries are spent. */
export async function sendWithRetry(request: RegistryRequest, attempt: Send, policy: RetryPolicy, onRetry: (event: RetryEvent) => void): Promise<RegistryResponse> {
  const replayable = request.replayable ?? true;
  for (let n = 1; ; n++) {
    let response: RegistryResponse | undefined;
    let failure: unknown;
    try {
      response = await attempt(request);
    } catch (err) {
      failure = err;
    }
    const retryable = response ? retryableStatuses.has(response.status) && !request.accept?.includes(response.status) : isRetryableError(failure);
    // Throttled for longer than the run will wait (a pull quota spent for hours): not retried.
    const outwaits = response?.status === 429 && policy.throttlePatienceMs !== undefined
      && (throttleWaitMs(response.headers) ?? 0) > policy.throttlePatienceMs;
    if (!retryable || outwaits || !replayable || n >= policy.attempts || request.signal?.aborted) {
      if (response) return response;
      throw failure;
    }
    const delayMs = (response && retryAfterMs(response.headers['retry-after'])) ?? backoffMs(n, policy);
    const reason = response ? `HTTP ${response.status}` : errorCode(failure) ?? String(failure);
    if (response) await response.body.dump().catch(() => {});
    onRetry({ registry: request.registry, method: request.method, path: redactPath(request.path), attempt: n, delayMs, reason });
    await sleep(delayMs, undefined, { signal: request.signal }).catch(() => {});
  }
}
