// `image-clone copy SRC DST`: one image, every platform, byte-identical, through our own engine.
import { homedir } from 'node:os';
import type { Argv, CommandModule } from 'yargs';
import { InvalidReferenceError, UsageError } from '../../errors.ts';
import { resolveOption, wholeNumber } from '../config.ts';
import { ExitCode } from '../exit-codes.ts';
import { formatBytes, formatDuration } from '../output/format.ts';
import { createProgress } from '../output/progress.ts';
import type { CliContext } from '../context.ts';

const options = {
  'insecure-registry': { type: 'string', array: true, describe: 'Reach this registry host over plain HTTP or unverified TLS (repeatable)' },
  'registry-config': { type: 'string', describe: 'Registry credentials in docker config.json format, read before ~/.docker/config.json' },
  concurrency: { type: 'number', describe: 'Blob transfers in flight at once [default: 8]' },
  platform: { type: 'string', array: true, describe: 'Copy only this platform, os/arch[/variant] (repeatable); rewrites the index, so its digest changes' },
  signatures: { type: 'boolean', describe: 'Copy cosign signatures, attestations, SBOMs and referrers with the image [default: true]' },
  output: { alias: 'o', choices: ['text', 'json'] as const, describe: 'Summary format on stdout [default: text]' },
} as const;

/** The report `copy -o json` prints; schemaVersion changes only when a field changes meaning. */
export interface CopyReport {
  schemaVersion: 1;
  source: string;
  target: string;
  digest: string;
  mediaType: string;
  status: 'copied' | 'present';
  platforms: string[];
  manifestsPushed: number;
  blobs: { copied: number; mounted: number; present: number };
  signatures: number;
  bytesTransferred: number;
  durationMs: number;
  bytesPerSecond: number;
}

export function copyCommand(context: CliContext): CommandModule {
  return {
    command: 'copy <source> <target>',
    describe: 'Copy one image (every platform, every digest kept) from one registry to another',
    builder: (yargs: Argv) => yargs
      .positional('source', { type: 'string', describe: 'Image to copy, e.g. docker.io/library/nginx:1.27' })
      .positional('target', { type: 'string', describe: 'Where to put it, e.g. registry.example.com/mirror/nginx:1.27' })
      .options(options)
      .example('$0 copy nginx:1.27 registry.example.com/mirror/nginx:1.27', 'copy every platform of nginx:1.27')
      .example('$0 copy --insecure-registry localhost:5000 alpine:3 localhost:5000/alpine:3', 'copy into a local plain-HTTP registry'),
    handler: async (argv) => {
      context.exitCode = await runCopy(argv as Record<string, unknown>, context);
    },
  };
}

async function runCopy(argv: Record<string, unknown>, context: CliContext): Promise<number> {
  const source = { flags: argv, env: context.env };
  const concurrency = wholeNumber(resolveOption(source, 'concurrency', 'number', 8), 'concurrency', 1, 256);
  const output = resolveOption(source, 'output', 'string', 'text');
  if (output !== 'text' && output !== 'json') throw new UsageError(`--output must be text or json, not ${JSON.stringify(output)}`);
  const insecure = resolveOption(source, 'insecure-registry', 'list', []);
  const registryConfig = resolveOption(source, 'registry-config', 'string');
  const signatures = resolveOption(source, 'signatures', 'boolean', true);

  // The engine loads only when there is work: --help stays fast.
  const { parseReference, formatReference } = await import('../../oci/reference.ts');
  const { parsePlatform } = await import('../../oci/manifest.ts');
  const parseArg = (value: unknown, what: string) => {
    try {
      return parseReference(String(value));
    } catch (err) {
      if (err instanceof InvalidReferenceError) throw new UsageError(`${what}: ${err.message}`);
      throw err;
    }
  };
  const src = parseArg(argv.source, 'source');
  const dst = parseArg(argv.target, 'target');
  const platforms = resolveOption(source, 'platform', 'list', []).map((p) => {
    try {
      return parsePlatform(p);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  });

  const { loadCredentialSource } = await import('../../oci/credentials.ts');
  const { Transport } = await import('../../oci/transport.ts');
  const { RegistryClient } = await import('../../oci/registry.ts');
  const { CopyEngine } = await import('../../oci/copy.ts');

  const credentials = await loadCredentialSource({ ...(registryConfig ? { configFile: registryConfig } : {}), env: context.env, homeDir: homedir() });
  const progress = createProgress({ stream: context.stderr, interactive: context.interactive, text: `Copying ${formatReference(src)}` });
  const transport = new Transport({
    credentials,
    insecureHosts: insecure,
    connectionsPerHost: concurrency * 2 + 4,
    userAgent: `image-clone/${context.version}`,
    onRetry: (e) => progress.log(`retry: ${e.registry}: ${e.method} ${e.path}: ${e.reason}; attempt ${e.attempt + 1} in ${formatDuration(e.delayMs)}`),
  });
  const started = performance.now();
  let bytes = 0;
  const engine = new CopyEngine(new RegistryClient(transport), {
    concurrency,
    signatures,
    ...(platforms.length ? { platforms } : {}),
    signal: context.signal,
    onEvent: (event) => {
      if (event.kind === 'bytes') {
        bytes += event.bytes;
        progress.update(`Copying ${formatReference(src)}: ${formatBytes(bytes)}`);
      } else if (event.kind === 'warning') {
        progress.log(`warning: ${event.message}`);
      }
    },
  });
  try {
    const result = await engine.copyImage(src, dst);
    const durationMs = performance.now() - started;
    const report: CopyReport = {
      schemaVersion: 1,
      source: result.source,
      target: result.target,
      digest: result.digest,
      mediaType: result.mediaType,
      status: result.status,
      platforms: result.platforms,
      manifestsPushed: result.counts.manifestsPushed,
      blobs: { copied: result.counts.blobsCopied, mounted: result.counts.blobsMounted, present: result.counts.blobsPresent },
      signatures: result.counts.signatures,
      bytesTransferred: result.counts.bytesCopied,
      durationMs: Math.round(durationMs),
      bytesPerSecond: Math.round(result.counts.bytesCopied / Math.max(durationMs / 1000, 0.001)),
    };
    progress.stop();
    context.stdout.write(output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : textReport(report));
    return ExitCode.ok;
  } finally {
    progress.stop();
    await transport.close();
  }
}

function textReport(r: CopyReport): string {
  const lines = [
    r.status === 'present' ? `${r.target} already holds ${r.digest}: nothing to copy` : `Copied ${r.source} to ${r.target}`,
    `  digest:     ${r.digest}`,
  ];
  if (r.platforms.length) lines.push(`  platforms:  ${r.platforms.join(', ')}`);
  if (r.status === 'copied') {
    lines.push(
      `  blobs:      ${r.blobs.copied} copied, ${r.blobs.mounted} mounted, ${r.blobs.present} already present`,
      `  manifests:  ${r.manifestsPushed} pushed${r.signatures ? `, ${r.signatures} signatures and referrers` : ''}`,
    );
  }
  lines.push(`  transferred ${formatBytes(r.bytesTransferred)} in ${formatDuration(r.durationMs)} (${formatBytes(r.bytesPerSecond)}/s)`);
  return `${lines.join('\n')}\n`;
}
