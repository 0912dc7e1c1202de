// The copy commands the benchmarks time, one adapter per tool: image-clone copy --from-file, and the
// peers (skopeo copy, skopeo sync, crane copy, regctl image copy), each with its own untimed set-up
// (credentials the tool's own way, plain HTTP by its own switch). bench:copy, its second round and
// bench:sync's cold part all run the peers through these.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '../../test/harness/harness.ts';
import type { Tool } from './peers.ts';
import { firstLine, run } from './processes.ts';

/** Where one run copies: the registries as the tool reaches them, the target's credentials, a private work dir. */
export interface RunContext {
  src: string;
  dst: string;
  user: string;
  pass: string;
  work: string;
  /** `SRC_REF DST_REF` per line; also in env.PAIRS for the shell loops. */
  pairsFile: string;
  env: NodeJS.ProcessEnv;
}

export interface Command {
  cmd: string;
  args: string[];
  /** What to show in RESULTS.md: the command line with hosts as SRC/DST and files by name. */
  display: string;
}

export interface Contender {
  id: string;
  label: string;
  tool: Tool;
  /** One of the peers the issue names (the target is computed against these). */
  mandated: boolean;
  /** Untimed set-up (logins), then the timed command. */
  prepare(ctx: RunContext): Promise<Command>;
  setupDisplay?: string;
}

export type PeerId = 'skopeo' | 'crane' | 'regctl';
/** The per-image copy commands of the peers the issue names, as the reports label them. */
export const peerLabels: Record<PeerId, string> = { skopeo: 'skopeo copy', crane: 'crane copy', regctl: 'regctl image copy' };

/** A docker config.json (containers-auth.json) holding the target's credentials. */
export const dockerAuth = (ctx: Pick<RunContext, 'dst' | 'user' | 'pass'>) =>
  JSON.stringify({ auths: { [ctx.dst]: { auth: Buffer.from(`${ctx.user}:${ctx.pass}`).toString('base64') } } });

/** A shell loop over the pairs file, one invocation per image, as the tools' docs show for `copy`. */
function loop(body: string, display: string): Command {
  const script = `rc=0; while read -r src dst; do ${body} || rc=1; done < "$PAIRS"; exit $rc`;
  return { cmd: 'bash', args: ['-c', script], display: `while read -r src dst; do ${display} || rc=1; done < pairs.txt` };
}

/** image-clone copy --from-file, with node's own flags (`nodeArgs`) and extra copy flags. */
export function imageCloneCopy(cli: string, tool: Tool, id: string, label: string, extraArgs: string[] = [], nodeArgs: string[] = []): Contender {
  return {
    id, label, tool, mandated: false,
    async prepare(ctx) {
      const config = join(ctx.work, 'config.json');
      await writeFile(config, dockerAuth(ctx), { mode: 0o600 });
      const flags = ['--from-file', ctx.pairsFile, '--registry-config', config, '--insecure-registry', ctx.src, '--insecure-registry', ctx.dst, '-o', 'json', ...extraArgs];
      return {
        cmd: process.execPath, args: [...nodeArgs, cli, 'copy', ...flags],
        display: `node ${nodeArgs.length ? `${nodeArgs.map((a) => a.replace(`${repoRoot}/`, '')).join(' ')} ` : ''}bin/image-clone.js copy --from-file pairs.txt --registry-config config.json --insecure-registry SRC --insecure-registry DST -o json${extraArgs.length ? ` ${extraArgs.join(' ')}` : ''}`,
      };
    },
  };
}

export function skopeoCopy(tool: Tool): Contender {
  return {
    id: 'skopeo', label: peerLabels.skopeo, tool, mandated: true,
    setupDisplay: 'auth.json: {"auths":{"DST":{"auth":"<base64 user:pass>"}}} (containers-auth.json(5))',
    async prepare(ctx) {
      await writeFile(join(ctx.work, 'auth.json'), dockerAuth(ctx), { mode: 0o600 });
      ctx.env.AUTH = join(ctx.work, 'auth.json');
      return loop(
        `"${tool.bin}" copy --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false --dest-authfile "$AUTH" "docker://$src" "docker://$dst"`,
        'skopeo copy --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false --dest-authfile auth.json "docker://$src" "docker://$dst"');
    },
  };
}

