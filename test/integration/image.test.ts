// The container image (manifests/image/Dockerfile), without a Docker engine: the Dockerfile's build
// and install stages are executed as a script in a clean folder (each stage's filesystem is a temp
// folder; COPY copies, RUN runs in the WORKDIR with sh), then the runtime stage's ENTRYPOINT is run
// from what they produced. The base image (Node) is this machine's Node.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoRoot } from '../harness/harness.ts';
import { deployment, harnessFixtures } from './fixtures.ts';
import { seedImage, uniqueRepo } from './helpers.ts';

const dockerfilePath = join(repoRoot, 'manifests/image/Dockerfile');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const packageJson = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));

interface Instruction { op: string; args: string }
interface Stage { name: string | undefined; from: string; instructions: Instruction[] }

/** Instructions with continuation lines joined and comments dropped, split into stages. */
function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (!line && !pending)) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    assert.ok(op && rest !== undefined, `cannot read Dockerfile line: ${line}`);
    const instruction = { op: op.toUpperCase(), args: rest.trim() };
    if (instruction.op === 'ARG' && !stages.length) {
      const [name, value] = instruction.args.split('=');
      args[name!] = value ?? '';
    } else if (instruction.op === 'FROM') {
      const [, image, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args) ?? [];
      stages.push({ from: image!.replace(/\$\{(\w+)\}/g, (_, n) => args[n] ?? ''), name, instructions: [] });
    } else {
      assert.ok(stages.length, `${instruction.op} before FROM`);
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return { args, stages };
}

/** KEY=value pairs of an ENV line (values may be double-quoted). */
function envPairs(args: string): Record<string, string> {
  return Object.fromEntries([...args.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)].map((m) => [m[1]!, m[2]!.replace(/^"|"$/g, '')]));
}

/** The environment of a step: this machine's, without npm's per-script variables (a parent `npm test` sets them). */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !/^npm_/i.test(k) && !/^IMAGE_CLONE_|^KUBECONFIG$/.test(k))) as Record<string, string>;
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', ...extra };
}

interface Built {
  stages: Stage[];
  /** Each stage's filesystem. */
  roots: Map<string, string>;
  final: { root: string; env: Record<string, string>; user: string | undefined; workdir: string; entrypoint: string[]; cmd: string[] };
}

