// ECR credentials: which hosts are ECR's, how GetAuthorizationToken's answer becomes a credential,
// and when it is asked again. The ECR client is faked here (a unit test of the caching and decoding
// logic, with a clock we move); test/integration/ecr.test.ts asks a real ECR API (moto's).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { EcrClients } from '../../../src/auth/aws.ts';
import { EcrCredentials } from '../../../src/auth/ecr.ts';
import { createKeychain } from '../../../src/auth/keychain.ts';
import { RegistryProviders } from '../../../src/auth/provider.ts';
import { AuthError } from '../../../src/errors.ts';

describe('registry providers', () => {
  const providers = new RegistryProviders(new Map([['LOCALHOST:5000', 'aws'], ['mirror.example.com', 'generic']]));
  const cases: Array<[string, string, { account?: string; region?: string } | undefined]> = [
    ['123456789012.dkr.ecr.eu-west-1.amazonaws.com', 'aws', { account: '123456789012', region: 'eu-west-1' }],
    ['123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com', 'aws', { account: '123456789012', region: 'us-gov-west-1' }],
    ['123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn', 'aws', { account: '123456789012', region: 'cn-north-1' }],
    ['localhost:5000', 'aws', { account: undefined, region: undefined }],
    ['europe-west1-docker.pkg.dev', 'gcp', undefined],
    ['gcr.io', 'gcp', undefined],
    ['eu.gcr.io', 'gcp', undefined],
    ['acme.azurecr.io', 'azure', undefined],
    ['acme.azurecr.cn', 'azure', undefined],
    ['mirror.example.com', 'generic', undefined],
    ['docker.io', 'generic', undefined],
    // Not ECR: a look-alike under another domain, a short account id, public ECR.
    ['123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example', 'generic', undefined],
    ['12345.dkr.ecr.eu-west-1.amazonaws.com', 'generic', undefined],
    ['public.ecr.aws', 'generic', undefined],
  ];
  for (const [host, provider, ecr] of cases) {
    test(`${host} is ${provider}`, () => {
      assert.equal(providers.providerOf(host), provider);
      assert.deepEqual(providers.ecrHost(host), ecr);
    });
  }
});

/** A fake ECR client answering GetAuthorizationToken from `answer`, counting calls. */
function fakeClients(answer: () => Promise<unknown>) {
  const calls: unknown[] = [];
  const clients = {
    client: async (region: string | undefined) => ({
      send: async (command: { input: unknown }) => {
        calls.push({ region, input: command.input });
        return answer();
      },
    }),
  } as unknown as EcrClients;
  return { clients, calls };
}

const token = (password: string, expiresAt?: Date) => async () => ({
  authorizationData: [{ authorizationToken: Buffer.from(`AWS:${password}`).toString('base64'), ...(expiresAt ? { expiresAt } : {}) }],
});

const host = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';

