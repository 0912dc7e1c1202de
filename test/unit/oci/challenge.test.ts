import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseChallenges } from '../../../src/oci/transport/challenge.ts';

describe('parseChallenges', () => {
  test('Docker Hub Bearer challenge', () => {
    const header =
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"';
    assert.deepEqual(parseChallenges(header), [
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' },
      },
    ]);
  });

  test('upper-case scheme and param names are lower-cased (Nexus BASIC)', () => {
    assert.deepEqual(parseChallenges('BASIC Realm="Sonatype Nexus Repository Manager"'), [
      { scheme: 'basic', params: { realm: 'Sonatype Nexus Repository Manager' } },
    ]);
  });

  test('several challenges in one header line (Codeberg/Forgejo)', () => {
    const header =
      'Bearer realm="https://codeberg.org/v2/token",service="container_registry",scope="*",Basic realm="https://codeberg.org/v2",charset="UTF-8"';
    assert.deepEqual(parseChallenges(header), [
      { scheme: 'bearer', params: { realm: 'https://codeberg.org/v2/token', service: 'container_registry', scope: '*' } },
      { scheme: 'basic', params: { realm: 'https://codeberg.org/v2', charset: 'UTF-8' } },
    ]);
  });

  test('several header lines', () => {
    assert.deepEqual(parseChallenges(['Basic realm="Artifactory Realm"', 'Bearer realm="https://a.example/token",service="a"']), [
      { scheme: 'basic', params: { realm: 'Artifactory Realm' } },
      { scheme: 'bearer', params: { realm: 'https://a.example/token', service: 'a' } },
    ]);
  });

  test('several header lines, each with several challenges, keep their order', () => {
    const schemes = parseChallenges(['Negotiate, Basic realm="x"', 'Bearer realm="y", Digest realm="z", nonce="n"']).map((c) => c.scheme);
    assert.deepEqual(schemes, ['negotiate', 'basic', 'bearer', 'digest']);
  });

  test('quoted strings with backslash escapes, commas and spaces', () => {
    const [challenge] = parseChallenges('Basic realm="say \\"hi\\", then \\\\ leave", other="a,b c"');
    assert.deepEqual(challenge, { scheme: 'basic', params: { realm: 'say "hi", then \\ leave', other: 'a,b c' } });
  });

  test('missing scope (GCR ping)', () => {
    const [challenge] = parseChallenges('Bearer realm="https://gcr.io/v2/token",service="gcr.io"');
    assert.equal(challenge?.params['scope'], undefined);
    assert.deepEqual(challenge, { scheme: 'bearer', params: { realm: 'https://gcr.io/v2/token', service: 'gcr.io' } });
  });

  test('several space-separated scopes stay one scope param', () => {
    const [challenge] = parseChallenges('Bearer realm="r",scope="repository:a:pull repository:b:pull,push"');
    assert.equal(challenge?.params['scope'], 'repository:a:pull repository:b:pull,push');
  });

  test('error="insufficient_scope" and error="invalid_token"', () => {
    const header =
      'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/r:push",error="insufficient_scope"';
    assert.equal(parseChallenges(header)[0]?.params['error'], 'insufficient_scope');
    assert.equal(parseChallenges('Bearer error="invalid_token", realm="r"')[0]?.params['error'], 'invalid_token');
  });

  test('unquoted values, including URLs, and spaces around "="', () => {
    assert.deepEqual(parseChallenges('Bearer realm=https://r.example/token?x=1, service = reg , scope=repository:a:pull'), [
      { scheme: 'bearer', params: { realm: 'https://r.example/token?x=1', service: 'reg', scope: 'repository:a:pull' } },
    ]);
  });

  test('a relative realm and a realm with a query string are returned as sent', () => {
    assert.equal(parseChallenges('Bearer realm="/v2/token"')[0]?.params['realm'], '/v2/token');
    assert.equal(
      parseChallenges('Bearer realm="https://h.example/token?account=me&x=1",service="h"')[0]?.params['realm'],
      'https://h.example/token?account=me&x=1',
    );
  });

  test('token68 after a scheme', () => {
    assert.deepEqual(parseChallenges('Negotiate abc+/9==, Basic realm="x"'), [
      { scheme: 'negotiate', params: {}, token68: 'abc+/9==' },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
    assert.deepEqual(parseChallenges('Custom dG9rZW4'), [{ scheme: 'custom', params: {}, token68: 'dG9rZW4' }]);
  });

  test('a scheme without params', () => {
    assert.deepEqual(parseChallenges('Bearer'), [{ scheme: 'bearer', params: {} }]);
    assert.deepEqual(parseChallenges('Basic, Bearer realm="r"'), [
      { scheme: 'basic', params: {} },
      { scheme: 'bearer', params: { realm: 'r' } },
    ]);
  });

  test('params without commas between them (seen from lax servers) still belong to the challenge', () => {
    assert.deepEqual(parseChallenges('Bearer realm="r" service="s"'), [{ scheme: 'bearer', params: { realm: 'r', service: 's' } }]);
  });

  test('empty list elements and surrounding whitespace are ignored', () => {
    assert.deepEqual(parseChallenges(' ,  Basic realm="x" ,, , '), [{ scheme: 'basic', params: { realm: 'x' } }]);
  });

  test('no header, an empty header or an empty list gives no challenges', () => {
    assert.deepEqual(parseChallenges(undefined), []);
    assert.deepEqual(parseChallenges(''), []);
    assert.deepEqual(parseChallenges([]), []);
    assert.deepEqual(parseChallenges('   '), []);
  });

  test('the first of a repeated param wins', () => {
    assert.equal(parseChallenges('Bearer realm="first", REALM="second"')[0]?.params['realm'], 'first');
  });

  test('a param named like an Object.prototype member is an ordinary param', () => {
    const [challenge] = parseChallenges('Bearer constructor="c", __proto__="p", realm="r"');
    assert.equal(challenge?.params['constructor'], 'c');
    assert.equal(Object.getOwnPropertyDescriptor(challenge?.params, '__proto__')?.value, 'p');
    assert.equal(challenge?.params['realm'], 'r');
  });

  test('malformed input does not throw and keeps what can be read', () => {
    // Unterminated quoted string: the value runs to the end.
    assert.deepEqual(parseChallenges('Bearer realm="https://r.example/token'), [
      { scheme: 'bearer', params: { realm: 'https://r.example/token' } },
    ]);
    // A param before any scheme is dropped; stray characters are skipped.
    assert.deepEqual(parseChallenges('realm="x", ;; Basic realm="y"'), [{ scheme: 'basic', params: { realm: 'y' } }]);
    // A trailing backslash inside quotes is kept.
    assert.equal(parseChallenges('Basic realm="a\\')[0]?.params['realm'], 'a\\');
    // An empty value.
    assert.equal(parseChallenges('Basic realm=""')[0]?.params['realm'], '');
  });
});
