// The blob mover's decisions against undici's MockAgent: present blobs are not moved, one blob on
// its way into two repositories of a registry is uploaded once and mounted into the other, and a
// non-distributable layer is left alone. The registry answers are written by hand on purpose: they
// fix the order of events the decisions depend on; the integration tests (copy, mounts) run the
// same code against real registries.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { MockAgent } from 'undici';
import { BlobMover } from '../../../src/oci/blob-mover.ts';
import { emptyCounts, Tally, type CopyEvent } from '../../../src/oci/copy-options.ts';
import { MountCandidates } from '../../../src/oci/mount-candidates.ts';
import { RegistryClient } from '../../../src/oci/registry.ts';
import { Transport } from '../../../src/oci/transport/transport.ts';

const bytes = Buffer.from('a layer of bytes');
const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const blob = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: bytes.length };
const src = { registry: 'src.test', repository: 'app' };

function setUp() {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const client = new RegistryClient(new Transport({ credentials: { lookup: async () => undefined }, dispatcher: agent, retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } }));
  const events: CopyEvent[] = [];
  const tally = new Tally();
  const mover = new BlobMover(client, { onEvent: (e) => events.push(e) }, tally, new MountCandidates(client));
  return { agent, mover, events, tally };
}

test('a blob the target has is counted present: nothing is read or written', async () => {
  const { agent, mover, events, tally } = setUp();
  agent.get('https://dst.test').intercept({ path: `/v2/a/blobs/${digest}`, method: 'HEAD' }).reply(200, '', { headers: { 'content-length': String(bytes.length) } });
  await mover.copy(src, { registry: 'dst.test', repository: 'a' }, blob, emptyCounts());
  assert.deepEqual(events.map((e) => e.kind === 'blob' ? e.action : e.kind), ['present']);
  assert.equal(tally.totals.blobsPresent, 1);
  agent.assertNoPendingInterceptors();
});

test('one blob for two repositories of one registry: uploaded into the first, mounted into the second from it', async () => {
  const { agent, mover, events, tally } = setUp();
  const dst = agent.get('https://dst.test');
  for (const repo of ['a', 'b']) dst.intercept({ path: `/v2/${repo}/blobs/${digest}`, method: 'HEAD' }).reply(404, '');
  // MockAgent does not read a PUT's body stream, so the source's blob is never fetched here, and
  // bytes are not counted: the integration tests (copy, mounts) move real bytes.
  agent.get('https://src.test').intercept({ path: `/v2/app/blobs/${digest}`, method: 'GET' }).reply(200, bytes).persist();
  dst.intercept({ path: '/v2/a/blobs/uploads/', method: 'POST' }).reply(202, '', { headers: { location: '/v2/a/blobs/uploads/u1' } });
  dst.intercept({ path: (p) => p.startsWith('/v2/a/blobs/uploads/u1?digest='), method: 'PUT' }).reply(201, '');
  dst.intercept({ path: `/v2/b/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=a`, method: 'POST' }).reply(201, '');
  const counts = emptyCounts();
  await Promise.all(['a', 'b'].map((repository) => mover.copy(src, { registry: 'dst.test', repository }, blob, counts)));
  const actions = events.filter((e) => e.kind === 'blob').map((e) => `${e.target} ${e.action}`);
  assert.deepEqual(actions, ['dst.test/a copied', 'dst.test/b mounted']);
  assert.deepEqual([tally.totals.blobsCopied, tally.totals.blobsMounted], [1, 1]);
});

test('asked twice for one blob of one repository, it moves once', async () => {
  const { agent, mover, tally } = setUp();
  agent.get('https://dst.test').intercept({ path: `/v2/a/blobs/${digest}`, method: 'HEAD' }).reply(200, '');
  const dst = { registry: 'dst.test', repository: 'a' };
  await Promise.all([mover.copy(src, dst, blob, emptyCounts()), mover.copy(src, dst, blob, emptyCounts())]);
  assert.equal(tally.totals.blobsPresent, 1, 'one HEAD, one count');
});

test('a non-distributable layer is left where it is served, with a warning, and no request', async () => {
  const { mover, events } = setUp();
  await mover.copy(src, { registry: 'dst.test', repository: 'a' }, { ...blob, mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', urls: ['https://cdn.example/layer'] }, emptyCounts());
  assert.equal(events.length, 1);
  assert.match((events[0] as { message: string }).message, /non-distributable \(served from https:\/\/cdn\.example\/layer\); not copied/);
});
