// Micro-benchmark of the blob data path alone: `node bench/datapath.ts [SIZE_MIB]`.
//
// One blob is streamed from the harness's `source` registry into `backup-basic` (GET piped into a
// monolithic PUT, sha256 checked on the way) with undici, in two ways, and the CPU this process
// spends per GiB is compared:
//   generator  the shape of src/oci/blob.ts today: `for await` over the response body inside an
//              async generator that hashes and yields each chunk, wrapped in Readable.from() as the
//              PUT body;
//   transform  the response body piped through a Transform that hashes each chunk, as the PUT body;
//   plain      the response body itself as the PUT body, no digest check (the floor, for reference).
// The first two check size and digest. It does not use image-clone's code, so it measures the pattern, and
// tells whether changing it is worth it. Runs interleaved, 3 times each, each into a new repository.
import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { PerformanceObserver } from 'node:perf_hooks';
import { Agent } from 'undici';
import { ensureBuilt, repoRoot, startHarness } from '../test/harness/harness.ts';
import { textTable } from './lib/format.ts';
import { run } from './lib/processes.ts';
import { join } from 'node:path';

const sizeMiB = Number(process.argv[2] ?? 512);
const repeats = Number(process.env.BENCH_REPEATS ?? 4);
type Variant = 'generator' | 'transform' | 'plain';
const variants: Variant[] = ['generator', 'transform', 'plain'];

let gcMs = 0;
new PerformanceObserver((list) => { for (const e of list.getEntries()) gcMs += e.duration; }).observe({ entryTypes: ['gc'] });

ensureBuilt();
const h = await startHarness({ stderr: 'ignore' });
try {
  const src = h.env.registries.source.host;
  const dstReg = h.env.registries['backup-basic'];
  const seed = await run(join(repoRoot, '.harness', 'bin', 'regharness'), ['seed', '--ref', `${src}/dp/blob:v1`, '--layers', '1', '--layer-size', `${sizeMiB}MiB`], { env: { ...process.env, REGHARNESS_REGISTRIES: h.envPath } });
  if (seed.code !== 0) throw new Error(seed.stderr);
  const blob = (JSON.parse(seed.stdout) as { blobs: Array<{ digest: string; size: number }> }).blobs.reduce((a, b) => (b.size > a.size ? b : a));
  const agent = new Agent({ connections: 4 });
  const auth = `Basic ${Buffer.from(`${dstReg.username}:${dstReg.password}`).toString('base64')}`;

  const copy = async (variant: Variant, repo: string) => {
    const post = await agent.request({ origin: `http://${dstReg.host}`, path: `/v2/${repo}/blobs/uploads/`, method: 'POST', headers: { authorization: auth, 'content-length': '0' } });
    await post.body.dump();
    const location = new URL(String(post.headers.location), `http://${dstReg.host}`);
    const get = await agent.request({ origin: `http://${src}`, path: `/v2/dp/blob/blobs/${blob.digest}`, method: 'GET' });
    const hash = createHash('sha256');
    let n = 0;
    const check = () => {
      const d = `sha256:${hash.digest('hex')}`;
      if (n !== blob.size || d !== blob.digest) throw new Error(`corrupt: ${n} bytes, ${d}`);
    };
    let body: Readable;
    if (variant === 'plain') {
      body = get.body;
    } else if (variant === 'generator') {
      const source = get.body;
      const gen = (async function* () {
        for await (const chunk of source as AsyncIterable<Buffer>) {
          n += chunk.length;
          hash.update(chunk);
          yield chunk;
        }
        check();
      })();
      body = Readable.from(gen, { objectMode: false });
    } else {
      body = get.body.pipe(new Transform({
        transform(chunk: Buffer, _enc, cb) {
          n += chunk.length;
          hash.update(chunk);
          cb(null, chunk);
        },
        flush(cb) {
          try {
            check();
            cb();
          } catch (err) {
            cb(err as Error);
          }
        },
      }));
    }
    const sep = location.search ? '&' : '?';
    const put = await agent.request({
      origin: location.origin, path: `${location.pathname}${location.search}${sep}digest=${encodeURIComponent(blob.digest)}`, method: 'PUT',
      headers: { authorization: auth, 'content-type': 'application/octet-stream', 'content-length': String(blob.size) }, body,
    });
    await put.body.dump();
    if (put.statusCode !== 201) throw new Error(`PUT ${put.statusCode}`);
  };

  await copy('transform', 'dp/warmup');
  const results: Record<string, Array<{ wallMs: number; cpuMs: number; gcMs: number }>> = { generator: [], transform: [], plain: [] };
  for (let i = 0; i < repeats; i++) {
    for (const variant of i % 2 ? [...variants].reverse() : variants) {
      const cpu0 = process.cpuUsage();
      const gc0 = gcMs;
      const t0 = performance.now();
      await copy(variant, `dp/${variant}-${i}`);
      const cpu = process.cpuUsage(cpu0);
      results[variant]!.push({ wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, gcMs: gcMs - gc0 });
    }
  }
  await agent.close();
  const gib = blob.size / 2 ** 30;
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const rows = Object.entries(results).map(([variant, rs]) => [
    variant,
    rs.map((r) => (r.wallMs / 1000).toFixed(2)).join(', '),
    (med(rs.map((r) => r.cpuMs)) / 1000 / gib).toFixed(2),
    (med(rs.map((r) => r.gcMs)) / 1000 / gib).toFixed(2),
    (blob.size / 2 ** 20 / (med(rs.map((r) => r.wallMs)) / 1000)).toFixed(0),
  ]);
  process.stdout.write(`blob of ${(blob.size / 2 ** 20).toFixed(0)} MiB, GET from source piped into a PUT to backup-basic, sha256 checked; ${repeats} runs each\n\n`);
  process.stdout.write(`${textTable(['data path', 'wall s (each run)', 'client CPU s per GiB (median)', 'GC pause s per GiB (median)', 'MiB/s (median)'], rows)}\n`);
} finally {
  await h.stop();
}
