// The plan settings most unit tests share: a nested backup under backup.example.com/mirror, pinned,
// with the CLI's flag names in reasons.
import { flagNames } from '../../../src/cli/settings.ts';
import type { PlanConfig } from '../../../src/core/plan.ts';

export const planConfig: PlanConfig = {
  backup: { registry: 'backup.example.com', prefix: 'mirror' }, naming: 'nested', pin: true, patchManaged: false, includeImages: [], excludeImages: [], names: flagNames,
};
