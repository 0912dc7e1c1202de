// The machine a benchmark ran on (CPU, cores, memory, kernel, OS, node, go), and its rows of the
// "Machine and versions" table every benchmark writes to RESULTS.md.
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { mdTable } from './format.ts';
import { firstLine, run } from './processes.ts';

export interface Machine {
  date: string;
  host: string;
  cpu: string;
  nproc: number;
  memory: string;
  kernel: string;
  os: string;
  node: string;
  go: string;
}

export async function machineInfo(): Promise<Machine> {
  const os = readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)"?/m)?.[1] ?? 'unknown';
  const go = await run('go', ['version']);
  const nproc = await run('nproc', []);
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    host: firstLine((await run('uname', ['-n'])).stdout),
    cpu: `${cpus()[0]?.model ?? 'unknown'}${/\bsha_ni\b/.test(readFileSync('/proc/cpuinfo', 'utf8')) ? ' (SHA-NI)' : ''}`,
    nproc: Number(nproc.stdout.trim()) || cpus().length,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: firstLine((await run('uname', ['-sr'])).stdout),
    os,
    node: process.version,
    go: go.code === 0 ? firstLine(go.stdout) : 'go not found',
  };
}

/**
 * The "Machine and versions" table: the machine's rows (date, CPU, memory, kernel / OS, node, and go
 * unless `go: false`), then the benchmark's own rows (versions of the tools, the registries).
 */
export function machineTable(m: Machine, rows: string[][], options: { go?: boolean } = {}): string {
  return mdTable(['', ''], [
    ['date (UTC)', m.date],
    ['CPU', `${m.cpu}, nproc ${m.nproc}`],
    ['memory', m.memory],
    ['kernel / OS', `${m.kernel} / ${m.os}`],
    ['node', m.node],
    ...(options.go === false ? [] : [['go', m.go]]),
    ...rows,
  ]);
}
