// `npm run harness`: builds the harness if needed, starts it in the foreground and prints
// `READY <path of env.json>`. Stops cleanly on SIGINT, SIGTERM, or when stdin closes.
import { ensureBuilt, startHarness } from './harness.ts';

ensureBuilt();
const harness = await startHarness({ keep: process.argv.includes('--keep') });
process.stdout.write(`READY ${harness.envPath}\n`);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await harness.stop();
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
process.stdin.on('end', shutdown).on('close', shutdown).resume();
