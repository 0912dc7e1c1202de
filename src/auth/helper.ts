// The docker credential-helper protocol: `docker-credential-<helper> get` with the server URL on
// stdin answers {"Username", "Secret"} on stdout. A helper's answer never reaches an error message.
import { execFile } from 'node:child_process';
import { ConfigError } from '../errors.ts';
import { isDockerHub, registryKey } from '../reference.ts';
import { type Credential, isRecord } from './credential.ts';

/** Asks `docker-credential-<helper>` for a server's credentials; undefined when it has none. */
export type HelperRunner = (helper: string, serverUrl: string) => Promise<{ Username: string; Secret: string } | undefined>;

/** docker login keeps Docker Hub's credentials under this key, and helpers expect it as Docker Hub's server URL. */
export const dockerHubAuthKey = 'https://index.docker.io/v1/';
const helperTimeoutMs = 30_000;
/** Helpers answer "credentials not found in native keychain" (docker-credential-helpers) for an unknown server. */
const helperNotFoundPattern = /credentials not found/i;
/** A helper name becomes part of a program name: no paths, no spaces. */
export const helperNamePattern = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/** Runs `docker-credential-<helper> get` with the server URL on stdin; not cached. */
export function createHelperRunner(options: { timeoutMs?: number } = {}): HelperRunner {
  const timeoutMs = options.timeoutMs ?? helperTimeoutMs;
  return (helper, serverUrl) => runHelperProgram(`docker-credential-${helper}`, serverUrl, timeoutMs);
}

/** Asks each (helper, server) once; concurrent lookups share the one run, and a failure is not remembered. */
export function memoizeHelperRunner(runHelper: HelperRunner): HelperRunner {
  const answers = new Map<string, ReturnType<HelperRunner>>();
  return (helper, serverUrl) => {
    const key = `${helper}\n${serverUrl}`;
    const known = answers.get(key);
    if (known !== undefined) return known;
    const answer = runHelper(helper, serverUrl);
    answers.set(key, answer);
    answer.catch(() => {
      if (answers.get(key) === answer) answers.delete(key);
    });
    return answer;
  };
}

/** The runner loadCredentialSource uses unless given one: answers cached for the process lifetime. */
export const defaultHelperRunner: HelperRunner = memoizeHelperRunner(createHelperRunner());

/** The server URL a helper is asked about: docker login's key for Docker Hub, else the host. */
export function helperServerUrl(registry: string): string {
  return isDockerHub(registry) ? dockerHubAuthKey : registryKey(registry);
}

export function helperCredential(answer: { Username: string; Secret: string } | undefined): Credential | undefined {
  if (answer === undefined || answer.Secret === '') return undefined;
  // Helpers mark an identity (refresh) token with this user name.
  if (answer.Username === '<token>') return { kind: 'identityToken', token: answer.Secret };
  return { kind: 'basic', username: answer.Username, password: answer.Secret };
}


function runHelperProgram(program: string, serverUrl: string, timeoutMs: number) {
  return new Promise<{ Username: string; Secret: string } | undefined>((resolve, reject) => {
    const child = execFile(program, ['get'], { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) {
        try {
          resolve(parseHelperAnswer(program, serverUrl, stdout));
        } catch (parseError) {
          reject(parseError);
        }
      } else if (helperNotFoundPattern.test(`${stdout}\n${stderr}`)) {
        resolve(undefined);
      } else {
        reject(new ConfigError(describeHelperFailure(program, serverUrl, error, `${stderr}\n${stdout}`, timeoutMs)));
      }
    });
    // A helper may exit without reading stdin; its exit status says what happened, not the broken pipe.
    child.stdin?.on('error', () => {});
    child.stdin?.end(serverUrl);
  });
}

function parseHelperAnswer(program: string, serverUrl: string, stdout: string): { Username: string; Secret: string } | undefined {
  if (stdout.trim() === '') return undefined;
  let answer: unknown;
  try {
    answer = JSON.parse(stdout);
  } catch {
    throw new ConfigError(`credential helper ${program} answered for ${serverUrl} with something other than JSON`);
  }
  if (!isRecord(answer) || typeof answer['Username'] !== 'string' || typeof answer['Secret'] !== 'string') {
    throw new ConfigError(`credential helper ${program} answered for ${serverUrl} without a Username and Secret string`);
  }
  return { Username: answer['Username'], Secret: answer['Secret'] };
}

function describeHelperFailure(
  program: string,
  serverUrl: string,
  error: Error & { code?: unknown; killed?: boolean },
  output: string,
  timeoutMs: number,
): string {
  const prefix = `credential helper ${program}`;
  if (error.code === 'ENOENT') return `${prefix} is not installed (not found on PATH)`;
  if (error.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return `${prefix} answered for ${serverUrl} with too much output`;
  if (error.killed) return `${prefix} did not answer for ${serverUrl} within ${timeoutMs / 1000} s`;
  const exit = typeof error.code === 'number' ? `exit code ${error.code}` : String(error.code ?? error.message);
  return `${prefix} failed for ${serverUrl} (${exit})${helperReason(output)}`;
}

/**
 * The helper's first line of complaint, which usually says what to do ("not logged in"). A line that
 * looks like JSON is left out: it could be an answer carrying the secret.
 */
function helperReason(output: string): string {
  const line = output
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '');
  if (line === undefined || line.startsWith('{')) return '';
  return `: ${line.length > 200 ? `${line.slice(0, 200)}…` : line}`;
}

