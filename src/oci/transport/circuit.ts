// Registries given up on for the rest of a run. A registry over its pull quota for hours, or a host
// that accepts connections and never answers, would otherwise cost every later request its own
// full round of retries: once per image, for every image. After one request has spent its retries
// on such a failure, every later request to that registry fails at once with the same cause.
import { RegistryError } from '../../errors.ts';

export class RegistryCircuit {
  readonly #open = new Map<string, RegistryError>();

  /** Throws the cause a registry was given up for, if it was. */
  check(registry: string): void {
    const cause = this.#open.get(registry);
    if (cause) {
      throw new RegistryError(registry, cause.message, {
        ...(cause.status === undefined ? {} : { status: cause.status }), ...(cause.code ? { code: cause.code } : {}),
        ...(cause.condition ? { condition: cause.condition } : {}), transient: false, cause,
      });
    }
  }

  /** Gives up on `registry` for the rest of the run, for `cause`. The first cause stays. */
  open(registry: string, cause: RegistryError): void {
    if (!this.#open.has(registry)) this.#open.set(registry, cause);
  }

  /** Registries given up on, with their causes: the run's summary names each once. */
  get given(): ReadonlyMap<string, RegistryError> {
    return this.#open;
  }
}
