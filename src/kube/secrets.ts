// --pull-secret: make sure a dockerconfigjson Secret for the backup registry exists in each
// namespace whose workloads get patched, copied from image-clone's own namespace. Opt-in: it needs
// RBAC on Secrets that the default install does not grant (manifests/overlays/pull-secrets).
import { ApiException, CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { PullSecrets } from '../core/ports.ts';
import { UsageError } from '../errors.ts';
import { apiProxy } from './kubeconfig.ts';
import { kubeError } from './api-failures.ts';

export class PullSecretCopier implements PullSecrets {
  readonly #core: CoreV1Api;
  readonly #name: string;
  readonly #home: string;
  readonly #proxy: string | undefined;
  #source: Promise<V1Secret> | undefined;
  readonly #ensured = new Map<string, Promise<void>>();

  constructor(kc: KubeConfig, name: string, homeNamespace: string) {
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#proxy = apiProxy(kc);
    this.#name = name;
    this.#home = homeNamespace;
  }

  get name(): string {
    return this.#name;
  }

  /** The Secret to copy, read once; its absence stops the run before anything is patched. */
  source(): Promise<V1Secret> {
    this.#source ??= this.#core.readNamespacedSecret({ name: this.#name, namespace: this.#home }).then((secret) => {
      if (secret.type !== 'kubernetes.io/dockerconfigjson') {
        throw new UsageError(`--pull-secret ${this.#name}: Secret ${this.#home}/${this.#name} is of type ${secret.type}, not kubernetes.io/dockerconfigjson`);
      }
      return secret;
    }, (err: unknown) => {
      if (err instanceof ApiException && err.code === 404) {
        throw new UsageError(`--pull-secret ${this.#name}: no Secret ${this.#name} in namespace ${this.#home} to copy (create it there, of type kubernetes.io/dockerconfigjson)`);
      }
      throw kubeError(err, `read Secret ${this.#home}/${this.#name}`, this.#proxy);
    });
    return this.#source;
  }

  /** Creates the Secret in `namespace` unless one of that name is already there (which is left as it is). */
  ensure(namespace: string): Promise<void> {
    let done = this.#ensured.get(namespace);
    if (!done) {
      done = (async () => {
        if (namespace === this.#home) return;
        const source = await this.source();
        try {
          await this.#core.createNamespacedSecret({
            namespace,
            body: {
              metadata: { name: this.#name, namespace, labels: { 'app.kubernetes.io/managed-by': 'image-clone' } },
              type: source.type,
              data: source.data,
            },
          });
        } catch (err) {
          if (err instanceof ApiException && err.code === 409) return;
          throw kubeError(err, `create Secret ${namespace}/${this.#name}`, this.#proxy);
        }
      })();
      this.#ensured.set(namespace, done);
    }
    return done;
  }
}
