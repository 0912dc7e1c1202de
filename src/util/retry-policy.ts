// One retry policy for every layer: what is worth another try (a broken or refused connection, a
// timeout, throttling, a server error), how long to wait (exponential backoff with jitter, or the
// server's Retry-After), and how many tries. The registry transport, the blob streams, the token
// server client and the Kubernetes adapter all decide with these.

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A throttled server that asks for a longer wait than this is not retried (default: any wait, capped). */
  throttlePatienceMs?: number;
}

/** Statuses worth another try: timeouts, throttling, server errors (the registries' and the API server's). */
export const retryableStatuses: ReadonlySet<number> = new Set([408, 429, 499, 500, 502, 503, 504, 522]);

/** Connection-level failures worth another try, by Node's and undici's error codes. */
const connectionCodes = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
]);
/** A body stream cut off mid-way (a blob download or upload): worth resuming, once the caller knows it did not abort. */
const streamCodes = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_ABORTED']);

/** An error's code, or its cause's (undici wraps the socket's error; 'UND_ERR' alone says nothing). */
export function errorCode(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const own = (err as { code?: unknown }).code;
  if (typeof own === 'string' && own !== 'UND_ERR') return own;
  const cause = (err as { cause?: unknown }).cause;
  return cause ? errorCode(cause) : undefined;
}

/** Whether a network failure is worth another try; `stream`: also a body stream cut off mid-way. */
export function isTransientNetworkError(err: unknown, options: { stream?: boolean } = {}): boolean {
  const code = errorCode(err);
  return code !== undefined && (connectionCodes.has(code) || (options.stream === true && streamCodes.has(code)));
}

/** Exponential backoff with jitter inside [ceiling/2, ceiling], so parallel retries spread out. */
export function backoffMs(attempt: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/** Retry-After in seconds or as an HTTP date; capped so a hostile server cannot park us for hours. */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const wait = untilRetry(Array.isArray(header) ? header[0] : header, now);
  return wait === undefined ? undefined : Math.min(wait, 120_000);
}

/** A Retry-After value (seconds, or an HTTP date) as milliseconds from `now`, uncapped. */
function untilRetry(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(date - now, 0);
}

/**
 * How long a throttling server (HTTP 429) asks us to wait, uncapped: its Retry-After, else a
 * RateLimit-Reset (seconds from now, or a Unix time), else, when its RateLimit-Remaining says no
 * quota is left ("0;w=21600", Docker Hub's form), the quota's window. Undefined when it says nothing.
 */
export function throttleWaitMs(headers: Record<string, string | string[] | undefined>, now = Date.now()): number | undefined {
  const first = (name: string) => {
    const value = headers[name];
    return (Array.isArray(value) ? value[0] : value)?.trim();
  };
  const retryAfter = untilRetry(first('retry-after'), now);
  if (retryAfter !== undefined) return retryAfter;
  const reset = first('ratelimit-reset');
  if (reset && /^\d+$/.test(reset)) {
    const seconds = Number(reset);
    // A value this large is a point in time, not a delay.
    return seconds > 1_000_000_000 ? Math.max(seconds * 1000 - now, 0) : seconds * 1000;
  }
  const remaining = /^(\d+)\s*(?:;\s*w=(\d+))?/.exec(first('ratelimit-remaining') ?? '');
  if (remaining && Number(remaining[1]) === 0 && remaining[2]) return Number(remaining[2]) * 1000;
  return undefined;
}
