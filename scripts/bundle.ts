// `npm run build`: the CLI as a few ES modules in dist/cli/ (main.js, one chunk per command loaded on
// demand, shared chunks), with the libraries it always needs inside them.
//
// Why bundle: a process's start-up was mostly Node resolving, reading and linking module files. The
// Kubernetes client alone is about 1,000 of them, about 0.8 CPU-seconds before a sync could list
// anything. Every CronJob run, every `npx image-clone` and every CLI run in the tests paid that.
// Type checking stays with tsc (`npm run typecheck`, and tsc -p tsconfig.json, which emits nothing, in the build).
import { build } from 'esbuild';

const repoRoot = new URL('..', import.meta.url).pathname;

await build({
  absWorkingDir: repoRoot,
  entryPoints: ['src/cli/main.ts'],
  outdir: 'dist/cli',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22.19',
  // Left to node_modules:
  // - the cloud SDKs: loaded only when a cloud registry is involved;
  // - undici: src/oci/transport/dispatch.ts requires parts of it, and a second, bundled copy would not
  //   share its classes;
  // - ora: required only when a terminal shows the spinner (src/cli/output/progress.ts).
  external: ['@aws-sdk/*', '@smithy/*', 'google-auth-library', 'undici', 'ora'],
  // The CommonJS libraries inside (the Kubernetes client's dependencies) call require(). The import's
  // name is one no module uses: esbuild does not rename around a banner.
  banner: { js: "import { createRequire as bundleCreateRequire } from 'node:module'; const require = bundleCreateRequire(import.meta.url);" },
  legalComments: 'eof',
  logLevel: 'warning',
});