describe('ECR credentials', () => {
  test('the token decodes to basic credentials for the account and region the host names; concurrent lookups ask once', async () => {
    const { clients, calls } = fakeClients(token('secret:with:colons'));
    const source = new EcrCredentials(new RegistryProviders(), clients);
    const answers = await Promise.all([source.lookup(host), source.lookup(host), source.lookup(host)]);
    for (const answer of answers) assert.deepEqual(answer, { kind: 'basic', username: 'AWS', password: 'secret:with:colons' });
    assert.deepEqual(calls, [{ region: 'eu-west-1', input: { registryIds: ['123456789012'] } }]);
  });

  test('a host that is not ECR gets nothing and asks nothing', async () => {
    const { clients, calls } = fakeClients(token('x'));
    const source = new EcrCredentials(new RegistryProviders(), clients);
    assert.equal(await source.lookup('registry.example.com'), undefined);
    assert.equal(calls.length, 0);
  });

  test('the token is renewed 15 minutes before it expires, not before', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    let n = 0;
    const { clients, calls } = fakeClients(async () => token(`p${++n}`, new Date(now + 12 * 3600_000))());
    const source = new EcrCredentials(new RegistryProviders(), clients, () => now);
    assert.deepEqual(await source.lookup(host), { kind: 'basic', username: 'AWS', password: 'p1' });
    now += 11 * 3600_000 + 44 * 60_000;
    assert.deepEqual(await source.lookup(host), { kind: 'basic', username: 'AWS', password: 'p1' });
    now += 2 * 60_000;
    assert.deepEqual(await source.lookup(host), { kind: 'basic', username: 'AWS', password: 'p2' });
    assert.equal(calls.length, 2);
  });

  test('an expiry already past on arrival (moto says 2015) is not trusted: the token is kept, not asked for each request', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const { clients, calls } = fakeClients(token('old', new Date('2015-01-01T00:00:00Z')));
    const source = new EcrCredentials(new RegistryProviders(), clients, () => now);
    for (let i = 0; i < 5; i++) await source.lookup(host);
    now += 11 * 3600_000;
    await source.lookup(host);
    assert.equal(calls.length, 1);
  });

  test('a refusal is one AuthError line naming the action and the registry, and is not remembered', async () => {
    let refuse = true;
    const denied = Object.assign(new Error('User: arn:aws:sts::123456789012:assumed-role/x/y is not authorized to perform: ecr:GetAuthorizationToken'), { name: 'AccessDeniedException' });
    const { clients } = fakeClients(async () => {
      if (refuse) throw denied;
      return token('later')();
    });
    const source = new EcrCredentials(new RegistryProviders(), clients);
    await assert.rejects(source.lookup(host), (err: unknown) => {
      assert.ok(err instanceof AuthError);
      assert.match(err.message, /^123456789012\.dkr\.ecr\.eu-west-1\.amazonaws\.com: AWS refused ecr:GetAuthorizationToken on registry 123456789012 \(AccessDeniedException\)/);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    refuse = false;
    assert.deepEqual(await source.lookup(host), { kind: 'basic', username: 'AWS', password: 'later' });
  });

  test('a 403 whose body the SDK could not read (an emulator\'s XML, a proxy\'s page) is a refusal too', async () => {
    const unreadable = Object.assign(new SyntaxError('Unexpected token \'<\''), { $metadata: { httpStatusCode: 403 } });
    const { clients } = fakeClients(async () => {
      throw unreadable;
    });
    await assert.rejects(new EcrCredentials(new RegistryProviders(), clients).lookup(host), (err: unknown) => err instanceof AuthError && /AWS refused ecr:GetAuthorizationToken on registry 123456789012 \(HTTP 403, access denied\)/.test(err.message));
  });

  test('a host named aws with no region anywhere is one AuthError line asking for AWS_REGION', async () => {
    const { clients } = fakeClients(async () => {
      throw new Error('Region is missing');
    });
    const source = new EcrCredentials(new RegistryProviders(new Map([['localhost:5000', 'aws']])), clients);
    await assert.rejects(source.lookup('localhost:5000'), (err: unknown) => err instanceof AuthError && err.message === 'localhost:5000: no AWS region for ecr:GetAuthorizationToken: set AWS_REGION (the host name does not say one)');
  });

  test('no identity at all is one AuthError line that says where the SDK looked', async () => {
    const missing = Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
    const { clients } = fakeClients(async () => {
      throw missing;
    });
    await assert.rejects(new EcrCredentials(new RegistryProviders(), clients).lookup(host), /no AWS identity for ecr:GetAuthorizationToken: .*AWS_WEB_IDENTITY_TOKEN_FILE/);
  });

  test('a token that is not "user:password" is refused without showing it', async () => {
    const { clients } = fakeClients(async () => ({ authorizationData: [{ authorizationToken: Buffer.from('nocolonsecret').toString('base64') }] }));
    await assert.rejects(new EcrCredentials(new RegistryProviders(), clients).lookup(host), (err: Error) => !err.message.includes('nocolonsecret') && /without a usable token/.test(err.message));
  });
});

describe('keychain', () => {
  test('an entry in the config files wins over the cloud identity; the cloud answers for the hosts no entry names', async () => {
    const files = { lookup: async (registry: string) => (registry === 'localhost:5000' ? { kind: 'basic' as const, username: 'file', password: 'from-file' } : undefined) };
    const keychain = createKeychain(files, new Map([['localhost:5000', 'aws'], ['localhost:6000', 'generic']]), { env: {}, channel: { postForm: () => assert.fail('no token exchange'), isInsecure: () => false } });
    assert.deepEqual(await keychain.credentials.lookup('localhost:5000'), { kind: 'basic', username: 'file', password: 'from-file' });
    assert.equal(await keychain.credentials.lookup('localhost:6000'), undefined);
    assert.equal(keychain.providers.providerOf('localhost:5000'), 'aws');
  });
});
