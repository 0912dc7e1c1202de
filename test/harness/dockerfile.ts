// The runtime stage of manifests/image/Dockerfile, read from the file itself: what the node tests'
// image is built with (test/node/image-clone-image.ts) and the node flags the benchmarks run
// image-clone with when they stand for the CronJob's pod (bench/lib/image-clone-runs.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './harness.ts';
import type { ImageConfig } from './images.ts';

/** The runtime stage (the last FROM) of the Dockerfile: its USER, WORKDIR, ENV, ENTRYPOINT and CMD. */
export function dockerfileRuntimeConfig(): ImageConfig & { envMap: Record<string, string> } {
  const text = readFileSync(join(repoRoot, 'manifests/image/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const runtime = lines.slice(lines.findLastIndex((l) => /^FROM\s/i.test(l)) + 1);
  const value = (op: string) => runtime.findLast((l) => l.toUpperCase().startsWith(`${op} `))?.slice(op.length).trim();
  const envMap = Object.fromEntries(runtime.filter((l) => /^ENV\s/i.test(l)).flatMap((l) => [...l.slice(4).matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)].map((m) => [m[1]!, m[2]!.replace(/^"|"$/g, '')])));
  return {
    user: value('USER'),
    workingDir: value('WORKDIR'),
    entrypoint: JSON.parse(value('ENTRYPOINT')!),
    cmd: JSON.parse(value('CMD')!),
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...Object.entries(envMap).map(([k, v]) => `${k}=${v}`)],
    envMap,
  };
}
