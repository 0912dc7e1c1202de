// The peer tools and GNU time: found on the machine or in the bench cache, or installed there
// (crane and regctl with `go install`, skopeo and GNU time with apt-get, as root).
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { commandExists, firstLine, gnuTime, lastLines, run } from './processes.ts';

export const cacheRoot = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'image-clone-bench');

export interface Tool {
  name: string;
  /** Absolute path of the binary, when it is available. */
  bin?: string;
  version: string;
  /** How it got here, or why it is missing. */
  note: string;
}

/** install: false (smoke runs) finds what is already there and downloads or builds nothing. */
export interface InstallOptions {
  install?: boolean;
}

const notInstalled = 'not installed (--smoke installs nothing)';

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** `go install MODULE/cmd/NAME@VERSION` into the cache (a folder per version), unless already there. */
export async function goInstall(name: string, pkg: string, version: string, log: (s: string) => void, options: InstallOptions = {}): Promise<Tool> {
  const gobin = join(cacheRoot, 'bin', `${name}@${version}`);
  const bin = join(gobin, name);
  if (existsSync(bin)) return { name, bin, version, note: `cached in ${gobin}` };
  if (options.install === false) return { name, version, note: `${notInstalled}: not in ${gobin}` };
  if (!commandExists('go')) return { name, version, note: 'not installed: go is not on PATH' };
  await mkdir(gobin, { recursive: true });
  log(`installing ${name} ${version}: go install ${pkg}@${version}`);
  const env = { ...process.env, GOBIN: gobin, GOTOOLCHAIN: 'local', CGO_ENABLED: '0' };
  const r = await run('go', ['install', `${pkg}@${version}`], { env });
  if (r.code !== 0 || !existsSync(bin)) {
    await rm(gobin, { recursive: true, force: true });
    return { name, version, note: `not installed: go install failed: ${lastLines(r.stderr, 3)}` };
  }
  return { name, bin, version, note: `go install ${pkg}@${version} (GOBIN=${gobin})` };
}

/** skopeo from the distribution's package (Debian: apt-get install skopeo), only as root. */
export async function ensureSkopeo(log: (s: string) => void, options: InstallOptions = {}): Promise<Tool> {
  let bin = commandExists('skopeo');
  let note = 'already installed';
  if (!bin && options.install === false) return { name: 'skopeo', version: '-', note: `${notInstalled}: not on PATH` };
  if (!bin) {
    if (!isRoot() || !commandExists('apt-get')) {
      return { name: 'skopeo', version: '-', note: 'not installed: missing, and apt-get needs root' };
    }
    log('installing skopeo: apt-get install -y skopeo');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'skopeo'], { env });
    if (r.code !== 0) {
      await run('apt-get', ['update'], { env });
      r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'skopeo'], { env });
    }
    bin = commandExists('skopeo');
    if (!bin) return { name: 'skopeo', version: '-', note: `not installed: apt-get failed: ${lastLines(r.stderr, 2)}` };
    note = 'apt-get install -y skopeo';
  }
  const v = await run(bin, ['--version']);
  const pkg = await run('dpkg-query', ['-W', '-f', '${Version}', 'skopeo']);
  return { name: 'skopeo', bin, version: `${firstLine(v.stdout).replace(/^skopeo version /, '')}${pkg.code === 0 ? ` (Debian ${pkg.stdout.trim()})` : ''}`, note };
}

/** GNU time, from the `time` package when missing (as root). */
export async function ensureGnuTime(log: (s: string) => void, options: InstallOptions = {}): Promise<boolean> {
  if (existsSync(gnuTime)) return true;
  if (!isRoot() || options.install === false) return false;
  log('installing GNU time: apt-get install -y time');
  await run('apt-get', ['install', '-y', 'time'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return existsSync(gnuTime);
}

/** The peer versions every benchmark measures (BENCH_CRANE_VERSION, BENCH_REGCTL_VERSION to try others). */
export const craneVersion = process.env.BENCH_CRANE_VERSION ?? 'v0.22.1';
export const regctlVersion = process.env.BENCH_REGCTL_VERSION ?? 'v0.11.7';

/**
 * The named peers (skopeo, crane, regctl), found or installed, each with the version it reports (and
 * the Go that built crane and regctl); a peer that is missing has no `bin` and says why in `note`.
 */
export async function findPeers<Id extends 'skopeo' | 'crane' | 'regctl'>(ids: readonly Id[], log: (s: string) => void, options: InstallOptions = {}): Promise<Record<Id, Tool>> {
  const out = {} as Record<Id, Tool>;
  for (const id of ids) {
    const t = id === 'skopeo' ? await ensureSkopeo(log, options)
      : id === 'crane' ? await goInstall('crane', 'github.com/google/go-containerregistry/cmd/crane', craneVersion, log, options)
        : await goInstall('regctl', 'github.com/regclient/regclient/cmd/regctl', regctlVersion, log, options);
    if (t.bin && id !== 'skopeo') {
      const v = await run(t.bin, ['version']);
      const reported = id === 'regctl' ? /VCSTag:\s*(\S+)/.exec(v.stdout)?.[1] : firstLine(v.stdout);
      t.version = `${reported || t.version}, ${firstLine((await run('go', ['version', t.bin])).stdout).replace(/^.*: /, 'built with ')}`;
    }
    log(`${t.name}: ${t.bin ? t.version : t.note}`);
    out[id] = t;
  }
  return out;
}
