// A real OpenID Connect provider for Terracube's tests: the certified `oidc-provider` package with
// fresh RS256 signing keys made at every start (so a restart is a key rotation).
//
//   node provider.mjs <port>
//
// Clients (secrets are test constants, mirrored in tests/oidc_issuer.py):
//   robot-a, robot-b  confidential, client_credentials; their access tokens are JWTs (resource indicator
//                     with accessTokenFormat 'jwt'), checked by Terracube against the JWKS
//   terracube         public (no secret): authorization code + PKCE, device code + PKCE, refresh tokens;
//                     its access tokens are opaque, checked by Terracube at the userinfo endpoint
// Users log in through oidc-provider's development interactions (any login name, any password).
//
// Test-only routes under /test/: GET /test/requests counts the requests Terracube makes (discovery,
// JWKS, userinfo); POST /test/outage?on=1|0 makes those answer 503 (an outage that can still be
// counted); POST /test/sign signs the posted JSON claims with the current key (expired tokens, other issuers).
import crypto from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.argv[2] || 9000);
const issuer = `http://127.0.0.1:${port}`;
const RESOURCE = 'https://terracube.test/openeo';
const AUDIENCE = 'terracube';

function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
}

const key = signingKey();
const GROUPS = { 'robot-a': ['eo-users', 'terracube-admins'], 'robot-b': ['eo-users'] };

const provider = new Provider(issuer, {
  jwks: { keys: [key] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  clients: [
    ...Object.keys(GROUPS).map((id) => ({
      client_id: id,
      client_secret: `${id}-secret-for-tests-only`,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
    })),
    {
      client_id: 'terracube',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
      // a native client: the openEO Python client's redirect catcher listens on a loopback port of its choice
      application_type: 'native',
      redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
    },
  ],
  claims: { openid: ['sub', 'name', 'preferred_username', 'groups'] },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, name: `User ${sub}`, preferred_username: sub, groups: ['eo-users'] };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // client credentials are for the openEO API (a JWT); logins of people stay opaque (userinfo)
      defaultResource: (ctx, client, oneOf) => (ctx.oidc.params?.grant_type === 'client_credentials' ? RESOURCE : oneOf),
      useGrantedResource: () => false,
      getResourceServerInfo: () => ({
        scope: 'openid',
        audience: AUDIENCE,
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => (token.kind === 'ClientCredentials' ? { groups: GROUPS[token.clientId] || [] } : undefined),
  issueRefreshToken: (ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  pkce: { required: () => true },
});

const counts = { discovery: 0, jwks: 0, userinfo: 0, token: 0 };
let outage = false;
const COUNTED = { '/.well-known/openid-configuration': 'discovery', '/jwks': 'jwks', '/me': 'userinfo', '/token': 'token' };

function sign(claims) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode({ alg: 'RS256', kid: key.kid, typ: 'at+jwt' })}.${encode(claims)}`;
  const pem = crypto.createPrivateKey({ key, format: 'jwk' });
  return `${input}.${crypto.sign('sha256', Buffer.from(input), pem).toString('base64url')}`;
}

async function readJson(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return JSON.parse(body || '{}');
}

provider.use(async (ctx, next) => {
  const counted = COUNTED[ctx.path];
  if (counted) {
    counts[counted] += 1;
    if (outage && counted !== 'token') {
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable' };
      return;
    }
  }
  if (ctx.path === '/test/requests') {
    ctx.body = counts;
    return;
  }
  if (ctx.path === '/test/outage' && ctx.method === 'POST') {
    outage = ctx.query.on === '1';
    ctx.body = { outage };
    return;
  }
  if (ctx.path === '/test/sign' && ctx.method === 'POST') {
    ctx.body = { token: sign(await readJson(ctx.req)) };
    return;
  }
  await next();
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}, key ${key.kid}`);
});
