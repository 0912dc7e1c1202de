import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type BackupLocation,
  backupReference,
  isUnderBackup,
  NamingError,
  type NamingMode,
  parseBackupLocation,
  patchedReference,
  anchorTag,
  digestOfAnchorTag,
  isAnchorTag,
  sealTag,
  sourceOfBackup,
} from '../../../src/core/naming.ts';
import { InvalidSettingError } from '../../../src/core/errors.ts';
import { formatReference, type ImageReference, parseReference, registryKey } from '../../../src/reference.ts';

const hex = 'ab'.repeat(32);
const sha256 = `sha256:${hex}`;
const sha512 = `sha512:${'cd'.repeat(64)}`;
const mirror: BackupLocation = { registry: 'backup.example.com', prefix: 'mirror' };
const modes: NamingMode[] = ['nested', 'flat'];

/** The backup reference for a source written as a string, as a string. */
function backupName(source: string, backup: BackupLocation, mode: NamingMode): string {
  return formatReference(backupReference(parseReference(source), backup, mode));
}

/** What sourceOfBackup must give back: the source's registry by registryKey and its repository. */
function sourceKey(ref: ImageReference): { registry: string; repository: string } {
  return { registry: registryKey(ref.registry), repository: ref.repository };
}

function decode(backup: string, location: BackupLocation, mode: NamingMode) {
  return sourceOfBackup(parseReference(backup), location, mode);
}

describe('backupReference: the design notes\' examples', () => {
  test('nested: docker.io/library/nginx:1.25 under backup.example.com/mirror', () => {
    assert.equal(backupName('nginx:1.25', mirror, 'nested'), 'backup.example.com/mirror/docker.io/library/nginx:1.25');
  });

  test('nested: a port becomes _port', () => {
    assert.equal(backupName('registry.local:5000/team/app:v1', mirror, 'nested'), 'backup.example.com/mirror/registry.local_5000/team/app:v1');
  });

  test('nested: an upper-case host is lower-cased', () => {
    assert.equal(backupName('Registry.Local:5000/app:v1', mirror, 'nested'), 'backup.example.com/mirror/registry.local_5000/app:v1');
  });

  test('nested: Docker Hub aliases all become docker.io', () => {
    for (const alias of ['index.docker.io', 'registry-1.docker.io', 'Docker.IO']) {
      assert.equal(backupName(`${alias}/library/nginx:1.25`, mirror, 'nested'), 'backup.example.com/mirror/docker.io/library/nginx:1.25');
    }
  });

  test('flat: one component under the prefix, "-" between parts and doubled inside them', () => {
    const quay = { registry: 'quay.io', prefix: 'acme' };
    // The design notes sketch docker.io_library_nginx; '_' joins collide (see below), so '-' it is.
    assert.equal(backupName('docker.io/library/nginx:1.25', quay, 'flat'), 'quay.io/acme/docker.io-library-nginx:1.25');
    assert.equal(backupName('quay.io/my-org/app:1', quay, 'flat'), 'quay.io/acme/quay.io-my--org-app:1');
    assert.equal(backupName('my-reg.example.com:5000/a--b/c:1', quay, 'flat'), 'quay.io/acme/my--reg.example.com_5000-a----b-c:1');
  });

  test('an empty prefix puts the names at the registry root', () => {
    const root = { registry: 'backup.example.com', prefix: '' };
    assert.equal(backupName('nginx:1', root, 'nested'), 'backup.example.com/docker.io/library/nginx:1');
    assert.equal(backupName('nginx:1', root, 'flat'), 'backup.example.com/docker.io-library-nginx:1');
  });

  test('IPv6 hosts: "ip6__" and the address with each ":" as "x", then the port', () => {
    assert.equal(backupName('[::1]:5000/team/app:1', mirror, 'nested'), 'backup.example.com/mirror/ip6__xx1_5000/team/app:1');
    assert.equal(backupName('[FD00::1]/app:1', mirror, 'nested'), 'backup.example.com/mirror/ip6__fd00xx1/app:1');
    assert.equal(backupName('[2001:db8::1]:443/a/b:1', mirror, 'flat'), 'backup.example.com/mirror/ip6__2001xdb8xx1_443-a-b:1');
    for (const mode of modes) {
      assert.deepEqual(decode(backupName('[::1]:5000/team/app:1', mirror, mode), mirror, mode), { registry: '[::1]:5000', repository: 'team/app' });
    }
  });
});

