#!/usr/bin/env node
// `npm start`: a local Node-RED 4 (from devDependencies) with this package loaded and a demo flow
// deployed, then prints a demo token, a client command and the address of the demo page:
//   - /ws/echo     an HS256 echo listener (session scope)
//   - /ws/tenants  an HS256 listener with tenant scope and a flow that broadcasts what a tenant
//                  sends to that tenant's connections
//   - /demo        a page (served by the demo flow) with two panes connecting as tenant A or B,
//                  and a button that tries a tampered token
//   - /demo/tokens demo-only: tokens for tenant A and B, minted with the demo secret at deploy
//
//   PORT=1880                 port on 127.0.0.1 (default 1880); when it is taken the script says
//                             so and exits 1 without starting or deploying anything
//   WSPLUS_DEMO_USERDIR=dir   user dir (default .demo-userdir/ in the repository, gitignored)
//
// The user dir holds a generated settings.js (rewritten on every start), a package.json listing
// this package, a symlink node_modules/node-red-contrib-websocket-plus -> the repository, and the
// demo secret. Your own flows in that user dir are kept; only the "websocket-plus demo" tab is
// (re)deployed on each start.
'use strict';
const { spawn, execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const path = require('path');

const root = path.resolve(__dirname, '..');
const pkg = require(path.join(root, 'package.json'));
const host = '127.0.0.1';
const port = Number(process.env.PORT || 1880);
const userDir = path.resolve(process.env.WSPLUS_DEMO_USERDIR || path.join(root, '.demo-userdir'));

const DEMO_TAB = 'wsplus-demo-tab';
const DEMO_LISTENER = 'wsplus-demo-listener';
const DEMO_PATH = '/ws/echo';
const DEMO_TENANT = 'demo';
const TENANT_LISTENER = 'wsplus-demo-tenant-listener';
const TENANT_PATH = '/ws/tenants';
const PAGE_PATH = '/demo';
const TOKENS_PATH = '/demo/tokens';
/** The two tenants of the demo page: pane label -> tenant id and the subject of its token. */
const PAGE_TENANTS = { A: { tenant: 'tenant-a', sub: 'visitor-a' }, B: { tenant: 'tenant-b', sub: 'visitor-b' } };
const TOKEN_TTL = '1h';

if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}

/** Whether host:port can be bound right now (bound and released at once). */
function portIsFree() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err) => (err.code === 'EADDRINUSE' ? resolve(false) : reject(err)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

function exitPortTaken() {
  console.error(
    `websocket-plus demo: ${host}:${port} is already in use (another Node-RED, or an earlier npm start?).\n` +
      'Nothing was started or deployed. Stop that process, or pick another port: ' +
      `PORT=${port < 65535 ? port + 1 : 1881} npm start`,
  );
  process.exit(1);
}

/**
 * The line Node-RED logs once its server listens, in every language of its runtime catalogue.
 * Only after that line is the admin API on the port known to be this Node-RED's.
 */
function listeningLines(listenUrl) {
  const locales = path.join(
    path.dirname(require.resolve('@node-red/runtime/package.json', { paths: [root] })),
    'locales',
  );
  const lines = [];
  for (const lang of fs.readdirSync(locales)) {
    const text = JSON.parse(fs.readFileSync(path.join(locales, lang, 'runtime.json'), 'utf8')).server?.['now-running'];
    if (typeof text === 'string') lines.push(text.replace('__listenpath__', listenUrl));
  }
  return lines;
}

/** Resolves once the child logged that it listens; rejects when it exits first. Forwards its stdout. */
function waitForListening(child, listenUrl) {
  const lines = listeningLines(listenUrl);
  let tail = '';
  return new Promise((resolve, reject) => {
    const onExit = (code, signal) => {
      reject(
        Object.assign(new Error(`Node-RED exited (${signal || `code ${code}`}) before it listened`), { exited: true }),
      );
    };
    child.once('exit', onExit);
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk).slice(-4096);
      if (lines.some((l) => tail.includes(l))) {
        child.off('exit', onExit);
        resolve();
      }
    });
  });
}

