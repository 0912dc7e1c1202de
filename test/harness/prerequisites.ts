// What `npm test`, `npm run demo` and `npm run harness` need from the machine, checked in well under a
// second, before any build: the npm packages, Go, the Debian packages of .ci/debian-packages, and for the
// harness's node root, cgroups and kubelet's fixed port. A missing one is one line naming it and the
// command that fixes it, with no stack trace.
//   node test/harness/prerequisites.ts test|demo|harness [--node]   (package.json runs it first)
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { execFileSync } from 'node:child_process';

const root = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const setupCommand = 'source scripts/setup.sh';
/** Held by the one harness process on this machine that runs a node (its pid inside; see node.ts). */
export const nodeLockPath = '/var/lib/image-clone-node.lock';

/** Whether the node was asked for through the environment (IMAGE_CLONE_HARNESS_NODE=1). */
export const nodeFromEnv = () => process.env.IMAGE_CLONE_HARNESS_NODE === '1';

/** A prerequisite the machine lacks: expected, so reported as one line without a stack trace. */
export class PrerequisiteError extends Error {}

/** What needs a Debian package: any harness start, the harness's node, or `npm test` alone. */
type Use = 'harness' | 'node' | 'test';

interface Requirement {
  pkg: string;
  /** A command looked up on PATH (and in /usr/sbin, /sbin), or an absolute path. */
  provides: string;
  use: Use;
}

/** .ci/debian-packages: the one list of Debian packages (scripts/setup.sh installs from it). */
function debianRequirements(): Requirement[] {
  return readFileSync(join(root, '.ci/debian-packages'), 'utf8').split('\n')
    .filter((line) => line.trim() && !line.startsWith('#'))
    .map((line) => {
      const [pkg, provides, use] = line.trim().split(/\s+/);
      return { pkg: pkg!, provides: provides!, use: use as Use };
    });
}

function found(provides: string): boolean {
  if (provides.startsWith('/')) return existsSync(provides);
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  return dirs.some((dir) => dir && existsSync(join(dir, provides)));
}

/** The Debian packages (by name, each once) whose files are missing, for these uses. */
function missingPackages(uses: Use[]): { pkg: string; provides: string }[] {
  const missing = debianRequirements().filter((r) => uses.includes(r.use) && !found(r.provides));
  return missing.filter((r, i) => missing.findIndex((m) => m.pkg === r.pkg) === i);
}

/** kubelet's port (fixed: one node per machine) in use by a process that is not our own node. */
function kubeletPortTaken(): boolean {
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((file) => {
    try {
      return readFileSync(file, 'utf8').split('\n').slice(1);
    } catch {
      return [];
    }
  }).some((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[3] === '0A' && fields[1]?.endsWith(':2812'); // LISTEN on 10250
  });
}

/** Whether a live process holds the harness node (its harness then waits for it: not a problem). */
function nodeHeld(): boolean {
  try {
    const pid = Number(readFileSync(nodeLockPath, 'utf8').trim());
    return pid > 0 && existsSync(`/proc/${pid}`);
  } catch {
    return false;
  }
}

/** The problems, each one line part; empty when everything is there. */
interface Needs {
  /** The harness's node (root, cgroups, kubelet's port, its Debian packages). */
  node: boolean;
  /** What `npm test` alone needs. */
  test: boolean;
  /** What building the harness needs (npm packages, Go). */
  build: boolean;
  /** The command a person typed, for the fix ("run it as root"). */
  command: string;
}

function machineProblems(options: Needs): string[] {
  const problems: string[] = [];
  if (options.build) {
    if (!existsSync(join(root, 'node_modules/.bin/tsc'))) problems.push(`the npm packages are not installed: run npm ci (or ${setupCommand})`);
    let go: string | undefined;
    try {
      go = execFileSync('go', ['env', 'GOVERSION'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    } catch { /* not there */ }
    const [major, minor] = (go ?? '').replace(/^go/, '').split('.').map(Number);
    if (!go) problems.push('Go >= 1.26 is not on PATH (it builds the test harness): install it from https://go.dev/dl/');
    else if (major! < 1 || (major === 1 && minor! < 26)) problems.push(`${go} is too old to build the test harness (need >= 1.26): install a newer one from https://go.dev/dl/`);
  }
  const uses: Use[] = ['harness', ...(options.node ? ['node' as const] : []), ...(options.test ? ['test' as const] : [])];
  const missing = missingPackages(uses);
  if (missing.length) {
    const names = missing.map((m) => m.pkg);
    problems.push(`missing ${missing.map((m) => `${m.provides.replace(/^.*\//, '')} (Debian package ${m.pkg})`).join(', ')}: ` +
      `run apt-get install -y --no-install-recommends ${names.join(' ')} (or ${setupCommand}, which installs every package)`);
  }
  if (options.node) {
    if (process.getuid?.() !== 0) problems.push(`the harness node (kubelet, containerd, a bridge) needs root: run it as root${/^(npm|node) /.test(options.command) ? ` (sudo env "PATH=$PATH" ${options.command})` : ''}`);
    if (!existsSync('/sys/fs/cgroup/memory') && !existsSync('/sys/fs/cgroup/cgroup.controllers')) {
      problems.push('the harness node needs cgroups: mount them at /sys/fs/cgroup (v1 with a memory hierarchy, or v2)');
    }
    if (kubeletPortTaken() && !nodeHeld()) {
      problems.push("port 10250 (kubelet's, fixed) is in use by another program: stop it (ss -ltnp 'sport = :10250' names it)");
    }
  }
  return problems;
}

/** Throws a PrerequisiteError with every problem on one line. */
export function checkMachine(options: Needs): void {
  const problems = machineProblems(options);
  if (problems.length) throw new PrerequisiteError(`${options.command} cannot start: ${problems.join('; ')}`);
}

/**
 * Runs a harness script's start: an expected failure (a missing prerequisite, a failed build) ends it with
 * its one line and exit code 2; anything else keeps its stack trace. Scripts check the machine first and
 * import the harness (the Kubernetes client: seconds on a busy machine) only then.
 */
export async function runScript(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (!(err instanceof PrerequisiteError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [what = 'test', ...flags] = process.argv.slice(2);
  const node = what !== 'harness' || flags.includes('--node');
  try {
    checkMachine({ node, test: what === 'test', build: true, command: what === 'test' ? 'npm test' : `npm run ${what}${flags.length ? ` -- ${flags.join(' ')}` : ''}` });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
}