/** skopeo's multi-image command: the images `names` (PATH:TAG below the source) into DST/`targetPrefix`. */
export function skopeoSync(tool: Tool, names: string[], targetPrefix: string): Contender {
  const yamlImages = names.map((n) => `    ${n.replace(/:([^:/]+)$/, ': [$1]')}`).join('\n');
  return {
    id: 'skopeo-sync', label: 'skopeo sync (extra)', tool, mandated: false,
    setupDisplay: `sync.yaml: {SRC: {tls-verify: false, images: {${[names[0], '...', names.at(-1)].map((n) => n?.replace(/:([^:/]+)$/, ': [$1]')).join(', ')}}}}; auth.json as for skopeo copy`,
    async prepare(ctx) {
      await writeFile(join(ctx.work, 'auth.json'), dockerAuth(ctx), { mode: 0o600 });
      await writeFile(join(ctx.work, 'sync.yaml'), `${ctx.src}:\n  tls-verify: false\n  images:\n${yamlImages}\n`);
      return {
        cmd: tool.bin!,
        args: ['sync', '--all', '--preserve-digests', '--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', '--dest-authfile', join(ctx.work, 'auth.json'), join(ctx.work, 'sync.yaml'), `${ctx.dst}/${targetPrefix}`],
        display: `skopeo sync --all --preserve-digests --src yaml --dest docker --dest-tls-verify=false --dest-authfile auth.json sync.yaml DST/${targetPrefix}`,
      };
    },
  };
}

export function craneCopy(tool: Tool): Contender {
  return {
    id: 'crane', label: peerLabels.crane, tool, mandated: true,
    setupDisplay: 'DOCKER_CONFIG=<temp dir> crane auth login DST -u admin --password-stdin',
    async prepare(ctx) {
      const login = await run(tool.bin!, ['auth', 'login', ctx.dst, '-u', ctx.user, '--password-stdin'], { env: ctx.env, input: ctx.pass });
      if (login.code !== 0) throw new Error(`crane auth login failed: ${firstLine(login.stderr)}`);
      return loop(`"${tool.bin}" copy --insecure "$src" "$dst"`, 'crane copy --insecure "$src" "$dst"');
    },
  };
}

export function regctlCopy(tool: Tool): Contender {
  return {
    id: 'regctl', label: peerLabels.regctl, tool, mandated: true,
    setupDisplay: 'REGCTL_CONFIG=<temp dir>/config.json; regctl registry set --tls disabled SRC; regctl registry set --tls disabled --skip-check DST (its anonymous ping would get a 401); regctl registry login DST -u admin --pass-stdin',
    async prepare(ctx) {
      for (const step of [['registry', 'set', '--tls', 'disabled', ctx.src], ['registry', 'set', '--tls', 'disabled', '--skip-check', ctx.dst], ['registry', 'login', ctx.dst, '-u', ctx.user, '--pass-stdin']]) {
        // `registry set` pings the registry and exits non-zero when the ping fails (seen under load),
        // though it saved the setting ("configuration still updated"): accept that, retry the rest.
        const input = step[1] === 'login' ? { input: ctx.pass } : {};
        const done = (r: { code: number; stderr: string }) => r.code === 0 || /configuration still updated/.test(r.stderr);
        let r = await run(tool.bin!, step, { env: ctx.env, ...input });
        for (let attempt = 1; !done(r) && attempt < 3; attempt++) r = await run(tool.bin!, step, { env: ctx.env, ...input });
        if (!done(r)) throw new Error(`regctl ${step.slice(0, 2).join(' ')} failed: ${firstLine(r.stderr)}`);
      }
      return loop(`"${tool.bin}" image copy "$src" "$dst"`, 'regctl image copy "$src" "$dst"');
    },
  };
}

/** The per-image copy command of a peer the issue names. */
export function peerCopy(id: PeerId, tool: Tool): Contender {
  return id === 'skopeo' ? skopeoCopy(tool) : id === 'crane' ? craneCopy(tool) : regctlCopy(tool);
}