describe('backupReference: no collisions', () => {
  test('docker.io/library/nginx:1.25 and quay.io/library/nginx:1.25 stay apart in both modes', () => {
    for (const mode of modes) {
      const hub = backupName('docker.io/library/nginx:1.25', mirror, mode);
      const quay = backupName('quay.io/library/nginx:1.25', mirror, mode);
      assert.notEqual(hub, quay);
      assert.deepEqual(decode(hub, mirror, mode), { registry: 'docker.io', repository: 'library/nginx' });
      assert.deepEqual(decode(quay, mirror, mode), { registry: 'quay.io', repository: 'library/nginx' });
    }
  });

  // Pairs that a plain '_' or '-' join, or a '_' for the port without the host rule, would merge.
  const pairs: [string, string][] = [
    ['a.io/b_c/d', 'a.io/b/c_d'],
    ['a.io/b-c/d', 'a.io/b/c-d'],
    ['a.io/b--c/d', 'a.io/b-c/d'],
    ['a-b.io/c', 'a.io/b-c'],
    ['a.io:5000/b', 'a.io/5000/b'],
    ['a.io/b', 'a.io-b.io/x'],
    ['[::1]/x', 'localhost/x'],
  ];
  for (const [one, other] of pairs) {
    test(`${one} and ${other}`, () => {
      for (const mode of modes) assert.notEqual(backupName(one, mirror, mode), backupName(other, mirror, mode), mode);
    });
  }
});

describe('backupReference: tags', () => {
  test('a tagged source keeps its tag; no digest is set', () => {
    const ref = backupReference(parseReference('nginx:1.25'), mirror, 'nested');
    assert.deepEqual(ref, { registry: 'backup.example.com', repository: 'mirror/docker.io/library/nginx', tag: '1.25' });
  });

  test('a digest-only source gets no human tag: its anchor tag holds it', () => {
    const ref = backupReference(parseReference(`nginx@${sha256}`), mirror, 'nested');
    assert.deepEqual(ref, { registry: 'backup.example.com', repository: 'mirror/docker.io/library/nginx' });
  });

  test('tag@digest keeps the tag, without the digest', () => {
    const ref = backupReference(parseReference(`nginx:1.25@${sha256}`), mirror, 'flat');
    assert.deepEqual(ref, { registry: 'backup.example.com', repository: 'mirror/docker.io-library-nginx', tag: '1.25' });
  });


  test('a reference with neither tag nor digest is :latest, as parseReference reads it', () => {
    assert.equal(backupReference({ registry: 'quay.io', repository: 'a/b' }, mirror, 'nested').tag, 'latest');
  });
});

describe('patchedReference', () => {
  test('<backup name>:<tag>@<digest>', () => {
    const ref = backupReference(parseReference(`nginx:1.25@${sha256}`), mirror, 'nested');
    assert.equal(patchedReference(ref, sha256), `backup.example.com/mirror/docker.io/library/nginx:1.25@${sha256}`);
  });

  test('a digest-only source is pinned by digest alone', () => {
    const ref = backupReference(parseReference(`nginx@${sha256}`), mirror, 'flat');
    const pinned = patchedReference(ref, sha256);
    assert.equal(pinned, `backup.example.com/mirror/docker.io-library-nginx@${sha256}`);
    assert.deepEqual(parseReference(pinned), { ...ref, digest: sha256 });
  });

  test('--no-pin names the anchor tag, which never moves, not the human tag, which may', () => {
    const ref = backupReference(parseReference('nginx:1.25'), mirror, 'nested');
    assert.equal(patchedReference(ref, sha256, false), `backup.example.com/mirror/docker.io/library/nginx:ic-sha256-${hex}`);
  });
});

