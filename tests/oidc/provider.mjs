// A real OpenID provider (the certified npm `oidc-provider`) for smshub's OIDC tests.
//
// Usage: PORT=… KID=… node provider.mjs
// Issuer http://127.0.0.1:PORT. It mints JWT access tokens with the client_credentials grant
// and a resource indicator: `aud` is the `resource` asked for, `scope` the scopes asked for.
// Clients (secret "secret"): `hub-test` (RS256, 10 min), `short` (RS256, 1 s), `ec` (ES256).
// Its signing keys are made at start, named KID-rsa and KID-ec: starting it again with
// another KID is a key rotation. Prints "ready" once it listens.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const kid = process.env.KID || 'k1';
const issuer = `http://127.0.0.1:${port}`;
const scopes = 'legacy:read messages:send messages:read messages:read_all inbox:read devices:read devices:write admin';

const key = (type, options, name) => {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid: `${kid}-${name}`, use: 'sig' };
};
const rsa = { ...key('rsa', { modulusLength: 2048 }, 'rsa'), alg: 'RS256' };
const ec = { ...key('ec', { namedCurve: 'P-256' }, 'ec'), alg: 'ES256' };

const client = (client_id) => ({
  client_id,
  client_secret: 'secret',
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_post',
  scope: scopes,
});

const provider = new Provider(issuer, {
  clients: [client('hub-test'), client('short'), client('ec')],
  scopes: ['openid', ...scopes.split(' ')],
  jwks: { keys: [rsa, ec] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: scopes,
        audience: resource,
        accessTokenTTL: client.clientId === 'short' ? 1 : 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: client.clientId === 'ec' ? 'ES256' : 'RS256' } },
      }),
    },
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log('ready');
});
