// The plan for people (tables that fit the terminal, 80 columns when it is unknown), for machines
// (a versioned JSON document), and for GitOps owners (a Kustomize images: block).
import Table from 'cli-table3';
import type { Plan, PlannedContainer } from '../../core/plan.ts';
import type { PlanDocument } from './document.ts';
import { parseReference, repositoryName } from '../../reference.ts';
import { outcome } from './colour.ts';
import { shortDigest } from './format.ts';

type Wrap = 'hard' | 'words';

/**
 * A borderless table whose columns share `width`. Cells are wrapped here, not by cli-table3:
 * references break anywhere (they have no spaces, and must never be cut off), prose at spaces.
 */
export function renderTable(head: string[], rows: string[][], columns: Array<{ weight: number; fixed?: number; wrap: Wrap; colour?: (text: string) => string }>, width: number): string {
  const gaps = head.length * 2;
  const fixedTotal = columns.reduce((sum, c) => sum + (c.fixed ?? 0), 0);
  const flexible = Math.max(width - gaps - fixedTotal, head.length * 6);
  const weightTotal = columns.reduce((sum, c) => sum + c.weight, 0) || 1;
  const widths = columns.map((c, i) => Math.max(head[i]!.length, c.fixed ?? Math.max(6, Math.floor((flexible * c.weight) / weightTotal))));
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

export function renderPlanTable(plan: PlanDocument, width = 80): string {
  const images = renderTable(['IMAGE', 'DIGEST', 'BACKUP', 'ACTION', 'REASON'],
    plan.images.map((i) => [i.source, i.digest ? shortDigest(i.digest) : '-', i.backup ?? '-', i.action, i.reason]),
    [{ weight: 3, wrap: 'hard' }, { weight: 0, fixed: 19, wrap: 'hard' }, { weight: 3, wrap: 'hard' }, { weight: 0, fixed: 8, wrap: 'hard', colour: outcome }, { weight: 2, wrap: 'words' }], width);
  const workloads = renderTable(['WORKLOAD', 'CONTAINER', 'FROM -> TO', 'ACTION', 'REASON'],
    plan.containers.map((w) => [`${w.kind}/${w.namespace}/${w.name}`, w.container, w.newImage ? `${w.image}\n-> ${w.newImage}` : w.image, w.action, w.reason]),
    [{ weight: 3, wrap: 'hard' }, { weight: 2, wrap: 'hard' }, { weight: 5, wrap: 'hard' }, { weight: 0, fixed: 9, wrap: 'hard', colour: outcome }, { weight: 3, wrap: 'words' }], width);
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