describe('anchorTag', () => {
  const tagGrammar = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

  test('ic-<algorithm>-<hex>: deterministic, in the tag grammar, and read back to its digest', () => {
    assert.equal(anchorTag(sha256), `ic-sha256-${hex}`);
    assert.equal(anchorTag(sha256), anchorTag(sha256));
    assert.match(anchorTag(sha256), tagGrammar);
    assert.equal(digestOfAnchorTag(anchorTag(sha256)), sha256);
    assert.equal(isAnchorTag(anchorTag(sha256)), true);
  });

  test('a sha512 digest is cut to the 128-character limit; such an anchor does not read back', () => {
    const tag = anchorTag(sha512);
    assert.equal(tag.length, 128);
    assert.match(tag, tagGrammar);
    assert.equal(isAnchorTag(tag), true);
    assert.equal(digestOfAnchorTag(tag), undefined);
  });

  test('the seal, ic-whole-<algorithm>-<hex>: in the tag grammar, never a human tag, apart from the anchor even when a sha512 is cut', () => {
    assert.equal(sealTag(sha256), `ic-whole-sha256-${hex}`);
    assert.match(sealTag(sha256), tagGrammar);
    assert.equal(isAnchorTag(sealTag(sha256)), true, 'a source tag of the seal form is not written as a human tag');
    assert.equal(digestOfAnchorTag(sealTag(sha256)), undefined, 'a seal is not an anchor');
    assert.equal(sealTag(sha512).length, 128);
    assert.notEqual(sealTag(sha512), anchorTag(sha512));
  });

  test("never one of cosign's tags or the referrers fallback tag, and never a usual human tag", () => {
    for (const other of [`sha256-${hex}`, `sha256-${hex}.sig`, `sha256-${hex}.att`, `sha256-${hex}.sbom`, 'latest', '1.27', `1.27-sha256-${hex}`, 'ic-1']) {
      assert.notEqual(anchorTag(sha256), other);
      assert.equal(isAnchorTag(other), false, other);
    }
    assert.equal(digestOfAnchorTag(`ic-sha256-${hex.slice(1)}`), undefined, 'a short hex is no digest');
  });

  test('distinct digests get distinct anchors (random sample)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const digest = `sha256:${createHash('sha256').update(String(i)).digest('hex')}`;
      seen.add(anchorTag(digest));
    }
    assert.equal(seen.size, 2000);
  });
});

