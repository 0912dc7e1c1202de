// --metrics-pushgateway: at the end of every real sync run, success or failure, the run's figures in
// Prometheus' text format, pushed to a Pushgateway under job "image-clone" (grouped by
// --metrics-cluster). The push is a POST, which replaces only the metrics it names: a run that fails
// before its report leaves the last report's figures and the last success time in place, and says
// that it failed. A Pushgateway that cannot be reached is one warning line, never a failed run.
import { UsageError } from '../errors.ts';
import { resolveOption, type OptionSource } from './config-layers.ts';
import type { CliContext } from './context.ts';
import type { RunReport } from './output/document.ts';
import { request } from 'undici';
import { createEventLog, type LogFormat } from './output/event-log.ts';
import { createProgress } from './output/progress.ts';

export interface MetricsSettings {
  pushgateway: URL | undefined;
  cluster: string | undefined;
}

export function metricsSettings(source: OptionSource): MetricsSettings {
  const text = resolveOption(source, 'metrics-pushgateway', 'string');
  const cluster = resolveOption(source, 'metrics-cluster', 'string') || undefined;
  if (!text) return { pushgateway: undefined, cluster };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--metrics-pushgateway must be a URL such as http://pushgateway.monitoring:9091, not ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--metrics-pushgateway must be an http:// or https:// URL, not ${url.protocol}`);
  return { pushgateway: url, cluster };
}

type Summary = RunReport['summary'];

export interface RunFigures {
  /** The run ended with exit 0. */
  success: boolean;
  durationSeconds: number;
  /** When the run ended. */
  endedAt: Date;
  /** The report's summary, when the run got far enough to make one. */
  summary?: Summary | undefined;
}

type Sample = [labels: Record<string, string>, value: number];

/** The run's figures in the Prometheus text exposition format (0.0.4). */
export function metricsText(run: RunFigures): string {
  const seconds = run.endedAt.getTime() / 1000;
  const families: Array<[name: string, type: 'gauge' | 'counter', help: string, samples: Sample[]]> = [
    ['image_clone_last_run_timestamp_seconds', 'gauge', 'When the last sync run ended, in Unix time.', [[{}, seconds]]],
    ['image_clone_last_run_success', 'gauge', '1 when the last sync run exited 0, else 0.', [[{}, run.success ? 1 : 0]]],
    ['image_clone_run_duration_seconds', 'gauge', 'How long the last sync run took.', [[{}, run.durationSeconds]]],
  ];
  if (run.success) families.push(['image_clone_last_success_timestamp_seconds', 'gauge', 'When the last sync run that exited 0 ended, in Unix time.', [[{}, seconds]]]);
  const s = run.summary;
  if (s) {
    const byResult = (counts: Record<string, number>): Sample[] => Object.entries(counts).filter(([k]) => k !== 'total').map(([result, n]) => [{ result }, n]);
    families.push(
      ['image_clone_images_total', 'counter', 'Distinct images of the last reported run, by result.', byResult(s.images)],
      ['image_clone_workloads_total', 'counter', 'Workloads of the last reported run, by result.', byResult(s.workloads)],
      ['image_clone_lost_images', 'gauge', 'Images of the last reported run that are neither upstream nor in the backup.', [[{}, s.images.lost]]],
      ['image_clone_blobs_total', 'counter', 'Blobs of the last reported run, by result (copied, mounted, present).', byResult(s.blobs)],
      ['image_clone_transferred_bytes_total', 'counter', 'Bytes the last reported run copied.', [[{}, s.bytesTransferred]]],
    );
  }
  const value = (n: number) => (Number.isInteger(n) ? String(n) : String(Math.round(n * 1000) / 1000));
  const labels = (l: Record<string, string>) => {
    const pairs = Object.entries(l).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
    return pairs.length ? `{${pairs.join(',')}}` : '';
  };
  return families.map(([name, type, help, samples]) =>
    [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples.map(([l, n]) => `${name}${labels(l)} ${value(n)}`)].join('\n')).join('\n') + '\n';
}

/** The group's URL: /metrics/job/image-clone[/cluster/NAME], NAME base64url-encoded when it holds a slash or is empty. */
export function groupUrl(base: URL, cluster: string | undefined): URL {
  const url = new URL(base);
  url.username = url.password = '';
  let path = `${url.pathname.replace(/\/+$/, '')}/metrics/job/image-clone`;
  if (cluster !== undefined) path += /[/]/.test(cluster) ? `/cluster@base64/${Buffer.from(cluster).toString('base64url')}` : `/cluster/${encodeURIComponent(cluster)}`;
  url.pathname = path;
  return url;
}

/** Pushes the figures; resolves to a warning to print when the push did not succeed. */
export async function pushMetrics(settings: MetricsSettings & { pushgateway: URL }, run: RunFigures, timeoutMs = 10_000): Promise<string | undefined> {
  const url = groupUrl(settings.pushgateway, settings.cluster);
  const where = `${url.origin}${url.pathname}`; // never the URL's user and password
  const headers: Record<string, string> = { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' };
  if (settings.pushgateway.username) {
    const user = decodeURIComponent(settings.pushgateway.username);
    headers.authorization = `Basic ${Buffer.from(`${user}:${decodeURIComponent(settings.pushgateway.password)}`).toString('base64')}`;
  }
  try {
    const response = await request(url, { method: 'POST', headers, body: metricsText(run), signal: AbortSignal.timeout(timeoutMs) });
    const body = await response.body.text();
    if (response.statusCode >= 200 && response.statusCode < 300) return undefined;
    return `could not push metrics to the Pushgateway ${where}: HTTP ${response.statusCode}${body.trim() ? `: ${body.trim().split('\n')[0]!.slice(0, 200)}` : ''}`;
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return `could not push metrics to the Pushgateway ${where}: ${cause?.code ?? cause?.message ?? (err as Error).message}`;
  }
}

/**
 * Runs a sync and pushes its figures when it ends, whether it returns an exit code or throws. The
 * run calls `record` with its report's summary once it has one. Dry runs push nothing.
 */
export async function withRunMetrics(settings: MetricsSettings, skip: boolean, logFormat: LogFormat, context: CliContext,
  run: (record: (summary: Summary) => void) => Promise<number>): Promise<number> {
  const { pushgateway } = settings;
  if (!pushgateway || skip) return run(() => {});
  const started = performance.now();
  let summary: Summary | undefined;
  const push = async (success: boolean) => {
    const warning = await pushMetrics({ ...settings, pushgateway }, { success, durationSeconds: (performance.now() - started) / 1000, endedAt: new Date(), summary });
    if (!warning) return;
    createEventLog(createProgress({ stream: context.stderr, interactive: false, text: '' }), logFormat, context.stderr).line('warn', warning);
  };
  let code: number;
  try {
    code = await run((s) => {
      summary = s;
    });
  } catch (err) {
    await push(false);
    throw err;
  }
  await push(code === 0);
  return code;
}
