// A real, certified OpenID provider (the npm package oidc-provider, pinned by package-lock.json)
// on loopback, for the portal's interoperability test. Nothing here is ours but the settings.
//
//   OIDC_CLIENT_ID=... OIDC_CLIENT_SECRET=... OIDC_REDIRECT_URI=... node server.mjs [port]
//
// The port (argv or PORT, default 0 = any free one) is bound before the provider is made, so
// the issuer names the port really listened on. When listening it prints one line to stdout:
//   oidc-peer ready http://127.0.0.1:<port>
// Sign-in uses the package's own development login and consent pages (devInteractions): any
// login name is accepted and becomes the subject.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import process from 'node:process';

import Provider from 'oidc-provider';

const HOST = '127.0.0.1';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`oidc-peer: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const client = {
  client_id: required('OIDC_CLIENT_ID'),
  client_secret: required('OIDC_CLIENT_SECRET'),
  redirect_uris: [required('OIDC_REDIRECT_URI')],
  response_types: ['code'],
  grant_types: ['authorization_code'],
  // What the portal's generic OAuth 2 code sends (Authlib, client_secret_post).
  token_endpoint_auth_method: 'client_secret_post',
};
const port = Number(process.argv[2] ?? process.env.PORT ?? 0);

// A fresh signing key per run, published at jwks_uri with a key id.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `peer-${randomBytes(6).toString('hex')}`,
  alg: 'RS256',
  use: 'sig',
};

const server = createServer();
server.listen(port, HOST, () => {
  const issuer = `http://${HOST}:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [client],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true }, // S256 is the only method this version knows
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
    },
    claims: {
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name'],
      email: ['email', 'email_verified'],
    },
    // Put the scope's claims in the id_token as well (as Google does); the spec's default
    // (true) would serve them from the userinfo endpoint only.
    conformIdTokenClaims: false,
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            name: `Peer ${sub}`,
            given_name: 'Peer',
            family_name: sub,
            email: `${sub}@peer.example`,
            email_verified: true,
          };
        },
      };
    },
  });
  provider.on('server_error', (ctx, error) => console.error('oidc-peer server_error:', error));
  server.on('request', provider.callback());
  console.log(`oidc-peer ready ${issuer}`);
});

server.on('error', (error) => {
  console.error('oidc-peer:', error.message);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
