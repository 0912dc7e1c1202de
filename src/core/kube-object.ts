// The shapes of what the API server lists, as discovery reads them: leaf types that workloads.ts and
// pod-images.ts share (so neither imports the other for them).

/** The fields of a listed object that discovery reads (a subset of any workload or Pod). */
export interface KubeObject {
  /** Set on custom objects (their list items carry it); built-in list items may omit it. */
  apiVersion?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
  };
  spec?: unknown;
  status?: unknown;
}

export interface OwnerReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  uid?: string;
  controller?: boolean;
}

export type ContainerType = 'container' | 'initContainer' | 'ephemeralContainer';

export interface WorkloadContainer {
  name: string;
  image: string;
  type: ContainerType;
  /** The digest every pod of the workload reports running for this container, when they all agree. */
  runningDigest?: string;
}
