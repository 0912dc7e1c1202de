// What a failed request means, said once: a status the caller did not accept becomes an AuthError
// (who may do what) or a RegistryError (with the registry's own error code), and a network failure
// names its cause. Upload state tokens never reach a message.
import { AuthError, RegistryError } from '../../errors.ts';
import { readCapped } from '../../util/read.ts';
import { errorCode, isTransientNetworkError, retryableStatuses, throttleWaitMs } from '../../util/retry-policy.ts';
import { isDockerHub } from '../../reference.ts';
import { describeProxy } from '../../util/proxy-for-url.ts';
import { parseChallenges } from './challenge.ts';
import type { RegistryRequest, RegistryResponse } from './types.ts';

const maxErrorBodyBytes = 64 * 1024;

/** Whether the caller takes this response as it is (2xx, an accepted status, an unfollowed redirect). */
export function isAccepted(request: RegistryRequest, status: number): boolean {
  return (status >= 200 && status < 300) || request.accept?.includes(status) === true
    || (status >= 300 && status < 400 && !request.followRedirects);
}

/**
 * Returns an accepted response; otherwise consumes the body and throws the error it stands for.
 * `anonymousBecause` tells a refused scope for valid credentials (undefined) from one for anonymous
 * access (why there are no credentials, or '' when nothing says).
 */
export async function checkStatus(request: RegistryRequest, response: RegistryResponse, anonymousBecause: () => Promise<string | undefined>, throttlePatienceMs = Infinity): Promise<RegistryResponse> {
  const { status } = response;
  if (isAccepted(request, status)) return response;
  const text = request.method === 'HEAD' ? undefined : await readCapped(response.body, maxErrorBodyBytes).then((b) => b?.toString('utf8')).catch(() => undefined);
  if (request.method === 'HEAD') await response.body.dump().catch(() => {});
  const detail = registryErrorDetail(text);
  // A forwarding proxy's own answer (403, 407, 502) looks like the registry's: say it came through one.
  const what = `${request.method} ${describePath(request.path)}${response.proxy ? ` through proxy ${describeProxy(response.proxy)}` : ''}`;
  const refusedScope = status === 401 ? insufficientScope(response.headers['www-authenticate']) : undefined;
  if (refusedScope !== undefined) {
    // The token server accepted who we are but granted less than the registry asked for: a
    // permission, not a password. Say which repository and which scope.
    const scope = refusedScope || request.scopes.join(' ');
    const wanted = /[:,]push(,|$)/.test(scope) ? 'push to' : 'pull from';
    const because = await anonymousBecause().catch(() => '');
    const who = because === undefined ? 'the credentials are valid but may not' : `anonymous access may not (${because || 'no credentials are configured for it'}), so it cannot`;
    throw new AuthError(request.registry, `${request.registry}: ${who} ${wanted} ${request.repository ?? 'this repository'}: the token server did not grant the scope "${scope}" (HTTP 401 insufficient_scope${detail ? `: ${detail}` : ''})`, status);
  }
  if (status === 401 || status === 403) {
    const because = await anonymousBecause().catch(() => '');
    throw new AuthError(request.registry, `${request.registry}: ${status === 401 ? 'authentication failed' : 'access denied'} for ${what} (HTTP ${status}${detail ? `: ${detail}` : ''})${because ? `: ${because}` : ''}`, status);
  }
  const code = firstRegistryError(text)?.code;
  const said = `HTTP ${status}${detail ? `: ${detail}` : ''}`;
  const wait = status === 429 ? throttleWaitMs(response.headers) : undefined;
  if (wait !== undefined && wait > throttlePatienceMs) {
    // Throttled for longer than the run waits (a pull quota spent for hours): give the registry up.
    throw new RegistryError(request.registry, rateLimitMessage(request.registry, said, wait), { status, code: code ?? 'TOOMANYREQUESTS', transient: false, condition: 'rate-limited' });
  }
  if (/no space left on device|disk quota exceeded|not enough space/i.test(detail ?? '')) {
    throw new RegistryError(request.registry, `${request.registry}: the registry is out of storage space: ${what} failed (${said}); free space or grow its storage, then run again`, { status, code, transient: false, condition: 'storage-full' });
  }
  if (status === 405 && request.method !== 'GET' && request.method !== 'HEAD' && !allows(response.headers.allow, request.method)) {
    throw new RegistryError(request.registry, `${request.registry}: the registry refuses every write (HTTP 405, it allows only ${String(response.headers.allow ?? 'reads')}): it is read-only, for example in maintenance for a garbage collection; run again once it takes writes`, { status, code, transient: false, condition: 'read-only' });
  }
  throw new RegistryError(request.registry, `${request.registry}: ${what} failed (${said})`, { status, code, transient: retryableStatuses.has(status) });
}

