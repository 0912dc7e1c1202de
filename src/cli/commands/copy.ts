// `image-clone copy SRC DST` (or --from-file): images, every platform, byte-identical, through our own engine.
import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { AuthError, InvalidReferenceError, UsageError } from '../../errors.ts';
import { resolveOption } from '../config.ts';
import { ExitCode } from '../exit-codes.ts';
import { formatBytes, formatDuration } from '../output/format.ts';
import { createProgress } from '../output/progress.ts';
import type { CliContext } from '../context.ts';
import { openRegistry, registryOptions, registrySettings } from '../registry.ts';

export const copyOptions = {
  ...registryOptions,
  platform: { type: 'string', array: true, nargs: 1, describe: 'Copy only this platform, os/arch[/variant] (one per use, repeatable); rewrites the index, so its digest changes' },
  signatures: { type: 'boolean', describe: 'Copy cosign signatures, attestations, SBOMs and referrers with the image [default: true]' },
  output: { alias: 'o', choices: ['text', 'json'] as const, describe: 'Summary format on stdout [default: text]' },
  'from-file': { type: 'string', describe: 'Copy every "SOURCE TARGET" pair listed in this file (one per line), in one run' },
} as const;

/** One image's outcome in the report. */
export interface ImageReport {
  source: string;
  target: string;
  status: 'copied' | 'present' | 'failed';
  digest?: string;
  mediaType?: string;
  platforms: string[];
  manifestsPushed: number;
  blobs: { copied: number; mounted: number; present: number };
  signatures: number;
  bytesTransferred: number;
  /** Why it failed: one line, no credentials. */
  error?: string;
}

/** The document `copy -o json` prints; schemaVersion changes only when a field changes meaning. */
export interface CopyReport {
  schemaVersion: 2;
  kind: 'copy';
  images: ImageReport[];
  summary: {
    images: { total: number; copied: number; present: number; failed: number };
    blobs: { copied: number; mounted: number; present: number };
    bytesTransferred: number;
    durationMs: number;
    bytesPerSecond: number;
  };
}

export function copyCommand(context: CliContext): CommandModule {
  return {
    command: 'copy [source] [target]',
    describe: 'Copy images (every platform, every digest kept) from one registry to another',
    builder: (yargs: Argv) => yargs
      .positional('source', { type: 'string', describe: 'Image to copy, e.g. docker.io/library/nginx:1.27' })
      .positional('target', { type: 'string', describe: 'Where to put it, e.g. registry.example.com/mirror/nginx:1.27' })
      .options(copyOptions)
      .example('$0 copy nginx:1.27 registry.example.com/mirror/nginx:1.27', 'copy every platform of nginx:1.27')
      .example('$0 copy --from-file pairs.txt', 'copy many images in one run ("SOURCE TARGET" per line)')
      .example('$0 copy --insecure-registry localhost:5000 alpine:3 localhost:5000/alpine:3', 'copy into a local plain-HTTP registry')
      .epilogue('Exit codes: 0 copied or already present, 1 some images failed (each named), 2 usage or credentials error, 130 interrupted (nothing half-copied is tagged).'),
    handler: async (argv) => {
      context.exitCode = await runCopy(argv as Record<string, unknown>, context);
    },
  };
}

