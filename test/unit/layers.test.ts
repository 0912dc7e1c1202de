// The layers, guarded: core is pure and depends on nothing but itself and the leaf modules
// (reference grammar, errors, small utilities); adapters (kube/, oci/, auth/) never import the CLI;
// the registry client (oci/) asks auth/ for credentials, and auth/ knows nothing of the registry
// client, the cluster, core or the CLI; the leaf modules import no layer. A change that crosses a
// line fails here, naming the import.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const src = resolve(import.meta.dirname, '../../src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Every module a file imports (static and dynamic), as a path below src/ or a package name. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\s)(?:import|export)\s[^'";]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm)].map((m) => m[1] ?? m[2]!);
  return specifiers.map((s) => (s.startsWith('.') ? relative(src, resolve(dirname(file), s)) : s));
}

const leaves = ['reference.ts', 'errors.ts'];
const allowed: Record<string, (target: string) => boolean> = {
  core: (t) => t.startsWith('core/') || t.startsWith('util/') || leaves.includes(t),
  kube: (t) => !t.startsWith('cli/') && !t.startsWith('oci/'),
  oci: (t) => !t.startsWith('cli/') && !t.startsWith('kube/'),
  auth: (t) => !t.startsWith('cli/') && !t.startsWith('kube/') && !t.startsWith('oci/') && !t.startsWith('core/'),
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
  for (const target of ['cli/registry-wiring.ts', 'kube/list.ts', 'oci/transport/transport.ts', 'core/plan.ts']) assert.equal(rule(target), false, target);
  for (const target of ['auth/credential.ts', 'reference.ts', 'errors.ts', 'util/retry-policy.ts', 'node:fs/promises']) assert.equal(rule(target), true, target);
  assert.ok(files(join(src, 'auth')).length > 0, 'src/auth/ has files for the rule to guard');
});
