import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManifestError } from '../../../src/errors.ts';
import { mediaTypes, parseManifest, parsePlatform, platformMatches, sha256Digest } from '../../../src/oci/manifest.ts';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const bytes = (doc: unknown) => Buffer.from(JSON.stringify(doc));

describe('parseManifest', () => {
  test('an OCI index: children with their platforms', () => {
    const parsed = parseManifest(bytes({
      schemaVersion: 2, mediaType: mediaTypes.ociIndex,
      manifests: [
        { mediaType: mediaTypes.ociManifest, digest: digest(1), size: 10, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { mediaType: mediaTypes.ociManifest, digest: digest(2), size: 11, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } },
      ],
    }), mediaTypes.ociIndex, 'x');
    assert.equal(parsed.kind, 'index');
    assert.deepEqual(parsed.kind === 'index' && parsed.manifests.map((m) => [m.digest, m.platform]), [
      [digest(1), { os: 'linux', architecture: 'arm64', variant: 'v8' }],
      [digest(2), { os: 'unknown', architecture: 'unknown' }],
    ]);
  });

  test('a Docker image: config and layers; the document type wins over a wrong Content-Type', () => {
    const parsed = parseManifest(bytes({
      schemaVersion: 2, mediaType: mediaTypes.dockerManifest,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: digest(3), size: 5 },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: digest(4), size: 6 }],
    }), 'application/json; charset=utf-8', 'x');
    assert.equal(parsed.mediaType, mediaTypes.dockerManifest);
    assert.deepEqual(parsed.kind === 'image' && [parsed.config?.digest, parsed.layers.map((l) => l.digest)], [digest(3), [digest(4)]]);
  });

  test('an OCI manifest without mediaType is recognised by its shape', () => {
    const parsed = parseManifest(bytes({ schemaVersion: 2, config: { mediaType: 'x', digest: digest(5), size: 2 }, layers: [] }), undefined, 'x');
    assert.deepEqual([parsed.kind, parsed.mediaType], ['image', mediaTypes.ociManifest]);
  });

  test('a referrer carries its subject', () => {
    const parsed = parseManifest(bytes({
      schemaVersion: 2, mediaType: mediaTypes.ociManifest, artifactType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digest(6), size: 2 }, layers: [],
      subject: { mediaType: mediaTypes.ociIndex, digest: digest(7), size: 100 },
    }), mediaTypes.ociManifest, 'x');
    assert.equal(parsed.subject?.digest, digest(7));
  });

  test('schema 1 images are refused with a message that names them and says what to do', () => {
    assert.throws(() => parseManifest(bytes({ schemaVersion: 1, name: 'old', fsLayers: [] }), mediaTypes.dockerSchema1Signed, 'docker.io/library/old@sha256:abc'),
      (err: unknown) => err instanceof ManifestError && err.message === 'docker.io/library/old@sha256:abc is a Docker schema 1 image, which registries no longer accept; rebuild or re-push it with a current client');
  });

  test('hostile or broken documents give a ManifestError, never a crash', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['not json', /not valid JSON/],
      [[1, 2], /not valid JSON/],
      [{ schemaVersion: 2, mediaType: 'application/x-unknown' }, /unknown manifest media type "application\/x-unknown"/],
      [{ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: 'x' }, /"manifests" is not a list/],
      [{ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [{ digest: 'sha256:xyz', size: 1 }] }, /invalid digest "sha256:xyz"/],
      [{ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [{ digest: digest(1), size: -1 }] }, /invalid size/],
      [{ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [{ digest: `md5:${'0'.repeat(32)}`, size: 1 }] }, /invalid digest/],
    ];
    for (const [doc, message] of cases) {
      const raw = typeof doc === 'string' ? Buffer.from(doc) : bytes(doc);
      assert.throws(() => parseManifest(raw, undefined, 'where'), (err: unknown) => err instanceof ManifestError && message.test(err.message), String(message));
    }
  });
});

test('sha256Digest is over the exact bytes', () => {
  assert.equal(sha256Digest(Buffer.from('{}')), 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  assert.notEqual(sha256Digest(Buffer.from('{ }')), sha256Digest(Buffer.from('{}')));
});

test('platforms: parse os/arch[/variant], and match a variant only when asked', () => {
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.throws(() => parsePlatform('linux'), /expected os\/arch/);
  assert.throws(() => parsePlatform('a/b/c/d'), /expected os\/arch/);
  assert.ok(platformMatches({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }));
  assert.ok(!platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v6' }));
  assert.ok(!platformMatches({ os: 'linux', architecture: 'amd64' }, undefined));
});
