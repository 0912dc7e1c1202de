// ECR for the tests, from two real parts: moto's standalone server (a third-party AWS emulator,
// PyPI moto[server], installed by .ci/run) as ECR's and STS's control plane, and Debian's
// distribution 2.8 (docker-registry) as its data plane, with an htpasswd file that accepts exactly
// the basic credentials moto's GetAuthorizationToken hands out (user AWS, password
// 123456789012-auth-token). moto serves no /v2/ API, so the pair is the closest thing to ECR here.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DescribeRepositoriesCommand, ECRClient } from '@aws-sdk/client-ecr';

/** moto's default account, and the password its ECR token decodes to (`AWS:123456789012-auth-token`). */
export const motoAccount = '123456789012';
export const motoPassword = `${motoAccount}-auth-token`;
/** bcrypt (cost 4) of motoPassword, made once with Python's bcrypt: distribution reads only bcrypt htpasswd entries. */
const htpasswdEntry = 'AWS:$2b$04$d8PPoHnRwipYR7BzF2uF4eaqdlNhNLG.1pxfk3q2Vk7xwlntM8K6S';

export const motoServer = process.env.IMAGE_CLONE_MOTO_SERVER ?? join(homedir(), '.cache/image-clone/moto-5.2.5/bin/moto_server');

async function freePort(ip: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, ip, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${url}: the server exited (${child.exitCode}): ${log().slice(-2000)}`);
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${url}: no answer within 30 s: ${log().slice(-2000)}`);
      await sleep(100);
    }
  }
}

function start(command: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return { child, log: () => output };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

export interface Moto {
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * A moto server on a port of `ip` (loopback, or the harness node's bridge address for pods); `env`
 * reaches it (INITIAL_NO_AUTH_ACTION_COUNT turns on IAM checks).
 */
export async function startMoto(env: Record<string, string> = {}, ip = '127.0.0.1'): Promise<Moto> {
  const port = await freePort(ip);
  const { child, log } = start(motoServer, ['-H', ip, '-p', String(port)], env);
  const endpoint = `http://${ip}:${port}`;
  await waitFor(`${endpoint}/moto-api/`, child, log);
  return { endpoint, stop: () => stop(child) };
}

export interface EcrDataPlane {
  host: string;
  username: 'AWS';
  password: string;
  stop(): Promise<void>;
}

/** distribution 2.8 on a port of `ip`, accepting only AWS / moto's token password. */
export async function startEcrDataPlane(ip = '127.0.0.1'): Promise<EcrDataPlane> {
  const dir = await mkdtemp(join(tmpdir(), 'image-clone-ecr-'));
  const port = await freePort(ip);
  await writeFile(join(dir, 'htpasswd'), `${htpasswdEntry}\n`);
  await writeFile(join(dir, 'config.yml'), [
    'version: 0.1',
    'log: {level: error}',
    `storage: {filesystem: {rootdirectory: ${join(dir, 'data')}}}`,
    `http: {addr: "${ip}:${port}"}`,
    `auth: {htpasswd: {realm: ecr-stand-in, path: ${join(dir, 'htpasswd')}}}`,
    '',
  ].join('\n'));
  const { child, log } = start('docker-registry', ['serve', join(dir, 'config.yml')]);
  const host = `${ip}:${port}`;
  await waitFor(`http://${host}/v2/`, child, log);
  return {
    host, username: 'AWS', password: motoPassword,
    stop: async () => {
      await stop(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The environment of a run with no AWS identity but what the test gives: no keys, no shared files,
 * no instance metadata service (the SDK must never try the link-local address), the SDK's calls to moto.
 */
export function awsEnv(moto: Moto, home: string, identity: Record<string, string> = {}): Record<string, string> {
  return {
    HOME: home,
    AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '', AWS_PROFILE: '',
    AWS_ROLE_ARN: '', AWS_WEB_IDENTITY_TOKEN_FILE: '', AWS_CONTAINER_CREDENTIALS_FULL_URI: '', AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '',
    AWS_CONFIG_FILE: join(home, 'no-aws-config'), AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: moto.endpoint,
    ...identity,
  };
}

/** An ECR client of the test's own, to read back what a run did in moto. */
export function motoEcr(moto: Moto): ECRClient {
  return new ECRClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
}

/** The names of the repositories moto holds. */
export async function repositoryNames(api: ECRClient): Promise<string[]> {
  const { repositories } = await api.send(new DescribeRepositoriesCommand({}));
  return (repositories ?? []).map((r) => r.repositoryName!).sort();
}