/** HTTP 429: who is throttling, until when, and what helps (for Docker Hub, an account: its anonymous pull quota is the usual cause). */
function rateLimitMessage(registry: string, said: string, waitMs: number): string {
  const until = `wait until ${new Date(Date.now() + waitMs).toISOString().slice(11, 16)} UTC`;
  if (isDockerHub(registry)) return `docker.io pull rate limit reached (${said}); authenticate with a Docker Hub account, or ${until}`;
  return `${registry}: rate limit reached (${said}); ${until}`;
}

function allows(header: string | string[] | undefined, method: string): boolean {
  return String(header ?? '').toUpperCase().split(/\s*,\s*/).includes(method);
}

/** Network failures that mean a host took the connection (or the attempt) and never answered. */
const noAnswerCodes = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);


/** Whether a thrown error is worth another try: a transient registry error or network failure. */
export function isRetryableError(err: unknown): boolean {
  if (err instanceof AuthError || err instanceof RegistryError) return err instanceof RegistryError && err.transient;
  return isTransientNetworkError(err);
}

/** A network failure as a RegistryError naming its cause; other errors unchanged. */
export function classifyNetworkError(registry: string, err: unknown): unknown {
  if (err instanceof AuthError || err instanceof RegistryError) return err;
  if (err instanceof Error && err.name === 'AbortError') return err;
  const code = errorCode(err);
  if (code === undefined) return err;
  if (noAnswerCodes.has(code)) {
    return new RegistryError(registry, `${registry}: the registry did not answer (${code}); it is not asked again in this run`, { transient: false, cause: err, condition: 'unresponsive' });
  }
  const hint = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'host not found'
    : code === 'ECONNREFUSED' ? 'connection refused'
      : code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'EPROTO' ? `TLS failed (${code}); for a registry without valid TLS, pass --insecure-registry ${registry}`
        : code;
  return new RegistryError(registry, `${registry}: cannot reach the registry: ${hint}`, { transient: isTransientNetworkError(err), cause: err });
}

/** The scope a 401 challenge says was missing (error="insufficient_scope"), '' when it names none, else undefined. */
function insufficientScope(header: string | string[] | undefined): string | undefined {
  const challenge = parseChallenges(header).find((c) => c.params.error === 'insufficient_scope');
  return challenge ? challenge.params.scope ?? '' : undefined;
}

/**
 * The OCI error body's first error as "code: message: detail": {"errors":[{"code","message","detail"}]}.
 * The detail often holds the real cause ("unknown error" with "...: no space left on device").
 */
function registryErrorDetail(text: string | undefined): string | undefined {
  const first = firstRegistryError(text);
  return first ? [first.code, first.message, first.detail].filter(Boolean).join(': ') : undefined;
}

function firstRegistryError(text: string | undefined): { code?: string; message?: string; detail?: string } | undefined {
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown; detail?: unknown }> };
    const first = Array.isArray(parsed.errors) ? parsed.errors[0] : undefined;
    if (!first) return undefined;
    const detail = typeof first.detail === 'string' ? first.detail : first.detail == null ? undefined : JSON.stringify(first.detail);
    return {
      code: typeof first.code === 'string' ? first.code : undefined,
      message: typeof first.message === 'string' ? first.message.slice(0, 200) : undefined,
      // A detail that only repeats the message (or is empty) says nothing more.
      detail: detail && detail !== first.message ? detail.slice(0, 300) : undefined,
    };
  } catch {
    return undefined;
  }
}

/** Upload locations carry state tokens (distribution's _state HMAC): keep them out of messages. */
export function redactPath(path: string): string {
  const queryAt = path.indexOf('?');
  return queryAt === -1 ? path : `${path.slice(0, queryAt)}?…`;
}

/** A request path for a message: the path of an absolute URL, never its query. */
export function describePath(path: string): string {
  const plain = redactPath(path);
  try {
    return new URL(plain).pathname;
  } catch {
    return plain;
  }
}
