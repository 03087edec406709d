// The compose stack's one-shot `setup` service: through the relay's API, create the tunnel
// `onprem` and hand its token to the agent (a file in a shared volume, read with --token-file),
// wait for the agent to come online, create the ground2cloud instance `crm` on the private
// database, and print the Authorization header and a curl that lists its contacts.
// Runs again harmlessly: what exists is reused, a lost token is rotated.
//
// Environment: G2C_RELAY_URL, G2C_PUBLIC_URL (for the printed curl), G2C_CREDENTIALS_FILE (the
// relay's bootstrap credentials.json), G2C_TOKEN_FILE, G2C_SETUP_DIR (state: the element token),
// CRM_DB_HOST, CRM_DB_NAME, CRM_APP_PASSWORD.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) fail(`${name} is not set`);
  return value;
};
const relayUrl = env('G2C_RELAY_URL', 'http://relay:8080').replace(/\/$/, '');
const publicUrl = env('G2C_PUBLIC_URL', 'http://localhost:8080').replace(/\/$/, '');
const credentialsFile = env('G2C_CREDENTIALS_FILE', '/var/lib/g2c/credentials.json');
const tokenFile = env('G2C_TOKEN_FILE', '/run/g2c/token');
const stateDir = env('G2C_SETUP_DIR', '/var/lib/g2c-setup');
const api = `${relayUrl}/elements/api-v2`;

function fail(message) {
  console.error(`setup: ${message}`);
  process.exit(1);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every second until it returns a value, at most `seconds` times. */
async function waitFor(what, seconds, check) {
  let last;
  for (let i = 0; i < seconds; i++) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await sleep(1000);
  }
  fail(`${what}: still not there after ${seconds} s${last ? ` (${last.message})` : ''}`);
}

async function call(method, path, { auth, body, ok = [200] } = {}) {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!ok.includes(response.status)) {
    fail(`${method} ${path} answered ${response.status}: ${json?.message ?? text}`);
  }
  return { status: response.status, json };
}

async function writePrivate(file, content) {
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(`${file}.tmp`, content, { mode: 0o600 });
  await rename(`${file}.tmp`, file); // the agent never reads half a token
}

console.log(`setup: waiting for the relay at ${relayUrl}`);
await waitFor('relay /readyz', 120, async () => (await fetch(`${relayUrl}/readyz`)).ok);
const credentials = await waitFor('the relay bootstrap credentials', 60, async () =>
  JSON.parse(await readFile(credentialsFile, 'utf8')),
);
const platform = `User ${credentials.userSecret}, Organization ${credentials.organizationSecret}`;

// 1. The tunnel and the agent's token.
const tunnels = (await call('GET', '/tunnels', { auth: platform })).json;
let tunnel = tunnels.find((t) => t.name === 'onprem');
if (!tunnel) {
  tunnel = (await call('POST', '/tunnels', { auth: platform, body: { name: 'onprem' } })).json;
  await writePrivate(tokenFile, `${tunnel.token}\n`);
  console.log(`setup: created tunnel onprem (${tunnel.id}); token written to ${tokenFile}`);
} else if (!existsSync(tokenFile)) {
  const { token } = (await call('POST', `/tunnels/${tunnel.id}/token`, { auth: platform })).json;
  await writePrivate(tokenFile, `${token}\n`);
  console.log(`setup: tunnel onprem exists; rotated its token into ${tokenFile}`);
} else {
  console.log(`setup: tunnel onprem (${tunnel.id}) and its token already exist`);
}

console.log('setup: waiting for the agent to connect');
await waitFor('the agent online on tunnel onprem', 120, async () => {
  const { json } = await call('GET', `/tunnels/${tunnel.id}`, { auth: platform });
  return json.status === 'online';
});

// 2. The ground2cloud instance. Its element token is shown once; keep it for the next run.
const stateFile = join(stateDir, 'crm-instance.json');
const saved = existsSync(stateFile) ? JSON.parse(await readFile(stateFile, 'utf8')) : undefined;
const instances = (await call('GET', '/instances', { auth: platform })).json;
let instance = instances.find((i) => i.name === 'crm');
if (instance && saved?.id !== instance.id) {
  await call('DELETE', `/instances/${instance.id}`, { auth: platform, ok: [200, 204] });
  instance = undefined;
}
let elementToken = saved?.token;
if (!instance) {
  const created = await call('POST', '/instances', {
    auth: platform,
    body: {
      element: { key: 'postgresql' },
      name: 'crm',
      configuration: {
        'db.host': env('CRM_DB_HOST', 'private-db:5432'),
        'db.name': env('CRM_DB_NAME', 'crm'),
        username: env('CRM_DB_USER', 'app'),
        password: env('CRM_APP_PASSWORD'),
        'connection.type': 'ground2cloud',
        'ground2cloud.tunnel': 'onprem',
      },
    },
  });
  instance = created.json;
  elementToken = instance.token;
  await writePrivate(stateFile, JSON.stringify({ id: instance.id, token: elementToken }));
  console.log(`setup: created ground2cloud instance crm (${instance.id})`);
} else {
  console.log(`setup: instance crm (${instance.id}) already exists`);
}

// 3. Prove it and say how to call it.
const auth = `${platform}, Element ${elementToken}`;
const { json: contacts } = await call('GET', '/contacts?pageSize=3&orderBy=id', { auth });
console.log(`setup: GET /contacts?pageSize=3 through the tunnel -> ${contacts.length} rows:`);
for (const c of contacts) console.log(`  ${c.id}  ${c.first_name} ${c.last_name} <${c.email}>`);
console.log(`
The stack is ready. The relay's API is at ${publicUrl}/elements/api-v2
(this log holds development credentials; keep it private):

  export G2C_AUTH='${auth}'
  curl -s -H "Authorization: $G2C_AUTH" '${publicUrl}/elements/api-v2/contacts?where=status%3D%27customer%27&pageSize=5'
`);
