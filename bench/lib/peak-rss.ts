// Peak memory of a run: GNU time's maximum resident set (the figure the benchmarks report) and,
// as a cross-check, the VmHWM of the timed process sampled from /proc while it runs.
import { childPids, vmHwmKiB } from './proc.ts';
import { timed, type RunOptions, type TimedResult } from './processes.ts';

/** Runs under GNU time, sampling every 20 ms the VmHWM of the processes time(1) started. */
export async function timedWithVmHwm(cmd: string, args: string[], options: RunOptions = {}): Promise<{ run: TimedResult; vmHwmKiB?: number | undefined }> {
  let hwm: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  const run = await timed(cmd, args, {
    ...options,
    onSpawn: (timePid) => {
      timer = setInterval(() => {
        for (const pid of childPids(timePid)) {
          const v = vmHwmKiB(pid);
          if (v !== undefined) hwm = Math.max(hwm ?? 0, v);
        }
      }, 20);
    },
  });
  if (timer) clearInterval(timer);
  return { run, vmHwmKiB: hwm };
}
