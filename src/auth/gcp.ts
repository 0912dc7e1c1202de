// Artifact Registry's and gcr.io's credentials: the user `oauth2accesstoken` with an OAuth2 access
// token of the identity Application Default Credentials find, through Google's own
// google-auth-library: a file in GOOGLE_APPLICATION_CREDENTIALS (a service account key, or
// workload identity federation's external_account), gcloud's application default credentials, or
// the metadata server (GKE Workload Identity; GCE_METADATA_HOST names another, as in Google's
// libraries). Loaded only when a Google registry is involved (keychain.ts imports it on demand).
// One token for every Google host, shared by concurrent lookups and renewed before it expires.
// Without one, Google's public images are still read anonymously; a registry that refuses
// anonymous access is refused with the reason, in one line. No token is ever part of a message.
import { Compute, GoogleAuth } from 'google-auth-library';
import { type Credential, type CredentialSource, errorLine } from './credential.ts';
import { type Renewable, RenewingCache, renewalTime } from './renewing.ts';

type BasicCredential = Extract<Credential, { kind: 'basic' }>;

/** The user name Google's registries take with an access token as the password. */
const username = 'oauth2accesstoken';
const scope = 'https://www.googleapis.com/auth/cloud-platform';
/** Google's access tokens last an hour; used when an answer states no expiry (or one already past). */
const tokenLifetimeMs = 3600_000;
/** Renew this long before expiry (or at three quarters of a shorter lifetime); the library is told the same. */
const renewMarginMs = 5 * 60_000;

/** A failure to get a token is remembered this long before the identity is asked again. */
const retryAfterFailureMs = 60_000;

export class GoogleCredentials implements CredentialSource {
  readonly #env: Record<string, string | undefined>;
  readonly #now: () => number;
  readonly #tokens: RenewingCache<BasicCredential | undefined>;
  #auth: GoogleAuth | undefined;
  /** Why the last attempt gave no token. */
  #absence: string | undefined;

  /** `env`: where GOOGLE_APPLICATION_CREDENTIALS and GCE_METADATA_HOST are read, for the messages (the library reads process.env). */
  constructor(env: Record<string, string | undefined>, now: () => number = Date.now) {
    this.#env = env;
    this.#now = now;
    this.#tokens = new RenewingCache(now);
  }

  /**
   * Asked only for Google hosts (keychain.ts decides): one identity, so one token for all of them.
   * Without a token (no identity, or it was refused one) the answer is undefined: public images
   * need none, and a registry that wants one is refused with absence() as the reason.
   */
  async lookup(): Promise<Credential | undefined> {
    return this.#tokens.get('', () => this.#fetch());
  }

  absence(): string | undefined {
    return this.#absence;
  }

  async #fetch(): Promise<Renewable<BasicCredential | undefined>> {
    const started = this.#now();
    // A project id given stops the library from looking one up (a call to Resource Manager for
    // federation, the metadata server's project-id), which a registry token does not need.
    if (this.#auth === undefined) {
      quietMetadataProbe();
      this.#auth = new GoogleAuth({ scopes: [scope], projectId: 'image-clone-unused', clientOptions: { eagerRefreshThresholdMillis: renewMarginMs } });
    }
    let metadata: boolean | undefined;
    let token;
    let expiry;
    try {
      const client = await this.#auth.getClient();
      metadata = client instanceof Compute;
      token = (await client.getAccessToken()).token;
      expiry = client.credentials.expiry_date;
      if (!token) throw new Error('the answer held none');
    } catch (err) {
      this.#absence = this.#describe(err, metadata);
      return { value: undefined, renewAt: started + retryAfterFailureMs };
    }
    this.#absence = undefined;
    const lifetime = typeof expiry === 'number' && expiry > started ? expiry - started : tokenLifetimeMs;
    return {
      value: {
        kind: 'basic', username, password: token,
        refused: `${this.#origin(metadata)} was refused: it needs roles/artifactregistry.writer on the backup repository (roles/artifactregistry.reader on a source)`,
      },
      renewAt: renewalTime(started, lifetime, renewMarginMs),
    };
  }

  #metadataHost(): string {
    return this.#env['GCE_METADATA_HOST'] || this.#env['GCE_METADATA_IP'] || '169.254.169.254';
  }

  /** Where the identity came from, without any secret; `metadata` undefined: not known yet. */
  #origin(metadata: boolean | undefined): string {
    const file = this.#env['GOOGLE_APPLICATION_CREDENTIALS'];
    if (file) return `the Google identity in GOOGLE_APPLICATION_CREDENTIALS (${file})`;
    if (metadata === true) return `the Google identity of the metadata server (${this.#metadataHost()})`;
    return 'the Google identity of Application Default Credentials';
  }

  /** Why there is no token, in a few words that fit "anonymous access may not (…)"; never a secret. */
  #describe(err: unknown, metadata: boolean | undefined): string {
    const message = errorLine(err);
    if (/could not load the default credentials/i.test(message)) {
      return `no Google identity was found: Application Default Credentials found none (GOOGLE_APPLICATION_CREDENTIALS, gcloud's application default credentials, the metadata server at ${this.#metadataHost()})`;
    }
    const status = (err as { response?: { status?: unknown } } | undefined)?.response?.status;
    const fix = metadata === true ? ': on GKE, enable Workload Identity on the node pool and annotate the Kubernetes ServiceAccount with iam.gke.io/gcp-service-account' : '';
    return `${this.#origin(metadata)} gave no access token${typeof status === 'number' ? ` (HTTP ${status})` : ''}: ${message}${fix}`;
  }
}

/**
 * Off Google Cloud, the library's probe for a metadata server prints a MetadataLookupWarning of
 * its own on stderr when the address answers oddly (a corporate proxy's 403); absence() already
 * says what matters, in the one line a refusal gets. Other warnings print as before.
 */
function quietMetadataProbe(): void {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: unknown } | undefined)?.type;
    if (type === 'MetadataLookupWarning') return;
    (emit as (...args: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
}