describe('backupReference: the 255-character repository limit', () => {
  // mirror/ (7) + example.com/ (12) + the source path.
  const pathOf = (length: number): string => `a/${'b'.repeat(length - 2)}`;

  test('a backup path of exactly 255 characters is accepted', () => {
    const ref = backupReference(parseReference(`example.com/${pathOf(236)}:1`), mirror, 'nested');
    assert.equal(ref.repository.length, 255);
    assert.deepEqual(parseReference(formatReference(ref)), ref);
  });

  test('one more is refused with a NamingError naming the image and the limit', () => {
    const source = `example.com/${pathOf(237)}:1`;
    assert.throws(
      () => backupReference(parseReference(source), mirror, 'nested'),
      (error: unknown) => {
        assert.ok(error instanceof NamingError);
        assert.equal(error instanceof InvalidSettingError, false);
        assert.equal(error.name, 'NamingError');
        assert.ok(error.message.includes(source), error.message);
        assert.match(error.message, /256 characters long, over the registries' limit of 255/);
        return true;
      },
    );
  });

  test('flat naming counts its doubled dashes', () => {
    const source = parseReference(`example.com/a/${'b-'.repeat(115)}c:1`);
    assert.ok(backupReference(source, mirror, 'nested').repository.length <= 255);
    assert.throws(() => backupReference(source, mirror, 'flat'), NamingError);
  });
});

describe('sourceOfBackup', () => {
  test('inverts the examples', () => {
    const quay = { registry: 'quay.io', prefix: 'acme' };
    assert.deepEqual(decode('quay.io/acme/quay.io-my--org-app:1', quay, 'flat'), { registry: 'quay.io', repository: 'my-org/app' });
    assert.deepEqual(decode('backup.example.com/mirror/registry.local_5000/team/app:v1', mirror, 'nested'), {
      registry: 'registry.local:5000',
      repository: 'team/app',
    });
  });

  test('the tag and digest of the backup reference do not matter', () => {
    assert.deepEqual(decode(`backup.example.com/mirror/docker.io/library/nginx:x@${sha256}`, mirror, 'nested'), {
      registry: 'docker.io',
      repository: 'library/nginx',
    });
  });

  const undecodable: [string, NamingMode, string][] = [
    ['backup.example.com/mirrorx/docker.io/library/nginx', 'nested', 'not under the prefix'],
    ['other.example.com/mirror/docker.io/library/nginx', 'nested', 'another registry'],
    ['backup.example.com/mirror', 'nested', 'the prefix itself'],
    ['backup.example.com/mirror/docker.io', 'nested', 'a host without a path'],
    ['backup.example.com/mirror/registry.local_http/app', 'nested', 'a port that is no number'],
    ['backup.example.com/mirror/registry.local_70000/app', 'nested', 'a port out of range'],
    ['backup.example.com/mirror/docker.io/nginx', 'nested', 'a Docker Hub name without library/'],
    ['backup.example.com/mirror/index.docker.io/library/nginx', 'nested', 'a Docker Hub alias'],
    ['backup.example.com/mirror/1234/app', 'nested', 'a host no reference reads as a registry'],
    ['backup.example.com/mirror/ip6__zz/app', 'nested', 'an IPv6 address that is not hex'],
    ['backup.example.com/mirror/docker.io-library-nginx', 'nested', 'a flat name read as nested'],
    ['backup.example.com/mirror/docker.io/library/nginx', 'flat', 'a nested name read as flat'],
    ['backup.example.com/mirror/docker.io', 'flat', 'a flat host without a path'],
    ['backup.example.com/mirror/quay.io-a---b', 'flat', 'an odd run of dashes inside a part'],
    ['backup.example.com/mirror/quay.io-a-', 'flat', 'an empty part'],
  ];
  for (const [name, mode, why] of undecodable) {
    test(`undefined for ${name} (${mode}): ${why}`, () => {
      let ref: ImageReference;
      try {
        ref = parseReference(name);
      } catch {
        // Not even a reference: build it by hand, as a caller listing a registry might.
        ref = { registry: 'backup.example.com', repository: name.slice('backup.example.com/'.length) };
      }
      assert.equal(sourceOfBackup(ref, mirror, mode), undefined);
    });
  }

  test('a dotless host that was a registry only by its upper case comes back lower-case', () => {
    const source = parseReference('MyHost/app:1');
    assert.equal(source.registry, 'MyHost');
    for (const mode of modes) {
      assert.deepEqual(sourceOfBackup(backupReference(source, mirror, mode), mirror, mode), { registry: 'myhost', repository: 'app' });
    }
  });
});

describe('isUnderBackup', () => {
  const under = (name: string, backup: BackupLocation = mirror): boolean => isUnderBackup(parseReference(name), backup);

  test('names below the prefix are under it', () => {
    assert.equal(under('backup.example.com/mirror/docker.io/library/nginx:1'), true);
    assert.equal(under('backup.example.com/mirror/docker.io-library-nginx:1'), true);
  });

  test('a prefix that is only a substring is not the prefix', () => {
    assert.equal(under('backup.example.com/mirrorx/docker.io/library/nginx:1'), false);
    assert.equal(under('backup.example.com/mirror-x/docker.io/library/nginx:1'), false);
    assert.equal(under('backup.example.com/x/mirror/docker.io/library/nginx:1'), false);
  });

  test('the prefix itself is not under it', () => {
    assert.equal(under('backup.example.com/mirror:1'), false);
  });

  test('other registries are not', () => {
    assert.equal(under('quay.io/mirror/docker.io/library/nginx:1'), false);
    assert.equal(under('backup.example.com:5000/mirror/docker.io/library/nginx:1'), false);
    assert.equal(under('backup.example.com.evil.io/mirror/docker.io/library/nginx:1'), false);
  });

  test('registries compare by registryKey: host case and Docker Hub aliases', () => {
    assert.equal(under('BACKUP.Example.com/mirror/docker.io/library/nginx:1'), true);
    assert.equal(under('backup.example.com/mirror/docker.io/library/nginx:1', { registry: 'Backup.Example.COM', prefix: 'mirror' }), true);
    assert.equal(under('index.docker.io/acme/docker.io-library-nginx:1', { registry: 'docker.io', prefix: 'acme' }), true);
    assert.equal(under('docker.io/acme/docker.io-library-nginx:1', { registry: 'index.docker.io', prefix: 'acme' }), true);
  });

  test('a multi-level prefix matches by whole components', () => {
    const team = { registry: 'backup.example.com', prefix: 'team/mirror' };
    assert.equal(under('backup.example.com/team/mirror/docker.io/library/nginx:1', team), true);
    assert.equal(under('backup.example.com/team/mirrorx/docker.io/library/nginx:1', team), false);
    assert.equal(under('backup.example.com/team/docker.io/library/nginx:1', team), false);
  });

  test('an empty prefix takes every repository of the registry', () => {
    assert.equal(under('backup.example.com/anything:1', { registry: 'backup.example.com', prefix: '' }), true);
  });
});

describe('parseBackupLocation', () => {
  const valid: [string, BackupLocation][] = [
    ['backup.example.com/mirror', { registry: 'backup.example.com', prefix: 'mirror' }],
    ['backup.example.com', { registry: 'backup.example.com', prefix: '' }],
    ['registry.local:5000/team/mirror', { registry: 'registry.local:5000', prefix: 'team/mirror' }],
    ['localhost:5000', { registry: 'localhost:5000', prefix: '' }],
    ['localhost', { registry: 'localhost', prefix: '' }],
    ['[::1]:5000/mirror', { registry: '[::1]:5000', prefix: 'mirror' }],
    ['docker.io/acme', { registry: 'docker.io', prefix: 'acme' }],
    ['index.docker.io/acme', { registry: 'docker.io', prefix: 'acme' }],
    ['Backup.Example.com/my-org_x', { registry: 'Backup.Example.com', prefix: 'my-org_x' }],
  ];
  for (const [value, expected] of valid) {
    test(`${value}`, () => assert.deepEqual(parseBackupLocation(value), expected));
  }

  const expectation = '; expected REGISTRY[/PREFIX], e.g. backup.example.com/mirror';
  const invalid: [string, string][] = [
    ['', 'it is empty'],
    ['/mirror', 'the registry is missing'],
    ['backup.example.com/mirror:1.0', 'a location takes no tag, found ":1.0"'],
    ['backup.example.com/Mirror', 'repository path must be lower-case'],
    ['docker.io', 'Docker Hub needs a namespace, e.g. docker.io/acme'],
    ['index.docker.io', 'Docker Hub needs a namespace, e.g. docker.io/acme'],
    ['myregistry/mirror', '"myregistry" would be read as a Docker Hub namespace; write the registry with a "." or a port, e.g. myregistry.example.com or myregistry:5000'],
    ['mirror', '"mirror" would be read as a Docker Hub namespace; write the registry with a "." or a port, e.g. mirror.example.com or mirror:5000'],
    ['https://backup.example.com/mirror', 'reference must not start with a URL scheme such as "https://"'],
    ['backup.example.com/mirror/', 'repository path has an empty component ("//" or a "/" at either end)'],
    ['backup.example.com:99999', 'registry port "99999" must be a number from 1 to 65535'],
    ['exa_mple.com/mirror', 'registry host "exa_mple.com" is not a valid host name'],
    ['backup.example.com /mirror', 'reference contains whitespace'],
  ];
  for (const [value, problem] of invalid) {
    test(`refuses ${JSON.stringify(value)}: ${problem}`, () => {
      assert.throws(() => parseBackupLocation(value), (error: unknown) => {
        assert.ok(error instanceof InvalidSettingError, String(error));
        assert.equal(error.message, `invalid backup location ${JSON.stringify(value)}: ${problem}${expectation}`);
        return true;
      });
    });
  }

  test('refuses a digest or user@host without echoing the value (it may hold a password)', () => {
    for (const value of [`backup.example.com/mirror@${sha256}`, 'user:s3cret@backup.example.com/mirror']) {
      assert.throws(() => parseBackupLocation(value), (error: unknown) => {
        assert.ok(error instanceof InvalidSettingError, String(error));
        assert.equal(
          error.message,
          'invalid backup location: it contains "@"; give REGISTRY[/PREFIX] without a digest or user name, e.g. backup.example.com/mirror',
        );
        return true;
      });
    }
  });
});

/** Builds on first use, so that a mistake in building fails a test instead of cancelling the suite. */
function lazy<T>(build: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= build());
}

