// Runs a command with the harness up: `node test/harness/with-harness.ts [--node] CMD ARGS...`
// (--node, or IMAGE_CLONE_HARNESS_NODE=1: with the real node, see node.ts).
// The command sees IMAGE_CLONE_HARNESS_ENV (the path of env.json) and KUBECONFIG (the admin
// kubeconfig); the harness stops when the command ends, and its exit code is passed on.
import { spawn } from 'node:child_process';
import type { Harness } from './harness.ts';
import { checkMachine, nodeFromEnv, runScript } from './prerequisites.ts';

const argv = process.argv.slice(2);
const node = argv[0] === '--node' ? (argv.shift(), true) : undefined;
const [command, ...args] = argv;
if (!command) {
  process.stderr.write('usage: node test/harness/with-harness.ts [--node] COMMAND [ARGS...]\n');
  process.exit(2);
}
const started = Date.now();
let harness!: Harness;
await runScript(async () => {
  checkMachine({ node: node ?? nodeFromEnv(), test: false, build: true, command: `node test/harness/with-harness.ts ${process.argv.slice(2).join(' ')}` });
  const { ensureBuilt, startHarness } = await import('./harness.ts');
  ensureBuilt();
  harness = await startHarness(node ? { node } : {});
});
process.stderr.write(`with-harness: harness ready in ${((Date.now() - started) / 1000).toFixed(1)}s (${harness.envPath})\n`);

const child = spawn(command, args, {
  stdio: 'inherit',
  env: { ...process.env, IMAGE_CLONE_HARNESS_ENV: harness.envPath, KUBECONFIG: harness.env.kubeconfig },
});
const forward = (signal: NodeJS.Signals) => child.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
const code = await new Promise<number>((resolve) => {
  child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 128 : 1)));
  child.once('error', (err) => {
    process.stderr.write(`with-harness: could not run ${command}: ${err.message}\n`);
    resolve(127);
  });
});
const stopped = await harness.stop().then(() => true, (err: Error) => {
  process.stderr.write(`with-harness: ${err.message}\n`);
  return false;
});
process.exit(stopped ? code : code || 1);
