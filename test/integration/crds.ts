// CustomResourceDefinitions for the tests of custom workloads: the real ones, read from the projects'
// own Go modules through the Go module proxy (`go mod download`, the same client and cache the
// harness build uses), and minimal made-up ones for kinds no project defines (an operator's
// resource image-clone does not know, a kind named with --workload-kind).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ApiException, ApiextensionsV1Api, loadAllYaml, loadYaml, type KubeConfig, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { waitUntil } from './helpers.ts';

const execFileAsync = promisify(execFile);

/** The real CRDs, by module version and the file in the module that holds each. */
export const realCrds = {
  rollout: { module: 'github.com/argoproj/argo-rollouts', version: 'v1.8.3', file: 'manifests/crds/rollout-crd.yaml' },
  knativeService: { module: 'knative.dev/serving', version: 'v0.45.1', file: 'config/core/300-resources/service.yaml' },
  scaledJob: { module: 'github.com/kedacore/keda/v2', version: 'v2.17.2', file: 'config/crd/bases/keda.sh_scaledjobs.yaml' },
} as const;

/** A project's CRD, from its Go module (downloaded once into the module cache, then read from there). */
export async function moduleCrd(source: { module: string; version: string; file: string }): Promise<V1CustomResourceDefinition> {
  const { stdout } = await execFileAsync('go', ['mod', 'download', '-json', `${source.module}@${source.version}`], {
    cwd: tmpdir(), env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' }, maxBuffer: 4 * 1024 * 1024,
  });
  const { Dir, Error: error } = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (!Dir) throw new Error(`go mod download ${source.module}@${source.version}: ${error ?? 'no directory'}`);
  // The client's own YAML reader: the typed object it makes is what its create call sends back.
  const crd = (loadAllYaml(await readFile(join(Dir, source.file), 'utf8')) as V1CustomResourceDefinition[]).find((d) => d?.kind === 'CustomResourceDefinition');
  if (!crd) throw new Error(`${source.module}@${source.version}/${source.file} holds no CustomResourceDefinition`);
  return crd;
}

/** A namespaced CRD that accepts any spec: for kinds that no project defines. */
export function minimalCrd(group: string, kind: string, plural: string, version = 'v1alpha1'): V1CustomResourceDefinition {
  return loadYaml(JSON.stringify({
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: `${plural}.${group}` },
    spec: {
      group, scope: 'Namespaced', names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [{ name: version, served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  }));
}

/**
 * Installs a CRD (replacing one of that name left by another test, once it is gone) and waits until
 * it is established and its kind is served.
 */
export async function installCrd(kc: KubeConfig, crd: V1CustomResourceDefinition): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const name = crd.metadata!.name!;
  const read = () => api.readCustomResourceDefinition({ name }).catch((err) => {
    if (err instanceof ApiException && err.code === 404) return undefined;
    throw err;
  });
  const existing = await read();
  if (existing) {
    await api.deleteCustomResourceDefinition({ name }).catch(() => {});
    await waitUntil(`CRD ${name} to be gone`, async () => !(await read()), 120_000);
  }
  const { metadata, ...rest } = crd;
  await api.createCustomResourceDefinition({ body: { ...rest, metadata: { name, ...(metadata?.labels ? { labels: metadata.labels } : {}) } } as V1CustomResourceDefinition });
  await waitUntil(`CRD ${name} to be established`, async () => (await read())?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false);
}

/** Deletes CRDs (and so every object of theirs); waits until they are gone. */
export async function deleteCrds(kc: KubeConfig, names: string[]): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  for (const name of names) await api.deleteCustomResourceDefinition({ name }).catch(() => {});
  for (const name of names) {
    await waitUntil(`CRD ${name} to be gone`, () => api.readCustomResourceDefinition({ name }).then(() => false, () => true), 120_000);
  }
}
