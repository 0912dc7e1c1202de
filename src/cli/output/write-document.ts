// A command's product on stdout, in the format asked for: JSON, YAML, a Kustomize images: block, or
// the table.
import { dump as dumpYaml } from 'js-yaml';
import type { Plan } from '../../core/plan.ts';
import type { CliContext } from '../context.ts';
import { tableWidth } from './format.ts';
import { renderKustomize } from './plan-render.ts';

export type DocumentFormat = 'table' | 'json' | 'yaml' | 'kustomize';

/** `renderTable` draws the table form; `plan` gives the Kustomize form. */
export function writeDocument<D>(plan: Plan, document: D, renderTable: (document: D, width?: number) => string, format: DocumentFormat, context: CliContext): void {
  const write = (text: string) => context.stdout.write(text);
  switch (format) {
    case 'json':
      write(`${JSON.stringify(document, null, 2)}\n`);
      break;
    case 'yaml':
      write(dumpYaml(document));
      break;
    case 'kustomize':
      write(renderKustomize(plan));
      break;
    default:
      write(renderTable(document, tableWidth(context.stdout)));
  }
}
