import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, UsageError } from '../../../src/errors.ts';
import { type CredentialSourceOptions, loadCredentialSource } from '../../../src/auth/docker-config.ts';
import { createHelperRunner, defaultHelperRunner, type HelperRunner, helperServerUrl, memoizeHelperRunner } from '../../../src/auth/helper.ts';

const dockerHubKey = 'https://index.docker.io/v1/';
const tempDirs: string[] = [];

after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'image-clone-credentials-'));
  tempDirs.push(dir);
  return dir;
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** Writes a config file into a fresh temp dir and returns its path. */
async function configFile(content: unknown, name = 'config.json'): Promise<string> {
  const path = join(await tempDir(), name);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** A source reading only `content` (as --registry-config); home is an empty dir, so no other file counts. */
async function sourceFor(content: unknown, runHelper: HelperRunner = noHelper) {
  return loadCredentialSource({ configFile: await configFile(content), env: {}, homeDir: await tempDir(), runHelper });
}

const noHelper: HelperRunner = async (helper) => {
  throw new Error(`no helper expected, asked ${helper}`);
};

/** A runner answering from a table keyed by "helper server", recording every question. */
function fakeRunner(answers: Record<string, { Username: string; Secret: string } | undefined>) {
  const calls: string[] = [];
  const run: HelperRunner = async (helper, serverUrl) => {
    calls.push(`${helper} ${serverUrl}`);
    return answers[`${helper} ${serverUrl}`];
  };
  return { run, calls };
}

/** Expects a ConfigError whose one-line message names the file and matches `problem`, and leaks no secret. */
async function assertConfigError(promise: Promise<unknown>, expected: RegExp, secrets: string[] = []): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.equal(error.name, 'ConfigError');
    assert.ok(error instanceof UsageError, 'a ConfigError is a UsageError (exit 2)');
    assert.match(error.message, expected);
    assert.doesNotMatch(error.message, /\n/);
    for (const secret of secrets) assert.equal(error.message.includes(secret), false, `message leaks ${secret}: ${error.message}`);
    return true;
  });
}

describe('auths entries', () => {
  test('auth is base64(user:password) split at the first ":"', async () => {
    const source = await sourceFor({ auths: { 'quay.io': { auth: b64('robot+ci:pa:ss:word') } } });
    assert.deepEqual(await source.lookup('quay.io'), { kind: 'basic', username: 'robot+ci', password: 'pa:ss:word' });
  });

  test('NULs around the decoded auth are trimmed', async () => {
    const source = await sourceFor({ auths: { 'quay.io': { auth: b64('\0\0user:pw\0') } } });
    assert.deepEqual(await source.lookup('quay.io'), { kind: 'basic', username: 'user', password: 'pw' });
  });

  test('username and password fields', async () => {
    const source = await sourceFor({ auths: { 'ghcr.io': { username: 'me', password: 'ghp_x' } } });
    assert.deepEqual(await source.lookup('ghcr.io'), { kind: 'basic', username: 'me', password: 'ghp_x' });
  });

  test('identitytoken and registrytoken', async () => {
    const source = await sourceFor({
      auths: { 'acr.example.io': { identitytoken: 'refresh-me' }, 'tok.example.io': { registrytoken: 'bearer-me' } },
    });
    assert.deepEqual(await source.lookup('acr.example.io'), { kind: 'identityToken', token: 'refresh-me' });
    assert.deepEqual(await source.lookup('tok.example.io'), { kind: 'registryToken', token: 'bearer-me' });
  });

  test('registrytoken beats identitytoken beats auth', async () => {
    const source = await sourceFor({
      auths: {
        'a.example': { auth: b64('u:p'), identitytoken: 'id', registrytoken: 'reg' },
        'b.example': { auth: b64('u:p'), identitytoken: 'id' },
        'c.example': { auth: b64('u:p'), username: 'other', password: 'other' },
      },
    });
    assert.deepEqual(await source.lookup('a.example'), { kind: 'registryToken', token: 'reg' });
    assert.deepEqual(await source.lookup('b.example'), { kind: 'identityToken', token: 'id' });
    assert.deepEqual(await source.lookup('c.example'), { kind: 'basic', username: 'u', password: 'p' });
  });

  test('empty {} marker entries and entries without both user and password are ignored', async () => {
    const source = await sourceFor({
      auths: {
        'marker.example': {},
        'empty.example': { auth: '' },
        'nouser.example': { auth: b64(':pw') },
        'nopass.example': { username: 'u' },
      },
    });
    for (const registry of ['marker.example', 'empty.example', 'nouser.example', 'nopass.example']) {
      assert.equal(await source.lookup(registry), undefined, registry);
    }
  });

  test('an unknown registry has no credential', async () => {
    const source = await sourceFor({ auths: { 'quay.io': { auth: b64('u:p') } } });
    assert.equal(await source.lookup('ghcr.io'), undefined);
  });
});

