// A registry that lies: manifests over the size cap, bytes that do not match their digest, an
// index that names itself, unknown media types, schema 1, and a token endpoint that answers HTML.
// For testing that bad content gives one clear error and never a crash or a tag.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HostileRegistry {
  host: string;
  close(): Promise<void>;
}

const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const json = (doc: unknown) => Buffer.from(JSON.stringify(doc));
const zero = `sha256:${'0'.repeat(64)}`;

/** The manifests each repository serves under the tag `1`. */
function manifestFor(repository: string, reference: string): { body: Buffer; type: string; digest?: string } | undefined {
  switch (repository) {
    case 'oversize': {
      const body = Buffer.alloc(9 * 1024 * 1024, 0x20);
      body.write('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","pad":"');
      body.write('"}', body.length - 2);
      return { body, type: 'application/vnd.oci.image.manifest.v1+json' };
    }
    case 'mismatch': {
      // The tag and the HEAD say one digest; the bytes say another.
      const body = json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: zero, size: 2 }, layers: [] });
      return { body, type: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'1'.repeat(64)}` };
    }
    case 'selfloop': {
      // An index whose child is "itself": asked for the child, it answers with the index again.
      const body = json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${'2'.repeat(64)}`, size: 200 }] });
      return reference === '1' ? { body, type: 'application/vnd.oci.image.index.v1+json' } : { body, type: 'application/vnd.oci.image.index.v1+json', digest: reference };
    }
    case 'weird':
      return { body: json({ schemaVersion: 2, mediaType: 'application/vnd.example.weird+json', stuff: [] }), type: 'application/vnd.example.weird+json' };
    case 'ancient':
      return { body: json({ schemaVersion: 1, name: 'ancient', tag: '1', fsLayers: [], history: [] }), type: 'application/vnd.docker.distribution.manifest.v1+prettyjws' };
    default:
      return undefined;
  }
}

/** `tokenGarbage`: every request wants a Bearer token, and the token endpoint answers an HTML page. */
export async function startHostileRegistry(options: { tokenGarbage?: boolean } = {}): Promise<HostileRegistry> {
  let host = '';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (options.tokenGarbage) {
      if (url.pathname === '/token') {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Please log in</body></html>');
        return;
      }
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="hostile"`, 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
    }
    if (url.pathname === '/v2/') {
      res.writeHead(200).end('{}');
      return;
    }
    const match = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    const manifest = match && manifestFor(match[1]!, match[2]!);
    if (!manifest) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
      return;
    }
    res.writeHead(200, {
      'content-type': manifest.type,
      'content-length': String(manifest.body.length),
      'docker-content-digest': manifest.digest ?? digestOf(manifest.body),
    });
    res.end(req.method === 'HEAD' ? undefined : manifest.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
