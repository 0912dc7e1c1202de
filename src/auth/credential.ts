// What the registry client asks for each host: one small interface (the keychain of
// go-containerregistry's pkg/authn), answered by one source per file in this folder: docker config
// files and their credential helpers (docker-config.ts), each cloud's identity (ecr.ts, gcp.ts), and the
// order in which they are asked (keychain.ts).

export type Credential =
  /** `refused`: what a refusal of this credential says instead of "the configured credentials were refused" (a cloud identity's; never a secret). */
  | { kind: 'basic'; username: string; password: string; refused?: string }
  /** An OAuth2 refresh token, exchanged at the token realm (docker `identitytoken`, helper user `<token>`). */
  | { kind: 'identityToken'; token: string }
  /** A bearer token sent to the registry as it is (docker `registrytoken`). */
  | { kind: 'registryToken'; token: string };

export interface CredentialSource {
  /** `repository` (e.g. 'org/app') lets namespaced auth.json keys such as 'quay.io/org' apply. */
  lookup(registry: string, repository?: string): Promise<Credential | undefined>;
  /**
   * Why a lookup for `registry` found nothing, when the source looked and can say (a cloud identity
   * that is missing or refused a token): the registry is then tried anonymously (public images
   * need nothing), and a refusal names this instead of "no credentials are configured".
   */
  absence?(registry: string): string | undefined;
}

/**
 * What a cloud's credential source asks of the registry client (ACR's token exchange, azure.ts):
 * form POSTs sent with the client's own TLS, insecure-host and proxy rules.
 */
export interface ExchangeChannel {
  /**
   * POSTs `form` to `target`: a path below `registry` (its scheme found as for every request to it)
   * or an absolute URL (an identity provider). No Authorization header; the answer whatever its status.
   */
  postForm(registry: string, target: string, form: URLSearchParams): Promise<{ status: number; body: string }>;
  /** Whether the user named this host (host[:port]) insecure: only then may it be reached over plain http. */
  isInsecure(host: string): boolean;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The first line of a cloud SDK's error, capped: enough to name the cause, never a page of detail. */
export function errorLine(err: unknown): string {
  const line = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}