describe('auths keys', () => {
  test("docker login's https://index.docker.io/v1/ key serves every Docker Hub name", async () => {
    const source = await sourceFor({ auths: { [dockerHubKey]: { auth: b64('hub:pw') } } });
    for (const registry of ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'Docker.IO']) {
      assert.deepEqual(await source.lookup(registry), { kind: 'basic', username: 'hub', password: 'pw' }, registry);
    }
  });

  test('docker.io, index.docker.io and registry-1.docker.io keys all mean Docker Hub', async () => {
    for (const key of ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'https://registry-1.docker.io/v2/']) {
      const source = await sourceFor({ auths: { [key]: { auth: b64('hub:pw') } } });
      assert.deepEqual(await source.lookup('docker.io'), { kind: 'basic', username: 'hub', password: 'pw' }, key);
    }
  });

  test('URL-form keys lose scheme and path', async () => {
    const source = await sourceFor({
      auths: {
        'https://myreg.example.com/v1/': { auth: b64('a:1') },
        'http://localhost:5000': { auth: b64('b:2') },
        'https://Quay.IO/v2/some/path': { auth: b64('c:3') },
      },
    });
    assert.deepEqual(await source.lookup('myreg.example.com'), { kind: 'basic', username: 'a', password: '1' });
    assert.deepEqual(await source.lookup('localhost:5000'), { kind: 'basic', username: 'b', password: '2' });
    assert.deepEqual(await source.lookup('quay.io', 'v2/some/path'), { kind: 'basic', username: 'c', password: '3' });
  });

  test('hosts match case-insensitively', async () => {
    const source = await sourceFor({ auths: { 'Registry.Example.com': { auth: b64('u:p') } } });
    assert.deepEqual(await source.lookup('registry.example.COM'), { kind: 'basic', username: 'u', password: 'p' });
  });

  test('a key in normalised form wins over an alias of the same registry, wherever it stands', async () => {
    const source = await sourceFor({
      auths: {
        'index.docker.io': { auth: b64('alias:1') },
        [dockerHubKey]: { auth: b64('login:2') },
        'https://quay.io/v1/': { auth: b64('url:3') },
        'quay.io': { auth: b64('plain:4') },
      },
    });
    assert.deepEqual(await source.lookup('docker.io'), { kind: 'basic', username: 'login', password: '2' });
    assert.deepEqual(await source.lookup('quay.io'), { kind: 'basic', username: 'plain', password: '4' });
  });

  test('a marker under the exact key does not hide a credential under an alias', async () => {
    const source = await sourceFor({ auths: { [dockerHubKey]: {}, 'docker.io': { auth: b64('u:p') } } });
    assert.deepEqual(await source.lookup('docker.io'), { kind: 'basic', username: 'u', password: 'p' });
  });

  test('namespaced keys: the most specific one wins (auth.json)', async () => {
    const source = await sourceFor({
      auths: {
        'quay.io': { auth: b64('registry:0') },
        'quay.io/org': { auth: b64('org:1') },
        'quay.io/org/repo': { auth: b64('repo:2') },
      },
    });
    const user = async (repository?: string) => {
      const credential = await source.lookup('quay.io', repository);
      return credential?.kind === 'basic' ? credential.username : credential?.kind;
    };
    assert.equal(await user('org/repo'), 'repo');
    assert.equal(await user('org/repo/nested'), 'repo');
    assert.equal(await user('org/other'), 'org');
    assert.equal(await user('organisation/x'), 'registry'); // prefixes match whole path components only
    assert.equal(await user('else/x'), 'registry');
    assert.equal(await user(), 'registry');
  });

  test('a namespaced key alone does not apply to the registry as a whole', async () => {
    const source = await sourceFor({ auths: { 'quay.io/org/': { auth: b64('org:1') } } });
    assert.equal(await source.lookup('quay.io'), undefined);
    assert.deepEqual(await source.lookup('quay.io', 'org/app'), { kind: 'basic', username: 'org', password: '1' });
  });

  test('namespaced keys on Docker Hub', async () => {
    const source = await sourceFor({ auths: { 'docker.io/library': { auth: b64('lib:1') } } });
    assert.deepEqual(await source.lookup('index.docker.io', 'library/nginx'), { kind: 'basic', username: 'lib', password: '1' });
  });
});

