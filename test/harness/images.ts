// Runnable test images for the harness's node, built without a container engine: a tar layer is
// written here byte by byte (fixed owners, modes and mtimes), so the same inputs always give the same
// digests. They are pushed with plain registry API calls (monolithic blob uploads), not with
// image-clone's own client.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const busyboxPath = '/usr/bin/busybox';

export type LayerEntry =
  | { path: string; data: Buffer | string; mode?: number }
  | { path: string; dir: true; mode?: number }
  | { path: string; symlink: string };

export interface Blob {
  digest: string;
  size: number;
  mediaType: string;
  data: Buffer;
}

export interface BuiltImage {
  /** The manifest (or index) pushed under the tag. */
  digest: string;
  mediaType: string;
  /** Every blob and child manifest, in push order (children before the index). */
  blobs: Blob[];
  manifests: Blob[];
  /** For an index: each platform's manifest digest. */
  children: Array<{ digest: string; platform: string }>;
}

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const ociIndex = 'application/vnd.oci.image.index.v1+json';

function blob(data: Buffer | string, mediaType: string): Blob {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, mediaType, data: bytes };
}

function tarHeader(name: string, size: number, mode: number, type: '0' | '2' | '5', linkname = ''): Buffer {
  const header = Buffer.alloc(512);
  const put = (text: string, offset: number, length: number) => header.write(text, offset, length, 'utf8');
  const octal = (value: number, length: number) => value.toString(8).padStart(length - 1, '0') + '\0';
  // ustar: a path longer than 100 bytes is split at a '/' into prefix (up to 155) and name.
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', name.length - 2 > 155 ? 155 : name.length - 2);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
    if (cut <= 0 || Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155) throw new Error(`tar path too long: ${prefix}/${name}`);
  }
  put(name, 0, 100);
  put(octal(mode, 8), 100, 8);
  put(octal(0, 8), 108, 8); // uid
  put(octal(0, 8), 116, 8); // gid
  put(octal(size, 12), 124, 12);
  put(octal(0, 12), 136, 12); // mtime
  put('        ', 148, 8); // checksum placeholder
  put(type, 156, 1);
  put(linkname, 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put(prefix, 345, 155);
  let sum = 0;
  for (const byte of header) sum += byte;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return header;
}

/** A gzipped tar layer; parent directories are added as needed, entries sorted by path. */
export function tarLayer(entries: LayerEntry[], gzipLevel = 6): { layer: Blob; diffId: string } {
  const all = new Map<string, LayerEntry>();
  for (const entry of entries) {
    const parts = entry.path.replace(/^\/+/, '').split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!all.has(dir)) all.set(dir, { path: dir, dir: true });
    }
    all.set(parts.join('/'), entry);
  }
  const chunks: Buffer[] = [];
  for (const [path, entry] of [...all].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if ('dir' in entry) chunks.push(tarHeader(`${path}/`, 0, entry.mode ?? 0o755, '5'));
    else if ('symlink' in entry) chunks.push(tarHeader(path, 0, 0o777, '2', entry.symlink));
    else {
      const data = Buffer.isBuffer(entry.data) ? entry.data : Buffer.from(entry.data);
      chunks.push(tarHeader(path, data.length, entry.mode ?? 0o644, '0'), data, Buffer.alloc((512 - (data.length % 512)) % 512));
    }
  }
  chunks.push(Buffer.alloc(1024));
  const tar = Buffer.concat(chunks);
  // Node's gzip header has mtime 0 and no file name, so the bytes depend only on the input (and zlib).
  return { layer: blob(gzipSync(tar, { level: gzipLevel }), 'application/vnd.oci.image.layer.v1.tar+gzip'), diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}` };
}

export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  user?: string;
  workingDir?: string;
  env?: string[];
}

/** One platform's manifest from layers (bottom first). */
export function imageManifest(layers: Array<{ layer: Blob; diffId: string }>, platform: string, config: ImageConfig = {}): { manifest: Blob; blobs: Blob[] } {
  const [os, architecture, variant] = platform.split('/');
  const configBlob = blob(JSON.stringify({
    architecture, os, ...(variant ? { variant } : {}),
    config: {
      Env: config.env ?? ['PATH=/bin:/usr/bin:/usr/local/bin'],
      ...(config.entrypoint ? { Entrypoint: config.entrypoint } : {}),
      ...(config.cmd ? { Cmd: config.cmd } : {}),
      ...(config.user ? { User: config.user } : {}),
      ...(config.workingDir ? { WorkingDir: config.workingDir } : {}),
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: '1970-01-01T00:00:00Z', created_by: 'image-clone test harness' })),
  }), 'application/vnd.oci.image.config.v1+json');
  const manifest = blob(JSON.stringify({
    schemaVersion: 2, mediaType: ociManifest,
    config: { mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.size },
    layers: layers.map(({ layer }) => ({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size })),
  }), ociManifest);
  return { manifest, blobs: [configBlob, ...layers.map((l) => l.layer)] };
}

/** The command a test image runs by default: waits, and exits 0 at once on SIGTERM. */
export const idleCommand = ['/bin/sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done"];

let busyboxLayerCache: { layer: Blob; diffId: string } | undefined;
/** busybox (Debian's busybox-static) with the applets the tests use. */
export function busyboxLayer(): { layer: Blob; diffId: string } {
  if (!existsSync(busyboxPath)) throw new Error(`${busyboxPath} is missing: install Debian's busybox-static (.ci/run does)`);
  busyboxLayerCache ??= tarLayer([
    { path: 'bin/busybox', data: readFileSync(busyboxPath), mode: 0o755 },
    ...['sh', 'sleep', 'cat', 'echo', 'true', 'false', 'ls', 'env', 'id', 'wget', 'nc', 'ip', 'test', 'grep', 'head', 'timeout', 'mkdir', 'rm'].map((applet) => ({ path: `bin/${applet}`, symlink: 'busybox' })),
    { path: 'tmp', dir: true as const, mode: 0o1777 },
    { path: 'etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' },
  ]);
  return busyboxLayerCache;
}