// Properties over many sources: a seeded random sample for variety (hosts, ports, IPv6, Docker Hub
// aliases, every separator, tags and digests), and every short source over one letter for density:
// that is where near-misses live (b-c/d and b/c-d), and where a merging scheme gets caught.
describe('properties over many sources', () => {
  const seed = 0x5eed_1234;
  const count = 3000;
  const locations: BackupLocation[] = [
    mirror,
    { registry: 'backup.example.com', prefix: '' },
    { registry: 'registry.local:5000', prefix: 'team/mirror' },
    { registry: 'docker.io', prefix: 'acme' },
  ];

  /** xorshift32: deterministic, so a failure can be replayed. */
  function randomSource(state: number): () => number {
    let x = state >>> 0 || 1;
    return () => {
      x = (x ^ (x << 13)) >>> 0;
      x = (x ^ (x >>> 17)) >>> 0;
      x = (x ^ (x << 5)) >>> 0;
      return x / 2 ** 32;
    };
  }

  function generator(random: () => number): () => string {
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const between = (min: number, max: number): number => min + Math.floor(random() * (max - min + 1));
    const atoms = ['a', 'b', '0', 'ab', 'c1'];
    const joined = (separators: readonly string[], atomCount: number): string =>
      Array.from({ length: atomCount }, () => pick(atoms)).reduce((text, atom) => `${text}${pick(separators)}${atom}`);
    const pathComponent = (): string => joined(['.', '_', '__', '-', '--', '---'], between(1, 3));
    const label = (): string => joined(['-', '--'], between(1, 2));
    const port = (): string => pick(['5000', '443', '1', '65535', '05000']);
    const shout = (host: string): string => [...host].map((c) => (random() < 0.3 ? c.toUpperCase() : c)).join('');

    const host = (): string => {
      switch (between(0, 5)) {
        case 0:
          return pick(['docker.io', 'index.docker.io', 'Docker.IO', 'quay.io', 'localhost']);
        case 1:
          return `[${pick(['::1', 'fd00::1', '2001:db8::a:b', '::', 'FD00:0::C1', 'a:b'])}]`;
        case 2:
          // One label is a registry only with a port, or with upper case.
          return random() < 0.5 ? `${label()}:${port()}` : `R${label()}`;
        default:
          return shout(Array.from({ length: between(2, 3) }, label).join('.'));
      }
    };
    const withPort = (registry: string): string => (/:[0-9]+$/.test(registry) || random() < 0.6 ? registry : `${registry}:${port()}`);
    const suffix = (): string => pick([':1', ':v1.2-rc_3', `@${sha256}`, `:t@${sha256}`, '']);

    return (): string => {
      const path = Array.from({ length: between(1, 4) }, pathComponent).join('/');
      return `${withPort(host())}/${path}${suffix()}`;
    };
  }

  const randomSources = lazy(() => {
    const next = generator(randomSource(seed));
    return Array.from({ length: count }, () => {
      const text = next();
      try {
        return parseReference(text);
      } catch (error) {
        throw new Error(`generator bug (seed ${seed}): ${text}: ${String(error)}`);
      }
    });
  });

  test('the sample is large and varied', () => {
    const distinct = new Set(randomSources().map((source) => JSON.stringify(sourceKey(source))));
    assert.ok(distinct.size > count * 0.8, `only ${distinct.size} distinct sources`);
    const hosts = new Set(randomSources().map((source) => registryKey(source.registry)));
    assert.ok(hosts.size > 100, `only ${hosts.size} distinct hosts`);
    assert.ok(randomSources().some((source) => source.registry.startsWith('[') && source.registry.includes(']:')));
    assert.ok(randomSources().some((source) => /__|---/.test(source.repository)));
  });

  for (const mode of modes) {
    for (const location of locations) {
      const where = `${mode}, ${location.registry}/${location.prefix}`;

      test(`${where}: valid, tagged, under the location, and the inverse gives the source back`, () => {
        for (const source of randomSources()) {
          const ref = backupReference(source, location, mode);
          const label = `${formatReference(source)} -> ${formatReference(ref)} (seed ${seed})`;
          // A digest-only source's backup has no human tag; the parser reads a bare name as :latest.
          assert.deepEqual(parseReference(formatReference(ref)), { tag: 'latest', ...ref }, label);
          assert.equal(ref.tag, source.tag ?? (source.digest ? undefined : 'latest'), label);
          assert.equal(ref.digest, undefined, label);
          assert.equal(isUnderBackup(ref, location), true, label);
          if (mode === 'flat') assert.equal(ref.repository.split('/').length, (location.prefix === '' ? 0 : location.prefix.split('/').length) + 1, label);
          assert.deepEqual(sourceOfBackup(ref, location, mode), sourceKey(source), label);
          assert.deepEqual(parseReference(patchedReference(ref, sha256)), { ...ref, digest: sha256 }, label);
        }
      });

      test(`${where}: no two distinct sources share a backup name`, () => {
        const owners = new Map<string, string>();
        for (const source of randomSources()) {
          const owner = `${registryKey(source.registry)}/${source.repository}`;
          const name = backupReference(source, location, mode).repository;
          const earlier = owners.get(name);
          assert.ok(earlier === undefined || earlier === owner, `${earlier} and ${owner} both map to ${name} (seed ${seed})`);
          owners.set(name, owner);
        }
      });
    }
  }

  // Hosts chosen to be one step apart: a '-' or '.' more, a port, upper case, IPv6 that a looser
  // encoding would write like a host name.
  const shortSources = lazy(() => {
    const hosts = ['a.a', 'a-a.a', 'a.a-a', 'a--a.a', 'a.a:1', 'a.a.1', 'a:1', 'A', 'A-a', 'localhost', 'docker.io', '[::1]', '[::1]:1', '[a::a]', '[a]:1', '[a:a]'];
    const separators = ['.', '_', '__', '-', '--'];
    const components = ['a', ...separators.map((separator) => `a${separator}a`)];
    components.push(...components.flatMap((start) => separators.map((separator) => `${start}${separator}a`)));
    const paths = [...components, ...components.flatMap((one) => components.map((two) => `${one}/${two}`))];
    const shortPaths = paths.filter((path) => path.length <= 4);
    paths.push(...shortPaths.flatMap((start) => shortPaths.map((end) => `${start}/${end}`)));
    return hosts.flatMap((host) => paths.map((path) => parseReference(`${host}/${path}:1`)));
  });

  for (const mode of modes) {
    test(`${mode}, exhaustively over short sources: no two share a backup name`, () => {
      const owners = new Map<string, string>();
      for (const source of shortSources()) {
        const owner = formatReference(source);
        const name = backupReference(source, mirror, mode).repository;
        const earlier = owners.get(name);
        assert.ok(earlier === undefined || earlier === owner, `${earlier} and ${owner} both map to ${name}`);
        owners.set(name, owner);
      }
      assert.ok(owners.size > 10_000, `only ${owners.size} sources`);
    });

    test(`${mode}, exhaustively over short sources: each backup name decodes to its source`, () => {
      for (const source of shortSources()) {
        assert.deepEqual(sourceOfBackup(backupReference(source, mirror, mode), mirror, mode), sourceKey(source), formatReference(source));
      }
    });
  }

  // The other direction: any name under the location that decodes is the name of what it decodes to.
  for (const mode of modes) {
    test(`${mode}: sourceOfBackup accepts only names that backupReference writes`, () => {
      const parts = ['docker.io', 'quay.io', 'a.b', 'a_1', 'a_0', 'a_70000', 'ip6__xx1', 'ip6__x_5000', 'ip6__g', 'ab', 'library', 'a-b', 'a--b', 'a---b', 'a.io-b', 'a.io--b-c'];
      const fuzz = randomSource(seed + 1);
      let decoded = 0;
      for (let i = 0; i < count; i++) {
        const below = Array.from({ length: 1 + Math.floor(fuzz() * 3) }, () => parts[Math.floor(fuzz() * parts.length)] as string);
        const ref = { registry: mirror.registry, repository: `${mirror.prefix}/${below.join('/')}` };
        const source = sourceOfBackup(ref, mirror, mode);
        if (source === undefined) continue;
        decoded++;
        assert.equal(backupReference({ ...source, tag: '1' }, mirror, mode).repository, ref.repository, `${ref.repository} (seed ${seed + 1})`);
      }
      assert.ok(decoded > 50, `only ${decoded} names decoded`);
    });
  }
});