describe('credential helpers inside one file', () => {
  const file = {
    credHelpers: { 'ghcr.io': 'gh', [dockerHubKey]: 'hubhelper' },
    credsStore: 'store',
    auths: { 'ghcr.io': { auth: b64('file:ghcr') }, 'quay.io': { auth: b64('file:quay') }, 'gcr.io': {} },
  };

  test('credHelpers[registry] comes before credsStore and auths', async () => {
    const { run, calls } = fakeRunner({ 'gh ghcr.io': { Username: 'helper', Secret: 'gh-secret' } });
    const source = await sourceFor(file, run);
    assert.deepEqual(await source.lookup('ghcr.io'), { kind: 'basic', username: 'helper', password: 'gh-secret' });
    assert.deepEqual(calls, ['gh ghcr.io']);
  });

  test('credsStore comes before auths for registries without their own helper', async () => {
    const { run, calls } = fakeRunner({ 'store quay.io': { Username: 'stored', Secret: 's' } });
    const source = await sourceFor(file, run);
    assert.deepEqual(await source.lookup('quay.io'), { kind: 'basic', username: 'stored', password: 's' });
    assert.deepEqual(calls, ['store quay.io']);
  });

  test('when the helper has nothing, the auths entry of the same file counts', async () => {
    const { run, calls } = fakeRunner({});
    const source = await sourceFor(file, run);
    assert.deepEqual(await source.lookup('ghcr.io'), { kind: 'basic', username: 'file', password: 'ghcr' });
    assert.deepEqual(await source.lookup('quay.io'), { kind: 'basic', username: 'file', password: 'quay' });
    assert.equal(await source.lookup('gcr.io'), undefined); // a marker, and the store has nothing
    assert.deepEqual(calls, ['gh ghcr.io', 'store quay.io', 'store gcr.io']);
  });

  test('Docker Hub helpers are asked about https://index.docker.io/v1/, whatever the key or name', async () => {
    const { run, calls } = fakeRunner({ [`hubhelper ${dockerHubKey}`]: { Username: 'hub', Secret: 'pw' } });
    const source = await sourceFor(file, run);
    assert.deepEqual(await source.lookup('registry-1.docker.io'), { kind: 'basic', username: 'hub', password: 'pw' });
    assert.deepEqual(calls, [`hubhelper ${dockerHubKey}`]);

    const byShortKey = fakeRunner({ [`hub2 ${dockerHubKey}`]: { Username: 'hub', Secret: 'pw' } });
    const other = await sourceFor({ credHelpers: { 'docker.io': 'hub2' } }, byShortKey.run);
    assert.deepEqual(await other.lookup('docker.io'), { kind: 'basic', username: 'hub', password: 'pw' });
  });

  test('credHelpers keys match hosts case-insensitively and in URL form', async () => {
    const { run, calls } = fakeRunner({ 'ecr-login 123.dkr.ecr.eu-west-1.amazonaws.com': { Username: 'AWS', Secret: 'x' } });
    const source = await sourceFor({ credHelpers: { 'https://123.DKR.ecr.eu-west-1.amazonaws.com': 'ecr-login' } }, run);
    assert.deepEqual(await source.lookup('123.dkr.ecr.eu-west-1.amazonaws.com'), { kind: 'basic', username: 'AWS', password: 'x' });
    assert.deepEqual(calls, ['ecr-login 123.dkr.ecr.eu-west-1.amazonaws.com']);
  });

  test('a helper user "<token>" means an identity token', async () => {
    const { run } = fakeRunner({ 'acr myacr.azurecr.io': { Username: '<token>', Secret: 'refresh' } });
    const source = await sourceFor({ credsStore: 'acr' }, run);
    assert.deepEqual(await source.lookup('myacr.azurecr.io'), { kind: 'identityToken', token: 'refresh' });
  });

  test('a helper answer with an empty secret is no credential', async () => {
    const { run } = fakeRunner({ 'store quay.io': { Username: 'u', Secret: '' } });
    const source = await sourceFor({ credsStore: 'store' }, run);
    assert.equal(await source.lookup('quay.io'), undefined);
  });

  test('a helper failure reaches the caller', async () => {
    const failing: HelperRunner = async (helper) => {
      throw new ConfigError(`credential helper docker-credential-${helper} failed`);
    };
    const source = await sourceFor({ credsStore: 'broken' }, failing);
    await assertConfigError(source.lookup('quay.io'), /^credential helper docker-credential-broken failed$/);
  });

  test('no helper runs for a file without helpers', async () => {
    const source = await sourceFor({ auths: { 'quay.io': { auth: b64('u:p') } } }, noHelper);
    assert.equal(await source.lookup('ghcr.io'), undefined);
  });

  test('helperServerUrl', () => {
    assert.equal(helperServerUrl('docker.io'), dockerHubKey);
    assert.equal(helperServerUrl('registry-1.docker.io'), dockerHubKey);
    assert.equal(helperServerUrl('Quay.io'), 'quay.io');
    assert.equal(helperServerUrl('localhost:5000'), 'localhost:5000');
  });
});

