// How the front end spells the settings a plan's reasons send the user to. The CLI passes its flags
// (cli/settings.ts flagNames), so core never writes a command line of its own.

export interface SettingNames {
  /** Only images matching these globs are backed up. */
  includeImages: string;
  /** Images matching these globs are left alone. */
  excludeImages: string;
  /** Patch workloads that a GitOps tool manages anyway. */
  patchManaged: string;
  /** The output that gives GitOps owners an images: block to apply. */
  kustomizeOutput: string;
  /** Names a custom kind's pod template path. */
  workloadKind: string;
}
