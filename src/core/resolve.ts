// Resolution: for each distinct (image, digest), find out whether the backup holds that digest
// under its anchor tag (one request on a warm run), else whether it holds the digest at all (a copy
// made before anchor tags: tag it, move no bytes), else whether the source has it (copy). The
// registries sit behind a small port.
import { AuthError } from '../errors.ts';
import { createLimiter } from '../util/limit.ts';
import { oneLine } from '../util/text.ts';
import { anchorTag } from './naming.ts';
import type { ImageRequest, Resolution } from './plan.ts';
import type { ManifestLookup } from './ports.ts';

export async function resolveImages(requests: ImageRequest[], registries: ManifestLookup, concurrency: number): Promise<Map<string, Resolution>> {
  const limit = createLimiter(concurrency);
  // Images that share a lookup (one tag run under two digests asks the source tag once) share its answer.
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

/** A lookup's answer, or the error it failed with (refused backup credentials stop the run). */
type Answer = { digest: string | undefined } | { failed: string };

async function ask(lookup: ManifestLookup, repository: ImageRequest['backup'], reference: string, rethrowAuth: boolean): Promise<Answer> {
  try {
    return { digest: await lookup.digestOf(repository, reference) };
  } catch (err) {
    // Refused credentials for the backup registry fail every image the same way: stop the run.
    if (rethrowAuth && err instanceof AuthError) throw err;
    return { failed: oneLine(err) };
  }
}

async function resolveOne(request: ImageRequest, lookup: ManifestLookup): Promise<Resolution> {
  const { backup, source } = request;
  // What the backup holds of a digest: under its anchor (present), without it (tag), or nothing (undefined).
  const inBackup = async (digest: string, upstream?: string): Promise<Resolution | undefined> => {
    const known = upstream ? { upstream } : {};
    const anchored = await ask(lookup, backup, anchorTag(digest), true);
    if ('failed' in anchored) return { state: 'error', reason: `backup registry: ${anchored.failed}` };
    if (anchored.digest === digest) return { state: 'present', digest, ...known, reason: 'the backup holds this digest under its anchor tag' };
    const held = await ask(lookup, backup, digest, true);
    if ('failed' in held) return { state: 'error', reason: `backup registry: ${held.failed}` };
    if (held.digest === digest) return { state: 'tag', digest, ...known, reason: 'the backup holds this digest without its anchor tag: tagged, no bytes move' };
    return undefined;
  };

  if (request.digest) {
    // Known digest (the reference's, or the one the pods run): the warm path is one HEAD of its anchor.
    const wanted = request.digest;
    const held = await inBackup(wanted);
    if (held) return held;
    const [byDigest, byTag] = await Promise.all([
      ask(lookup, source, wanted, false),
      source.tag && !source.digest ? ask(lookup, source, source.tag, false) : Promise.resolve(undefined),
    ]);
    if ('failed' in byDigest) return { state: 'error', reason: `source registry: ${byDigest.failed}` };
    if (byDigest.digest !== wanted) return { state: 'lost', reason: `${wanted} is missing from the source and from the backup` };
    const upstream = byTag && 'digest' in byTag ? byTag.digest : undefined;
    return { state: 'copy', digest: wanted, reason: copyReason(wanted, upstream, source.tag), ...(upstream ? { upstream } : {}) };
  }

  // Only a tag: the source says which digest it names now; the backup is asked for that digest.
  const tag = source.tag ?? 'latest';
  const upstream = await ask(lookup, source, tag, false);
  if ('digest' in upstream && upstream.digest) {
    const digest = upstream.digest;
    return (await inBackup(digest, digest)) ?? { state: 'copy', digest, upstream: digest, reason: 'not in the backup yet' };
  }
  // Gone upstream, or the source failing: the backup copy under the human tag keeps the workload safe.
  const human = backup.tag === undefined ? { digest: undefined } : await ask(lookup, backup, backup.tag, true);
  if ('failed' in human) return { state: 'error', reason: `backup registry: ${human.failed}` };
  const why = 'failed' in upstream ? `source failed (${upstream.failed})` : 'gone upstream';
  if (!human.digest) {
    if ('failed' in upstream) return { state: 'error', reason: `source registry: ${upstream.failed}` };
    return { state: 'lost', reason: 'missing from the source and from the backup' };
  }
  const anchored = await ask(lookup, backup, anchorTag(human.digest), true);
  if ('failed' in anchored) return { state: 'error', reason: `backup registry: ${anchored.failed}` };
  return anchored.digest === human.digest
    ? { state: 'present', digest: human.digest, reason: `${why}; the backup copy is used` }
    : { state: 'tag', digest: human.digest, reason: `${why}; the backup copy is used, and its anchor tag added` };
}

function copyReason(running: string, upstream: string | undefined, tag: string | undefined): string {
  if (!upstream || upstream === running || !tag) return 'not in the backup yet';
  return `the tag moved upstream: runs ${running}, upstream now ${upstream}; what runs is backed up`;
}