describe('which files, in which order', () => {
  /** A home with ~/.docker/config.json, a $DOCKER_CONFIG dir, an auth.json and an explicit file, each with its own user. */
  async function layout() {
    const home = await tempDir();
    await mkdir(join(home, '.docker'));
    const entry = (user: string) => ({ auths: { 'quay.io': { auth: b64(`${user}:pw`) }, [`${user}.only`]: { auth: b64(`${user}:pw`) } } });
    await writeFile(join(home, '.docker', 'config.json'), JSON.stringify(entry('home')));
    const dockerConfigDir = await tempDir();
    await writeFile(join(dockerConfigDir, 'config.json'), JSON.stringify(entry('dockerconfig')));
    const authFile = await configFile(entry('podman'), 'auth.json');
    const explicit = await configFile(entry('explicit'));
    return { home, dockerConfigDir, authFile, explicit };
  }

  async function userFor(options: CredentialSourceOptions, registry = 'quay.io'): Promise<string | undefined> {
    const credential = await (await loadCredentialSource({ runHelper: noHelper, ...options })).lookup(registry);
    return credential?.kind === 'basic' ? credential.username : undefined;
  }

  test('--registry-config, then $DOCKER_CONFIG, then $REGISTRY_AUTH_FILE', async () => {
    const { home, dockerConfigDir, authFile, explicit } = await layout();
    const env = { DOCKER_CONFIG: dockerConfigDir, REGISTRY_AUTH_FILE: authFile };
    assert.equal(await userFor({ configFile: explicit, env, homeDir: home }), 'explicit');
    assert.equal(await userFor({ env, homeDir: home }), 'dockerconfig');
    assert.equal(await userFor({ env: { REGISTRY_AUTH_FILE: authFile }, homeDir: await tempDir() }), 'podman');
  });

  test('a registry only the later file knows is still found', async () => {
    const { home, dockerConfigDir, authFile, explicit } = await layout();
    const options = { configFile: explicit, env: { DOCKER_CONFIG: dockerConfigDir, REGISTRY_AUTH_FILE: authFile }, homeDir: home };
    assert.equal(await userFor(options, 'podman.only'), 'podman');
    assert.equal(await userFor(options, 'dockerconfig.only'), 'dockerconfig');
    assert.equal(await userFor(options, 'home.only'), undefined); // $DOCKER_CONFIG replaces ~/.docker
  });

  test('~/.docker/config.json when $DOCKER_CONFIG is unset or empty', async () => {
    const { home } = await layout();
    assert.equal(await userFor({ env: {}, homeDir: home }), 'home');
    assert.equal(await userFor({ env: { DOCKER_CONFIG: '', REGISTRY_AUTH_FILE: '' }, homeDir: home }), 'home');
  });

  test('a marker in an earlier file does not hide a credential in a later one', async () => {
    const home = await tempDir();
    const explicit = await configFile({ auths: { 'quay.io': {} } });
    const authFile = await configFile({ auths: { 'quay.io': { auth: b64('podman:pw') } } }, 'auth.json');
    assert.equal(await userFor({ configFile: explicit, env: { REGISTRY_AUTH_FILE: authFile }, homeDir: home }), 'podman');
  });

  test('missing implicit files are fine', async () => {
    const home = await tempDir();
    const env = { DOCKER_CONFIG: join(home, 'nope'), REGISTRY_AUTH_FILE: join(home, 'nope', 'auth.json') };
    assert.equal(await userFor({ env, homeDir: home }), undefined);
    assert.equal(await userFor({ env: {}, homeDir: join(home, 'no-home') }), undefined);
  });

  test('an explicit --registry-config that does not exist is an error naming it', async () => {
    const missing = join(await tempDir(), 'missing.json');
    await assertConfigError(
      loadCredentialSource({ configFile: missing, env: {}, homeDir: await tempDir() }),
      new RegExp(`^cannot read credentials file ${escape(missing)}: no such file$`),
    );
  });

  test('a directory where a file should be is an error', async () => {
    const dir = await tempDir();
    await assertConfigError(
      loadCredentialSource({ configFile: dir, env: {}, homeDir: await tempDir() }),
      new RegExp(`^cannot read credentials file ${escape(dir)}: it is a directory$`),
    );
  });

  test('an empty file is an empty configuration', async () => {
    const source = await loadCredentialSource({ configFile: await configFile(''), env: {}, homeDir: await tempDir() });
    assert.equal(await source.lookup('quay.io'), undefined);
  });
});

