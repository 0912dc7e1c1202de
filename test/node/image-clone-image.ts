// image-clone's container image for the in-cluster test, built without a Docker engine (none runs
// here). It follows manifests/image/Dockerfile: the package as `npm pack` publishes it, installed with
// its production dependencies at the lockfile's versions (type declarations and source maps removed),
// owned by root; the runtime stage's USER, WORKDIR, ENV, ENTRYPOINT and CMD are read from the
// Dockerfile itself. What differs: the base is not node:24-alpine but the Node binary this machine
// runs (the project provisions it, .ci/node.sh) with the glibc shared libraries it links, and no
// shell, npm or anything else of a distribution.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { repoRoot } from '../harness/harness.ts';
import { dockerfileRuntimeConfig } from '../harness/dockerfile.ts';
import { imageManifest, tarLayer, type BuiltImage, type LayerEntry } from '../harness/images.ts';

/** The Node binary running this process and the shared libraries it needs, at their paths. */
function nodeRuntimeEntries(): LayerEntry[] {
  const node = realpathSync(process.execPath);
  const entries: LayerEntry[] = [{ path: 'usr/local/bin/node', data: readFileSync(node), mode: 0o755 }];
  const ldd = execFileSync('ldd', [node], { encoding: 'utf8' });
  for (const match of ldd.matchAll(/(\/\S+)\s+\(0x/g)) {
    const lib = match[1]!;
    entries.push({ path: lib.slice(1), data: readFileSync(realpathSync(lib)), mode: 0o755 });
  }
  // Names Node looks up at run time; the user exists by number only, like the Dockerfile's USER 1000.
  entries.push({ path: 'etc/passwd', data: 'root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000:node:/home/node:/sbin/nologin\n' });
  entries.push({ path: 'etc/group', data: 'root:x:0:\nnode:x:1000:\n' });
  entries.push({ path: 'tmp', dir: true, mode: 0o1777 });
  return entries;
}

function treeEntries(dir: string, under: string): LayerEntry[] {
  const entries: LayerEntry[] = [];
  const walk = (path: string) => {
    for (const name of readdirSync(path).sort()) {
      const full = join(path, name);
      const st = statSync(full);
      const inImage = `${under}/${relative(dir, full)}`;
      if (st.isDirectory()) {
        entries.push({ path: inImage, dir: true, mode: 0o755 });
        walk(full);
      } else if (st.isFile()) entries.push({ path: inImage, data: readFileSync(full), mode: st.mode & 0o111 ? 0o755 : 0o644 });
    }
  };
  walk(dir);
  return entries;
}

/** Builds the image (npm pack, npm ci --omit=dev like the Dockerfile's install stage); about 10-20 s. */
export async function buildImageCloneImage(): Promise<BuiltImage & { config: ReturnType<typeof dockerfileRuntimeConfig> }> {
  const work = await mkdtemp(join(tmpdir(), 'image-clone-image-'));
  try {
    const npmOpts = { cwd: repoRoot, encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] };
    // 1. The package as `npm publish` would pack it, from the dist/ that npm test built: prepack's
    // rebuild (rm -rf dist) would pull the CLI from under the integration shards running beside.
    const tarball = execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', work], npmOpts).trim().split('\n').pop()!;
    execFileSync('tar', ['-xzf', join(work, tarball), '-C', work]);
    const pkg = join(work, 'package');
    // 2. Production dependencies at the lockfile's versions; no declarations or source maps.
    execFileSync('cp', [join(repoRoot, 'package-lock.json'), pkg]);
    execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { ...npmOpts, cwd: pkg });
    execFileSync('find', ['node_modules', '-type', 'f', '(', '-name', '*.d.ts', '-o', '-name', '*.d.mts', '-o', '-name', '*.d.cts', '-o', '-name', '*.map', ')', '-delete'], { cwd: pkg });
    if (!existsSync(join(pkg, 'bin/image-clone.js'))) throw new Error('the packed package has no bin/image-clone.js');
    const config = dockerfileRuntimeConfig();
    const runtime = tarLayer(nodeRuntimeEntries(), 1);
    const app = tarLayer(treeEntries(pkg, config.workingDir!.replace(/^\//, '')), 1);
    const { manifest, blobs } = imageManifest([runtime, app], 'linux/amd64', config);
    return { digest: manifest.digest, mediaType: manifest.mediaType, blobs, manifests: [manifest], children: [], config };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
