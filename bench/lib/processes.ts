// Running programs: run (never throws for a non-zero exit), timed (under GNU time: CPU seconds and
// peak RSS), looking a command up on PATH, temporary work folders and a tool's isolated environment.
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  wallMs: number;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  cwd?: string;
  /** Called with the child's pid once it is running. */
  onSpawn?: (pid: number) => void;
}

/** Runs a program to completion; never throws for a non-zero exit (the caller decides). */
export function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(cmd, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('spawn', () => { if (child.pid) options.onSpawn?.(child.pid); });
    child.once('error', (e) => resolve({ code: 127, stdout: '', stderr: String(e.message), wallMs: performance.now() - started }));
    child.once('close', (code, signal) => resolve({
      code: code ?? (signal ? 128 : 1),
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      wallMs: performance.now() - started,
    }));
    child.stdin.on('error', () => {}); // a child that exits without reading its input
    child.stdin.end(options.input ?? '');
  });
}

export interface TimedResult extends RunResult {
  /** CPU seconds of the process and every child it waited for (GNU time's %U and %S). */
  userS: number;
  sysS: number;
  /** Largest resident set of the process or any of its waited-for children, KiB (GNU time's %M). */
  maxRssKiB: number;
}

export const gnuTime = '/usr/bin/time';

/** Runs under GNU time: wall clock measured here, CPU and peak RSS from time(1). */
export async function timed(cmd: string, args: string[], options: RunOptions = {}): Promise<TimedResult> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-time-'));
  const out = join(dir, 'time.txt');
  try {
    const result = await run(gnuTime, ['-o', out, '-f', '%e %U %S %M', cmd, ...args], options);
    const fields = (await readFile(out, 'utf8').catch(() => '')).trim().split('\n').pop()?.split(' ').map(Number) ?? [];
    return { ...result, userS: fields[1] ?? NaN, sysS: fields[2] ?? NaN, maxRssKiB: fields[3] ?? NaN };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function commandExists(name: string): string | undefined {
  try {
    return execFileSync('bash', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

export function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

export async function workDir(name: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `bench-${name}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * The environment of a tool under test: nothing of the machine's own registry configuration, caches or
 * kubeconfig; a private HOME, DOCKER_CONFIG, XDG_* and REGCTL_CONFIG below `work` (kept as long as `work` is).
 */
export async function isolatedEnv(work: string): Promise<NodeJS.ProcessEnv> {
  const home = join(work, 'home');
  for (const d of [home, join(home, '.cache'), join(home, '.config'), join(work, 'docker'), join(work, 'run'), join(work, 'regctl')]) await mkdir(d, { recursive: true, mode: 0o700 });
  return {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    HOME: home,
    DOCKER_CONFIG: join(work, 'docker'),
    XDG_RUNTIME_DIR: join(work, 'run'),
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_CACHE_HOME: join(home, '.cache'),
    REGCTL_CONFIG: join(work, 'regctl', 'config.json'),
    TMPDIR: tmpdir(),
    NO_COLOR: '1',
  };
}
