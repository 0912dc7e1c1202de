// Listing workloads page by page (limit + continue), across all namespaces or the ones named, with
// @kubernetes/client-node's authentication and HTTP client but without its typed models (see #get).
import { ApiException, HttpMethod, IsomorphicFetchHttpLibrary, RequestContext, type KubeConfig } from '@kubernetes/client-node';
import { kubeError, withRetry } from './api-failures.ts';
import { apiProxy } from './kubeconfig.ts';
import { nestAt, valueAt, type CustomKind, type CustomKindSpec } from '../core/custom-kinds.ts';
import type { WorkloadSource } from '../core/ports.ts';
import type { ContainerStatusLike } from '../core/pod-images.ts';
import { podSpecOf, qualifiedKind, type BuiltinKind, type WorkloadKind } from '../core/workloads.ts';
import type { KubeObject, OwnerReference } from '../core/kube-object.ts';

interface ListParams {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit: number;
  _continue?: string;
}

type Page = { items: unknown[]; continue?: string };

/** The API resource of each kind: for messages, and RBAC rules say the same names. */
export const resourceOf: Record<BuiltinKind, { group: string; resource: string }> = {
  Deployment: { group: 'apps', resource: 'deployments' },
  StatefulSet: { group: 'apps', resource: 'statefulsets' },
  DaemonSet: { group: 'apps', resource: 'daemonsets' },
  ReplicaSet: { group: 'apps', resource: 'replicasets' },
  CronJob: { group: 'batch', resource: 'cronjobs' },
  Job: { group: 'batch', resource: 'jobs' },
  ReplicationController: { group: '', resource: 'replicationcontrollers' },
  Pod: { group: '', resource: 'pods' },
};

/** Objects per page: a page's JSON and its parsed objects are held at once, so pages stay modest. */
const pageSize = 250;

const userAgent = 'kubernetes-client-javascript (image-clone)';

/** The API resource of a built-in kind, or of a custom kind the cluster serves. */
interface Resource {
  group: string;
  version: string;
  resource: string;
  /** A custom kind's pod template path. */
  path?: string[];
}

/** The collection URL path of a resource, in all namespaces or in one (every built-in workload kind is served at v1 of its group). */
export function collectionPath({ group, version, resource }: Resource, namespace?: string): string {
  return `${group ? `/apis/${group}/${version}` : '/api/v1'}${namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${resource}`;
}
export class WorkloadLister implements WorkloadSource {
  readonly #kc: KubeConfig;
  readonly #server: string;
  readonly #http = new IsomorphicFetchHttpLibrary();
  /** Custom kinds found by customKinds(), by `Kind.group`. */
  readonly #custom = new Map<string, CustomKind>();
  /** API requests made, for the benchmarks. */
  requests = 0;

  constructor(kc: KubeConfig, custom: CustomKind[] = []) {
    this.#kc = kc;
    for (const kind of custom) this.#custom.set(kind.name, kind);
    // A path prefix in the server URL (an API proxy's) is kept: paths are appended, not resolved.
    this.#server = (kc.getCurrentCluster()?.server ?? '').replace(/\/+$/, '');
  }

