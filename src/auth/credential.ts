// What the registry client asks for each host: one small interface (the keychain of
// go-containerregistry's pkg/authn), answered by one source per file in this folder: docker config
// files and their credential helpers (docker-config.ts), each cloud's identity (ecr.ts), and the
// order in which they are asked (keychain.ts).

export type Credential =
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token, exchanged at the token realm (docker `identitytoken`, helper user `<token>`). */
  | { kind: 'identityToken'; token: string }
  /** A bearer token sent to the registry as it is (docker `registrytoken`). */
  | { kind: 'registryToken'; token: string };

export interface CredentialSource {
  /** `repository` (e.g. 'org/app') lets namespaced auth.json keys such as 'quay.io/org' apply. */
  lookup(registry: string, repository?: string): Promise<Credential | undefined>;
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
