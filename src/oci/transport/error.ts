// What a failed request means, said once: a status the caller did not accept becomes an AuthError
// (who may do what) or a RegistryError (with the registry's own error code), and a network failure
// names its cause. Upload state tokens never reach a message.
import { AuthError, RegistryError } from '../../errors.ts';
import { readCapped } from '../../util/read.ts';
import { errorCode, isTransientNetworkError, retryableStatuses } from '../../util/retry.ts';
import { describeProxy } from '../../util/proxy.ts';
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
 * `hasCredential` tells a refused scope for valid credentials from one for anonymous access.
 */
export async function checkStatus(request: RegistryRequest, response: RegistryResponse, hasCredential: () => Promise<boolean>): Promise<RegistryResponse> {
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
    const who = await hasCredential().catch(() => false)
      ? 'the credentials are valid but may not' : 'anonymous access may not (no credentials are configured for it), so it cannot';
    throw new AuthError(request.registry, `${request.registry}: ${who} ${wanted} ${request.repository ?? 'this repository'}: the token server did not grant the scope "${scope}" (HTTP 401 insufficient_scope${detail ? `: ${detail}` : ''})`, status);
  }
  if (status === 401 || status === 403) {
    throw new AuthError(request.registry, `${request.registry}: ${status === 401 ? 'authentication failed' : 'access denied'} for ${what} (HTTP ${status}${detail ? `: ${detail}` : ''})`, status);
  }
  throw new RegistryError(request.registry, `${request.registry}: ${what} failed (HTTP ${status}${detail ? `: ${detail}` : ''})`, {
    status,
    code: firstRegistryError(text)?.code,
    transient: retryableStatuses.has(status),
  });
}

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

/** The OCI error body's first error as "code: message": {"errors":[{"code","message","detail"}]}. */
function registryErrorDetail(text: string | undefined): string | undefined {
  const first = firstRegistryError(text);
  return first ? [first.code, first.message].filter(Boolean).join(': ') : undefined;
}

function firstRegistryError(text: string | undefined): { code?: string; message?: string } | undefined {
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const first = Array.isArray(parsed.errors) ? parsed.errors[0] : undefined;
    if (!first) return undefined;
    return {
      code: typeof first.code === 'string' ? first.code : undefined,
      message: typeof first.message === 'string' ? first.message.slice(0, 200) : undefined,
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
