// The shipped manifests, read as files: the CronJob checklist, RBAC that says exactly what the code
// does, and the pieces that must agree across files (names, paths, user ids, exit codes, versions).
// test/integration/rbac.test.ts applies the same files to a real API server and runs as the account.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { loadAll } from 'js-yaml';
import { syncOptions } from '../../src/cli/options.ts';
import { envName } from '../../src/cli/config-layers.ts';
import { selfLabel } from '../../src/core/self-recognition.ts';
import { ExitCode } from '../../src/cli/exit-codes.ts';
import { knownCustomKinds } from '../../src/core/custom-kinds.ts';
import { workloadKinds } from '../../src/core/workloads.ts';
import { resourceOf } from '../../src/kube/list.ts';
import { leaseName } from '../../src/kube/lock.ts';
import { proxyForUrl, readProxyEnvironment } from '../../src/util/proxy-for-url.ts';

const root = new URL('../..', import.meta.url).pathname;
const manifests = join(root, 'manifests');
const packageVersion: string = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;

type Doc = Record<string, any>;
const docsOf = (path: string): Doc[] => (loadAll(readFileSync(path, 'utf8')) as Doc[]).filter(Boolean);
const kustomization = (dir: string): Doc => docsOf(join(manifests, dir, 'kustomization.yaml'))[0]!;

/** The base's objects, from the files its kustomization lists. */
const base: Doc[] = kustomization('base').resources.flatMap((file: string) => docsOf(join(manifests, 'base', file)));
const find = (docs: Doc[], kind: string, name: string): Doc => {
  const found = docs.find((d) => d.kind === kind && d.metadata?.name === name);
  assert.ok(found, `${kind} ${name} is in the manifests`);
  return found;
};
const cronJob = find(base, 'CronJob', 'image-clone');
const jobSpec = cronJob.spec.jobTemplate.spec;
const podSpec = jobSpec.template.spec;
const container = podSpec.containers[0];
const credentialsTemplate = docsOf(join(manifests, 'base/registry-credentials.yaml'))[0]!;
const overlayRbac = docsOf(join(manifests, 'overlays/pull-secrets/rbac.yaml'));
const pullSecretTemplate = docsOf(join(manifests, 'overlays/pull-secrets/pull-secret.yaml'))[0]!;

/** "verb group/resource" for each thing a rule grants (resourceNames noted after a colon). */
function grants(rules: Doc[]): string[] {
  return rules.flatMap((rule) => rule.verbs.flatMap((verb: string) => rule.apiGroups.flatMap((group: string) =>
    rule.resources.map((resource: string) => `${verb} ${group}/${resource}${rule.resourceNames ? `:${rule.resourceNames.join(',')}` : ''}`)))).sort();
}

