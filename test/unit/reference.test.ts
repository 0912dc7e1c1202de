import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../../src/errors.ts';
import {
  apiHost,
  formatReference,
  InvalidReferenceError,
  type ImageReference,
  isDockerHub,
  parseReference,
  registryKey,
  repositoryName,
} from '../../src/reference.ts';

const sha256 = `sha256:${'a'.repeat(64)}`;
const sha512 = `sha512:${'b'.repeat(128)}`;

/** Parses and formats back: the normalised form in one string, easy to compare. */
function canonical(input: string): string {
  return formatReference(parseReference(input));
}

function assertInvalid(input: string, problem: string): void {
  assert.throws(
    () => parseReference(input),
    (error: unknown) => {
      assert.ok(error instanceof InvalidReferenceError, `expected InvalidReferenceError, got ${String(error)}`);
      assert.equal(error.name, 'InvalidReferenceError');
      assert.equal(error.reference, input);
      assert.equal(error.problem, problem);
      assert.equal(error.message, `invalid image reference ${JSON.stringify(input)}: ${problem}`);
      return true;
    },
  );
}

describe('parseReference: Docker normalisation', () => {
  const cases: [string, string][] = [
    ['alpine', 'docker.io/library/alpine:latest'],
    ['alpine:3', 'docker.io/library/alpine:3'],
    ['docker.io/alpine', 'docker.io/library/alpine:latest'],
    ['docker.io/library/alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['bitnami/redis:7', 'docker.io/bitnami/redis:7'],
    ['index.docker.io/x/y', 'docker.io/x/y:latest'],
    ['index.docker.io/nginx', 'docker.io/library/nginx:latest'],
    ['registry-1.docker.io/x/y:1', 'docker.io/x/y:1'],
    ['Docker.IO/nginx', 'docker.io/library/nginx:latest'],
    ['localhost/x', 'localhost/x:latest'],
    ['localhost:5000/x', 'localhost:5000/x:latest'],
    ['myreg:5000/x', 'myreg:5000/x:latest'],
    ['myreg:5000/team/app:v1', 'myreg:5000/team/app:v1'],
    ['[::1]:5000/x', '[::1]:5000/x:latest'],
    ['[::1]/x:1', '[::1]/x:1'],
    ['[2001:db8::1]:443/a/b', '[2001:db8::1]:443/a/b:latest'],
    ['Foo/bar', 'Foo/bar:latest'],
    ['ghcr.io/org/team/app:v1.2.3', 'ghcr.io/org/team/app:v1.2.3'],
    ['registry.k8s.io/pause:3.9', 'registry.k8s.io/pause:3.9'],
    ['quay.io/a/b', 'quay.io/a/b:latest'],
    ['example.com/x', 'example.com/x:latest'],
    // Without a '/', "localhost" is a repository name and ":5000" its tag, as in Docker.
    ['localhost', 'docker.io/library/localhost:latest'],
    ['localhost:5000', 'docker.io/library/localhost:5000'],
    // Separators the grammar allows inside a path component.
    ['org/a.b_c__d-e--f', 'docker.io/org/a.b_c__d-e--f:latest'],
    // A first component with a '.' is a registry, even if it was meant as a namespace.
    ['my.org/app', 'my.org/app:latest'],
  ];
  for (const [input, expected] of cases) {
    test(`${input} -> ${expected}`, () => assert.equal(canonical(input), expected));
  }

  test('returns the parts, with tag latest when neither tag nor digest is given', () => {
    assert.deepEqual(parseReference('nginx'), { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' });
    assert.deepEqual(parseReference('myreg:5000/x'), { registry: 'myreg:5000', repository: 'x', tag: 'latest' });
  });

  test('a digest-only reference gets no tag', () => {
    const ref = parseReference(`alpine@${sha256}`);
    assert.deepEqual(ref, { registry: 'docker.io', repository: 'library/alpine', digest: sha256 });
    assert.equal('tag' in ref, false);
    assert.equal(formatReference(ref), `docker.io/library/alpine@${sha256}`);
  });

  test('tag and digest are both kept (the digest decides what is fetched)', () => {
    const ref = parseReference(`x:tag@${sha256}`);
    assert.deepEqual(ref, { registry: 'docker.io', repository: 'library/x', tag: 'tag', digest: sha256 });
    assert.equal(formatReference(ref), `docker.io/library/x:tag@${sha256}`);
  });

  test('sha512 digests are accepted', () => {
    assert.deepEqual(parseReference(`quay.io/a/b@${sha512}`), { registry: 'quay.io', repository: 'a/b', digest: sha512 });
  });

  test('a host:port registry with tag and digest', () => {
    assert.deepEqual(parseReference(`localhost:5000/a/b:1.0@${sha256}`), {
      registry: 'localhost:5000',
      repository: 'a/b',
      tag: '1.0',
      digest: sha256,
    });
  });

  test('the registry host keeps its case; only Docker Hub aliases are rewritten', () => {
    assert.equal(parseReference('Registry.Example.com/app').registry, 'Registry.Example.com');
    assert.equal(parseReference('INDEX.docker.io/app/x').registry, 'docker.io');
  });

  test('a 128-character tag is accepted', () => {
    const tag = `v${'1'.repeat(127)}`;
    assert.equal(parseReference(`app:${tag}`).tag, tag);
  });

  test('tags may use upper case, "_" first, "." and "-"', () => {
    assert.equal(parseReference('app:_Build.1-rc').tag, '_Build.1-rc');
  });

  test('a 255-character repository path is accepted', () => {
    const path = `a/${'b'.repeat(253)}`;
    assert.equal(path.length, 255);
    assert.equal(parseReference(`example.com/${path}`).repository, path);
  });

  test('a 64-hex name below a namespace or registry is a repository, not an image ID', () => {
    const hex = 'c'.repeat(64);
    assert.equal(canonical(`org/${hex}`), `docker.io/org/${hex}:latest`);
    assert.equal(canonical(`example.com/${hex}`), `example.com/${hex}:latest`);
  });

  test('round trip: a canonical reference parses to itself', () => {
    for (const input of ['docker.io/library/nginx:1.25', `ghcr.io/a/b:t@${sha256}`, `[::1]:5000/x@${sha512}`]) {
      assert.equal(canonical(input), input);
    }
  });
});

describe('parseReference: errors name the input and the problem', () => {
  test('the error is an Error with name, reference and problem, and not a UsageError', () => {
    let caught: unknown;
    try {
      parseReference('Nginx/App:1');
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof Error);
    assert.ok(caught instanceof InvalidReferenceError);
    assert.equal(caught instanceof UsageError, false);
    assert.equal(caught.message, 'invalid image reference "Nginx/App:1": repository path must be lower-case');
    assert.equal(String(caught), 'InvalidReferenceError: invalid image reference "Nginx/App:1": repository path must be lower-case');
  });

  const cases: [string, string][] = [
    ['', 'reference is empty'],
    [' nginx', 'reference contains whitespace'],
    ['nginx:1 ', 'reference contains whitespace'],
    ['https://ghcr.io/a/b', 'reference must not start with a URL scheme such as "https://"'],
    // Upper case in the repository path (a capitalised first component is a registry, so "App" is the path).
    ['Nginx/App:1', 'repository path must be lower-case'],
    ['Nginx', 'repository path must be lower-case'],
    ['ghcr.io/Org/app', 'repository path must be lower-case'],
    // A bare 64-hex name looks like an image ID.
    ['d'.repeat(64), 'a 64-character hex name is an image ID, not a repository; add a registry or a path'],
    [`${'d'.repeat(64)}:tag`, 'a 64-character hex name is an image ID, not a repository; add a registry or a path'],
    // Tags.
    [`app:v${'1'.repeat(128)}`, `tag "v${'1'.repeat(128)}" is longer than 128 characters`],
    ['app:', 'tag is empty after ":"'],
    ['app:.hidden', 'tag ".hidden" must start with a letter, a digit or "_"'],
    ['app:-x', 'tag "-x" must start with a letter, a digit or "_"'],
    ['app:a+b', 'tag "a+b" may contain only letters, digits, "_", "." and "-"'],
    // Digests.
    ['app@', 'digest is empty after "@"'],
    ['app@abc', 'digest "abc" has no algorithm; expected sha256:<64 hex>'],
    [`app@md5:${'a'.repeat(32)}`, 'digest algorithm "md5" is not supported; use sha256 or sha512'],
    [`app@SHA256:${'a'.repeat(64)}`, 'digest algorithm "SHA256" is not supported; use sha256 or sha512'],
    [`app@sha256:${'a'.repeat(63)}`, 'digest must be sha256:<64 hex>, found 63 hex digits'],
    [`app@sha256:${'a'.repeat(65)}`, 'digest must be sha256:<64 hex>, found 65 hex digits'],
    [`app@sha256:${'a'.repeat(63)}g`, 'digest must be sha256:<64 hex>, found "g"'],
    [`app@sha256:${'A'.repeat(64)}`, 'digest must be sha256:<64 hex> in lower case'],
    [`app@sha512:${'a'.repeat(64)}`, 'digest must be sha512:<128 hex>, found 64 hex digits'],
    [`app@${sha256}@${sha256}`, 'digest must be sha256:<64 hex>, found "@"'],
    // Registries.
    ['exa_mple.com/app', 'registry host "exa_mple.com" is not a valid host name'],
    ['example..com/app', 'registry host "example..com" is not a valid host name'],
    ['-bad.com/app', 'registry host "-bad.com" is not a valid host name'],
    [':5000/app', 'registry host is empty'],
    ['myreg:http/app', 'registry port "http" must be a number from 1 to 65535'],
    ['myreg:70000/app', 'registry port "70000" must be a number from 1 to 65535'],
    ['myreg:0/app', 'registry port "0" must be a number from 1 to 65535'],
    ['myreg:/app', 'registry port "" must be a number from 1 to 65535'],
    ['[zz::1]:5000/app', 'registry "[zz::1]" is not a valid IPv6 address'],
    ['[::1/app', 'registry "[::1" is not a valid IPv6 address'],
    ['[::1]x/app', 'registry "[::1]x" is not a valid IPv6 address'],
    ['[]:5000/app', 'registry "[]" is not a valid IPv6 address'],
    // Repository path components.
    ['localhost:5000/', 'repository path is empty'],
    ['a//b', 'repository path has an empty component ("//" or a "/" at either end)'],
    ['a/b/', 'repository path has an empty component ("//" or a "/" at either end)'],
    ['a$b/c', 'repository path component "a$b" contains "$"; only a-z, 0-9, ".", "_" and "-" are allowed'],
    ['org/-app', 'repository path component "-app" must start and end with a letter or digit'],
    ['org/app_', 'repository path component "app_" must start and end with a letter or digit'],
    ['org/a..b', 'repository path component "a..b" has an invalid separator; use ".", "_", "__" or dashes between letters and digits'],
    ['org/a___b', 'repository path component "a___b" has an invalid separator; use ".", "_", "__" or dashes between letters and digits'],
    ['org/a._b', 'repository path component "a._b" has an invalid separator; use ".", "_", "__" or dashes between letters and digits'],
  ];
  for (const [input, problem] of cases) {
    test(`${JSON.stringify(input.length > 60 ? `${input.slice(0, 60)}…` : input)}: ${problem.slice(0, 60)}`, () =>
      assertInvalid(input, problem));
  }

  test('a 256-character repository path is rejected', () => {
    const path = `a/${'b'.repeat(254)}`;
    assertInvalid(`example.com/${path}`, 'repository path is 256 characters long; the limit is 255');
  });

  test('the limit counts the normalised path, library/ included', () => {
    const name = 'n'.repeat(250); // library/ + 250 = 258
    assertInvalid(name, 'repository path is 258 characters long; the limit is 255');
  });

  test('the digest is checked before the tag, the tag before the name', () => {
    assertInvalid(`Bad/Name:.t@sha256:1`, 'digest must be sha256:<64 hex>, found 1 hex digits');
    assertInvalid('Bad/Name:.t', 'tag ".t" must start with a letter, a digit or "_"');
  });
});

describe('formatReference and repositoryName', () => {
  const ref: ImageReference = { registry: 'docker.io', repository: 'library/nginx', tag: '1.25' };
  test('formats tag, digest and both', () => {
    assert.equal(formatReference(ref), 'docker.io/library/nginx:1.25');
    assert.equal(formatReference({ registry: 'ghcr.io', repository: 'a/b', digest: sha256 }), `ghcr.io/a/b@${sha256}`);
    assert.equal(formatReference({ ...ref, digest: sha256 }), `docker.io/library/nginx:1.25@${sha256}`);
    assert.equal(formatReference({ registry: 'r', repository: 'x' }), 'r/x');
  });
  test('repositoryName leaves out tag and digest', () => {
    assert.equal(repositoryName({ ...ref, digest: sha256 }), 'docker.io/library/nginx');
    assert.equal(repositoryName(parseReference('localhost:5000/a/b:1')), 'localhost:5000/a/b');
  });
});

describe('Docker Hub and registry keys', () => {
  test('isDockerHub knows the three names, in any case, and nothing else', () => {
    for (const name of ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'Docker.IO']) assert.equal(isDockerHub(name), true, name);
    for (const name of ['hub.docker.com', 'docker.io:443', 'mirror.docker.io', 'ghcr.io', 'localhost']) {
      assert.equal(isDockerHub(name), false, name);
    }
  });
  test('apiHost sends Docker Hub to registry-1.docker.io and leaves others alone', () => {
    assert.equal(apiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(apiHost('index.docker.io'), 'registry-1.docker.io');
    assert.equal(apiHost('ghcr.io'), 'ghcr.io');
    assert.equal(apiHost('localhost:5000'), 'localhost:5000');
    assert.equal(apiHost('Registry.Example.com'), 'Registry.Example.com');
  });
  test('registryKey compares hosts case-insensitively and folds Docker Hub aliases', () => {
    assert.equal(registryKey('Registry.Example.com:5000'), 'registry.example.com:5000');
    assert.equal(registryKey('registry-1.docker.io'), 'docker.io');
    assert.equal(registryKey('INDEX.DOCKER.IO'), 'docker.io');
    assert.equal(registryKey(parseReference('Foo/bar').registry), 'foo');
    assert.equal(registryKey('[::1]:5000'), '[::1]:5000');
  });
});
