// Listing workloads page by page (limit + continue), across all namespaces or the ones named, with
// @kubernetes/client-node's authentication and HTTP client but without its typed models (see #get).
import { ApiException, HttpMethod, IsomorphicFetchHttpLibrary, RequestContext, type KubeConfig } from '@kubernetes/client-node';
import { KubeError } from '../errors.ts';
import { apiProxy } from './config.ts';
import { backoffMs, errorCode, isTransientNetworkError, retryableStatuses, retryAfterMs } from '../util/retry.ts';
import type { WorkloadSource } from '../core/ports.ts';
import { podSpecOf, type ContainerStatusLike, type KubeObject, type WorkloadKind } from '../core/workloads.ts';

interface ListParams {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit: number;
  _continue?: string;
}

type Page = { items: unknown[]; continue?: string };

/** The API resource of each kind: for messages, and RBAC rules say the same names. */
export const resourceOf: Record<WorkloadKind, { group: string; resource: string }> = {
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

/** The list URL path of a kind, in all namespaces or in one (every workload kind is served at v1 of its group). */
function listPath(kind: WorkloadKind, namespace?: string): string {
  const { group, resource } = resourceOf[kind];
  return `${group ? `/apis/${group}/v1` : '/api/v1'}${namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${resource}`;
}
const retry = { attempts: 5, baseDelayMs: 200, maxDelayMs: 5_000 };

/** Whether a failed API call is worth another try: throttling, a server error, a broken connection. */
function isTransient(err: unknown): boolean {
  if (err instanceof ApiException) return retryableStatuses.has(err.code);
  return isTransientNetworkError(err);
}

/**
 * Retries a call on transient failures, with jittered backoff (or the server's Retry-After). Safe
 * for lists, and for our patches too: they carry a resourceVersion precondition, so a patch that
 * landed but whose answer was lost comes back as a conflict, never as a double write.
 */
export async function withRetry<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= retry.attempts || !isTransient(err)) throw err;
      const delay = (err instanceof ApiException ? retryAfterMs(err.headers?.['retry-after']) : undefined) ?? backoffMs(attempt, retry);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