describe('kustomization', () => {
  test('manifests/ applies the base; the base lists every object file, and nothing in it is left unlisted but the Secret template', () => {
    assert.deepEqual(kustomization('.').resources, ['base']);
    const listed = kustomization('base').resources as string[];
    for (const file of listed) assert.ok(existsSync(join(manifests, 'base', file)), `${file} exists`);
    assert.deepEqual(base.map((d) => d.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'CronJob', 'Namespace', 'Role', 'RoleBinding', 'ServiceAccount']);
    assert.ok(!listed.includes('registry-credentials.yaml'), 'the Secret template is not applied: apply -k would overwrite real credentials');
  });

  test('every namespaced object lives in the image-clone namespace, and the namespace enforces the restricted pod security profile', () => {
    for (const doc of base.filter((d) => !['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(d.kind))) {
      assert.equal(doc.metadata.namespace, 'image-clone', `${doc.kind} ${doc.metadata.name}`);
    }
    const ns = find(base, 'Namespace', 'image-clone');
    assert.equal(ns.metadata.labels['pod-security.kubernetes.io/enforce'], 'restricted');
  });
});

describe('CronJob', () => {
  test('schedule and job policy: Forbid, a starting deadline, few retries, a run deadline, bounded history', () => {
    assert.equal(cronJob.spec.concurrencyPolicy, 'Forbid');
    assert.ok(cronJob.spec.startingDeadlineSeconds > 0);
    assert.ok(cronJob.spec.successfulJobsHistoryLimit >= 1 && cronJob.spec.failedJobsHistoryLimit >= 1);
    assert.ok(jobSpec.backoffLimit >= 1 && jobSpec.backoffLimit <= 3, 'a small backoffLimit');
    assert.ok(jobSpec.activeDeadlineSeconds > 0 && jobSpec.activeDeadlineSeconds < 24 * 3600, 'a run ends before the next one is due');
    assert.equal(podSpec.restartPolicy, 'Never');
  });

  test("configuration and lock errors, and bugs, fail the Job at once; the exit codes are the CLI's", () => {
    const failJob = jobSpec.podFailurePolicy.rules.find((r: Doc) => r.action === 'FailJob');
    assert.equal(failJob.onExitCodes.containerName, container.name);
    assert.deepEqual(failJob.onExitCodes.values, [ExitCode.usage, ExitCode.locked, ExitCode.internal]);
  });

  test('restricted pod security: non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp, no escalation', () => {
    assert.equal(podSpec.securityContext.runAsNonRoot, true);
    assert.ok(podSpec.securityContext.runAsUser > 0);
    assert.equal(podSpec.securityContext.seccompProfile.type, 'RuntimeDefault');
    assert.equal(podSpec.hostNetwork ?? false, false);
    assert.equal(podSpec.hostPID ?? false, false);
    assert.equal(podSpec.containers.length, 1);
    assert.equal(podSpec.initContainers, undefined);
    const sc = container.securityContext;
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.runAsNonRoot, true);
    assert.deepEqual(sc.capabilities.drop, ['ALL']);
    assert.equal(sc.capabilities.add, undefined);
    // image-clone writes no file, so no writable volume at all; the only volume is the credentials, read-only.
    assert.deepEqual(podSpec.volumes.map((v: Doc) => Object.keys(v).filter((k) => k !== 'name')), [['secret']]);
    assert.ok(container.volumeMounts.every((m: Doc) => m.readOnly === true));
  });

  test('the container runs as the Dockerfile\'s user', () => {
    const dockerfile = readFileSync(join(manifests, 'image/Dockerfile'), 'utf8');
    const users = [...dockerfile.matchAll(/^USER\s+(\d+)(?::(\d+))?\s*$/gm)];
    assert.equal(users.length, 1, 'one numeric USER');
    assert.equal(Number(users[0]![1]), podSpec.securityContext.runAsUser);
    assert.equal(Number(users[0]![2]), podSpec.securityContext.runAsGroup);
  });

  test('resources: requests and limits, with at least the 256 MiB the Kubernetes client alone needs', () => {
    const mib = (q: string) => {
      const m = /^(\d+)(Mi|Gi)$/.exec(q);
      assert.ok(m, `memory ${q} in Mi or Gi`);
      return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
    };
    const { requests, limits } = container.resources;
    assert.ok(mib(requests.memory) >= 256);
    assert.ok(mib(limits.memory) >= mib(requests.memory));
    assert.ok(requests.cpu && limits.cpu);
  });

  test('runs `image-clone sync` in the image whose tag is the package version', () => {
    assert.deepEqual(container.args, ['sync']);
    assert.equal(container.command, undefined, "the image's entrypoint runs image-clone");
    assert.match(container.image, new RegExp(`:${packageVersion.replace(/\./g, '\\.')}$`));
    assert.equal(podSpec.serviceAccountName, 'image-clone');
    assert.notEqual(podSpec.automountServiceAccountToken, false, 'the in-cluster config needs the token');
  });

  test('every IMAGE_CLONE_* variable, set or commented out, names a real sync option', () => {
    const known = new Set(Object.keys(syncOptions).map(envName));
    const text = readFileSync(join(manifests, 'base/cronjob.yaml'), 'utf8');
    const mentioned = [...text.matchAll(/name: (IMAGE_CLONE_\w+)/g)].map((m) => m[1]!);
    assert.ok(mentioned.length > 5);
    for (const name of mentioned) assert.ok(known.has(name), `${name} is an option of image-clone sync`);
    const set = Object.fromEntries(container.env.map((e: Doc) => [e.name, e.value]));
    assert.ok(set.IMAGE_CLONE_BACKUP, 'the backup registry is set');
    assert.equal(set.IMAGE_CLONE_LOG_FORMAT, 'json');
    assert.equal(set.TERM, undefined, 'no TERM: no terminal escapes in logs');
  });

  test('the proxy variables are in place, commented out, and the NO_PROXY example keeps the API server and in-cluster registries direct', () => {
    const text = readFileSync(join(manifests, 'base/cronjob.yaml'), 'utf8');
    const commented = Object.fromEntries([...text.matchAll(/# - name: ((?:HTTPS?|NO)_PROXY)\n\s*#\s+value: (\S+)/g)].map((m) => [m[1]!, m[2]!]));
    assert.deepEqual(Object.keys(commented).sort(), ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY']);
    assert.ok(!container.env.some((e: Doc) => /_proxy$/i.test(e.name)), 'no proxy is set by default');
    const proxies = readProxyEnvironment(commented);
    // The kubernetes Service's ClusterIP as the in-cluster config uses it, its names, a registry in the cluster.
    for (const direct of ['https://10.96.0.1:443', 'https://kubernetes.default.svc', 'http://registry.registry.svc.cluster.local:5000', 'https://registry.internal.example.com']) {
      assert.equal(proxyForUrl(new URL(direct), proxies), undefined, direct);
    }
    assert.equal(proxyForUrl(new URL('https://registry-1.docker.io/v2/'), proxies)?.host, 'proxy.corp.example:3128');
  });

  test('the registry credentials: the Secret template, mounted as config.json, is what IMAGE_CLONE_REGISTRY_CONFIG names', () => {
    assert.equal(credentialsTemplate.type, 'kubernetes.io/dockerconfigjson');
    assert.equal(credentialsTemplate.metadata.namespace, 'image-clone');
    const placeholder = JSON.parse(credentialsTemplate.stringData['.dockerconfigjson']);
    assert.ok(placeholder.auths, 'the template holds a docker config.json');
    const volume = podSpec.volumes.find((v: Doc) => v.secret?.secretName === credentialsTemplate.metadata.name);
    assert.ok(volume, 'the CronJob mounts the Secret of the template');
    assert.deepEqual(volume.secret.items, [{ key: '.dockerconfigjson', path: 'config.json' }]);
    assert.equal(volume.secret.defaultMode, 0o440);
    const mount = container.volumeMounts.find((m: Doc) => m.name === volume.name);
    const env = container.env.find((e: Doc) => e.name === envName('registry-config'));
    assert.equal(env.value, `${mount.mountPath}/config.json`);
    assert.ok(podSpec.securityContext.fsGroup, 'group-readable for the non-root user');
  });
});

describe('RBAC', () => {
  const clusterRole = find(base, 'ClusterRole', 'image-clone');
  const role = find(base, 'Role', 'image-clone');
  const patched = workloadKinds.filter((kind) => kind !== 'Job'); // core/plan.ts: a Job's pod template is immutable

  test('the ClusterRole grants list on the eight kinds discovery reads, patch on the seven it rewrites, list and patch on the known custom kinds, and create and patch on Events: nothing else', () => {
    const expected = [
      ...workloadKinds.map((kind) => `list ${resourceOf[kind].group}/${resourceOf[kind].resource}`),
      ...patched.map((kind) => `patch ${resourceOf[kind].group}/${resourceOf[kind].resource}`),
      ...knownCustomKinds.flatMap((k) => [`list ${k.group}/${k.resource}`, `patch ${k.group}/${k.resource}`]),
      'create events.k8s.io/events', 'patch events.k8s.io/events', // src/kube/event-series.ts
    ].sort();
    assert.deepEqual(grants(clusterRole.rules), expected);
  });

  test('each rule grants one verb in one API group, so that each can be taken away on its own', () => {
    for (const rule of [...clusterRole.rules, ...role.rules, ...overlayRbac.filter((d) => d.rules).flatMap((d) => d.rules)]) {
      assert.equal(rule.verbs.length, 1, JSON.stringify(rule));
      assert.equal(rule.apiGroups.length, 1, JSON.stringify(rule));
      assert.ok(!rule.verbs.includes('*') && !rule.resources.includes('*') && !rule.apiGroups.includes('*'), 'no wildcards');
    }
  });

  test('the Role: the run lock only, get and update limited to its Lease by name', () => {
    assert.deepEqual(grants(role.rules), [
      'create coordination.k8s.io/leases',
      `get coordination.k8s.io/leases:${leaseName}`,
      `update coordination.k8s.io/leases:${leaseName}`,
    ]);
  });

  test('the bindings give the roles to the image-clone ServiceAccount and to nobody else', () => {
    const subjects = [{ kind: 'ServiceAccount', name: 'image-clone', namespace: 'image-clone' }];
    for (const [kind, roleKind] of [['ClusterRoleBinding', 'ClusterRole'], ['RoleBinding', 'Role']] as const) {
      const binding = find(base, kind, 'image-clone');
      assert.deepEqual(binding.subjects, subjects);
      assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: 'image-clone' });
    }
    find(base, 'ServiceAccount', 'image-clone');
  });

  test('nothing in the base touches Secrets', () => {
    for (const doc of base.filter((d) => d.rules)) assert.ok(!grants(doc.rules).some((g) => g.includes('secrets')), doc.kind);
  });
});

describe('pull-secrets overlay', () => {
  const overlay = kustomization('overlays/pull-secrets');
  const pullSecret = pullSecretTemplate.metadata.name;

  test('builds on the base and adds only its RBAC file and one variable', () => {
    assert.deepEqual(overlay.resources, ['../../base', 'rbac.yaml']);
    assert.equal(overlay.patches.length, 1);
    const [patch] = overlay.patches;
    assert.deepEqual(patch.target, { group: 'batch', version: 'v1', kind: 'CronJob', name: 'image-clone', namespace: 'image-clone' });
    const ops = loadAll(patch.patch)[0] as Doc[];
    assert.deepEqual(ops, [{ op: 'add', path: '/spec/jobTemplate/spec/template/spec/containers/0/env/-', value: { name: envName('pull-secret'), value: pullSecret } }]);
    assert.equal(container.name, 'image-clone', 'containers/0 is image-clone');
  });

  test('grants get on that one Secret in the own namespace, and create on Secrets: nothing more', () => {
    const role = find(overlayRbac, 'Role', 'image-clone-pull-secret');
    assert.equal(role.metadata.namespace, 'image-clone');
    assert.deepEqual(grants(role.rules), [`get /secrets:${pullSecret}`]);
    assert.deepEqual(grants(find(overlayRbac, 'ClusterRole', 'image-clone-pull-secrets').rules), ['create /secrets']);
    for (const binding of overlayRbac.filter((d) => d.kind.endsWith('Binding'))) {
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'image-clone', namespace: 'image-clone' }]);
    }
  });

  test('the pull Secret template is a dockerconfigjson Secret in the own namespace', () => {
    assert.equal(pullSecretTemplate.type, 'kubernetes.io/dockerconfigjson');
    assert.equal(pullSecretTemplate.metadata.namespace, 'image-clone');
    assert.notEqual(pullSecret, credentialsTemplate.metadata.name, 'not the push credentials');
  });
});

