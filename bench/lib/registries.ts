// The registries of the harness without its Kubernetes half, as a Harness (for regharness seed and
// verify, which read its env file): bench:startup always, bench:copy's smoke runs. 0.1 s to start
// instead of 8 to 13 s for the API server and controllers on a shared 2-core machine.
import { rm, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistries, type Harness, type HarnessEnv } from '../../test/harness/harness.ts';

export async function registriesOnly(name: string): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), `bench-${name}-registries-`));
  const r = await startRegistries(join(dir, 'registry'));
  // Only the registries and their request trace: a benchmark that runs on this reads nothing else.
  const env = { registries: r.registries, registryTrace: r.trace } as HarnessEnv;
  const envPath = join(dir, 'env.json');
  await writeFile(envPath, JSON.stringify(env), { mode: 0o600 });
  return { env, envPath, dir, stop: async () => { await r.stop(); await rm(dir, { recursive: true, force: true }); } };
}