async function runCopy(argv: Record<string, unknown>, context: CliContext): Promise<number> {
  const source = { flags: argv, env: context.env };
  const settings = registrySettings(source);
  const { concurrency } = settings;
  const output = resolveOption(source, 'output', 'string', 'text');
  if (output !== 'text' && output !== 'json') throw new UsageError(`--output must be text or json, not ${JSON.stringify(output)}`);
  const signatures = resolveOption(source, 'signatures', 'boolean', true);
  const fromFile = resolveOption(source, 'from-file', 'string');

  // The engine loads only when there is work: --help stays fast.
  const { parseReference, formatReference } = await import('../../reference.ts');
  const { parsePlatform } = await import('../../oci/manifest.ts');
  const parseArg = (value: unknown, what: string) => {
    try {
      return parseReference(String(value));
    } catch (err) {
      if (err instanceof InvalidReferenceError) throw new UsageError(`${what}: ${err.message}`);
      throw err;
    }
  };
  let pairs: Array<[string, string, string]>; // source, target, where it was given
  if (fromFile !== undefined) {
    if (argv.source !== undefined) throw new UsageError('give either SOURCE TARGET or --from-file, not both');
    pairs = await readPairs(fromFile);
  } else {
    if (argv.source === undefined || argv.target === undefined) throw new UsageError('copy needs SOURCE and TARGET, or --from-file FILE');
    pairs = [[String(argv.source), String(argv.target), '']];
  }
  const jobs = pairs.map(([src, dst, where]) => ({ src: parseArg(src, `${where}source`), dst: parseArg(dst, `${where}target`) }));
  const platforms = resolveOption(source, 'platform', 'list', []).map((p) => {
    try {
      return parsePlatform(p);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  });

  const { CopyEngine } = await import('../../oci/copy.ts');

  const label = jobs.length === 1 ? `Copying ${pairs[0]![0]}` : `Copying ${jobs.length} images`;
  // Credentials load first: a malformed file stops the run before any spinner starts.
  const { transport, client } = await openRegistry(settings, context, (line) => progress.log(line));
  const progress = createProgress({ stream: context.stderr, interactive: context.interactive, text: label });
  const started = performance.now();
  let bytes = 0;
  const engine = new CopyEngine(client, {
    concurrency,
    signatures,
    ...(platforms.length ? { platforms } : {}),
    signal: context.signal,
    onEvent: (event) => {
      if (event.kind === 'bytes') {
        bytes += event.bytes;
        progress.update(`${label}: ${formatBytes(bytes)}`);
      } else if (event.kind === 'warning') {
        progress.log(`warning: ${event.message}`);
      }
    },
  });
  const failures: unknown[] = [];
  try {
    // Images go in parallel too, so one image's manifests and HEADs overlap another's blob transfers.
    const outcomes = await engine.copyAll(jobs.map(({ src, dst }) => ({ source: src, target: dst })), Math.max(2, Math.ceil(concurrency / 2)));
    if (context.signal.aborted) throw context.signal.reason;
    const images = outcomes.map((outcome, i): ImageReport => {
      if ('result' in outcome) {
        const { result } = outcome;
        const c = result.counts;
        return {
          source: result.source, target: result.target, status: result.status, digest: result.digest, mediaType: result.mediaType,
          platforms: result.platforms, manifestsPushed: c.manifestsPushed,
          blobs: { copied: c.blobsCopied, mounted: c.blobsMounted, present: c.blobsPresent },
          signatures: c.signatures, bytesTransferred: c.bytesCopied,
        };
      }
      failures.push(outcome.error);
      const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
      progress.log(`image-clone: ${message}`);
      return {
        source: formatReference(jobs[i]!.src), target: formatReference(jobs[i]!.dst), status: 'failed', platforms: [], manifestsPushed: 0,
        blobs: { copied: 0, mounted: 0, present: 0 }, signatures: 0, bytesTransferred: 0, error: message,
      };
    });
    const durationMs = performance.now() - started;
    const t = engine.totals;
    const report: CopyReport = {
      schemaVersion: 2,
      kind: 'copy',
      images,
      summary: {
        images: {
          total: images.length,
          copied: images.filter((i) => i.status === 'copied').length,
          present: images.filter((i) => i.status === 'present').length,
          failed: images.filter((i) => i.status === 'failed').length,
        },
        blobs: { copied: t.blobsCopied, mounted: t.blobsMounted, present: t.blobsPresent },
        bytesTransferred: t.bytesCopied,
        durationMs: Math.round(durationMs),
        bytesPerSecond: Math.round(t.bytesCopied / Math.max(durationMs / 1000, 0.001)),
      },
    };
    progress.stop();
    context.stdout.write(output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : textReport(report));
    if (!failures.length) return ExitCode.ok;
    // Refused credentials are a configuration problem: the same run would fail again as it is.
    return failures.some((err) => err instanceof AuthError) ? ExitCode.usage : ExitCode.failed;
  } finally {
    progress.stop();
    await (context.signal.aborted ? transport.destroy() : transport.close());
  }
}

/** Reads "SOURCE TARGET" lines; blank lines and # comments are skipped. */
async function readPairs(path: string): Promise<Array<[string, string, string]>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --from-file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const pairs: Array<[string, string, string]> = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const words = line.split(/\s+/);
    if (words.length !== 2) throw new UsageError(`${path}:${index + 1}: expected "SOURCE TARGET", found ${words.length} word${words.length === 1 ? '' : 's'}`);
    pairs.push([words[0]!, words[1]!, `${path}:${index + 1}: `]);
  });
  if (!pairs.length) throw new UsageError(`${path} lists no images`);
  return pairs;
}

function textReport(r: CopyReport): string {
  const lines: string[] = [];
  for (const image of r.images) {
    if (image.status === 'failed') lines.push(`FAILED  ${image.source} -> ${image.target}: ${image.error}`);
    else if (image.status === 'present') lines.push(`present ${image.target} already holds ${image.digest}`);
    else {
      lines.push(`copied  ${image.source} -> ${image.target}`);
      lines.push(`        digest ${image.digest}${image.platforms.length ? `, platforms ${image.platforms.join(', ')}` : ''}`);
    }
  }
  const s = r.summary;
  lines.push(
    `${s.images.total} image${s.images.total === 1 ? '' : 's'}: ${s.images.copied} copied, ${s.images.present} already present, ${s.images.failed} failed`,
    `blobs: ${s.blobs.copied} copied, ${s.blobs.mounted} mounted, ${s.blobs.present} already present`,
    `transferred ${formatBytes(s.bytesTransferred)} in ${formatDuration(s.durationMs)} (${formatBytes(s.bytesPerSecond)}/s)`,
  );
  return `${lines.join('\n')}\n`;
}
