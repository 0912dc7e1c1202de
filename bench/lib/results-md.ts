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
