// Running a program under a memory limit, as a Kubernetes container runs (bench:scale: the CronJob's
// 512 MiB): a memory cgroup of its own (cgroup v2 memory.max, or v1 memory.limit_in_bytes; root
// only). Node sizes V8's heap from the limit it finds there (process.constrainedMemory()), as it
// would in the pod, where on this 23 GiB machine it would allow itself ~4 GiB.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface MemoryCgroup {
  /** Prefix for a command: moves itself into the cgroup, then execs the command (same pid). */
  wrap: string[];
  /** The limit file and value, for the report. */
  describe: string;
  remove(): Promise<void>;
}

/** A memory cgroup limited to `mib` MiB, or undefined (with why) when this machine cannot make one. */
export async function memoryCgroup(mib: number): Promise<MemoryCgroup | { unavailable: string }> {
  const name = `image-clone-bench-${process.pid}`;
  const bytes = String(mib * 2 ** 20);
  let dir: string;
  let limitFile: string;
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers') && readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').includes('memory');
  if (v2) {
    dir = join('/sys/fs/cgroup', name);
    limitFile = 'memory.max';
  } else if (existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')) {
    dir = join('/sys/fs/cgroup/memory', name);
    limitFile = 'memory.limit_in_bytes';
  } else {
    return { unavailable: 'no memory cgroup controller on this machine' };
  }
  try {
    await mkdir(dir);
    await writeFile(join(dir, limitFile), bytes);
  } catch (err) {
    return { unavailable: `cannot make a memory cgroup (${(err as Error).message})` };
  }
  return {
    wrap: ['bash', '-c', `echo $$ > ${join(dir, 'cgroup.procs')} && exec "$@"`, 'bash'],
    describe: `${join(dir, limitFile)} = ${mib} MiB`,
    remove: () => rmdir(dir).catch(() => {}),
  };
}
