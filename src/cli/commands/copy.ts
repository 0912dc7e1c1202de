// `image-clone copy SRC DST` (or --from-file): images, every platform, byte-identical, through our own engine.
// In kubectl's shape: complete (options from flags, env and defaults), validate, run.
import { readFile } from 'node:fs/promises';
import { AuthError, UsageError } from '../../errors.ts';
import { CopyEngine } from '../../oci/copy-engine.ts';
import { parsePlatform, type Platform } from '../../oci/manifest.ts';
import { formatReference, InvalidReferenceError, parseReference, type ImageReference } from '../../reference.ts';
import { resolveOption } from '../config-layers.ts';
import type { CliContext } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { copyReport, failedImageReport, imageReport, renderCopyText } from '../output/copy-report.ts';
import { formatBytes } from '../output/format.ts';
import { createProgress } from '../output/progress.ts';
import { openRegistry, registrySettings, type RegistrySettings } from '../registry-wiring.ts';
import { prepareRepositories } from '../repositories.ts';
import { oneOf } from '../settings.ts';

interface CopyCommandOptions {
  registry: RegistrySettings;
  output: string;
  signatures: boolean;
  platforms: Platform[];
  jobs: Array<{ source: ImageReference; target: ImageReference }>;
  /** The source as the user wrote it, for a single image's progress line. */
  label: string;
}

export async function copy(argv: Record<string, unknown>, context: CliContext): Promise<number> {
  const options = await completeCopy(argv, context);
  oneOf('output', options.output, ['text', 'json']);
  return runCopy(options, context);
}

async function completeCopy(argv: Record<string, unknown>, context: CliContext): Promise<CopyCommandOptions> {
  const source = { flags: argv, env: context.env };
  const registry = registrySettings(source);
  const output = resolveOption(source, 'output', 'string', 'text');
  const signatures = resolveOption(source, 'signatures', 'boolean', true);
  const fromFile = resolveOption(source, 'from-file', 'string');
  const parseArg = (value: string, what: string) => {
    try {
      return parseReference(value);
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
  const jobs = pairs.map(([src, dst, where]) => ({ source: parseArg(src, `${where}source`), target: parseArg(dst, `${where}target`) }));
  const platforms = resolveOption(source, 'platform', 'list', []).map((p) => {
    try {
      return parsePlatform(p);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  });
  return {
    registry, output, signatures, platforms, jobs,
    label: jobs.length === 1 ? `Copying ${pairs[0]![0]}` : `Copying ${jobs.length} images`,
  };
}

async function runCopy(options: CopyCommandOptions, context: CliContext): Promise<number> {
  const { jobs, label } = options;
  const { concurrency } = options.registry;
  // Credentials load first: a malformed file stops the run before any spinner starts.
  const { transport, client, keychain } = await openRegistry(options.registry, context, (line) => progress.log(line));
  const progress = createProgress({ stream: context.stderr, interactive: context.interactive, text: label });
  const started = performance.now();
  let bytes = 0;
  const engine = new CopyEngine(client, {
    concurrency,
    signatures: options.signatures,
    ...(options.platforms.length ? { platforms: options.platforms } : {}),
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
    // ECR refuses a push to a missing repository: create the targets' first.
    await prepareRepositories(jobs.map((j) => j.target), options.registry.repositories, keychain, { dryRun: false, concurrency, log: (line) => progress.log(line) });
    // Images go in parallel too, so one image's manifests and HEADs overlap another's blob transfers.
    const outcomes = await engine.copyAll(jobs, Math.max(2, Math.ceil(concurrency / 2)));
    if (context.signal.aborted) throw context.signal.reason;
    const images = outcomes.map((outcome, i) => {
      if ('result' in outcome) return imageReport(outcome.result);
      failures.push(outcome.error);
      const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
      progress.log(`image-clone: ${message}`);
      return failedImageReport(formatReference(jobs[i]!.source), formatReference(jobs[i]!.target), message);
    });
    const report = copyReport(images, engine.totals, performance.now() - started);
    progress.stop();
    context.stdout.write(options.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderCopyText(report));
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
