// Node's compile cache (module.enableCompileCache) for image-clone's modules and dependencies: a
// process that starts again finds them compiled, which is most of its start-up (bench:startup).
// Only in a cache folder the user already has and can write to: $XDG_CACHE_HOME, else ~/.cache.
// Nothing is created beside it, never in TMPDIR (the CronJob's root file system is read-only and
// its HOME has no ~/.cache), and a cache that cannot be used never fails the run.
import { accessSync, constants, statSync } from 'node:fs';
import module from 'node:module';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** The folder for the cache, or undefined when no existing, writable cache folder is there. */
export function compileCacheDir(env) {
  const home = (() => {
    try {
      return homedir();
    } catch {
      return undefined;
    }
  })();
  const base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : home ? join(home, '.cache') : undefined;
  if (!base) return undefined;
  try {
    if (!statSync(base).isDirectory()) return undefined;
    accessSync(base, constants.W_OK);
  } catch {
    return undefined;
  }
  return join(base, 'image-clone', 'compile-cache');
}

export function enableCompileCacheWhereWritable(env) {
  // NODE_DISABLE_COMPILE_CACHE=1 turns it off (Node honours it in enableCompileCache too).
  if (typeof module.enableCompileCache !== 'function' || env.NODE_DISABLE_COMPILE_CACHE) return;
  const dir = compileCacheDir(env);
  if (!dir) return;
  try {
    module.enableCompileCache(dir);
  } catch {
    // A cache is a speed-up, never a reason to fail.
  }
}
