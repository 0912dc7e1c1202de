// Resolution: for each distinct image, ask the backup registry first (one request when it already
// holds the digest the pods run), then the source. The registries sit behind a small port.
import { AuthError } from '../errors.ts';
import { createLimiter } from '../oci/limit.ts';
import { decide, type ImageRequest, type Resolution } from './plan.ts';

export interface ManifestLookup {
  /** The digest a registry holds under `reference` (a tag or a digest); undefined when it has none. */
  digestOf(repository: { registry: string; repository: string }, reference: string): Promise<string | undefined>;
}

export async function resolveImages(requests: ImageRequest[], registries: ManifestLookup, concurrency: number): Promise<Map<string, Resolution>> {
  const limit = createLimiter(concurrency);
  // Images that share a backup tag (one by tag, one by the digest pods run) share its lookup.
  const answers = new Map<string, Promise<string | undefined>>();
  const lookup: ManifestLookup = {
    digestOf(repository, reference) {
      const key = `${repository.registry}/${repository.repository}:${reference}`;
      let answer = answers.get(key);
      if (!answer) answers.set(key, (answer = registries.digestOf(repository, reference)));
      return answer;
    },
  };
  const resolutions = new Map<string, Resolution>();
  await Promise.all(requests.map((request) => limit(async () => {
    resolutions.set(request.key, await resolveOne(request, lookup));
  })));
  return resolutions;
}

async function resolveOne(request: ImageRequest, lookup: ManifestLookup): Promise<Resolution> {
  let backupDigest: string | undefined;
  try {
    backupDigest = await lookup.digestOf(request.backup, request.backup.tag ?? request.digest ?? 'latest');
  } catch (err) {
    // Refused credentials for the backup registry fail every image the same way: stop the run.
    if (err instanceof AuthError) throw err;
    return { state: 'error', reason: `backup registry: ${oneLine(err)}` };
  }
  if (request.digest && backupDigest === request.digest) return decide(request.digest, backupDigest, undefined);
  let sourceDigest: string | undefined;
  try {
    sourceDigest = await lookup.digestOf(request.source, request.digest ?? request.source.tag ?? 'latest');
  } catch (err) {
    // The backup copy is what keeps a workload safe when its source is gone or failing.
    if (backupDigest && !request.digest) return { state: 'present', digest: backupDigest, reason: `source failed (${oneLine(err)}); the backup copy is used` };
    return { state: 'error', reason: `source registry: ${oneLine(err)}` };
  }
  return decide(request.digest, backupDigest, sourceDigest);
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
