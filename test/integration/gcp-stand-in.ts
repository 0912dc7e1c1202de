// Google's side of Artifact Registry's authentication, written here because no Google emulator
// exists: a STAND-IN, with the request and response shapes Google documents, for
//   - the metadata server (GKE Workload Identity): GET /computeMetadata/v1/instance/service-accounts/default/token
//     with header `Metadata-Flavor: Google` answers {access_token, expires_in, token_type}, and
//     every answer carries `Metadata-Flavor: Google` (Google's libraries check it);
//   - Security Token Service (workload identity federation): POST /v1/token, an RFC 8693 token
//     exchange of the subject token from the external_account file's credential source;
//   - the token verification Artifact Registry asks Google for: GET /tokeninfo?access_token=T
//     answers 200 for a token it handed out that has not expired, 403 for one whose identity may not
//     use the registry (IAM said no), 400 otherwise. regharness's issuer asks it
//     (--oauth2-tokeninfo), so the real registry accepts exactly the tokens handed out here.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GoogleStandInOptions {
  /** expires_in of the access tokens handed out, in seconds. */
  lifetimeSeconds?: number;
  /** The identity may not use the registry: tokeninfo answers 403 for its tokens. */
  denied?: boolean;
  /** The subject token STS accepts (workload identity federation). */
  subjectToken?: string;
}

export interface GoogleStandIn {
  /** host:port, for GCE_METADATA_HOST. */
  host: string;
  tokeninfo: string;
  /** The STS token endpoint, for an external_account file's token_url. */
  sts: string;
  /** Every metadata token request's Metadata-Flavor header (undefined when absent). */
  tokenRequests: (string | undefined)[];
  stsRequests: number;
  /** Access tokens handed out, oldest first. */
  issued: string[];
  /** tokeninfo's answers, by status. */
  verdicts: Record<number, number>;
  options: GoogleStandInOptions;
  close(): Promise<void>;
}

const flavor = { 'metadata-flavor': 'Google' };

export async function startGoogleStandIn(options: GoogleStandInOptions = {}, ip = '127.0.0.1'): Promise<GoogleStandIn> {
  const expiry = new Map<string, number>();
  const state: Omit<GoogleStandIn, 'host' | 'tokeninfo' | 'sts' | 'close'> = { tokenRequests: [], stsRequests: 0, issued: [], verdicts: {}, options };
  const hand = () => {
    const token = `ya29.stand-in-${randomBytes(16).toString('hex')}`;
    const lifetime = state.options.lifetimeSeconds ?? 3600;
    expiry.set(token, Date.now() + lifetime * 1000);
    state.issued.push(token);
    return { access_token: token, expires_in: lifetime, token_type: 'Bearer' };
  };
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const body = await read(req);
    if (url.pathname.startsWith('/computeMetadata/v1/')) {
      const header = req.headers['metadata-flavor'];
      const path = url.pathname.slice('/computeMetadata/v1/'.length);
      if (path === 'instance/service-accounts/default/token') state.tokenRequests.push(typeof header === 'string' ? header : undefined);
      // The metadata server refuses a request without the header, as Google's does.
      if (header !== 'Google') return json(res, 403, { error: 'Missing Metadata-Flavor:Google header.' }, flavor);
      if (path === 'instance/service-accounts/default/token') return json(res, 200, hand(), flavor);
      if (path === 'instance' || path === 'instance/') {
        res.writeHead(200, { 'content-type': 'application/text', ...flavor });
        return res.end('attributes/\nservice-accounts/\n');
      }
      res.writeHead(404, flavor);
      return res.end();
    }
    if (url.pathname === '/v1/token' && req.method === 'POST') {
      state.stsRequests++;
      const form = new URLSearchParams(body);
      if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:token-exchange' || form.get('subject_token') !== state.options.subjectToken) {
        return json(res, 400, { error: 'invalid_grant', error_description: 'The subject token is not valid.' });
      }
      return json(res, 200, { ...hand(), issued_token_type: 'urn:ietf:params:oauth:token-type:access_token' });
    }
    if (url.pathname === '/tokeninfo') {
      const token = url.searchParams.get('access_token') ?? '';
      const until = expiry.get(token);
      const status = until === undefined || until <= Date.now() ? 400 : state.options.denied ? 403 : 200;
      state.verdicts[status] = (state.verdicts[status] ?? 0) + 1;
      return json(res, status, status === 200 ? { expires_in: Math.floor((until! - Date.now()) / 1000), scope: 'https://www.googleapis.com/auth/cloud-platform' } : { error: 'invalid_token' });
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, ip, resolve));
  const host = `${ip}:${(server.address() as AddressInfo).port}`;
  return Object.assign(state, {
    host,
    tokeninfo: `http://${host}/tokeninfo`,
    sts: `http://${host}/v1/token`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  });
}

async function read(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The environment of a run whose only Google identity is what the test gives: no key file, no
 * gcloud files (HOME is `home`), no docker config, no proxy; `more` adds GCE_METADATA_HOST and the like.
 */
export function googleEnv(home: string, more: Record<string, string> = {}): Record<string, string> {
  return {
    HOME: home, DOCKER_CONFIG: '', REGISTRY_AUTH_FILE: '', CLOUDSDK_CONFIG: '',
    GOOGLE_APPLICATION_CREDENTIALS: '', GCE_METADATA_HOST: '', GCE_METADATA_IP: '', METADATA_SERVER_DETECTION: '',
    HTTP_PROXY: '', HTTPS_PROXY: '', http_proxy: '', https_proxy: '',
    ...more,
  };
}
