// Errors the user can act on. They are printed as one line without a stack (unless --debug) and
// mapped to a documented exit code by the CLI; anything else is a bug and shows its stack.

/** Bad flags, arguments or configuration: the run could not start (exit 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Registry credentials configuration that cannot be used: a malformed file or a failing credential helper (exit 2). */
export class ConfigError extends UsageError {
  override name = 'ConfigError';
}

/** A registry refused our credentials, or has none for us (a configuration problem, not transient). */
export class AuthError extends Error {
  override name = 'AuthError';
  readonly registry: string;
  readonly status: number | undefined;

  constructor(registry: string, message: string, status?: number) {
    super(message);
    this.registry = registry;
    this.status = status;
  }
}

/**
 * What state a registry is in, when an error says more than its status: over its rate limit (a pull
 * quota), out of storage, refusing every write (read-only), or not answering at all. A run stops
 * asking a registry in such a state, or stops writing to it.
 */
export type RegistryCondition = 'rate-limited' | 'storage-full' | 'read-only' | 'unresponsive';

/** A registry answered with an error, or could not be reached. `transient` errors are worth a retry later. */
export class RegistryError extends Error {
  override name = 'RegistryError';
  readonly registry: string;
  readonly status: number | undefined;
  /** The OCI error code from the response body (MANIFEST_UNKNOWN, BLOB_UPLOAD_INVALID, …). */
  readonly code: string | undefined;
  readonly transient: boolean;
  readonly condition: RegistryCondition | undefined;

  constructor(registry: string, message: string, details: { status?: number; code?: string; transient: boolean; cause?: unknown; condition?: RegistryCondition }) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.registry = registry;
    this.status = details.status;
    this.code = details.code;
    this.transient = details.transient;
    this.condition = details.condition;
  }
}

/** Content we will not copy: not a manifest, schema 1, too large, or bytes that do not match their digest. */
export class ManifestError extends Error {
  override name = 'ManifestError';
}

/** The Kubernetes API refused or failed a request; `message` carries the API's own words (for 403, the missing RBAC rule). */
export class KubeError extends Error {
  override name = 'KubeError';
  readonly status: number | undefined;
  readonly reason: string | undefined;

  constructor(message: string, status?: number, reason?: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

/**
 * The run could not start or go on (exit 5): the API server or the backup registry could not be
 * reached or refused every request, or the run lock was lost. Nothing more was done; retry later.
 */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
}

/** Another sync holds the run lock (exit 4): nothing was done, and running again later is safe. */
export class LockError extends Error {
  override name = 'LockError';
}
