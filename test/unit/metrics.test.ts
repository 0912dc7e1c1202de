// The pushed figures' text format and group URL, and the --metrics-* settings (pure logic). The push
// itself, to a real Pushgateway, is in test/integration/metrics.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import { groupUrl, metricsSettings, metricsText } from '../../src/cli/metrics.ts';

const summary = {
  images: { total: 4, copied: 2, tagged: 0, present: 1, lost: 1, excluded: 0, failed: 0, error: 0 },
  workloads: { total: 3, patched: 2, unchanged: 0, skipped: 1, failed: 0 },
  containers: { total: 3, patched: 2, unchanged: 0, skipped: 1, failed: 0 },
  blobs: { copied: 5, mounted: 1, present: 2 },
  drifted: 0,
  bytesTransferred: 123456,
  durationMs: 1500,
  registries: [],
};
const endedAt = new Date('2026-12-07T02:17:30Z');

/** name{labels} -> value, from the text format; fails on a line that is neither a comment nor a sample. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.trimEnd().split('\n')) {
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe('metricsText', () => {
  test('a successful run: its figures by result, lost images, blobs, bytes, duration, and the success time', () => {
    const text = metricsText({ success: true, durationSeconds: 1.5, endedAt, summary });
    const s = samples(text);
    assert.equal(s.get('image_clone_images_total{result="copied"}'), 2);
    assert.equal(s.get('image_clone_images_total{result="lost"}'), 1);
    assert.equal(s.has('image_clone_images_total{result="total"}'), false);
    assert.equal(s.get('image_clone_workloads_total{result="patched"}'), 2);
    assert.equal(s.get('image_clone_workloads_total{result="skipped"}'), 1);
    assert.equal(s.get('image_clone_lost_images'), 1);
    assert.equal(s.get('image_clone_blobs_total{result="mounted"}'), 1);
    assert.equal(s.get('image_clone_transferred_bytes_total'), 123456);
    assert.equal(s.get('image_clone_run_duration_seconds'), 1.5);
    assert.equal(s.get('image_clone_last_run_success'), 1);
    assert.equal(s.get('image_clone_last_run_timestamp_seconds'), endedAt.getTime() / 1000);
    assert.equal(s.get('image_clone_last_success_timestamp_seconds'), endedAt.getTime() / 1000);
  });

  test('every family has HELP and TYPE once, before its samples; counters end in _total', () => {
    const text = metricsText({ success: true, durationSeconds: 1, endedAt, summary });
    const names = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!] as const);
    assert.equal(new Set(names.map(([n]) => n)).size, names.length);
    for (const [name, type] of names) {
      assert.match(text, new RegExp(`# HELP ${name} .+\\n# TYPE ${name} ${type}\\n${name}[{ ]`));
      if (type === 'counter') assert.match(name, /_total$/);
      else assert.doesNotMatch(name, /_total$/);
    }
  });

  test('a failed run without a report: success 0, no figures by result, and no success time (the last one stays on the Pushgateway)', () => {
    const s = samples(metricsText({ success: false, durationSeconds: 0.25, endedAt }));
    assert.equal(s.get('image_clone_last_run_success'), 0);
    assert.equal(s.get('image_clone_run_duration_seconds'), 0.25);
    assert.equal(s.has('image_clone_last_success_timestamp_seconds'), false);
    assert.equal([...s.keys()].some((k) => k.startsWith('image_clone_images_total')), false);
  });

  test('a run that reported but failed (a lost image, exit 1) pushes its figures and no success time', () => {
    const s = samples(metricsText({ success: false, durationSeconds: 1, endedAt, summary }));
    assert.equal(s.get('image_clone_lost_images'), 1);
    assert.equal(s.has('image_clone_last_success_timestamp_seconds'), false);
  });
});

describe('groupUrl', () => {
  test('job image-clone, grouped by cluster when one is named; a path prefix kept; no credentials', () => {
    assert.equal(groupUrl(new URL('http://pg:9091'), undefined).href, 'http://pg:9091/metrics/job/image-clone');
    assert.equal(groupUrl(new URL('https://u:p@pg.example/push/'), 'prod-eu').href, 'https://pg.example/push/metrics/job/image-clone/cluster/prod-eu');
    assert.equal(groupUrl(new URL('http://pg:9091'), 'a/b').href, `http://pg:9091/metrics/job/image-clone/cluster@base64/${Buffer.from('a/b').toString('base64url')}`);
  });
});

describe('metricsSettings', () => {
  const settings = (flags: Record<string, unknown>, env: Record<string, string> = {}) => metricsSettings({ flags, env });
  test('flag, environment, unset', () => {
    assert.equal(settings({ 'metrics-pushgateway': 'http://pg:9091' }).pushgateway?.href, 'http://pg:9091/');
    assert.equal(settings({}, { IMAGE_CLONE_METRICS_PUSHGATEWAY: 'http://env:9091', IMAGE_CLONE_METRICS_CLUSTER: 'c1' }).cluster, 'c1');
    assert.equal(settings({}).pushgateway, undefined);
  });
  test('not a URL, or not http(s): a usage error that says what is expected', () => {
    assert.throws(() => settings({ 'metrics-pushgateway': 'pg:9091:x' }), (err: Error) => err instanceof UsageError && /--metrics-pushgateway must be/.test(err.message));
    assert.throws(() => settings({ 'metrics-pushgateway': 'ftp://pg' }), (err: Error) => err instanceof UsageError && /http:\/\/ or https:\/\//.test(err.message));
  });
});

test('the shipped alerts (manifests/components/prometheus-rule) use only metrics that are pushed', () => {
  const rule = readFileSync(new URL('../../manifests/components/prometheus-rule/prometheusrule.yaml', import.meta.url), 'utf8');
  const used = new Set([...rule.matchAll(/\b(image_clone_[a-z_]+)\{/g)].map((m) => m[1]!));
  assert.ok(used.size >= 2);
  const pushed = metricsText({ success: true, durationSeconds: 1, endedAt, summary });
  for (const name of used) assert.match(pushed, new RegExp(`^# TYPE ${name} `, 'm'), name);
});
