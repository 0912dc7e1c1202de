// `npm run demo`: the main job on the built-in test cluster and registries. Starts the harness,
// seeds images into the `source` registry, and copies them with image-clone into `backup`
// (token auth), then checks the copies with the harness's independent tool.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, repoRoot, startHarness } from './harness.ts';

const regharness = join(repoRoot, '.harness/bin/regharness');
const say = (line: string) => process.stderr.write(`\n== ${line}\n`);

ensureBuilt();
const harness = await startHarness({ stderr: 'ignore' });
try {
  const { source, backup } = harness.env.registries;
  say(`harness up: source ${source.host} (anonymous), backup ${backup.host} (token auth)`);

  const images = [
    { repo: 'demo/web:1.0', args: ['--platforms', 'linux/amd64,linux/arm64,linux/arm/v7', '--format', 'oci', '--seed', '1'] },
    { repo: 'demo/api:2.3', args: ['--platforms', 'linux/amd64,linux/arm64', '--shared-layers', '1', '--shared-seed', '99', '--seed', '2'] },
    { repo: 'demo/worker:2.3', args: ['--shared-layers', '1', '--shared-seed', '99', '--seed', '3'] },
  ];
  for (const image of images) {
    const seeded = JSON.parse(execFileSync(regharness, ['seed', '--ref', `${source.host}/${image.repo}`, '--layers', '3', '--layer-size', '2MiB', ...image.args], { encoding: 'utf8' }));
    say(`seeded ${seeded.ref} ${seeded.digest} (${seeded.children.length || 1} platform${seeded.children.length > 1 ? 's' : ''})`);
  }

  const dir = await mkdtemp(join(tmpdir(), 'image-clone-demo-'));
  const registryConfig = join(dir, 'config.json');
  await writeFile(registryConfig, JSON.stringify({ auths: { [backup.host]: { auth: Buffer.from(`${backup.username}:${backup.password}`).toString('base64') } } }), { mode: 0o600 });
  const pairs = join(dir, 'pairs.txt');
  await writeFile(pairs, images.map((i) => `${source.host}/${i.repo} ${backup.host}/mirror/${source.host.replace(':', '_')}/${i.repo}`).join('\n'));

  const cli = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin/image-clone.js'), 'copy', '--from-file', pairs,
    '--registry-config', registryConfig, '--insecure-registry', source.host, '--insecure-registry', backup.host, ...args], { stdio: 'inherit' });
  say('image-clone copy --from-file pairs.txt');
  const first = cli();
  say('again: everything is already there, so nothing moves');
  const second = cli();

  say('independent check (go-containerregistry): index, every child, every blob');
  for (const image of images) {
    const result = execFileSync(regharness, ['verify', '--src', `${source.host}/${image.repo}`, '--dst', `${backup.host}/mirror/${source.host.replace(':', '_')}/${image.repo}`,
      '--dst-username', backup.username!, '--dst-password', backup.password!], { encoding: 'utf8' });
    process.stderr.write(`${image.repo}: ${result}`);
  }
  process.exitCode = first.status || second.status || 0;
} finally {
  await harness.stop();
}
