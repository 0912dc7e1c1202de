// Formatting numbers and tables for the terminal and for RESULTS.md, and the median.

export const mib = (bytes: number) => bytes / 2 ** 20;
export const fmtS = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
export const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));

/** A Markdown table. */
export function mdTable(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** A plain-text table for the terminal. */
export function textTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => pad(c, widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function median(values: number[]): number {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export const s2 = (ms: number) => (ms / 1000).toFixed(2);
export const yesNo = (b: boolean) => (b ? 'yes' : 'NO');
export const metMissed = (b: boolean) => (b ? 'MET' : 'MISSED');
