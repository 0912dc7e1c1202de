// The layers, guarded: core is pure and depends on nothing but itself and the leaf modules
// (reference grammar, errors, small utilities); adapters (kube/, oci/, auth/) never import the CLI;
// the registry client (oci/) asks auth/ for credentials, and auth/ imports only itself, the leaf
// modules, util/ and packages (node's, the cloud SDKs): nothing of the registry client, the cluster,
// core or the CLI; the cluster adapter (kube/) never needs credentials; the leaf modules import no
// layer. The benchmarks (bench/) may import src/, the test harness (test/harness/) and themselves;
// nothing imports bench/; no import cycle in src/ or bench/. A change that crosses a line fails here,
// naming the import.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const root = resolve(import.meta.dirname, '../..');
const src = join(root, 'src');
const bench = join(root, 'bench');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Every module a file imports (static and dynamic), as a path below `base` (default src/) or a package name. */
function importsOf(file: string, base = src): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\s)(?:import|export)\s[^'";]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm)].map((m) => m[1] ?? m[2]!);
  return specifiers.map((s) => (s.startsWith('.') ? relative(base, resolve(dirname(file), s)) : s));
}

/** Relative imports resolve to paths; anything else is a package (node:, npm). */
const isPackage = (target: string) => !target.startsWith('.') && !target.endsWith('.ts');

/** The import cycles among `dir`'s own files, each as `a.ts -> b.ts -> a.ts` (paths below `base`). */
function cyclesIn(dir: string, base: string): string[] {
  const graph = new Map(files(dir).map((f) => [relative(base, f), importsOf(f, base).filter((t) => t.startsWith(`${relative(base, dir)}/`) || relative(base, dir) === '')]));
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (node: string, path: string[]) => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'open') {
      found.push([...path.slice(path.indexOf(node)), node].join(' -> '));
      return;
    }
    state.set(node, 'open');
    for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
    state.set(node, 'done');
  };
  for (const node of graph.keys()) visit(node, []);
  return found;
}

const leaves = ['reference.ts', 'errors.ts'];
const allowed: Record<string, (target: string) => boolean> = {
  core: (t) => t.startsWith('core/') || t.startsWith('util/') || leaves.includes(t),
  kube: (t) => !t.startsWith('cli/') && !t.startsWith('oci/') && !t.startsWith('auth/'),
  oci: (t) => !t.startsWith('cli/') && !t.startsWith('kube/'),
  auth: (t) => t.startsWith('auth/') || t.startsWith('util/') || leaves.includes(t) || isPackage(t),
  util: (t) => t.startsWith('util/') || t.startsWith('node:'),
  leaf: (t) => leaves.includes(t) || t.startsWith('util/'),
};

test('core imports only core, util and the leaf modules; adapters never the CLI; leaves no layer', () => {
  const crossings: string[] = [];
  for (const file of files(src)) {
    const path = relative(src, file);
    const layer = leaves.includes(path) ? 'leaf' : path.split('/')[0]!;
    const rule = allowed[layer];
    if (!rule) continue; // cli/ may import anything
    for (const target of importsOf(file)) if (!rule(target)) crossings.push(`${path} imports ${target}`);
  }
  assert.deepEqual(crossings, []);
});

test('the guard sees imports: it finds the ones core has', () => {
  assert.ok(importsOf(join(src, 'core/plan.ts')).includes('reference.ts'));
  assert.ok(importsOf(join(src, 'core/execute.ts')).includes('core/ports.ts'));
  assert.ok(importsOf(join(src, 'oci/transport/auth.ts')).includes('auth/credential.ts'));
});

test('auth/ has its own rule: it may not import the CLI, the cluster or the registry client', () => {
  const rule = allowed['auth']!;
  for (const target of ['cli/registry-wiring.ts', 'kube/list.ts', 'oci/transport/transport.ts', 'core/plan.ts', '../bench/lib/format.ts']) assert.equal(rule(target), false, target);
  for (const target of ['auth/credential.ts', 'reference.ts', 'errors.ts', 'util/retry-policy.ts', 'node:fs/promises', '@aws-sdk/client-ecr']) assert.equal(rule(target), true, target);
  assert.equal(allowed['kube']!('auth/keychain.ts'), false, 'the cluster adapter needs no credentials');
  assert.ok(files(join(src, 'auth')).length > 0, 'src/auth/ has files for the rule to guard');
});

/** What a file in bench/ may import, as a path below the repository: src/, the test harness, bench/ itself, packages. */
const benchMayImport = (target: string) => isPackage(target) || target.startsWith('src/') || target.startsWith('test/harness/') || target.startsWith('bench/');

test('bench/ imports only src/, the test harness, itself and packages; nothing imports bench/', () => {
  const crossings: string[] = [];
  for (const file of files(bench)) {
    for (const target of importsOf(file, root)) if (!benchMayImport(target)) crossings.push(`${relative(root, file)} imports ${target}`);
  }
  for (const dir of ['src', 'test', 'scripts']) {
    for (const file of files(join(root, dir))) {
      for (const target of importsOf(file, root)) if (target.startsWith('bench/')) crossings.push(`${relative(root, file)} imports ${target}`);
    }
  }
  assert.deepEqual(crossings, []);
  assert.ok(importsOf(join(bench, 'copy.ts'), root).includes('test/harness/harness.ts'), 'the guard sees bench/\'s imports');
  for (const target of ['test/node/helpers.ts', 'test/integration/x.test.ts', '../outside.ts']) assert.equal(benchMayImport(target), false, target);
});

test('no import cycle in src/ or bench/', () => {
  assert.deepEqual([...cyclesIn(src, root), ...cyclesIn(bench, root)], []);
  // The guard finds a cycle when there is one: two files of a temporary folder importing each other.
  const dir = mkdtempSync(join(tmpdir(), 'layers-cycle-'));
  try {
    writeFileSync(join(dir, 'a.ts'), "import { b } from './b.ts';\nexport const a = b;\n");
    writeFileSync(join(dir, 'b.ts'), "export { a as b } from './a.ts';\n");
    assert.deepEqual(cyclesIn(dir, dir).map((c) => c.split(' -> ').length), [3]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
