// The ports the pipeline owns: what it needs from the cluster and the registries, as small
// interfaces. The adapters implement them (kube/ for the cluster, oci/ for the registries); the CLI
// wires one to the other. Nothing here does I/O.
import type { ImageReference } from '../reference.ts';
import type { CustomKind, CustomKindSpec } from './custom-kinds.ts';
import type { WorkloadKind } from './workloads.ts';
import type { KubeObject } from './kube-object.ts';

/** Lists the objects of one kind (kube/list.ts). */
export interface WorkloadSource {
  /** A custom kind is named `Kind.group`, after customKinds() found it; its pod template comes at spec.template. */
  list(kind: WorkloadKind, namespaces: string[], labelSelector?: string): Promise<KubeObject[]>;
  /** Which of these kinds the cluster serves (API discovery); list() knows them afterwards. */
  customKinds?(specs: CustomKindSpec[]): Promise<CustomKind[]>;
  /** Whether this run may patch objects of a custom kind in a namespace (an access review). */
  canPatch?(kind: CustomKind, namespace: string): Promise<boolean>;
}

/**
 * What the backup holds of a digest, as a garbage collector that keeps only tagged manifests sees it
 * (oci/holding.ts): whole (the digest and every manifest under it held by its own anchor tag);
 * unanchored (all there, but some manifest has no tag of its own: tag it, no bytes move); damaged
 * (something under it is gone: copy again, or lost); absent.
 */
export type Holding =
  | { state: 'whole' | 'absent' }
  | { state: 'unanchored' | 'damaged'; detail: string };

/** Asks a registry which digest it holds under a tag or digest (a HEAD; oci/registry.ts). */
export interface ManifestLookup {
  /** The digest a registry holds under `reference` (a tag or a digest); undefined when it has none. */
  digestOf(repository: { registry: string; repository: string }, reference: string): Promise<string | undefined>;
  /**
   * What the backup holds of `digest` (oci/holding.ts). Without it, the anchor tag's digest alone
   * answers: whole when it matches, absent otherwise.
   */
  holdingOf?(repository: { registry: string; repository: string }, digest: string): Promise<Holding>;
}

/** What a copy moved. */
export interface CopyCounts {
  manifestsPushed: number;
  blobsCopied: number;
  blobsMounted: number;
  blobsPresent: number;
  bytesCopied: number;
  signatures: number;
}

/** The copy engine, as the pipeline sees it (oci/copy-engine.ts). */
export interface ImageCopier {
  /** `alsoTags`: put the verified copy under these too, last (the seal). */
  copyAll(jobs: Array<{ source: ImageReference; target: ImageReference; alsoTags?: string[] }>, imageConcurrency: number):
    Promise<Array<{ result: { status: 'copied' | 'present'; digest: string; counts: CopyCounts } } | { error: unknown }>>;
  /**
   * Puts the manifest a repository holds by `digest` under `tags` as well, in order, after giving each
   * manifest under it its anchor: its own bytes, nothing else moves.
   */
  tag(repository: { registry: string; repository: string }, digest: string, tags: string | string[]): Promise<void>;
  /** Backup repositories that hold images already: a new image's shared layers are mounted from them, not uploaded again. */
  knownRepositories?(repositories: Array<{ registry: string; repository: string }>): void;
  /** For images already in the backup: what was attached to them upstream since (signatures, referrers). Failures are warnings. */
  refreshAttachments?(jobs: Array<{ source: ImageReference; target: ImageReference }>, concurrency: number): Promise<void>;
}

export type PatchOutcome = { status: 'patched'; object: KubeObject } | { status: 'conflict' } | { status: 'gone' };

/** Patches and re-reads workloads (kube/patch.ts). */
export interface Patcher {
  /** Applies `body` (core/patches.ts) unless the object changed since the resourceVersion it names. */
  patch(kind: WorkloadKind, namespace: string, name: string, body: object): Promise<PatchOutcome>;
  read(kind: WorkloadKind, namespace: string, name: string): Promise<KubeObject | undefined>;
}

/** --pull-secret: the Secret copied into each namespace before its first patch (kube/secrets.ts). */
export interface PullSecrets {
  name: string;
  ensure(namespace: string): Promise<void>;
}