  /** Every object of `kind` in the namespaces (all when none are named), following continue tokens. */
  async list(kind: WorkloadKind, namespaces: string[], labelSelector?: string, fieldSelector?: string): Promise<KubeObject[]> {
    const scopes = namespaces.length ? namespaces : [undefined];
    const pages = await Promise.all(scopes.map(async (namespace) => {
      const items: KubeObject[] = [];
      let token: string | undefined;
      do {
        const page = await this.#page(kind, {
          limit: pageSize, ...(namespace ? { namespace } : {}), ...(labelSelector ? { labelSelector } : {}),
          ...(fieldSelector ? { fieldSelector } : {}), ...(token ? { _continue: token } : {}),
        });
        const { path } = this.resource(kind);
        for (const item of page.items as KubeObject[]) items.push(path ? slimCustom(path, item) : slimObject(kind as BuiltinKind, item));
        token = page.continue || undefined;
      } while (token);
      return items;
    }));
    return pages.flat();
  }

  /** The custom kinds found so far (customKinds()), for a patcher. */
  get custom(): CustomKind[] {
    return [...this.#custom.values()];
  }

  /** The API resource of a kind: built-in, or a custom kind customKinds() found. */
  resource(kind: WorkloadKind): Resource {
    const custom = this.#custom.get(kind);
    if (custom) return custom;
    const builtin = resourceOf[kind as BuiltinKind];
    if (!builtin) throw new Error(`not a kind image-clone lists: ${kind}`);
    return { ...builtin, version: 'v1' };
  }

  /**
   * Which of these custom kinds the cluster serves (API discovery: the group list, then the
   * resources of the group's preferred version, or of another version that serves the kind).
   */
  async customKinds(specs: CustomKindSpec[]): Promise<CustomKind[]> {
    if (!specs.length) return [];
    const groups = (await this.#discovery('/apis')) as { groups?: Array<{ name: string; versions?: Array<{ version: string }>; preferredVersion?: { version: string } }> };
    const found: CustomKind[] = [];
    for (const spec of specs) {
      const group = groups.groups?.find((g) => g.name === spec.group);
      if (!group) continue;
      const versions = [...new Set([group.preferredVersion?.version, ...(group.versions ?? []).map((v) => v.version)].filter((v): v is string => Boolean(v)))];
      for (const version of versions) {
        const list = (await this.#discovery(`/apis/${spec.group}/${version}`)) as { resources?: Array<{ name: string; kind: string; namespaced?: boolean }> };
        const resource = list.resources?.find((r) => r.kind === spec.kind && !r.name.includes('/') && r.namespaced !== false);
        if (!resource) continue;
        const kind: CustomKind = { ...spec, version, resource: resource.name, name: qualifiedKind(spec.group, spec.kind) };
        this.#custom.set(kind.name, kind);
        found.push(kind);
        break;
      }
    }
    return found;
  }

  /** Whether this identity may patch a custom kind in a namespace (a SelfSubjectAccessReview, which every user may make). */
  async canPatch(kind: CustomKind, namespace: string): Promise<boolean> {
    const body = { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { verb: 'patch', group: kind.group, resource: kind.resource, namespace } } };
    try {
      const review = (await withRetry(() => this.#request('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', HttpMethod.POST, body))) as { status?: { allowed?: boolean } };
      return review.status?.allowed === true;
    } catch (err) {
      throw kubeError(err, `ask whether this run may patch ${kind.resource}.${kind.group}`, apiProxy(this.#kc));
    }
  }

  async #discovery(path: string): Promise<unknown> {
    try {
      return await withRetry(() => this.#request(path, HttpMethod.GET));
    } catch (err) {
      throw kubeError(err, `read the API server's discovery document ${path}`, apiProxy(this.#kc));
    }
  }

  async #page(kind: WorkloadKind, params: ListParams): Promise<Page> {
    this.requests++;
    const resource = this.resource(kind);
    try {
      return await withRetry(() => this.#get(collectionPath(resource, params.namespace), params));
    } catch (err) {
      throw kubeError(err, `list ${resource.resource}${resource.path ? `.${resource.group}` : ''}${params.namespace ? ` in namespace ${params.namespace}` : ' in all namespaces'}`, apiProxy(this.#kc));
    }
  }

  /**
   * One list request, its JSON parsed as it is. client-node's typed API would also turn every
   * object into model classes (every field of every pod, walked by its ObjectSerializer) before
   * slimObject throws nearly all of it away: at tens of thousands of pods that costs more CPU than
   * the request and doubles the memory a page takes. Authentication (certificates, tokens, exec
   * plugins) and the HTTP client are client-node's own, as for its typed calls.
   */
  async #get(path: string, params: ListParams): Promise<Page> {
    const query: Record<string, string> = { limit: String(params.limit) };
    if (params._continue) query.continue = params._continue;
    if (params.labelSelector) query.labelSelector = params.labelSelector;
    if (params.fieldSelector) query.fieldSelector = params.fieldSelector;
    const list = (await this.#request(path, HttpMethod.GET, undefined, query)) as { items?: unknown[]; metadata?: { continue?: string } };
    return { items: list.items ?? [], ...(list.metadata?.continue ? { continue: list.metadata.continue } : {}) };
  }

  /** One API request, its JSON answer parsed; an ApiException for any status but 2xx. */
  async #request(path: string, method: HttpMethod, body?: object, query: Record<string, string> = {}): Promise<unknown> {
    const url = new URL(`${this.#server}${path}`);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    const request = new RequestContext(url.toString(), method);
    request.setHeaderParam('Accept', 'application/json');
    if (body) {
      request.setHeaderParam('Content-Type', 'application/json');
      request.setBody(JSON.stringify(body));
    }
    // The user agent of client-node's typed calls (patches, reads), so that audit logs show one client.
    request.setHeaderParam('User-Agent', userAgent);
    await this.#kc.applySecurityAuthentication(request);
    const response = await this.#http.send(request).toPromise();
    const text = await response.body.text();
    if (response.httpStatusCode < 200 || response.httpStatusCode > 299) {
      throw new ApiException(response.httpStatusCode, `HTTP ${response.httpStatusCode}`, text, response.headers);
    }
    return JSON.parse(text) as unknown;
  }
}

/**
 * Only what discovery, planning and patching read of a listed object. Lists of thousands of
 * workloads are held in memory until planned: managedFields, volumes, env and the rest would
 * otherwise make up most of it.
 */
export function slimObject(kind: BuiltinKind, object: KubeObject): KubeObject {
  const meta = object.metadata ?? {};
  const containers = (list: Array<{ name?: string; image?: string }> | undefined) => list?.map(({ name, image }) => ({ name, image }));
  const spec = podSpecOf(kind, object.spec);
  const slimSpec = spec && {
    containers: containers(spec.containers),
    ...(spec.initContainers ? { initContainers: containers(spec.initContainers) } : {}),
    ...(spec.ephemeralContainers ? { ephemeralContainers: containers(spec.ephemeralContainers) } : {}),
    ...(spec.imagePullSecrets ? { imagePullSecrets: spec.imagePullSecrets.map(({ name }) => ({ name })) } : {}),
  };
  type Statuses = Partial<Record<'containerStatuses' | 'initContainerStatuses' | 'ephemeralContainerStatuses', ContainerStatusLike[]>>;
  const status = object.status as Statuses | undefined;
  const statusLists = (keep: (s: ContainerStatusLike) => ContainerStatusLike) => status && Object.fromEntries(
    (['containerStatuses', 'initContainerStatuses', 'ephemeralContainerStatuses'] as const).filter((k) => status[k]).map((k) => [k, status[k]!.map(keep)]));
  // A pod a controller owns is no workload: it only tells discovery what its workload runs (its
  // controller, its name for the plan's reasons, its containers' images, the digests its statuses
  // report). Pods are most of a large cluster's objects, so nothing else of them is kept: memory
  // grows with workloads, not pods.
  const controller = kind === 'Pod' ? meta.ownerReferences?.find((r) => r.controller) : undefined;
  if (controller && slimSpec) {
    const { imagePullSecrets: _, ...lists } = slimSpec;
    return {
      metadata: { name: meta.name, namespace: meta.namespace, uid: meta.uid, ownerReferences: [{ apiVersion: controller.apiVersion, kind: controller.kind, name: controller.name, uid: controller.uid, controller: true }] },
      spec: lists,
      ...(status ? { status: statusLists(({ name, imageID }) => ({ name, imageID })) } : {}),
    };
  }
  return {
    metadata: {
      name: meta.name, namespace: meta.namespace, uid: meta.uid, resourceVersion: meta.resourceVersion,
      labels: meta.labels, annotations: meta.annotations,
      ownerReferences: slimOwners(meta.ownerReferences),
    },
    spec: slimSpec && (kind === 'Pod' ? slimSpec : kind === 'CronJob' ? { jobTemplate: { spec: { template: { spec: slimSpec } } } } : { template: { spec: slimSpec } }),
    ...(kind === 'Pod' && status ? { status: statusLists(({ name, image, imageID }) => ({ name, image, imageID })) } : {}),
  };
}

const slimOwners = (refs: OwnerReference[] | undefined) =>
  refs?.map(({ apiVersion, kind, name, uid, controller }) => ({ apiVersion, kind, name, uid, controller }));

/**
 * A custom resource, slimmed: its metadata as a workload's, and its pod template moved from the
 * kind's own place to spec.template, where discovery and patch building look for it. The pod
 * spec's lists are kept whole: a JSON merge patch must send each back entire.
 */
export function slimCustom(path: string[], object: KubeObject): KubeObject {
  const meta = object.metadata ?? {};
  const podSpec = valueAt(object, [...path, 'spec']) as Record<string, unknown> | undefined;
  const lists = podSpec && typeof podSpec === 'object' && Array.isArray(podSpec.containers)
    ? Object.fromEntries(['containers', 'initContainers', 'imagePullSecrets'].filter((k) => Array.isArray(podSpec[k])).map((k) => [k, podSpec[k]]))
    : undefined;
  return {
    metadata: {
      name: meta.name, namespace: meta.namespace, uid: meta.uid, resourceVersion: meta.resourceVersion,
      labels: meta.labels, annotations: meta.annotations, ownerReferences: slimOwners(meta.ownerReferences),
    },
    ...(lists ? nestAt(['spec', 'template', 'spec'], lists) : {}),
  };
}
