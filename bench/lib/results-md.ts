// bench/RESULTS.md: each benchmark (re)writes only its own generated section, between its markers,
// and keeps every other byte of the file (the hand-written parts, the other benchmarks' sections).
import { readFile, rename, writeFile } from 'node:fs/promises';

export interface SectionMarkers {
  begin: string;
  end: string;
  /** What finds an existing begin marker, when its text may have changed (default: `begin` itself). */
  beginPrefix?: string;
}

/** bench:copy's section. */
export const copySection: SectionMarkers = {
  begin: '<!-- bench:copy:begin (written by `npm run bench:copy`; edits inside are overwritten) -->',
  end: '<!-- bench:copy:end -->',
  beginPrefix: '<!-- bench:copy:begin',
};

/** The section of bench:NAME (plan, sync): between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`. */
export const ownSection = (name: string): SectionMarkers => ({ begin: `<!-- bench:${name} -->`, end: `<!-- /bench:${name} -->` });

/**
 * Replaces the section between the markers (or appends it), keeping every other byte of the file:
 * other benchmarks write their own sections. Read right before the write and replaced atomically,
 * to keep the window for a concurrent writer small.
 */
export async function writeSection(path: string, markers: SectionMarkers, body: string): Promise<void> {
  const block = `${markers.begin}\n${body.trim()}\n${markers.end}`;
  let text = await readFile(path, 'utf8').catch(() => '');
  const b = text.indexOf(markers.beginPrefix ?? markers.begin);
  const e = text.indexOf(markers.end);
  if (b !== -1 && e > b) text = `${text.slice(0, b)}${block}${text.slice(e + markers.end.length)}`;
  else text = text.trim() ? `${text.trimEnd()}\n\n${block}\n` : `# Benchmark results\n\n${block}\n`;
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text.endsWith('\n') ? text : `${text}\n`);
  await rename(tmp, path);
}

/**
 * The fastest verified peer in bench:copy's section of RESULTS.md: of the rows whose tool is one of
 * `labels` (by id), the one with the lowest time whose "verified" column says yes. Columns are found
 * by their headers (the copy benchmark's table may gain columns).
 */
export async function bestPeerInCopySection<Id extends string>(path: string, labels: Record<Id, string>): Promise<{ id: Id; seconds: number } | undefined> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const begin = text.indexOf(copySection.beginPrefix!);
  const end = text.indexOf(copySection.end);
  if (begin === -1 || end < begin) return undefined;
  let best: { id: Id; seconds: number } | undefined;
  let col: { tool: number; time: number; verified: number } | undefined;
  for (const line of text.slice(begin, end).split('\n')) {
    if (!line.startsWith('|')) {
      col = undefined;
      continue;
    }
    const cells = line.split('|').map((c) => c.trim());
    if (!col) {
      const at = (re: RegExp) => cells.findIndex((c) => re.test(c));
      const c = { tool: at(/^tool$/i), time: at(/^time/i), verified: at(/^verified/i) };
      if (c.tool > 0 && c.time > 0 && c.verified > 0) col = c;
      continue;
    }
    const id = (Object.keys(labels) as Id[]).find((k) => cells[col!.tool] === labels[k]);
    const seconds = Number(/\d+(\.\d+)?/.exec(cells[col.time] ?? '')?.[0]);
    if (id && Number.isFinite(seconds) && /^yes/i.test(cells[col.verified] ?? '') && (!best || seconds < best.seconds)) best = { id, seconds };
  }
  return best;
}
