// What bench:plan and bench:sync check and gather before they start: GNU time, the harness build,
// the machine, image-clone's version and kubectl (with --smoke, nothing installed or built).
import { ensureBuilt } from '../../test/harness/harness.ts';
import { imageCloneVersion } from './image-clone-runs.ts';
import { findKubectl, type Kubectl } from './kubectl.ts';
import { machineInfo, type Machine } from './machine.ts';
import { ensureGnuTime } from './peers.ts';

export async function startUp(log: (s: string) => void, options: { smoke: boolean }): Promise<{ machine: Machine; icVersion: string; kubectl: Kubectl }> {
  const install = !options.smoke;
  if (options.smoke) log('--smoke: the smallest shapes, to exercise the code, not to measure; nothing is installed, built or written');
  if (!(await ensureGnuTime(log, { install }))) throw new Error('GNU time (/usr/bin/time) is needed: apt-get install time');
  ensureBuilt();
  const machine = await machineInfo();
  const icVersion = await imageCloneVersion();
  const kubectl = await findKubectl(log, { install });
  return { machine, icVersion, kubectl };
}