/**
 * A runnable busybox image whose content also names it (so every name gets its own digest). With
 * several platforms it is an index: linux/amd64 runs here (busybox is an amd64 binary); the other
 * platforms are real manifests for their platform holding only the name file, for copies and
 * platform selection, and cannot run on this machine.
 */
export function testImage(name: string, platforms: string[] = ['linux/amd64'], config: ImageConfig = {}): BuiltImage {
  const perPlatform = platforms.map((platform) => {
    const identity = tarLayer([{ path: 'etc/image', data: `${name} ${platform}\n` }]);
    const layers = platform === 'linux/amd64' ? [busyboxLayer(), identity] : [identity];
    return { platform, ...imageManifest(layers, platform, { cmd: idleCommand, ...config }) };
  });
  if (platforms.length === 1) {
    const [only] = perPlatform;
    return { digest: only!.manifest.digest, mediaType: ociManifest, blobs: only!.blobs, manifests: [only!.manifest], children: [] };
  }
  const index = blob(JSON.stringify({
    schemaVersion: 2, mediaType: ociIndex,
    manifests: perPlatform.map(({ manifest, platform }) => {
      const [os, architecture, variant] = platform.split('/');
      return { mediaType: ociManifest, digest: manifest.digest, size: manifest.size, platform: { architecture, os, ...(variant ? { variant } : {}) } };
    }),
  }), ociIndex);
  return {
    digest: index.digest, mediaType: ociIndex,
    blobs: perPlatform.flatMap((p) => p.blobs),
    manifests: [...perPlatform.map((p) => p.manifest), index],
    children: perPlatform.map((p) => ({ digest: p.manifest.digest, platform: p.platform })),
  };
}

let pauseCache: Buffer | undefined;
/** The pod sandbox image: a static `pause` built from pause.c with the machine's C compiler. */
export function pauseImage(): BuiltImage {
  if (!pauseCache) {
    const dir = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
    try {
      execFileSync('gcc', ['-static', '-O2', '-s', '-o', join(dir, 'pause'), new URL('./node/pause.c', import.meta.url).pathname], { stdio: ['ignore', 'ignore', 'inherit'] });
      pauseCache = readFileSync(join(dir, 'pause'));
    } finally {
      execFileSync('rm', ['-rf', dir]);
    }
  }
  const { manifest, blobs } = imageManifest([tarLayer([{ path: 'pause', data: pauseCache, mode: 0o755 }])], 'linux/amd64', { entrypoint: ['/pause'] });
  return { digest: manifest.digest, mediaType: ociManifest, blobs, manifests: [manifest], children: [] };
}

export interface PushAuth {
  /** An Authorization header value, for registries that need one. */
  authorization?: string;
}

/** Pushes an image over plain HTTP: blobs (skipped when present), child manifests, then the tag. */
export async function pushImage(host: string, repository: string, tag: string, image: BuiltImage, auth: PushAuth = {}): Promise<string> {
  const base = `http://${host}/v2/${repository}`;
  const headers: Record<string, string> = auth.authorization ? { authorization: auth.authorization } : {};
  const check = async (response: Response, what: string) => {
    if (!response.ok) throw new Error(`pushing ${host}/${repository}:${tag}: ${what}: HTTP ${response.status} ${await response.text()}`);
    return response;
  };
  const seen = new Set<string>();
  for (const b of image.blobs) {
    if (seen.has(b.digest)) continue;
    seen.add(b.digest);
    const head = await fetch(`${base}/blobs/${b.digest}`, { method: 'HEAD', headers });
    if (head.ok) continue;
    const start = await check(await fetch(`${base}/blobs/uploads/`, { method: 'POST', headers }), 'start upload');
    const location = new URL(start.headers.get('location')!, `http://${host}`);
    location.searchParams.set('digest', b.digest);
    await check(await fetch(location, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: new Uint8Array(b.data) }), `blob ${b.digest}`);
  }
  const manifests = image.manifests;
  for (const [i, m] of manifests.entries()) {
    const reference = i === manifests.length - 1 ? tag : m.digest;
    await check(await fetch(`${base}/manifests/${reference}`, { method: 'PUT', headers: { ...headers, 'content-type': m.mediaType }, body: new Uint8Array(m.data) }), `manifest ${reference}`);
  }
  return image.digest;
}
