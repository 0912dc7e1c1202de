// `npm run harness [-- --node] [--keep]`: builds the harness if needed, starts it in the foreground and prints
// `READY <path of env.json>`. Stops cleanly on SIGINT, SIGTERM, or when stdin closes.
import type { Harness } from './harness.ts';
import { checkMachine, runScript } from './prerequisites.ts';

const node = process.argv.includes('--node');
let harness!: Harness;
await runScript(async () => {
  checkMachine({ node, test: false, build: true, command: `npm run harness${node ? ' -- --node' : ''}` });
  const { ensureBuilt, startHarness } = await import('./harness.ts');
  ensureBuilt();
  harness = await startHarness({ keep: process.argv.includes('--keep'), ...(node ? { node } : {}) });
});
process.stdout.write(`READY ${harness.envPath}\n`);

let stopping = false;
async function shutdown(reason: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Said on stderr so that a stop that went wrong shows whether this handler ran, and on what.
  process.stderr.write(`harness: stopping (${reason})\n`);
  const ok = await harness.stop().then(() => true, (err: Error) => {
    process.stderr.write(`harness: ${err.message}\n`);
    return false;
  });
  process.exit(ok ? 0 : 1);
}
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.stdin.on('end', () => shutdown('stdin ended')).on('close', () => shutdown('stdin closed')).resume();
