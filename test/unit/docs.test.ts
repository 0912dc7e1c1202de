// The README and the manual in docs/ cannot drift: every relative link and anchor resolves (as GitHub
// renders them), and the option table of docs/sync.md lists exactly the options `sync --help` prints
// (the built CLI: npm test builds it first).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';

const root = new URL('../..', import.meta.url).pathname;
const pages = ['README.md', 'manifests/README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The lines of a markdown file outside fenced code blocks, with inline code spans blanked. */
function prose(text: string): string[] {
  let fence: string | undefined;
  return text.split('\n').map((line) => {
    const marker = /^\s*(```|~~~)/.exec(line)?.[1];
    if (marker && (!fence || fence === marker)) {
      fence = fence ? undefined : marker;
      return '';
    }
    return fence ? '' : line;
  });
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens; repeats get -1, -2, ... */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const line of prose(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const plain = heading.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*_]{1,2}([^`*_]+)[`*_]{1,2}/g, '$1');
    const slug = plain.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    found.add(n ? `${slug}-${n}` : slug);
  }
  return found;
}

/** The link targets of a markdown file (inline links and images), outside code. */
function links(text: string): string[] {
  return prose(text).flatMap((line) => [...line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!));
}

test('GitHub anchors: punctuation dropped, code spans kept as text, repeats numbered', () => {
  assert.deepEqual([...anchors('# image-clone sync\n## Pull secrets (opt-in)\n## `--pin` and *GitOps*\n## Options\n## Options\n```\n# not a heading\n```\n')],
    ['image-clone-sync', 'pull-secrets-opt-in', '--pin-and-gitops', 'options', 'options-1']);
});

test('every relative link and anchor in README.md, manifests/README.md and docs/*.md resolves', () => {
  const broken: string[] = [];
  for (const page of pages) {
    for (const target of links(readFileSync(join(root, page), 'utf8'))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:: not ours to check
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const file = path ? join(root, dirname(page), decodeURIComponent(path)) : join(root, page);
      if (relative(root, file).startsWith('..')) broken.push(`${page}: ${target} (outside the repository)`);
      else if (!existsSync(file)) broken.push(`${page}: ${target} (no such file)`);
      else if (anchor !== undefined) {
        if (statSync(file).isDirectory() || !file.endsWith('.md')) broken.push(`${page}: ${target} (an anchor into a file that is not markdown)`);
        else if (!anchors(readFileSync(file, 'utf8')).has(anchor)) broken.push(`${page}: ${target} (no heading with that anchor)`);
      }
    }
  }
  assert.deepEqual(broken, []);
  assert.ok(pages.length >= 9, `README.md and the docs: ${pages.join(', ')}`);
});

test('the option table of docs/sync.md lists exactly the options `sync --help` prints', () => {
  const help = spawnSync(process.execPath, [join(root, 'bin/image-clone.js'), 'sync', '--help'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', COLUMNS: '200' } });
  assert.equal(help.status, 0, `sync --help (the CLI is built by npm run build): ${help.stderr}`);
  const printed = new Set(help.stdout.split('\n').map((l) => /^\s+(?:-\w, )?--([a-z][\w-]*)/.exec(l)?.[1]).filter((o): o is string => !!o));

  const text = readFileSync(join(root, 'docs/sync.md'), 'utf8');
  const section = text.slice(text.indexOf('\n## Options\n'), text.indexOf('\n## ', text.indexOf('\n## Options\n') + 1));
  const rows = section.split('\n').filter((l) => /^\| `-/.test(l));
  const documented = new Set(rows.flatMap((row) => [...row.split('|')[1]!.matchAll(/--(?:no-)?([a-z][\w-]*)/g)].map((m) => m[1]!)));

  assert.ok(printed.size >= 20, `sync --help lists its options: ${[...printed].join(', ')}`);
  assert.deepEqual([...documented].sort(), [...printed].sort(), 'docs/sync.md#options and `image-clone sync --help` name the same options');
});

test('image-clone --help and each command\'s help point to docs/ files that exist', () => {
  for (const command of [[], ['sync'], ['restore'], ['copy']]) {
    const help = spawnSync(process.execPath, [join(root, 'bin/image-clone.js'), ...command, '--help'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    const named = [...help.stdout.replace(/\s+/g, ' ').matchAll(/docs\/(?:[\w-]+\.md(?:#[\w-]+)?)?/g)].map((m) => m[0]);
    assert.ok(named.length, `image-clone ${command.join(' ')} --help names a docs/ file:\n${help.stdout}`);
    for (const ref of named) {
      const [path, anchor] = ref.split('#') as [string, string | undefined];
      assert.ok(existsSync(join(root, path)), `${ref}, named by image-clone ${command.join(' ')} --help, exists`);
      if (anchor) assert.ok(anchors(readFileSync(join(root, path), 'utf8')).has(anchor), `${ref} has that heading`);
    }
  }
});
