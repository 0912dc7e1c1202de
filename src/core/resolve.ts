// Resolution: for each distinct (image, digest), find out whether the backup holds that digest
// whole, every manifest under a tag of its own (one request on a warm run: its seal), else whether
// it holds all of it (a copy an earlier version made, children left untagged: tag them, move no
// bytes), else whether the source has it (copy; also when the backup's copy is damaged, which
// `--verify` looks for). The registries sit behind a small port.
import { AuthError } from '../errors.ts';
import { createLimiter } from '../util/limit.ts';
import { oneLine } from '../util/text.ts';
import { anchorTag } from './naming.ts';
import type { ImageRequest, Resolution } from './plan.ts';
import type { Holding, ManifestLookup } from './ports.ts';

export async function resolveImages(requests: ImageRequest[], registries: ManifestLookup, concurrency: number): Promise<Map<string, Resolution>> {
  const limit = createLimiter(concurrency);
  // Images that share a lookup (one tag run under two digests asks the source tag once) share its answer.
  const answers = new Map<string, Promise<string | undefined>>();
  const holdings = new Map<string, Promise<Holding>>();
  const lookup: ManifestLookup = {
    digestOf(repository, reference) {
      const key = `${repository.registry}/${repository.repository}:${reference}`;
      let answer = answers.get(key);
      if (!answer) answers.set(key, (answer = registries.digestOf(repository, reference)));
      return answer;
    },
    holdingOf(repository, digest) {
      const key = `${repository.registry}/${repository.repository}@${digest}`;
      let answer = holdings.get(key);
      if (!answer) holdings.set(key, (answer = holdingOf(registries, repository, digest)));
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

/** What the backup holds of a digest: the port's answer, or from the anchor and the digest alone. */
async function holdingOf(lookup: ManifestLookup, repository: ImageRequest['backup'], digest: string): Promise<Holding> {
  if (lookup.holdingOf) return lookup.holdingOf(repository, digest);
  if ((await lookup.digestOf(repository, anchorTag(digest))) === digest) return { state: 'whole' };
  if ((await lookup.digestOf(repository, digest)) === digest) return { state: 'unanchored', detail: `${digest} has no anchor tag` };
  return { state: 'absent' };
}

async function resolveOne(request: ImageRequest, lookup: ManifestLookup): Promise<Resolution> {
  const { backup, source } = request;
  /**
   * What the backup holds of a digest: whole (present), there but not every manifest under its own
   * tag (tag: no bytes move), nothing (undefined), or damaged: something under it is gone, so the
   * source is asked as for a missing image, and the reason says why.
   */
  let damaged: string | undefined;
  const inBackup = async (digest: string, upstream?: string): Promise<Resolution | undefined> => {
    const known = upstream ? { upstream } : {};
    let holding: Holding;
    try {
      holding = await holdingOf(lookup, backup, digest);
    } catch (err) {
      // Refused credentials for the backup registry fail every image the same way: stop the run.
      if (err instanceof AuthError) throw err;
      return { state: 'error', reason: `backup registry: ${oneLine(err)}` };
    }
    if (holding.state === 'whole') return { state: 'present', digest, ...known, reason: 'the backup holds this digest under its anchor tag' };
    if (holding.state === 'unanchored') return { state: 'tag', digest, ...known, reason: `the backup holds all of this digest, but ${holding.detail}: tagged, no bytes move` };
    if (holding.state === 'damaged') damaged = holding.detail;
    return undefined;
  };
  const copyAgain = (why: string) => damaged ? `the backup copy is incomplete (${damaged}): copied again` : why;

  if (request.digest) {
    // Known digest (the reference's, or the one the pods run): the warm path is one HEAD of its seal.
    const wanted = request.digest;
    const held = await inBackup(wanted);
    if (held) return held;
    const [byDigest, byTag] = await Promise.all([
      ask(lookup, source, wanted, false),
      source.tag && !source.digest ? ask(lookup, source, source.tag, false) : Promise.resolve(undefined),
    ]);
    if ('failed' in byDigest) return { state: 'error', reason: `source registry: ${byDigest.failed}` };
    if (byDigest.digest !== wanted) {
      return { state: 'lost', reason: damaged ? `${wanted} is incomplete in the backup (${damaged}) and missing from the source` : `${wanted} is missing from the source and from the backup` };
    }
    const upstream = byTag && 'digest' in byTag ? byTag.digest : undefined;
    return { state: 'copy', digest: wanted, reason: copyAgain(copyReason(wanted, upstream, source.tag)), ...(upstream ? { upstream } : {}) };
  }

  // Only a tag: the source says which digest it names now; the backup is asked for that digest.
  const tag = source.tag ?? 'latest';
  const upstream = await ask(lookup, source, tag, false);
  if ('digest' in upstream && upstream.digest) {
    const digest = upstream.digest;
    return (await inBackup(digest, digest)) ?? { state: 'copy', digest, upstream: digest, reason: copyAgain('not in the backup yet') };
  }
  // Gone upstream, or the source failing: the backup copy under the human tag keeps the workload safe.
  const human = backup.tag === undefined ? { digest: undefined } : await ask(lookup, backup, backup.tag, true);
  if ('failed' in human) return { state: 'error', reason: `backup registry: ${human.failed}` };
  const why = 'failed' in upstream ? `source failed (${upstream.failed})` : 'gone upstream';
  if (!human.digest) {
    if ('failed' in upstream) return { state: 'error', reason: `source registry: ${upstream.failed}` };
    return { state: 'lost', reason: 'missing from the source and from the backup' };
  }
  const held = await inBackup(human.digest);
  if (held?.state === 'present') return { ...held, reason: `${why}; the backup copy is used` };
  if (held?.state === 'tag') return { ...held, reason: `${why}; the backup copy is used, and every manifest of it gets a tag of its own` };
  if (held) return held;
  return { state: 'lost', reason: `${why}, and the backup copy is incomplete (${damaged ?? `${human.digest} is missing`})` };
}

function copyReason(running: string, upstream: string | undefined, tag: string | undefined): string {
  if (!upstream || upstream === running || !tag) return 'not in the backup yet';
  return `the tag moved upstream: runs ${running}, upstream now ${upstream}; what runs is backed up`;
}