/** What `kubectl apply -k dir` applies: kubectl's own kustomize renders it (no cluster is involved). */
function kustomize(dir: string): Doc[] {
  return (loadAll(execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' })) as Doc[]).filter(Boolean);
}

describe('image-clone tells itself apart', () => {
  test('the CronJob, its Jobs and its Pods carry the label sync takes for image-clone itself', () => {
    for (const meta of [cronJob.metadata, cronJob.spec.jobTemplate.metadata, jobSpec.template.metadata]) {
      assert.equal(meta.labels[selfLabel.key], selfLabel.value);
    }
  });

  test("the pod's name reaches the run from the downward API (POD_NAME), to find its owners", () => {
    const podName = container.env.find((e: Doc) => e.name === 'POD_NAME');
    assert.deepEqual(podName?.valueFrom, { fieldRef: { fieldPath: 'metadata.name' } });
  });
});

describe('namespaced overlay', () => {
  const dir = join(manifests, 'overlays/namespaced');
  const rendered = kustomize(dir);
  const baseRendered = kustomize(manifests);

  test('nothing at the cluster scope: no Namespace, no ClusterRole, no ClusterRoleBinding', () => {
    assert.deepEqual(rendered.map((d) => `${d.kind}/${d.metadata.name}`).sort(), [
      'CronJob/image-clone', 'Role/image-clone', 'Role/image-clone-workloads', 'RoleBinding/image-clone', 'RoleBinding/image-clone-workloads', 'ServiceAccount/image-clone',
    ]);
    for (const doc of rendered) assert.equal(doc.metadata.namespace, 'image-clone', `${doc.kind} ${doc.metadata.name} is namespaced`);
  });

  test("its Role grants in the namespace exactly what the base's ClusterRole grants in all of them; the run lock's Role is the base's", () => {
    assert.deepEqual(grants(find(rendered, 'Role', 'image-clone-workloads').rules), grants(find(base, 'ClusterRole', 'image-clone').rules));
    assert.deepEqual(find(rendered, 'Role', 'image-clone'), find(baseRendered, 'Role', 'image-clone'));
    const binding = find(rendered, 'RoleBinding', 'image-clone-workloads');
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'image-clone-workloads' });
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'image-clone', namespace: 'image-clone' }]);
  });

  test("the CronJob is the base's, with IMAGE_CLONE_NAMESPACE from the pod's own namespace", () => {
    const cj = find(rendered, 'CronJob', 'image-clone');
    const env = cj.spec.jobTemplate.spec.template.spec.containers[0].env as Doc[];
    const namespace = env.filter((e) => e.name === envName('namespace'));
    assert.deepEqual(namespace, [{ name: 'IMAGE_CLONE_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }]);
    const withoutIt = structuredClone(cj);
    withoutIt.spec.jobTemplate.spec.template.spec.containers[0].env = env.filter((e) => e.name !== envName('namespace'));
    assert.deepEqual(withoutIt, find(baseRendered, 'CronJob', 'image-clone'));
  });

  test("a team's overlay with `namespace:` moves every object and every binding's subject into its namespace", () => {
    const team = mkdtempSync(join(tmpdir(), 'image-clone-team-overlay-'));
    try {
      writeFileSync(join(team, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: team-a\nresources:\n  - ${relative(team, dir)}\n`);
      const docs = kustomize(team);
      assert.equal(docs.length, rendered.length);
      for (const doc of docs) assert.equal(doc.metadata.namespace, 'team-a', `${doc.kind} ${doc.metadata.name}`);
      for (const binding of docs.filter((d) => d.kind === 'RoleBinding')) {
        assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'image-clone', namespace: 'team-a' }], binding.metadata.name);
      }
    } finally {
      rmSync(team, { recursive: true, force: true });
    }
  });
});

describe('prometheus-rule component', () => {
  const dir = 'components/prometheus-rule';
  test('a Kustomize Component adding only the PrometheusRule, in the image-clone namespace, alerting on a lost image and on no success in 26 hours', () => {
    const component = kustomization(dir);
    assert.equal(component.kind, 'Component');
    assert.deepEqual(component.resources, ['prometheusrule.yaml']);
    const [rule, ...more] = docsOf(join(manifests, dir, 'prometheusrule.yaml'));
    assert.equal(more.length, 0);
    assert.equal(rule!.kind, 'PrometheusRule');
    assert.equal(rule!.metadata.namespace, 'image-clone');
    const alerts = Object.fromEntries(rule!.spec.groups.flatMap((g: Doc) => g.rules).map((r: Doc) => [r.alert, r.expr]));
    assert.match(alerts.ImageCloneImageLost, /image_clone_lost_images\{job="image-clone"\}\) > 0$/);
    assert.match(alerts.ImageCloneNoSuccessfulRun, /^time\(\) - .*image_clone_last_success_timestamp_seconds\{job="image-clone"\}\) > 26 \* 3600$/);
  });
});

/**
 * What a cloud's overlay keeps (registered as tests in the caller's describe): the base's objects
 * and nothing more (no Secret, no extra RBAC), the workload identity's ServiceAccount annotation,
 * the backup in that cloud's registry, no registry Secret mounted, and only image-clone options
 * set. Returns the rendered objects and the container's variables, for the cloud's own checks.
 */
function cloudOverlay(name: string, expected: { annotation: string; value: RegExp; backup: RegExp }) {
  const rendered = kustomize(join(manifests, `overlays/${name}`));
  const pod = find(rendered, 'CronJob', 'image-clone').spec.jobTemplate.spec.template.spec;
  const env: Record<string, string> = Object.fromEntries(pod.containers[0].env.map((e: Doc) => [e.name, e.value]));

  test('renders the base and nothing more: no Secret, no extra RBAC', () => {
    const kinds = (docs: Doc[]) => docs.map((d) => `${d.kind}/${d.metadata.name}`).sort();
    assert.deepEqual(kinds(rendered), kinds(kustomize(manifests)));
  });

  test(`the ServiceAccount carries ${expected.annotation}`, () => {
    assert.match(find(rendered, 'ServiceAccount', 'image-clone').metadata.annotations[expected.annotation], expected.value);
  });

  test('the CronJob backs up to the cloud registry and mounts no registry Secret; every variable it sets is an option', () => {
    const c = pod.containers[0];
    assert.match(env[envName('backup')]!, expected.backup);
    assert.equal(env[envName('registry-config')], undefined);
    assert.equal(c.volumeMounts, undefined);
    assert.equal(pod.volumes, undefined);
    assert.equal(pod.serviceAccountName, 'image-clone');
    const known = new Set(Object.keys(syncOptions).map(envName));
    for (const e of c.env as Doc[]) assert.ok(known.has(e.name) || e.name === 'NO_COLOR' || e.valueFrom, `${e.name} is an image-clone option`);
  });
  return { rendered, env };
}

describe('eks overlay', () => {
  const { env } = cloudOverlay('eks', { annotation: 'eks.amazonaws.com/role-arn', value: /^arn:aws:iam::\d{12}:role\/.+/, backup: /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\/.+/ });

  test('the ECR repository settings are set, to be seen and changed', () => {
    assert.equal(env[envName('ecr-tag-mutability')], 'MUTABLE');
  });
});

describe('gke overlay', () => {
  const { rendered } = cloudOverlay('gke', { annotation: 'iam.gke.io/gcp-service-account', value: /^[a-z][a-z0-9-]+@[a-z][a-z0-9-]+\.iam\.gserviceaccount\.com$/, backup: /^[a-z0-9-]+-docker\.pkg\.dev\/[a-z][a-z0-9-]+\/[a-z0-9-]+\/.+/ });

  test('the pod runs on nodes with the GKE metadata server', () => {
    assert.deepEqual(find(rendered, 'CronJob', 'image-clone').spec.jobTemplate.spec.template.spec.nodeSelector, { 'iam.gke.io/gke-metadata-server-enabled': 'true' });
  });
});

describe('aks overlay', () => {
  const { rendered } = cloudOverlay('aks', { annotation: 'azure.workload.identity/client-id', value: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, backup: /^[a-z0-9]+\.azurecr\.io\/.+/ });

  test("the pod asks AKS's webhook for the workload identity", () => {
    const template = find(rendered, 'CronJob', 'image-clone').spec.jobTemplate.spec.template;
    assert.equal(template.metadata.labels['azure.workload.identity/use'], 'true', 'a string, as the webhook matches it');
    assert.equal(template.metadata.labels['app.kubernetes.io/name'], 'image-clone', "the base's label stays");
  });
});
