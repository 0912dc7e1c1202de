// The Helm chart (charts/image-clone), rendered by the real helm (built by test/harness/tools.sh from
// the Go module proxy): with defaults it renders the objects of manifests/base, object by object, so
// the two cannot drift; its values reach the pod as the IMAGE_CLONE_* variables the CLI reads; its
// schema refuses unknown keys and wrong types. test/integration/chart.test.ts installs it for real.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadAll } from 'js-yaml';
import { syncOptions } from '../../src/cli/options.ts';
import { envName } from '../../src/cli/config-layers.ts';

type Doc = Record<string, any>;
const root = new URL('../..', import.meta.url).pathname;
const chart = join(root, 'charts/image-clone');
const manifests = join(root, 'manifests');
const helmBin = join(root, '.harness/bin/helm');
const docsOf = (text: string): Doc[] => (loadAll(text) as Doc[]).filter(Boolean);
const filesOf = (dir: string): Doc[] => (docsOf(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]!.resources as string[])
  .flatMap((file) => docsOf(readFileSync(join(dir, file), 'utf8')));

function helm(args: string[]): { status: number; stdout: string; stderr: string } {
  assert.ok(existsSync(helmBin), `${helmBin} is missing: run \`bash test/harness/tools.sh\` (npm run harness:build does)`);
  const r = spawnSync(helmBin, args, { encoding: 'utf8', env: { ...process.env, HELM_CACHE_HOME: '/tmp/image-clone-helm/cache', HELM_CONFIG_HOME: '/tmp/image-clone-helm/config', HELM_DATA_HOME: '/tmp/image-clone-helm/data' } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template image-clone charts/image-clone -n image-clone --set ...`: the objects ("string:x=y" is --set-string x=y). */
function render(...set: string[]): Doc[] {
  const flags = set.flatMap((s) => (s.startsWith('string:') ? ['--set-string', s.slice(7)] : ['--set', s]));
  const r = helm(['template', 'image-clone', chart, '--namespace', 'image-clone', ...flags]);
  assert.equal(r.status, 0, r.stderr);
  return docsOf(r.stdout);
}

/** The labels Helm's conventions add; the manifests carry app.kubernetes.io/name only. */
const helmLabels = ['app.kubernetes.io/instance', 'app.kubernetes.io/version', 'app.kubernetes.io/managed-by', 'helm.sh/chart'];
function withoutHelmLabels(doc: Doc): Doc {
  const copy = structuredClone(doc);
  const strip = (meta: Doc | undefined) => { for (const l of helmLabels) delete meta?.labels?.[l]; };
  strip(copy.metadata);
  strip(copy.spec?.jobTemplate?.metadata);
  strip(copy.spec?.jobTemplate?.spec?.template?.metadata);
  return copy;
}
const keyOf = (d: Doc) => `${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`;
const byKey = (docs: Doc[]) => new Map(docs.map((d) => [keyOf(d), withoutHelmLabels(d)]));
const cronJobOf = (docs: Doc[]) => docs.find((d) => d.kind === 'CronJob')!;
const containerOf = (docs: Doc[]) => cronJobOf(docs).spec.jobTemplate.spec.template.spec.containers[0];
const envOf = (docs: Doc[]): Record<string, string> => Object.fromEntries(containerOf(docs).env.map((e: Doc) => [e.name, e.value]));

describe('the chart renders the Kustomize manifests', () => {
  test('helm lint --strict passes', () => {
    const r = helm(['lint', '--strict', chart]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  test('with defaults: every object of manifests/base but the Namespace, equal field by field once Helm\'s own labels are set aside', () => {
    const base = byKey(filesOf(join(manifests, 'base')).filter((d) => d.kind !== 'Namespace'));
    const rendered = byKey(render());
    assert.deepEqual([...rendered.keys()].sort(), [...base.keys()].sort());
    for (const [key, doc] of base) assert.deepEqual(rendered.get(key), doc, key);
  });

  test('Helm\'s labels come on top of the manifests\' label, and the pod template carries the instance', () => {
    for (const doc of render()) {
      assert.equal(doc.metadata.labels['app.kubernetes.io/name'], 'image-clone', keyOf(doc));
      assert.equal(doc.metadata.labels['app.kubernetes.io/managed-by'], 'Helm', keyOf(doc));
    }
    assert.equal(cronJobOf(render()).spec.jobTemplate.spec.template.metadata.labels['app.kubernetes.io/instance'], 'image-clone');
  });

  test('namespace.create=true adds the Namespace of manifests/base, restricted Pod Security enforced', () => {
    const ns = filesOf(join(manifests, 'base')).find((d) => d.kind === 'Namespace')!;
    const rendered = render('namespace.create=true').find((d) => d.kind === 'Namespace');
    assert.deepEqual(withoutHelmLabels(rendered!), ns);
  });

  test('pullSecret.name renders the pull-secrets overlay: its RBAC and its variable', () => {
    const overlayRbac = byKey(docsOf(readFileSync(join(manifests, 'overlays/pull-secrets/rbac.yaml'), 'utf8')));
    const docs = render('pullSecret.name=image-clone-pull');
    const rendered = byKey(docs);
    for (const [key, doc] of overlayRbac) assert.deepEqual(rendered.get(key), doc, key);
    assert.equal(envOf(docs)[envName('pull-secret')], 'image-clone-pull');
    assert.equal(envOf(render())[envName('pull-secret')], undefined);
  });

  test('prometheusRule.enabled renders the PrometheusRule of manifests/components/prometheus-rule; it is off by default', () => {
    const component = docsOf(readFileSync(join(manifests, 'components/prometheus-rule/prometheusrule.yaml'), 'utf8'))[0]!;
    assert.equal(render().some((d) => d.kind === 'PrometheusRule'), false);
    const rendered = render('prometheusRule.enabled=true', 'prometheusRule.labels.release=kube-prometheus').find((d) => d.kind === 'PrometheusRule')!;
    assert.deepEqual(rendered.spec, component.spec);
    assert.equal(rendered.metadata.labels.release, 'kube-prometheus');
  });

  test('rbac.namespaced: no cluster-scope object; the ClusterRole\'s rules as a Role in the release namespace; the CronJob lists that namespace', () => {
    const clusterRole = filesOf(join(manifests, 'base')).find((d) => d.kind === 'ClusterRole')!;
    const docs = render('rbac.namespaced=true');
    assert.deepEqual(docs.filter((d) => d.kind.startsWith('Cluster')), []);
    const role = docs.find((d) => d.kind === 'Role' && d.metadata.name === 'image-clone-workloads')!;
    assert.deepEqual(role.rules, clusterRole.rules);
    assert.equal(role.metadata.namespace, 'image-clone');
    const binding = docs.find((d) => d.kind === 'RoleBinding' && d.metadata.name === 'image-clone-workloads')!;
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'image-clone-workloads' });
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'image-clone', namespace: 'image-clone' }]);
    const env = containerOf(docs).env.find((e: Doc) => e.name === envName('namespace'));
    assert.deepEqual(env, { name: envName('namespace'), valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
    assert.equal(envOf(render('rbac.namespaced=true', 'sync.namespace={a,b}'))[envName('namespace')], 'a,b', 'unless namespaces are named');
  });

  test('the chart and the image it installs have the package\'s version', () => {
    const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
    const meta = docsOf(readFileSync(join(chart, 'Chart.yaml'), 'utf8'))[0]!;
    assert.equal(meta.version, version);
    assert.equal(meta.appVersion, version);
    assert.equal(containerOf(render()).image, `registry.example.com/image-clone:${version}`);
  });
});

describe('values', () => {
  test('every key of sync is a real `image-clone sync` option, and becomes its IMAGE_CLONE_* variable', () => {
    const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8'));
    const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const keys = Object.keys(schema.properties.sync.properties);
    for (const key of keys) assert.ok(kebab(key) in syncOptions, `sync.${key} is --${kebab(key)}`);
    const env = envOf(render(...keys.map((key) => {
      const spec = schema.properties.sync.properties[key];
      const value = spec.enum ? spec.enum[0] : spec.type === 'boolean' ? 'true' : spec.type === 'integer' ? '7' : spec.type === 'string' ? 'http://x' : '{a,b}';
      return `sync.${key}=${value}`;
    })));
    for (const key of keys) assert.ok(env[envName(kebab(key))], `${envName(kebab(key))} is set`);
    assert.equal(env[envName('exclude-namespace')], 'a,b', 'a list is comma-separated, as the CLI reads lists from the environment');
    assert.equal(env[envName('concurrency')], '7');
    assert.equal(env[envName('patch-managed')], 'true');
  });

  test('a boolean false is rendered (it may turn a default off); an unset option is not', () => {
    const env = envOf(render('sync.pin=false'));
    assert.equal(env[envName('pin')], 'false');
    assert.equal(env[envName('naming')], undefined);
  });

  test('schedule, time zone, suspend, history, deadlines, backup', () => {
    const cj = cronJobOf(render('schedule=5 4 * * 0', 'timeZone=Europe/Berlin', 'suspend=true', 'successfulJobsHistoryLimit=1', 'failedJobsHistoryLimit=5', 'activeDeadlineSeconds=600', 'backup=backup.example.com/x'));
    assert.equal(cj.spec.schedule, '5 4 * * 0');
    assert.equal(cj.spec.timeZone, 'Europe/Berlin');
    assert.equal(cj.spec.suspend, true);
    assert.equal(cj.spec.successfulJobsHistoryLimit, 1);
    assert.equal(cj.spec.failedJobsHistoryLimit, 5);
    assert.equal(cj.spec.jobTemplate.spec.activeDeadlineSeconds, 600);
    assert.equal(envOf([cj])[envName('backup')], 'backup.example.com/x');
  });

  test('no credentials Secret (cloud identity): no volume, no IMAGE_CLONE_REGISTRY_CONFIG; ServiceAccount annotations and pod labels', () => {
    const docs = render('credentials.existingSecret=', 'serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/x', 'string:podLabels.azure\\.workload\\.identity/use=true');
    const podSpec = cronJobOf(docs).spec.jobTemplate.spec.template.spec;
    assert.equal(podSpec.volumes, undefined);
    assert.equal(podSpec.containers[0].volumeMounts, undefined);
    assert.equal(envOf(docs)[envName('registry-config')], undefined);
    assert.equal(docs.find((d) => d.kind === 'ServiceAccount')!.metadata.annotations['eks.amazonaws.com/role-arn'], 'arn:aws:iam::1:role/x');
    assert.equal(cronJobOf(docs).spec.jobTemplate.spec.template.metadata.labels['azure.workload.identity/use'], 'true');
  });

  test('image by digest, scheduling, resources, extra env and volumes (a CA bundle)', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const docs = render(`image.digest=${digest}`, 'image.repository=r.example/ic', 'nodeSelector.pool=infra', 'tolerations[0].key=infra', 'tolerations[0].operator=Exists',
      'priorityClassName=low', 'resources.limits.memory=1Gi', 'extraEnv[0].name=NODE_EXTRA_CA_CERTS', 'extraEnv[0].value=/ca/ca.crt',
      'extraVolumes[0].name=ca', 'extraVolumes[0].configMap.name=registry-ca', 'extraVolumeMounts[0].name=ca', 'extraVolumeMounts[0].mountPath=/ca', 'extraVolumeMounts[0].readOnly=true');
    const podSpec = cronJobOf(docs).spec.jobTemplate.spec.template.spec;
    const container = podSpec.containers[0];
    assert.equal(container.image, `r.example/ic@${digest}`);
    assert.deepEqual(podSpec.nodeSelector, { pool: 'infra' });
    assert.deepEqual(podSpec.tolerations, [{ key: 'infra', operator: 'Exists' }]);
    assert.equal(podSpec.priorityClassName, 'low');
    assert.equal(container.resources.limits.memory, '1Gi');
    assert.equal(envOf(docs).NODE_EXTRA_CA_CERTS, '/ca/ca.crt');
    assert.deepEqual(podSpec.volumes.map((v: Doc) => v.name), ['registry-credentials', 'ca']);
    assert.deepEqual(container.volumeMounts.map((m: Doc) => m.mountPath), ['/etc/image-clone/registry', '/ca']);
  });

  for (const [what, set, expected] of [
    ['an unknown top-level key', 'schedul=1 2 * * *', /schedul/],
    ['an unknown sync option', 'sync.excludeNamespaces=x', /excludeNamespaces/],
    ['a wrong type', 'suspend=maybe', /suspend/],
    ['a wrong type in sync', 'sync.concurrency=many', /concurrency/],
    ['a value outside its choices', 'sync.naming=deep', /naming/],
  ] as const) {
    test(`the schema refuses ${what}, with Helm's own error`, () => {
      const r = helm(['template', 'image-clone', chart, '--set', set]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /values don't meet the specifications of the schema/);
      assert.match(r.stderr, expected);
    });
  }
});
