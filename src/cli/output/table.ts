// Tables for people, shared by every renderer (plan, report, restore): borderless, one row per line
// off a terminal, fitted to its width on one.
import Table from 'cli-table3';

type Wrap = 'hard' | 'words';

/** `fixed`: the narrowest the column may get when the table must shrink (a column's weight is no longer used). */
export type Column = { weight: number; fixed?: number; wrap: Wrap; colour?: (text: string) => string };

/**
 * A borderless table. Without a width (stdout is not a terminal: a CI log, a file, a pipe), one row
 * per line, each column as wide as its widest cell, nothing wrapped or cut, as kubectl prints. With
 * the terminal's width, the same when it fits; otherwise the columns share the width and cells wrap
 * here, not in cli-table3: references break anywhere (they have no spaces, and are never cut off),
 * prose at spaces.
 */
export function renderTable(head: string[], rows: string[][], columns: Column[], width?: number): string {
  const oneLine = rows.map((row) => row.map((cell) => cell.replace(/\n/g, ' ')));
  const natural = head.map((h, i) => Math.max(h.length, ...oneLine.map((row) => row[i]!.length)));
  if (width === undefined || natural.reduce((sum, w) => sum + w + 2, -2) <= width) {
    const line = (cells: string[], colour: boolean) => cells.map((cell, i) => {
      const padded = i === cells.length - 1 ? cell : cell.padEnd(natural[i]!);
      // Colour goes on after padding, so that escape codes never count as width.
      return colour && columns[i]!.colour ? columns[i]!.colour!(cell) + padded.slice(cell.length) : padded;
    }).join('  ').trimEnd();
    return [line(head, false), ...oneLine.map((row) => line(row, true))].join('\n');
  }
  // Too wide for the terminal: take a character at a time from the widest column that can give
  // one, so that short columns keep their natural width and long ones share what is left.
  const least = columns.map((c, i) => Math.min(natural[i]!, Math.max(head[i]!.length, c.fixed ?? (c.wrap === 'words' ? 12 : 8))));
  const widths = [...natural];
  for (let excess = natural.reduce((sum, w) => sum + w + 2, -2) - width; excess > 0; excess--) {
    let widest = -1;
    for (let i = 0; i < widths.length; i++) if (widths[i]! > least[i]! && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
    if (widest < 0) break;
    widths[widest]!--;
  }
  const t = new Table({
    head,
    colWidths: widths.map((w) => w + 2),
    // Colours come from chalk or not at all: cli-table3's own styling ignores NO_COLOR and pipes.
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 2 },
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '',
    },
  });
  // Colour goes on after wrapping, so that escape codes never count as width.
  for (const row of rows) t.push(row.map((cell, i) => (columns[i]!.colour ?? String)(wrap(cell, widths[i]!, columns[i]!.wrap))));
  return t.toString().replace(/[ \t]+$/gm, '');
}

export function wrap(text: string, width: number, mode: Wrap): string {
  return text.split('\n').flatMap((line) => {
    if (line.length <= width) return [line];
    if (mode === 'hard') return line.match(new RegExp(`.{1,${width}}`, 'g')) ?? [line];
    const out: string[] = [];
    let current = '';
    for (const word of line.split(' ')) {
      const pieces = word.length > width ? word.match(new RegExp(`.{1,${width}}`, 'g'))! : [word];
      for (const piece of pieces) {
        if (!current) current = piece;
        else if (current.length + 1 + piece.length <= width) current += ` ${piece}`;
        else {
          out.push(current);
          current = piece;
        }
      }
    }
    if (current) out.push(current);
    return out;
  }).join('\n');
}