/** Newest modification time under `dir` (0 when it does not exist). */
function newestMtime(dir) {
  if (!fs.existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

function buildIfNeeded() {
  const entry = path.join(root, 'nodes', 'websocket-plus.js');
  if (!fs.existsSync(entry)) {
    console.log('nodes/ is missing: running npm run build');
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.js')], { cwd: root, stdio: 'inherit' });
    return;
  }
  const sources = Math.max(...['src', 'locales', 'icons'].map((d) => newestMtime(path.join(root, d))));
  if (fs.statSync(entry).mtimeMs < sources)
    console.log('note: src/, locales/ or icons/ changed since the last build; run `npm run build` to load the changes');
}

function prepareUserDir() {
  fs.mkdirSync(path.join(userDir, 'node_modules'), { recursive: true });
  // The package, installed the way `npm link` / `npm install <folder>` would: a symlink plus a
  // dependency entry, so Node-RED lists it as a user-installed module in the palette manager.
  const link = path.join(userDir, 'node_modules', pkg.name);
  let linked = false;
  try {
    linked = fs.realpathSync(link) === fs.realpathSync(root);
  } catch {
    linked = false;
  }
  if (!linked) {
    fs.rmSync(link, { recursive: true, force: true });
    fs.symlinkSync(root, link, 'dir');
  }
  const userPkgFile = path.join(userDir, 'package.json');
  const userPkg = fs.existsSync(userPkgFile)
    ? JSON.parse(fs.readFileSync(userPkgFile, 'utf8'))
    : { name: 'node-red-project', description: 'websocket-plus demo user dir', version: '0.0.1', private: true };
  userPkg.dependencies = { ...(userPkg.dependencies || {}), [pkg.name]: `file:${path.relative(userDir, root) || '.'}` };
  fs.writeFileSync(userPkgFile, `${JSON.stringify(userPkg, null, 2)}\n`);

  const settings = {
    uiHost: host,
    uiPort: port,
    flowFile: 'flows.json',
    // A throw-away demo user dir: credentials are stored unencrypted in flows_cred.json.
    credentialSecret: false,
    telemetry: { enabled: false, updateNotification: false },
    logging: { console: { level: 'info', metrics: false, audit: false } },
  };
  fs.writeFileSync(
    path.join(userDir, 'settings.js'),
    '// Generated by scripts/start.js on every start; edits are overwritten.\n' +
      `module.exports = ${JSON.stringify(settings, null, 2)};\n`,
  );

  // The demo secret: random, created once, kept in the user dir.
  const secretFile = path.join(userDir, 'demo-secret.txt');
  if (!fs.existsSync(secretFile))
    fs.writeFileSync(secretFile, crypto.randomBytes(32).toString('base64url'), { mode: 0o600 });
  return fs.readFileSync(secretFile, 'utf8').trim();
}

/** The demo page, served by the flow (plain template: no mustache expansion). */
const PAGE_HTML = fs.readFileSync(path.join(__dirname, 'demo-page.html'), 'utf8');

function demoFlow(secret, pageTokens) {
  const z = DEMO_TAB;
  const httpIn = (id, url, wire, y) => ({
    id,
    type: 'http in',
    z,
    name: '',
    url,
    method: 'get',
    upload: false,
    swaggerDoc: '',
    x: 130,
    y,
    wires: [[wire]],
  });
  const template = (id, name, format, text, wire, y) => ({
    id,
    type: 'template',
    z,
    name,
    field: 'payload',
    fieldType: 'msg',
    format,
    syntax: 'plain',
    template: text,
    output: 'str',
    x: 350,
    y,
    wires: [[wire]],
  });
  const headers = (contentType) => ({
    'content-type': contentType,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  const response = (id, contentType, y) => ({
    id,
    type: 'http response',
    z,
    name: '',
    statusCode: '',
    headers: headers(contentType),
    x: 560,
    y,
    wires: [],
  });
  // HS256 (the default mode) with every other property at the editor's default.
  const { LISTENER_DEFAULTS } = require(path.join(root, 'nodes', 'lib', 'core', 'flow', 'defaults.js'));
  const listener = (id, path, scope) => ({
    id,
    type: 'websocket-plus-listener',
    z,
    ...LISTENER_DEFAULTS,
    path,
    scope,
    credentials: { secret },
  });
  const broadcast = [
    "const who = msg._session.subject || 'anonymous';",
    'const tenant = msg._session.tenantId; // verified at the handshake',
    "if (msg.event === 'connect') msg.payload = { type: 'join', tenant, user: who };",
    "else if (msg.event === 'disconnect') msg.payload = { type: 'leave', tenant, user: who };",
    "else msg.payload = { type: 'message', tenant, user: who, text: String(msg.payload).slice(0, 500) };",
    '// msg._session stays: ws.out+ sends to every connection of the tenant recorded for it.',
    'return msg;',
  ].join('\n');
  return [
    {
      id: DEMO_TAB,
      type: 'tab',
      label: 'websocket-plus demo',
      disabled: false,
      info:
        'Deployed by `npm start` (scripts/start.js); this tab is replaced on every start.\n\n' +
        `- ${DEMO_PATH}: HS256 echo listener (session scope)\n` +
        `- ${TENANT_PATH}: HS256 listener, tenant scope: what a tenant sends reaches that tenant's connections only\n` +
        `- ${PAGE_PATH}: the demo page; ${TOKENS_PATH}: demo-only tokens for tenant A and B, minted at deploy`,
    },
    listener(DEMO_LISTENER, DEMO_PATH, 'session'),
    {
      id: 'wsplus-demo-in',
      type: 'websocket-plus in',
      z,
      name: '',
      server: DEMO_LISTENER,
      client: '',
      x: 140,
      y: 100,
      wires: [['wsplus-demo-out', 'wsplus-demo-debug']],
    },
    {
      id: 'wsplus-demo-out',
      type: 'websocket-plus out',
      z,
      name: '',
      server: DEMO_LISTENER,
      client: '',
      x: 420,
      y: 80,
      wires: [],
    },
    {
      id: 'wsplus-demo-debug',
      type: 'debug',
      z,
      name: 'msg._session',
      active: true,
      tosidebar: true,
      console: false,
      tostatus: false,
      complete: '_session',
      targetType: 'msg',
      x: 430,
      y: 140,
      wires: [],
    },

    listener(TENANT_LISTENER, TENANT_PATH, 'tenant'),
    {
      id: 'wsplus-demo-tenant-in',
      type: 'websocket-plus in',
      z,
      name: 'tenant in',
      server: TENANT_LISTENER,
      client: '',
      events: true,
      x: 140,
      y: 220,
      wires: [['wsplus-demo-tenant-fn']],
    },
    {
      id: 'wsplus-demo-tenant-fn',
      type: 'function',
      z,
      name: 'broadcast to the tenant',
      func: broadcast,
      outputs: 1,
      timeout: 0,
      noerr: 0,
      initialize: '',
      finalize: '',
      libs: [],
      x: 360,
      y: 220,
      wires: [['wsplus-demo-tenant-out']],
    },
    {
      id: 'wsplus-demo-tenant-out',
      type: 'websocket-plus out',
      z,
      name: 'to the tenant',
      server: TENANT_LISTENER,
      client: '',
      x: 580,
      y: 220,
      wires: [],
    },

    httpIn('wsplus-demo-page-in', PAGE_PATH, 'wsplus-demo-page', 320),
    template('wsplus-demo-page', 'demo page', 'html', PAGE_HTML, 'wsplus-demo-page-out', 320),
    response('wsplus-demo-page-out', 'text/html; charset=utf-8', 320),
    httpIn('wsplus-demo-tokens-in', TOKENS_PATH, 'wsplus-demo-tokens', 380),
    template(
      'wsplus-demo-tokens',
      'demo-only tokens (minted at deploy)',
      'json',
      JSON.stringify(pageTokens, null, 2),
      'wsplus-demo-tokens-out',
      380,
    ),
    response('wsplus-demo-tokens-out', 'application/json', 380),
  ];
}

async function api(base, method, pathname, body, headers = {}) {
  const res = await fetch(base + pathname, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${pathname}: HTTP ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function waitForAdminApi(base, child, ms = 60000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('Node-RED exited before it was ready');
    try {
      await api(base, 'GET', '/settings');
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`Node-RED did not answer on ${base} within ${ms / 1000} s`);
}

/** Replaces the demo tab (and only it) in the running flows; other tabs keep running. */
async function deployDemo(base, secret, pageTokens) {
  const current = await api(base, 'GET', '/flows');
  const demo = demoFlow(secret, pageTokens);
  const demoIds = new Set(demo.map((n) => n.id));
  const kept = current.filter((n) => !demoIds.has(n.id) && n.z !== DEMO_TAB);
  await api(base, 'POST', '/flows', [...kept, ...demo], { 'Node-RED-Deployment-Type': 'flows' });
}

async function demoToken(secret, tenant = DEMO_TENANT, sub = 'demo-user') {
  const { SignJWT } = require('jose');
  return new SignJWT({ tenant_id: tenant, sub })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(TOKEN_TTL)
    .sign(new TextEncoder().encode(secret));
}

/** What the demo-only token endpoint serves: a token per pane tenant, signed with the demo secret. */
async function pageTokens(secret) {
  const tenants = {};
  for (const [label, { tenant, sub }] of Object.entries(PAGE_TENANTS)) {
    tenants[label] = { tenant, sub, token: await demoToken(secret, tenant, sub) };
  }
  return { note: 'demo only: minted by npm start with the demo secret', expiresIn: TOKEN_TTL, tenants };
}

/** A one-line client (the repository's own `ws`) that sends one message and prints the echo. */
function clientCommand(url) {
  const wsModule = JSON.stringify(path.dirname(require.resolve('ws/package.json', { paths: [root] })));
  const script = [
    `const WebSocket = require(${wsModule});`,
    'const ws = new WebSocket(process.argv[1]);',
    'ws.on("open", () => ws.send("hello from the demo client"));',
    'ws.on("message", (m) => { console.log("echo:", String(m)); ws.close(); });',
    'ws.on("unexpected-response", (req, res) => { console.log("refused: HTTP", res.statusCode); process.exit(1); });',
    'ws.on("error", (e) => { console.log(e.message); process.exit(1); });',
  ].join(' ');
  if (script.includes("'")) throw new Error('client command must not contain single quotes');
  return `node -e '${script}' '${url}'`;
}

async function main() {
  if (!(await portIsFree())) exitPortTaken();
  buildIfNeeded();
  const secret = prepareUserDir();
  const redJs = require.resolve('node-red/red.js', { paths: [root] });
  const nodeRedVersion = require(require.resolve('node-red/package.json', { paths: [root] })).version;
  console.log(
    `Starting Node-RED ${nodeRedVersion} (user dir ${path.relative(process.cwd(), userDir) || '.'}) ` +
      `on http://${host}:${port}/`,
  );

  const child = spawn(
    process.execPath,
    [redJs, '-u', userDir, '-s', path.join(userDir, 'settings.js'), '-p', String(port)],
    {
      cwd: userDir,
      stdio: ['inherit', 'pipe', 'inherit'],
    },
  );
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (child.exitCode === null) child.kill(sig);
    });
  }
  const base = `http://${host}:${port}`;
  try {
    await waitForListening(child, `${base}/`);
  } catch (err) {
    // Someone took the port between the check above and Node-RED's listen: say so, deploy nothing.
    if (err.exited && !(await portIsFree())) exitPortTaken();
    console.error(`\nwebsocket-plus demo: ${err.message}`);
    process.exit(1);
  }
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
  try {
    await waitForAdminApi(base, child);
    await deployDemo(base, secret, await pageTokens(secret));
  } catch (err) {
    console.error(`\nwebsocket-plus demo: ${err.message}`);
    if (child.exitCode === null) child.kill('SIGTERM');
    process.exitCode = 1;
    return;
  }
  const token = await demoToken(secret);
  const url = `ws://${host}:${port}${DEMO_PATH}?token=${token}`;
  const line = '-'.repeat(78);
  console.log(`
${line}
websocket-plus demo is running
  Editor:    http://${host}:${port}/   (tab "websocket-plus demo")
  Listener:  ws://${host}:${port}${DEMO_PATH}  HS256, tenant from claim "tenant_id", session scope
  Demo page: http://${host}:${port}${PAGE_PATH}  tenant A and B in two panes, a tenant broadcast, a tampered token
             (it connects to ws://${host}:${port}${TENANT_PATH}, tenant scope, with tokens from the
             demo-only endpoint http://${host}:${port}${TOKENS_PATH}, valid for 1 hour)
  Demo token (tenant "${DEMO_TENANT}", valid for 1 hour; run npm start again for a fresh one):

${token}

  Try it (echoes one message):

${clientCommand(url)}

  or with wscat:  npx wscat -c '${url}'
  Without a valid token the handshake is refused with HTTP 401. Stop with Ctrl+C.
${line}
`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