describe('malformed files: one line naming the file and the problem, never a secret', () => {
  const secret = 'S3cr3tV4lue';
  const cases: [string, unknown, string][] = [
    ['truncated JSON', `{"auths": {"quay.io": {"auth": "${secret}"}}`, 'not valid JSON \\(line 1, column 47\\)'],
    ['JSON with a bare word', `{"auths": {"quay.io": {"auth": ${secret}}}}`, 'not valid JSON$'],
    ['JSON over lines', `{\n  "auths": {\n    "quay.io": {"password": "${secret}",}\n  }\n}`, 'not valid JSON \\(line 3, column 43\\)'],
    ['an unterminated string', `{"auths": {"quay.io": {"auth": "${secret}`, 'not valid JSON \\(line 1, column 44\\)'],
    ['a top-level array', [secret], 'expected a JSON object'],
    ['auths as an array', { auths: [secret] }, '"auths" must be an object'],
    ['an entry that is a string', { auths: { 'quay.io': secret } }, 'auths\\["quay.io"\\] must be an object'],
    ['auth that is not base64', { auths: { 'quay.io': { auth: `${secret}!!` } } }, 'auths\\["quay.io"\\].auth is not valid base64'],
    ['auth without ":"', { auths: { 'quay.io': { auth: b64(secret) } } }, 'auths\\["quay.io"\\].auth must encode "username:password" but has no ":"'],
    ['a password that is a number', { auths: { 'quay.io': { username: 'u', password: 12345 } } }, 'auths\\["quay.io"\\].password must be a string'],
    ['credHelpers as a string', { credHelpers: secret }, '"credHelpers" must be an object'],
    ['a helper name with a path', { credHelpers: { 'quay.io': '../../bin/sh' } }, 'credHelpers\\["quay.io"\\] must name a helper, such as "ecr-login"'],
    ['a credsStore that is not a string', { credsStore: { secret } }, '"credsStore" must name a helper, such as "desktop"'],
  ];
  for (const [what, content, problem] of cases) {
    test(what, async () => {
      const path = await configFile(content);
      await assertConfigError(
        loadCredentialSource({ configFile: path, env: {}, homeDir: await tempDir(), runHelper: noHelper }),
        new RegExp(`^invalid credentials file ${escape(path)}: ${problem}`),
        [secret, 'S3cr3t'],
      );
    });
  }

  test('a malformed implicit file is an error too', async () => {
    const dockerConfigDir = await tempDir();
    await writeFile(join(dockerConfigDir, 'config.json'), '{"auths": ');
    await assertConfigError(
      loadCredentialSource({ env: { DOCKER_CONFIG: dockerConfigDir }, homeDir: await tempDir() }),
      new RegExp(`^invalid credentials file ${escape(join(dockerConfigDir, 'config.json'))}: not valid JSON \\(it ends too early\\)$`),
    );
  });
});

describe('memoizeHelperRunner', () => {
  test('asks each (helper, server) once, also when asked concurrently', async () => {
    const { run, calls } = fakeRunner({ 'h a.example': { Username: 'u', Secret: 's' } });
    const cached = memoizeHelperRunner(run);
    const answers = await Promise.all([cached('h', 'a.example'), cached('h', 'a.example'), cached('h', 'b.example')]);
    assert.deepEqual(await cached('h', 'a.example'), { Username: 'u', Secret: 's' });
    assert.deepEqual(await cached('other', 'a.example'), undefined);
    assert.deepEqual(answers, [{ Username: 'u', Secret: 's' }, { Username: 'u', Secret: 's' }, undefined]);
    assert.deepEqual(calls, ['h a.example', 'h b.example', 'other a.example']);
  });

  test('"not found" is an answer and is remembered; a failure is not', async () => {
    let runs = 0;
    const cached = memoizeHelperRunner(async () => {
      runs++;
      if (runs === 1) throw new Error('helper crashed');
      return undefined;
    });
    await assert.rejects(cached('h', 'a.example'), /helper crashed/);
    assert.equal(await cached('h', 'a.example'), undefined);
    assert.equal(await cached('h', 'a.example'), undefined);
    assert.equal(runs, 2);
  });
});

