#!/usr/bin/env node
// Thin launcher: the CLI is bundled into dist/cli/ by `npm run build` (scripts/bundle.ts; and before `npm pack`).
import { enableCompileCacheWhereWritable } from './compile-cache.js';

// Before the CLI's modules load, so that they come from the cache (a dynamic import for that reason).
enableCompileCacheWhereWritable(process.env);
const { main } = await import('../dist/cli/main.js');

process.exitCode = await main(process.argv.slice(2));
// Interrupted: the run lock is released and the line is written; requests abandoned in flight
// (a list page, a registry lookup) must not keep the process alive.
if (process.exitCode === 130) process.exit(130);
