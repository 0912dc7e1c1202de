// A TCP relay in front of a registry that counts the bytes clients send through it: what a copy
// uploads (blobs, manifests and HTTP headers alike), whatever the tool, measured on the wire.
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

export interface ByteCounter {
  /** host:port to give the tools instead of the registry's own. */
  host: string;
  /** Bytes clients have sent to the registry through the relay so far. */
  sent(): number;
  close(): Promise<void>;
}

export async function startByteCounter(target: string): Promise<ByteCounter> {
  const at = target.lastIndexOf(':');
  const [targetHost, targetPort] = [target.slice(0, at), Number(target.slice(at + 1))];
  let sent = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: targetHost, port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    client.on('data', (chunk: Buffer) => { sent += chunk.length; });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    sent: () => sent,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
