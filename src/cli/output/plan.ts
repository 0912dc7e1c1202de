// The plan for people (on a terminal, tables that fit its width; elsewhere, as in CI logs, one row
// per line at full length, as kubectl prints), for machines (a versioned JSON document), and for
// GitOps owners (a Kustomize images: block).
import Table from 'cli-table3';
import type { Plan, PlannedContainer } from '../../core/plan.ts';
import type { PlanDocument } from './document.ts';
import { parseReference, repositoryName } from '../../reference.ts';
import { outcome } from './colour.ts';

type Wrap = 'hard' | 'words';

/** `fixed`: the narrowest the column may get when the table must shrink (a column's weight is no longer used). */
type Column = { weight: number; fixed?: number; wrap: Wrap; colour?: (text: string) => string };

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

/** `width`: the terminal's; undefined when stdout is not a terminal (one row per line). */
export function renderPlanTable(plan: PlanDocument, width?: number): string {
  // Digests are shown whole: a prefix can name two images, and the digest is what a reader checks.
  // Short columns first and the longest last, so that one long reference does not push the rest
  // of every line far to the right in a log.
  const images = renderTable(['IMAGE', 'ACTION', 'DIGEST', 'BACKUP', 'REASON'],
    plan.images.map((i) => [i.source, i.action, i.digest ?? '-', i.backup ?? '-', i.reason]),
    [{ weight: 3, wrap: 'hard' }, { weight: 0, fixed: 8, wrap: 'hard', colour: outcome }, { weight: 3, wrap: 'hard' }, { weight: 3, wrap: 'hard' }, { weight: 2, wrap: 'words' }], width);
  const workloads = renderTable(['WORKLOAD', 'CONTAINER', 'ACTION', 'REASON', 'FROM -> TO'],
    plan.containers.map((w) => [`${w.kind}/${w.namespace}/${w.name}`, w.container, w.action, w.reason, w.newImage ? `${w.image}\n-> ${w.newImage}` : w.image]),
    [{ weight: 3, wrap: 'hard' }, { weight: 2, wrap: 'hard' }, { weight: 0, fixed: 9, wrap: 'hard', colour: outcome }, { weight: 3, wrap: 'words' }, { weight: 5, wrap: 'hard' }], width);
  const lines = [
    plan.images.length ? images : 'No images found.',
    '',
    plan.containers.length ? workloads : 'No workloads found.',
    '',
    ...planSummaryLines(plan),
  ];
  return `${lines.join('\n')}\n`;
}

/** The plan's counts, in the words of the JSON document's summary. */
export function planSummaryLines(plan: PlanDocument): string[] {
  const { images: i, workloads: w, containers: c } = plan.summary;
  const changes = (s: typeof w) => `${s.patch} to patch, ${s.unchanged} unchanged, ${s.skip} skipped, ${s.error} errors`;
  return [
    `Images: ${i.total}: ${i.copy} to copy, ${i.tag ? `${i.tag} to tag, ` : ''}${i.present} already backed up, ${i.lost} lost, ${i.excluded} excluded, ${i.error} errors.`
      + (plan.summary.drifted ? ` ${plan.summary.drifted} run an older digest than their tag names upstream (the tag moved).` : ''),
    `Workloads: ${w.total}: ${changes(w)}.`,
    `Containers: ${c.total}: ${changes(c)}.`,
  ];
}

/**
 * A Kustomize `images:` block mapping each original image name to its backup, for workloads whose
 * owner (Argo CD, Flux, Helm) should make the change itself.
 */
export function renderKustomize(plan: Plan): string {
  const entries = new Map<string, { name: string; newName: string; newTag?: string; digest?: string }>();
  const conflicts: string[] = [];
  for (const c of plan.workloads) {
    if (!c.newImage || c.action === 'error') continue;
    const entry = kustomizeEntry(c);
    const existing = entries.get(entry.name);
    if (existing && (existing.newName !== entry.newName || existing.newTag !== entry.newTag || existing.digest !== entry.digest)) {
      conflicts.push(entry.name);
      continue;
    }
    entries.set(entry.name, entry);
  }
  const lines = ['# Generated by image-clone: point these images at their backup copies.', 'images:'];
  for (const e of entries.values()) {
    lines.push(`- name: ${e.name}`, `  newName: ${e.newName}`);
    if (e.newTag) lines.push(`  newTag: "${e.newTag}"`);
    if (e.digest) lines.push(`  digest: ${e.digest}`);
  }
  for (const name of new Set(conflicts)) lines.push(`# ${name}: used with several tags; Kustomize maps a name once, so only the first is listed`);
  if (!entries.size) lines.push('  []');
  return `${lines.join('\n')}\n`;
}

function kustomizeEntry(c: PlannedContainer): { name: string; newName: string; newTag?: string; digest?: string } {
  // The original name as written in the manifest (Kustomize matches it literally), without tag or digest.
  const withoutDigest = c.image.split('@')[0]!;
  const colon = withoutDigest.lastIndexOf(':');
  const name = colon > withoutDigest.lastIndexOf('/') ? withoutDigest.slice(0, colon) : withoutDigest;
  const backup = parseReference(c.newImage!);
  return {
    name,
    newName: repositoryName(backup),
    ...(backup.tag ? { newTag: backup.tag } : {}),
    ...(backup.digest ? { digest: backup.digest } : {}),
  };
}
