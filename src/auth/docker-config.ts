// Credentials from docker config.json, Podman's auth.json and the credential helpers they name
// (docker's config file format and lookup order): --registry-config first, then
// $DOCKER_CONFIG/config.json (or ~/.docker/config.json), then $REGISTRY_AUTH_FILE.
import { join } from 'node:path';
import { registryKey } from '../reference.ts';
import type { Credential, CredentialSource } from './credential.ts';
import { type CredentialsFile, readCredentialsFile } from './config-file.ts';
import { defaultHelperRunner, helperCredential, type HelperRunner, helperServerUrl } from './helper.ts';

export interface CredentialSourceOptions {
  /** --registry-config: read first, and it must exist. */
  configFile?: string;
  env: Record<string, string | undefined>;
  homeDir: string;
  runHelper?: HelperRunner;
}

/**
 * Reads the credentials files now, so that a malformed file stops the run before it starts; helpers
 * run later, on lookup. Files in order of precedence: `configFile`, docker config.json
 * ($DOCKER_CONFIG or ~/.docker), then $REGISTRY_AUTH_FILE; the first that has a credential wins.
 */
export async function loadCredentialSource(options: CredentialSourceOptions): Promise<CredentialSource> {
  const locations = credentialsFileLocations(options);
  const files = (await Promise.all(locations.map(({ path, required }) => readCredentialsFile(path, required)))).filter(
    (file): file is CredentialsFile => file !== undefined,
  );
  const runHelper = options.runHelper ?? defaultHelperRunner;
  return {
    async lookup(registry, repository) {
      for (const file of files) {
        const credential = await lookupInFile(file, runHelper, registry, repository);
        if (credential !== undefined) return credential;
      }
      return undefined;
    },
  };
}

function credentialsFileLocations(options: CredentialSourceOptions): { path: string; required: boolean }[] {
  const { configFile, env, homeDir } = options;
  const dockerConfigDir = nonEmpty(env['DOCKER_CONFIG']) ?? join(homeDir, '.docker');
  const podmanAuthFile = nonEmpty(env['REGISTRY_AUTH_FILE']);
  return [
    ...(configFile === undefined ? [] : [{ path: configFile, required: true }]),
    { path: join(dockerConfigDir, 'config.json'), required: false },
    ...(podmanAuthFile === undefined ? [] : [{ path: podmanAuthFile, required: false }]),
  ];
}

/**
 * Inside one file the registry's credHelpers entry, else credsStore, is asked first; when the helper
 * has nothing, a plain `auths` entry of the same file still counts.
 */
async function lookupInFile(
  file: CredentialsFile,
  runHelper: HelperRunner,
  registry: string,
  repository: string | undefined,
): Promise<Credential | undefined> {
  const key = registryKey(registry);
  const helper = file.credHelpers.get(key) ?? file.credsStore;
  if (helper !== undefined) {
    const credential = helperCredential(await runHelper(helper, helperServerUrl(registry)));
    if (credential !== undefined) return credential;
  }
  for (const candidate of namespacedKeys(key, repository)) {
    const credential = file.auths.get(candidate);
    if (credential !== undefined) return credential;
  }
  return undefined;
}

/** Most specific first: quay.io/org/app, quay.io/org, quay.io. */
function namespacedKeys(key: string, repository: string | undefined): string[] {
  const parts = repository === undefined || repository === '' ? [] : repository.split('/');
  return parts.map((_, i) => `${key}/${parts.slice(0, parts.length - i).join('/')}`).concat(key);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
