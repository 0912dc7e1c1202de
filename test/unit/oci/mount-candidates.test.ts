// Finding a blob's other home in the target registry (src/oci/mount-candidates.ts): the ranking is
// pure; the look-ups run against a registry stand-in that answers from a table, because what is
// tested here is which questions are asked and how many (the integration tests in
// test/integration/mounts.test.ts do the same against real registries).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MountCandidates, catalogFolders, rankCandidates, type BlobLocator } from '../../../src/oci/mount-candidates.ts';

const registry = 'backup.example.com';
const big = (digest: string) => ({ digest, size: 1024 * 1024 });

/** A registry stand-in: which repository holds which blob, and an optional catalog; it counts the questions. */
function fakeRegistry(holds: Record<string, string[]>, catalog?: string[]) {
  const asked = { heads: [] as string[], catalog: [] as Array<string | undefined> };
  const locator: BlobLocator = {
    async headBlob(repo, digest) {
      asked.heads.push(`${repo.repository}@${digest}`);
      return holds[repo.repository]?.includes(digest) ? 1 : undefined;
    },
    async catalog(_registry, n, last) {
      asked.catalog.push(last);
      if (!catalog) return undefined;
      return catalog.filter((name) => last === undefined || name > last).slice(0, n);
    },
  };
  return { locator, asked };
}

describe('mount candidates', () => {
  test('catalog folders: the parent first, then each folder above, then the start of the catalog', () => {
    assert.deepEqual(catalogFolders('mirror/docker.io/acme/app'), ['mirror/docker.io/acme/', 'mirror/docker.io/', 'mirror/', '']);
    assert.deepEqual(catalogFolders('app'), ['']);
  });

  test('ranking: the same image elsewhere first, then the nearest neighbours, then known images', () => {
    const ranked = rankCandidates(
      ['other/x', 'mirror/team-b/svc', 'mirror/team-a/app', 'old/app', 'mirror/team-a/db', 'mirror/team-a/new'],
      'acme/app', 'mirror/team-a/new', new Set(['other/x']),
    );
    assert.deepEqual(ranked, ['mirror/team-a/app', 'old/app', 'mirror/team-a/db', 'mirror/team-b/svc', 'other/x']);
  });

  test('a new image finds its base layers in a repository the catalog lists near it, and its other blobs are asked there only', async () => {
    const { locator, asked } = fakeRegistry({ 'mirror/team-a/app': ['base1', 'base2'] }, ['mirror/team-a/app', 'mirror/team-a/db', 'unrelated/z']);
    const mounts = new MountCandidates(locator);
    const dst = { registry, repository: 'mirror/team-b/svc' };
    const src = { registry: 'src.example.com', repository: 'acme/svc' };
    const blobs = [big('config'), big('base1'), big('base2'), big('own')];
    mounts.noteImage(dst, blobs, blobs.slice(1));
    const found = await Promise.all(blobs.map((b) => mounts.find(src, dst, b)));
    assert.deepEqual(found.map((f) => f?.repository), [undefined, 'mirror/team-a/app', 'mirror/team-a/app', undefined]);
    // One page per folder until enough names are known; the base layer asked of each candidate once, the others of its holder only.
    assert.deepEqual(asked.catalog, ['mirror/team-b/', 'mirror/', undefined]);
    assert.deepEqual(asked.heads.filter((h) => h.endsWith('@base1')).sort(), ['mirror/team-a/app@base1', 'mirror/team-a/db@base1', 'unrelated/z@base1']);
    assert.deepEqual(asked.heads.filter((h) => !h.endsWith('@base1')).sort(), ['mirror/team-a/app@base2', 'mirror/team-a/app@config', 'mirror/team-a/app@own']);
  });

  test('without a catalog, the repositories the caller knows are the candidates, at most six asked per base layer', async () => {
    const known = Array.from({ length: 20 }, (_, i) => ({ registry, repository: `mirror/host/app-${i}` }));
    const { locator, asked } = fakeRegistry({ 'mirror/host/app-7': ['base'] });
    const mounts = new MountCandidates(locator);
    mounts.hint(known);
    const dst = { registry, repository: 'mirror/host/new' };
    const found = await mounts.find({ registry: 'src.example.com', repository: 'new' }, dst, big('base'));
    assert.equal(found, undefined, 'app-7 ranks below the six asked (they are all equally near)');
    assert.equal(asked.heads.length, 6);
    assert.deepEqual(asked.catalog, ['mirror/host/'], 'a refused catalog is not asked again');
    const again = await mounts.find({ registry: 'src.example.com', repository: 'new' }, { registry, repository: 'mirror/host/app-7x' }, big('base'));
    assert.equal(again, undefined);
    assert.equal(asked.heads.length, 6, 'one round per base layer and run');
  });

  test('small blobs with no round under way are uploaded without looking', async () => {
    const { locator, asked } = fakeRegistry({ a: ['tiny'] }, ['a']);
    const mounts = new MountCandidates(locator);
    assert.equal(await mounts.find({ registry, repository: 'src' }, { registry, repository: 'b' }, { digest: 'tiny', size: 100 }), undefined);
    assert.deepEqual(asked, { heads: [], catalog: [] });
  });

  test('a repository the credentials may not read is no candidate, and no error', async () => {
    const locator: BlobLocator = {
      headBlob: async () => { throw new Error('HTTP 403'); },
      catalog: async () => ['secret/app'],
    };
    const mounts = new MountCandidates(locator);
    assert.equal(await mounts.find({ registry, repository: 's' }, { registry, repository: 'mine/app' }, big('base')), undefined);
  });
});