describe('the default helper runner, end to end with docker-credential-fake on PATH', () => {
  let binDir = '';
  let savedPath: string | undefined;
  const script = `#!/bin/sh
# Answers like docker-credential-helpers do; logs each server URL it is asked about, as received.
server=$(cat)
printf '%s|' "$server" >> "$(dirname "$0")/calls.log"
case "$server" in
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"hubuser","Secret":"hub-S3cr3t"}\\n' "$server" ;;
  token.example) printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-S3cr3t"}' "$server" ;;
  broken.example) echo "error: keychain is locked; run 'unlock' first" >&2; exit 3 ;;
  leaky.example) echo '{"Username":"u","Secret":"leaked-S3cr3t"}'; exit 1 ;;
  garbage.example) echo 'user=u password=garbage-S3cr3t' ;;
  partial.example) echo '{"Username":"u"}' ;;
  slow.example) exec sleep 5 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;

  before(async () => {
    binDir = await tempDir();
    const path = join(binDir, 'docker-credential-fake');
    await writeFile(path, script);
    await chmod(path, 0o755);
    savedPath = process.env['PATH'];
    process.env['PATH'] = `${binDir}:${savedPath ?? ''}`;
  });

  after(() => {
    process.env['PATH'] = savedPath;
  });

  const run = createHelperRunner();
  const calls = async () => (await readFile(join(binDir, 'calls.log'), 'utf8').catch(() => '')).split('|').filter((c) => c !== '');

  test('a Docker Hub credential through loadCredentialSource and the default runner', async () => {
    const config = await configFile({ credsStore: 'fake', auths: { [dockerHubKey]: {} } });
    const source = await loadCredentialSource({ configFile: config, env: {}, homeDir: await tempDir() });
    assert.deepEqual(await source.lookup('docker.io'), { kind: 'basic', username: 'hubuser', password: 'hub-S3cr3t' });
    // The server URL arrives on stdin exactly, without a trailing newline.
    assert.deepEqual(await calls(), [dockerHubKey]);
  });

  test('the default runner caches answers for the process lifetime', async () => {
    const before = (await calls()).length;
    assert.deepEqual(await defaultHelperRunner('fake', 'token.example'), { Username: '<token>', Secret: 'refresh-S3cr3t' });
    assert.deepEqual(await defaultHelperRunner('fake', 'token.example'), { Username: '<token>', Secret: 'refresh-S3cr3t' });
    assert.deepEqual((await calls()).slice(before), ['token.example']);
  });

  test('"credentials not found" with a non-zero exit means no credential', async () => {
    assert.equal(await run('fake', 'unknown.example'), undefined);
  });

  test('other failures name the helper, the server and its complaint', async () => {
    await assertConfigError(
      run('fake', 'broken.example'),
      /^credential helper docker-credential-fake failed for broken.example \(exit code 3\): error: keychain is locked; run 'unlock' first$/,
    );
  });

  test('output that could carry the secret is never quoted', async () => {
    await assertConfigError(run('fake', 'leaky.example'), /^credential helper docker-credential-fake failed for leaky.example \(exit code 1\)$/, [
      'S3cr3t',
    ]);
    await assertConfigError(
      run('fake', 'garbage.example'),
      /^credential helper docker-credential-fake answered for garbage.example with something other than JSON$/,
      ['S3cr3t'],
    );
    await assertConfigError(
      run('fake', 'partial.example'),
      /^credential helper docker-credential-fake answered for partial.example without a Username and Secret string$/,
    );
  });

  test('a helper that is not installed', async () => {
    await assertConfigError(run('no-such-helper-here', 'quay.io'), /^credential helper docker-credential-no-such-helper-here is not installed \(not found on PATH\)$/);
  });

  test('a helper that does not answer in time is stopped', async () => {
    const started = Date.now();
    await assertConfigError(
      createHelperRunner({ timeoutMs: 200 })('fake', 'slow.example'),
      /^credential helper docker-credential-fake did not answer for slow.example within 0.2 s$/,
    );
    assert.ok(Date.now() - started < 4000, 'the helper was killed, not waited for');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
