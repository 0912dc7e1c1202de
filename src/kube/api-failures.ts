// What the Kubernetes adapter does with a failed API call: try it again when the failure is
// transient (the shared policy of util/retry-policy.ts), and otherwise say it in one line, with the
// API's own words, as a KubeError.
import { ApiException } from '@kubernetes/client-node';
import { KubeError } from '../errors.ts';
import { backoffMs, errorCode, isTransientNetworkError, retryableStatuses, retryAfterMs } from '../util/retry-policy.ts';

const retry = { attempts: 5, baseDelayMs: 200, maxDelayMs: 5_000 };

/** Whether a failed API call is worth another try: throttling, a server error, a broken connection. */
function isTransient(err: unknown): boolean {
  if (err instanceof ApiException) return retryableStatuses.has(err.code);
  return isTransientNetworkError(err);
}

/**
 * Retries a call on transient failures, with jittered backoff (or the server's Retry-After). Safe
 * for lists, and for our patches too: they carry a resourceVersion precondition, so a patch that
 * landed but whose answer was lost comes back as a conflict, never as a double write.
 */
export async function withRetry<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= retry.attempts || !isTransient(err)) throw err;
      const delay = (err instanceof ApiException ? retryAfterMs(err.headers?.['retry-after']) : undefined) ?? backoffMs(attempt, retry);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/**
 * One actionable line from whatever the client threw: the API's own message when there is one.
 * `proxy` (apiProxy) names the proxy the API server is reached through, for failures that are its.
 */
export function kubeError(err: unknown, doing: string, proxy?: string): KubeError {
  if (err instanceof ApiException) {
    let status: { message?: string; reason?: string } = {};
    if (typeof err.body === 'string') {
      try {
        status = JSON.parse(err.body);
      } catch {
        // not a Status object: fall back to the code
      }
    }
    const hint = err.code === 401 ? ': the credentials in the kubeconfig were refused' : '';
    return new KubeError(`cannot ${doing} (HTTP ${err.code}): ${status.message ?? (err.code === 401 ? 'Unauthorized' : 'no details')}${hint}`, err.code, status.reason);
  }
  const cause = (err as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  if (proxy) {
    // fetch wraps undici's error twice (TypeError, then DOMException): look down the whole chain.
    const messages: string[] = [];
    for (let e: unknown = err; e instanceof Error && messages.length < 5; e = e.cause) messages.push(e.message);
    const refused = messages.map((m) => /Proxy response \((\d{3})\) !== 200/.exec(m)).find((m) => m !== null);
    const status = refused ? Number(refused[1]) : undefined;
    // Proxies answer missing or wrong credentials with 407, or (tinyproxy, for wrong ones) 401.
    if (status === 407 || status === 401) return new KubeError(`cannot ${doing}: proxy ${proxy} requires authentication (HTTP ${status}): put valid credentials in HTTPS_PROXY (or the kubeconfig's proxy-url) as USER:PASSWORD@`, 407);
    if (status === 403) return new KubeError(`cannot ${doing}: proxy ${proxy} refused CONNECT to the API server (HTTP 403); if the API server is reachable directly, add it to NO_PROXY`, 403);
    if (status) return new KubeError(`cannot ${doing}: proxy ${proxy} could not open a tunnel to the API server (HTTP ${status})`);
    return new KubeError(`cannot ${doing}: the API server is unreachable through proxy ${proxy} (${errorCode(err) ?? messages.at(-1) ?? String(err)})`);
  }
  const detail = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message.split('\n')[0] : String(err));
  return new KubeError(`cannot ${doing}: the API server is unreachable (${detail})`);
}