export class WorkloadLister implements WorkloadSource {
  readonly #kc: KubeConfig;
  readonly #server: string;
  readonly #http = new IsomorphicFetchHttpLibrary();
  /** API requests made, for the benchmarks. */
  requests = 0;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
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
        for (const item of page.items as KubeObject[]) items.push(slimObject(kind, item));
        token = page.continue || undefined;
      } while (token);
      return items;
    }));
    return pages.flat();
  }

  async #page(kind: WorkloadKind, params: ListParams): Promise<Page> {
    this.requests++;
    try {
      return await withRetry(() => this.#get(listPath(kind, params.namespace), params));
    } catch (err) {
      throw kubeError(err, `list ${resourceOf[kind].resource}${params.namespace ? ` in namespace ${params.namespace}` : ' in all namespaces'}`, apiProxy(this.#kc));
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
    const url = new URL(`${this.#server}${path}`);
    url.searchParams.set('limit', String(params.limit));
    if (params._continue) url.searchParams.set('continue', params._continue);
    if (params.labelSelector) url.searchParams.set('labelSelector', params.labelSelector);
    if (params.fieldSelector) url.searchParams.set('fieldSelector', params.fieldSelector);
    const request = new RequestContext(url.toString(), HttpMethod.GET);
    request.setHeaderParam('Accept', 'application/json');
    // The user agent of client-node's typed calls (patches, reads), so that audit logs show one client.
    request.setHeaderParam('User-Agent', userAgent);
    await this.#kc.applySecurityAuthentication(request);
    const response = await this.#http.send(request).toPromise();
    const text = await response.body.text();
    if (response.httpStatusCode < 200 || response.httpStatusCode > 299) {
      throw new ApiException(response.httpStatusCode, `HTTP ${response.httpStatusCode}`, text, response.headers);
    }
    const list = JSON.parse(text) as { items?: unknown[]; metadata?: { continue?: string } };
    return { items: list.items ?? [], ...(list.metadata?.continue ? { continue: list.metadata.continue } : {}) };
  }
}

/**
 * One actionable line from whatever the client threw: the API's own message when there is one.
 * `proxy` (apiProxy) names the proxy the API server is reached through, for failures that are its.
 */
export function kubeError(err: unknown, doing: string, proxy?: string): KubeError {
  if (err instanceof ApiException) {
    let status: { message?: string; reason?: string } = {};
    if (typeof err.body === 'string') {
      try {
        status = JSON.parse(err.body);
      } catch {
        // not a Status object: fall back to the code
      }
    }
    const hint = err.code === 401 ? ': the credentials in the kubeconfig were refused' : '';
    return new KubeError(`cannot ${doing} (HTTP ${err.code}): ${status.message ?? (err.code === 401 ? 'Unauthorized' : 'no details')}${hint}`, err.code, status.reason);
  }
  const cause = (err as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  if (proxy) {
    // fetch wraps undici's error twice (TypeError, then DOMException): look down the whole chain.
    const messages: string[] = [];
    for (let e: unknown = err; e instanceof Error && messages.length < 5; e = e.cause) messages.push(e.message);
    const refused = messages.map((m) => /Proxy response \((\d{3})\) !== 200/.exec(m)).find((m) => m !== null);
    const status = refused ? Number(refused[1]) : undefined;
    // Proxies answer missing or wrong credentials with 407, or (tinyproxy, for wrong ones) 401.
    if (status === 407 || status === 401) return new KubeError(`cannot ${doing}: proxy ${proxy} requires authentication (HTTP ${status}): put valid credentials in HTTPS_PROXY (or the kubeconfig's proxy-url) as USER:PASSWORD@`, 407);
    if (status === 403) return new KubeError(`cannot ${doing}: proxy ${proxy} refused CONNECT to the API server (HTTP 403); if the API server is reachable directly, add it to NO_PROXY`, 403);
    if (status) return new KubeError(`cannot ${doing}: proxy ${proxy} could not open a tunnel to the API server (HTTP ${status})`);
    return new KubeError(`cannot ${doing}: the API server is unreachable through proxy ${proxy} (${errorCode(err) ?? messages.at(-1) ?? String(err)})`);
  }
  const detail = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message.split('\n')[0] : String(err));
  return new KubeError(`cannot ${doing}: the API server is unreachable (${detail})`);
}

/**
 * Only what discovery, planning and patching read of a listed object. Lists of thousands of
 * workloads are held in memory until planned: managedFields, volumes, env and the rest would
 * otherwise make up most of it.
 */
export function slimObject(kind: WorkloadKind, object: KubeObject): KubeObject {
  const meta = object.metadata ?? {};
  const containers = (list: Array<{ name?: string; image?: string }> | undefined) => list?.map(({ name, image }) => ({ name, image }));
  const spec = podSpecOf(kind, object.spec);
  const slimSpec = spec && {
    containers: containers(spec.containers),
    ...(spec.initContainers ? { initContainers: containers(spec.initContainers) } : {}),
    ...(spec.ephemeralContainers ? { ephemeralContainers: containers(spec.ephemeralContainers) } : {}),
    ...(spec.imagePullSecrets ? { imagePullSecrets: spec.imagePullSecrets.map(({ name }) => ({ name })) } : {}),
  };
  const statuses = (list: ContainerStatusLike[] | undefined) => list?.map(({ name, image, imageID }) => ({ name, image, imageID }));
  const status = object.status as { containerStatuses?: ContainerStatusLike[]; initContainerStatuses?: ContainerStatusLike[] } | undefined;
  // A pod a controller owns is no workload: it only tells discovery which digests its workload runs
  // (its controller, its containers' images, the digests its statuses report). Pods are most of a
  // large cluster's objects, so nothing else of them is kept: memory grows with workloads, not pods.
  const controller = kind === 'Pod' ? meta.ownerReferences?.find((r) => r.controller) : undefined;
  if (controller && spec) {
    const digests = (list: ContainerStatusLike[] | undefined) => list?.map(({ name, imageID }) => ({ name, imageID }));
    return {
      metadata: { namespace: meta.namespace, uid: meta.uid, ownerReferences: [{ kind: controller.kind, uid: controller.uid, controller: true }] },
      spec: { containers: containers(spec.containers), ...(spec.initContainers ? { initContainers: containers(spec.initContainers) } : {}) },
      ...(status ? { status: { containerStatuses: digests(status.containerStatuses), initContainerStatuses: digests(status.initContainerStatuses) } } : {}),
    };
  }
  return {
    metadata: {
      name: meta.name, namespace: meta.namespace, uid: meta.uid, resourceVersion: meta.resourceVersion,
      labels: meta.labels, annotations: meta.annotations,
      ownerReferences: meta.ownerReferences?.map(({ kind: k, name, uid, controller }) => ({ kind: k, name, uid, controller })),
    },
    spec: slimSpec && (kind === 'Pod' ? slimSpec : kind === 'CronJob' ? { jobTemplate: { spec: { template: { spec: slimSpec } } } } : { template: { spec: slimSpec } }),
    ...(kind === 'Pod' && status ? { status: { containerStatuses: statuses(status.containerStatuses), initContainerStatuses: statuses(status.initContainerStatuses) } } : {}),
  };
}