/** Runs every stage: COPY copies (from the build context, the repository root, or an earlier stage), RUN runs. */
async function build(stages: Stage[], work: string): Promise<Built> {
  const roots = new Map<string, string>();
  let final!: Built['final'];
  for (const [index, stage] of stages.entries()) {
    const root = join(work, `stage-${index}${stage.name ? `-${stage.name}` : ''}`);
    await mkdir(root, { recursive: true });
    const earlier = [...roots.keys()].find((name) => name === stage.from);
    if (earlier) await cp(roots.get(earlier)!, root, { recursive: true });
    const state = { env: {} as Record<string, string>, user: undefined as string | undefined, workdir: '/', entrypoint: [] as string[], cmd: [] as string[] };
    const inRoot = (path: string) => join(root, posix.resolve(state.workdir, path));
    for (const { op, args } of stage.instructions) {
      switch (op) {
        case 'WORKDIR':
          state.workdir = posix.resolve(state.workdir, args);
          await mkdir(inRoot('.'), { recursive: true });
          break;
        case 'COPY': {
          const words = args.split(/\s+/);
          const flags = words.filter((w) => w.startsWith('--'));
          const paths = words.filter((w) => !w.startsWith('--'));
          const fromFlag = flags.find((f) => f.startsWith('--from='));
          assert.deepEqual(flags.filter((f) => f !== fromFlag), [], 'COPY flags this test knows: --from');
          const dest = paths.pop()!;
          const source = fromFlag ? roots.get(fromFlag.slice('--from='.length)) : repoRoot;
          assert.ok(source, `COPY ${fromFlag}: no such stage`);
          for (const path of paths) {
            assert.doesNotMatch(path, /[*?[]/, 'no wildcards in COPY sources');
            const from = join(source, path);
            assert.ok(existsSync(from), `COPY source ${path} exists${fromFlag ? ` in stage ${fromFlag.slice(7)}` : ' in the build context'}`);
            const isDir = (await stat(from)).isDirectory();
            const into = isDir || dest.endsWith('/') || paths.length > 1 ? join(inRoot(dest), isDir ? '' : posix.basename(path)) : inRoot(dest);
            await cp(from, into, { recursive: true });
          }
          break;
        }
        case 'RUN': {
          assert.doesNotMatch(args, /^\[/, 'RUN in shell form');
          assert.doesNotMatch(args, /(^|\s)\//, `RUN uses paths relative to its WORKDIR, so that this script runs it as Docker would: ${args}`);
          const result = spawnSync('sh', ['-c', args], { cwd: inRoot('.'), env: cleanEnv(state.env), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
          assert.equal(result.status, 0, `RUN ${args} (stage ${stage.name ?? index}) failed:\n${result.stdout}\n${result.stderr}`);
          break;
        }
        case 'ENV':
          Object.assign(state.env, envPairs(args));
          break;
        case 'USER':
          state.user = args;
          break;
        case 'ENTRYPOINT':
          state.entrypoint = JSON.parse(args);
          break;
        case 'CMD':
          state.cmd = JSON.parse(args);
          break;
        case 'LABEL':
          break;
        default:
          assert.fail(`Dockerfile instruction ${op} is not known to this test`);
      }
    }
    if (stage.name) roots.set(stage.name, root);
    final = { root, ...state };
  }
  return { stages, roots, final };
}

/** Every file below `dir`, as relative paths with forward slashes. */
async function filesBelow(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split('\\').join('/'))
    .sort();
}

const { stages } = parseDockerfile(readFileSync(dockerfilePath, 'utf8'));
const runtime = stages.at(-1)!;
const instructionsOf = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op);

let work: string;
let built: Built;
let installDir: string;

/** Runs the image's ENTRYPOINT (+ args, or its CMD) as the runtime stage would: its ENV, its WORKDIR, node from this machine. */
function runImage(args: string[] | undefined, extraEnv: Record<string, string> = {}) {
  const { root, env, workdir, entrypoint, cmd } = built.final;
  const [program, ...rest] = entrypoint;
  assert.equal(program, 'node');
  const mapped = rest.map((a) => (a.startsWith('/') ? join(root, a) : a));
  return spawnSync(process.execPath, [...mapped, ...(args ?? cmd)], { cwd: join(root, workdir), env: cleanEnv({ ...env, ...extraEnv }), encoding: 'utf8' });
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'image-clone-image-'));
  built = await build(stages, join(work, 'stages'));
  installDir = join(built.final.root, 'opt/image-clone');
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the Dockerfile', () => {
  test('is multi-stage: build, install, and a runtime stage that only copies the installed package in', () => {
    assert.ok(stages.length >= 3);
    assert.deepEqual(instructionsOf(runtime, 'RUN'), [], 'no RUN in the runtime stage: nothing of the build is left there');
    const copies = instructionsOf(runtime, 'COPY').map((c) => c.args);
    assert.ok(copies.length >= 1 && copies.every((c) => c.startsWith('--from=')), 'the runtime stage copies only from earlier stages');
    assert.match(runtime.from, /^node:24-(alpine|slim)/, 'an official Node 24 image');
    assert.ok(stages.every((s) => s.from === runtime.from || stages.some((t) => t.name === s.from)), 'one base image for every stage');
  });

  test('every file it copies from the build context passes its .dockerignore allow-list', () => {
    const ignore = readFileSync(`${dockerfilePath}.dockerignore`, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    assert.equal(ignore[0], '*', 'an allow-list');
    const allowed = ignore.slice(1).map((l) => l.replace(/^!/, '').replace(/\/$/, ''));
    const fromContext = stages.flatMap((s) => instructionsOf(s, 'COPY')).filter((c) => !c.args.startsWith('--from=')).flatMap((c) => c.args.split(/\s+/).slice(0, -1));
    for (const path of fromContext) assert.ok(allowed.includes(path.replace(/\/$/, '')), `${path} is sent to the builder`);
  });

  test('installs production dependencies only, at the lockfile\'s versions', () => {
    const install = stages.find((s) => instructionsOf(s, 'COPY').some((c) => c.args.includes('package-lock.json')) && instructionsOf(s, 'RUN').some((r) => r.args.includes('--omit=dev')));
    assert.ok(install, 'a stage copies the lockfile and runs npm ci --omit=dev');
    assert.match(instructionsOf(install, 'RUN').map((r) => r.args).join('\n'), /npm ci --omit=dev --ignore-scripts/);
  });

  test('runs `image-clone sync` as a numeric non-root user', () => {
    const user = instructionsOf(runtime, 'USER').at(-1)?.args;
    assert.match(user ?? '', /^[1-9]\d*(:\d+)?$/, 'numeric, so that the kubelet can check runAsNonRoot');
    assert.deepEqual(JSON.parse(instructionsOf(runtime, 'CMD').at(-1)!.args), ['sync']);
    const entrypoint = JSON.parse(instructionsOf(runtime, 'ENTRYPOINT').at(-1)!.args).join(' ');
    assert.match(entrypoint, /^node (--[\w-]+=\S+ )*\S+\/bin\/image-clone\.js$/);
    // Small V8 semi-spaces: the peak RSS of a 1 GiB layer's copy 139-151 MiB instead of 170-180 (bench/RESULTS.md).
    assert.match(entrypoint, / --max-semi-space-size=2 /);
  });
});

describe('the image, built as a script in a clean folder', () => {
  test('holds the files `npm pack` publishes (but the deployment manifests), the lockfile and node_modules', async () => {
    const [packed] = JSON.parse(execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8', env: cleanEnv(), stdio: ['ignore', 'pipe', 'ignore'] }));
    const published: string[] = packed.files.map((f: { path: string }) => f.path).sort();
    const inImage = (await filesBelow(installDir)).filter((p) => !p.startsWith('node_modules/') && p !== 'package-lock.json');
    const notPublished = inImage.filter((p) => !published.includes(p));
    assert.deepEqual(notPublished, [], 'the image copies nothing that the package does not publish');
    assert.deepEqual(published.filter((p) => !inImage.includes(p)), published.filter((p) => p.startsWith('manifests/')), 'and everything it publishes but the manifests');
    assert.ok(inImage.includes('bin/image-clone.js') && inImage.includes('dist/cli/main.js'));
  });

  test('with the production dependencies and none of the development ones, as the lockfile marks them', () => {
    const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8'));
    const packages = Object.entries(lock.packages as Record<string, { dev?: boolean; optional?: boolean }>).filter(([path]) => path);
    for (const name of Object.keys(packageJson.dependencies)) assert.ok(existsSync(join(installDir, 'node_modules', name, 'package.json')), `${name} is installed`);
    const devOnly = packages.filter(([, p]) => p.dev).map(([path]) => path);
    assert.ok(devOnly.includes('node_modules/typescript'));
    assert.deepEqual(devOnly.filter((path) => existsSync(join(installDir, path))), [], 'no development dependency');
    assert.deepEqual(packages.filter(([, p]) => !p.dev && !p.optional).map(([path]) => path).filter((path) => !existsSync(join(installDir, path))), [], 'every production one');
    assert.ok(!existsSync(join(installDir, 'src')), 'no TypeScript sources');
  });

  test('is small: no type declarations or source maps, and the whole install under 60 MB', async (t) => {
    const files = await filesBelow(installDir);
    assert.deepEqual(files.filter((f) => /\.(d\.[mc]?ts|map)$/.test(f)), []);
    let bytes = 0;
    for (const f of files) bytes += (await stat(join(installDir, f))).size;
    const mib = bytes / 1024 / 1024;
    t.diagnostic(`installed: ${mib.toFixed(1)} MiB in ${files.length} files`);
    assert.ok(mib < 60, `${mib.toFixed(1)} MiB`);
  });

  test('its entrypoint runs: --version, sync --help, and the default command, which asks for the backup registry', () => {
    const version = runImage(['--version']);
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout.trim(), packageJson.version);
    const help = runImage(['sync', '--help']);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /--backup/);
    const bare = runImage(undefined);
    assert.equal(bare.status, 2, 'the CMD is `sync`: without configuration it is a usage error');
    assert.match(bare.stderr, /^image-clone: --backup is required/);
    assert.doesNotMatch(bare.stderr, /\n\s+at /);
  });

  test('plans a sync against a real cluster and registries, writing no file (the root filesystem is read-only in the pod)', async (t) => {
    const { env, kube, namespaces, registryConfig, insecure } = await harnessFixtures();
    const repo = uniqueRepo('image');
    await seedImage(env.registries.source, `${repo}:1`, { layers: 1, layerSize: 8 * 1024, seed: 701 });
    const ns = await namespaces.create('image-test', t);
    await kube.apps.createNamespacedDeployment({ namespace: ns, body: deployment('web', [{ name: 'web', image: `${env.registries.source.host}/${repo}:1` }], { replicas: 0 }) });
    const home = await mkdtemp(join(work, 'home-'));
    const tmp = await mkdtemp(join(work, 'tmp-'));
    const run = runImage(['sync', '--dry-run', '-n', ns, '-o', 'json', '--kubeconfig', env.kubeconfig, '--backup', `${env.registries.backup.host}/image-test`,
      '--registry-config', registryConfig, ...insecure], { HOME: home, TMPDIR: tmp, IMAGE_CLONE_LOG_FORMAT: 'json' });
    assert.equal(run.status, 0, run.stderr);
    const plan = JSON.parse(run.stdout);
    assert.deepEqual(plan.images.map((i: { action: string }) => i.action), ['copy']);
    assert.deepEqual(await readdir(home), [], 'nothing written to HOME');
    assert.deepEqual(await readdir(tmp), [], 'nothing written to TMPDIR');
  });
});
