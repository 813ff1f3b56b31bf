'use strict';
// The package as users get it from the palette manager: the packed tarball is uploaded with
// POST /nodes (multipart field "tarball", exactly what the editor's "Upload module tgz" sends) to
// a fresh Node-RED 4.1 on Node 20 and a fresh Node-RED 5 on Node 22. Then every example flow
// the package ships is fetched from the examples library (Import > Examples), configured the way
// its comment tells the user to, deployed, and a real client talks to it.
//
// Offline: the npm that Node-RED runs for the install gets npm_config_offline=true and a private
// cache; the package's runtime dependencies (already installed in this repository) are copied
// into the user dir first, so npm resolves them locally and never needs the registry.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const {
  ROOT,
  PACKAGE_NAME,
  RUNTIMES,
  makeUserDir,
  removeDir,
  writeSettings,
  startNodeRed,
  problemLines,
} = require('../helpers/node-red-process');
const { packOnce, seedDependencies } = require('../helpers/package-tarball');
const { connect, waitForMessages, waitForClose, closeAll } = require('../helpers/ws-client');
const { signHS256, makeKey, signWithKey, now } = require('../helpers/tokens');
const { startJwksServer } = require('../helpers/jwks-server');
const { startConnectProxy } = require('../helpers/connect-proxy');
const { startRedis } = require('../helpers/redis-server');
const parsePrometheus = require('parse-prometheus-text-format');

const SECRET = 'palette-e2e-secret-0123456789abcdef012';
const TYPES = [
  'websocket-plus control',
  'websocket-plus in',
  'websocket-plus out',
  'websocket-plus-client',
  'websocket-plus-listener',
];
const EXAMPLES = fs
  .readdirSync(path.join(ROOT, 'examples'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''))
  .sort();

/** The value of the `data-<name>` attribute in `html`, entities decoded as a browser does. */
function dataAttribute(html, name) {
  const raw = new RegExp(`data-${name}="([^"]*)"`).exec(html)?.[1];
  return (
    raw &&
    raw
      .replace(/&#x2F;/g, '/')
      .replace(/&quot;/g, '"')
      .replace(/&amp;/g, '&')
  );
}

/** Waits until `ws` has received a message for which `predicate(parsedOrRaw)` holds. */
async function waitForMatch(ws, predicate, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = ws.messages.map(parse).find(predicate);
    if (hit !== undefined) return hit;
    if (Date.now() > deadline)
      throw new Error(`no matching message within ${ms} ms; got ${JSON.stringify(ws.messages.map(String))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function parse(m) {
  const s = String(m);
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

async function waitUntil(check, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const byType = (flow, type) => flow.filter((n) => n.type === type);

/**
 * What each example's comment asks the user to set, done here: shared secrets, the client's JWT,
 * the JWKS URI of "your identity provider" (a local one), the Redis URL, the client's host:port.
 */
function configure(flow, ctx) {
  for (const l of byType(flow, 'websocket-plus-listener')) {
    l.credentials = {};
    if (l.authMode === 'hs256') l.credentials.secret = SECRET;
    if (l.authMode === 'jwks') l.jwksUri = ctx.jwks.url;
    if (l.cluster === 'redis') l.credentials.redisUrl = ctx.redis.url;
  }
  for (const c of byType(flow, 'websocket-plus-client')) {
    c.credentials = {};
    if (c.authMode === 'jwt') c.credentials.token = ctx.clientToken;
    c.path = c.path.replace(/^(wss?:\/\/)(127\.0\.0\.1|localhost):1880\//, `$1127.0.0.1:${ctx.red.port}/`);
  }
  return flow;
}

/** How a client talks to each example once deployed (by file name; unknown ones only deploy). */
const TALK = {
  async '01-echo-session-scope'(ctx) {
    const r = await ctx.connect('/ws/echo');
    r.ws.send('ping-01');
    assert.deepStrictEqual(await waitForMessages(r.ws, 1), ['ping-01']);
  },

  async '08-logout'(ctx) {
    const [alice1, alice2, bob] = await Promise.all([
      ctx.connect('/ws/app', await ctx.sign({ tenant_id: 'acme', sub: 'alice' })),
      ctx.connect('/ws/app', await ctx.sign({ tenant_id: 'acme', sub: 'alice' })),
      ctx.connect('/ws/app', await ctx.sign({ tenant_id: 'acme', sub: 'bob' })),
    ]);
    alice1.ws.send('logout');
    for (const a of [alice1, alice2])
      assert.deepStrictEqual(await waitForClose(a.ws), { code: 4401, reason: 'logged out' });
    assert.strictEqual(bob.ws.readyState, 1, 'another user stays connected');
    const res = await fetch(`http://127.0.0.1:${ctx.red.port}/api/logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ subject: 'bob', tenantId: 'acme' }),
    });
    assert.deepStrictEqual(await res.json(), { closed: 1 });
    assert.strictEqual((await waitForClose(bob.ws)).code, 4401);
  },

  async '09-browser-refresh'(ctx, flow) {
    // the page, with the settings the flow puts in it
    const page = await fetch(`http://127.0.0.1:${ctx.red.port}/refresh-demo`, { signal: AbortSignal.timeout(10000) });
    assert.strictEqual(page.status, 200);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    const html = await page.text();
    const settings = Object.fromEntries(byType(flow, 'change')[0].rules.map((r) => [r.p, r.to]));
    assert.strictEqual(dataAttribute(html, 'token-url'), settings.tokenUrl);
    assert.strictEqual(dataAttribute(html, 'ws-path'), '/ws/refresh');
    // what the page does: connect, refresh on the open connection, talk
    const claims = { tenant_id: 'acme', sub: 'page-user' };
    const r = await ctx.connect('/ws/refresh', await signHS256(SECRET, claims, { exp: now() + 120 }));
    const exp = now() + 900;
    r.ws.send(JSON.stringify({ type: 'websocket-plus:refresh', token: await signHS256(SECRET, claims, { exp }) }));
    assert.deepStrictEqual(await waitForMatch(r.ws, (m) => m && m.type === 'websocket-plus:refreshed'), {
      type: 'websocket-plus:refreshed',
      exp,
    });
    r.ws.send('echo me');
    assert.strictEqual(await waitForMatch(r.ws, (m) => m === 'echo me'), 'echo me');
  },

  async '10-metrics-dashboard'(ctx, flow) {
    const page = await fetch(`http://127.0.0.1:${ctx.red.port}/metrics-dashboard`, {
      signal: AbortSignal.timeout(10000),
    });
    assert.strictEqual(page.status, 200);
    const html = await page.text();
    const metricsUrl = dataAttribute(html, 'metrics-url');
    assert.strictEqual(
      metricsUrl,
      Object.fromEntries(byType(flow, 'change')[0].rules.map((r) => [r.p, r.to])).metricsUrl,
    );
    // the endpoint the page polls answers on this Node-RED (same origin)
    const res = await fetch(`http://127.0.0.1:${ctx.red.port}${metricsUrl}`, { signal: AbortSignal.timeout(10000) });
    assert.strictEqual(res.status, 200);
    assert.match(await res.text(), /^# HELP websocket_plus_connections /m);
  },

  async '02-tenant-chat'(ctx) {
    const [alice, bob, carol] = await Promise.all([
      ctx.connect('/ws/chat', await ctx.sign({ tenant_id: 'acme', sub: 'alice' })),
      ctx.connect('/ws/chat', await ctx.sign({ tenant_id: 'acme', sub: 'bob' })),
      ctx.connect('/ws/chat', await ctx.sign({ tenant_id: 'globex', sub: 'carol' })),
    ]);
    alice.ws.send('hello acme');
    const line = await waitForMatch(bob.ws, (m) => m && m.type === 'message' && m.text === 'hello acme');
    assert.strictEqual(line.user, 'alice');
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!carol.ws.messages.some((m) => String(m).includes('hello acme')), 'another tenant got the message');
    const unauth = await ctx.connect('/ws/chat', 'not-a-token', false);
    assert.strictEqual(unauth.status, 401);
  },

  async '03-global-broadcast'(ctx, flow) {
    const [a, g] = await Promise.all([
      ctx.connect('/ws/broadcast', await ctx.sign({ tenant_id: 'acme', sub: 'a' })),
      ctx.connect('/ws/broadcast', await ctx.sign({ tenant_id: 'globex', sub: 'g' })),
    ]);
    await ctx.red.inject(byType(flow, 'inject')[0].id);
    for (const c of [a, g]) assert.strictEqual((await waitForMatch(c.ws, (m) => m && m.type === 'tick')).type, 'tick');
  },

  async '04-jwks-listener'(ctx, flow) {
    const l = byType(flow, 'websocket-plus-listener')[0];
    const claims = { [l.tenantClaim]: 'acme', sub: 'dora', iss: l.issuer, aud: l.audience };
    const origin = l.origins.split(/[\s,]+/)[0];
    const token = await signWithKey(ctx.jwksKey, claims);
    const r = await ctx.connect('/ws/secure', token, true, { origin });
    r.ws.send('hi');
    const reply = await waitForMatch(r.ws, (m) => m && m.received === 'hi');
    assert.deepStrictEqual(reply, { subject: 'dora', tenant: 'acme', received: 'hi' });
    const wrongAudience = await signWithKey(ctx.jwksKey, { ...claims, aud: 'someone-else' });
    assert.strictEqual((await ctx.connect('/ws/secure', wrongAudience, false, { origin })).status, 401);
  },

  async '05-client-with-jwt-and-headers'(ctx, flow) {
    const comms = await ctx.red.openComms('debug');
    ctx.cleanup.push(() => comms.close());
    const debugId = byType(flow, 'debug')[0].id;
    const client = byType(flow, 'websocket-plus-client')[0];
    // the client connects by itself after the deploy; press the inject once it is up
    let event;
    for (let attempt = 0; attempt < 20 && !event; attempt++) {
      await ctx.red.inject(byType(flow, 'inject')[0].id);
      event = await comms
        .waitFor((e) => e.topic === 'debug' && e.data && e.data.id === debugId, 500)
        .catch(() => undefined);
    }
    assert.ok(event, `no reply reached the debug node through client ${client.id}`);
    assert.match(String(event.data.msg), /hello from the client/);
  },

  async '06-client-through-proxy'(ctx, flow) {
    const client = byType(flow, 'websocket-plus-client')[0];
    const host = new URL(client.path).host;
    const target = host.includes(':') ? host : `${host}:443`;
    await waitUntil(() => ctx.proxy.connects.some((c) => c.target === target), `a CONNECT ${target} at the proxy`);
  },

  async '07-redis-cluster'(ctx) {
    const [a1, a2, g] = await Promise.all([
      ctx.connect('/ws/cluster', await ctx.sign({ tenant_id: 'acme', sub: 'a1' })),
      ctx.connect('/ws/cluster', await ctx.sign({ tenant_id: 'acme', sub: 'a2' })),
      ctx.connect('/ws/cluster', await ctx.sign({ tenant_id: 'globex', sub: 'g' })),
    ]);
    a1.ws.send('through redis');
    for (const c of [a1, a2])
      assert.strictEqual((await waitForMatch(c.ws, (m) => m && m.text === 'through redis')).from, 'a1');
    await new Promise((r) => setTimeout(r, 300));
    assert.strictEqual(g.ws.messages.length, 0);
  },
};

/**
 * Log lines an example may legitimately produce: in 06 the client's server is out of reach (the
 * test proxy refuses non-loopback targets), which the client may report as a warning, never an
 * error.
 */
const EXPECTED_PROBLEMS = {
  '06-client-through-proxy': (line, flow) =>
    /\[warn\]/.test(line) && byType(flow, 'websocket-plus-client').some((c) => line.includes(c.id)),
};

describe('e2e: palette install of the packed tarball', function () {
  this.timeout(90000);
  let pack;
  const shared = {};

  before(async function () {
    pack = await packOnce();
    shared.jwksKey = await makeKey('RS256', 'palette-rs256');
    shared.jwks = await startJwksServer([shared.jwksKey]);
    shared.proxy = await startConnectProxy();
    shared.redis = await startRedis();
  });

  after(async function () {
    if (shared.jwks) await shared.jwks.close();
    if (shared.proxy) await shared.proxy.close();
    if (shared.redis) await shared.redis.close();
  });

  it('the tarball holds the built nodes, editor, help, icons and examples and nothing else', function () {
    const files = new Set(pack.files);
    for (const f of [
      'package.json',
      'README.md',
      'LICENSE',
      'nodes/websocket-plus.js',
      'nodes/websocket-plus.html',
      'nodes/lib/nodes/websocket-plus.js',
      'nodes/locales/en-US/websocket-plus.json',
      'nodes/locales/en-US/websocket-plus.html',
    ]) {
      assert.ok(files.has(f), `${f} missing from ${pack.file}`);
    }
    assert.ok(
      pack.files.some((f) => /^nodes\/icons\/.+\.(svg|png)$/.test(f)),
      'no icons in nodes/icons',
    );
    for (const e of EXAMPLES) assert.ok(files.has(`examples/${e}.json`), `examples/${e}.json missing`);
    const stray = pack.files.filter(
      (f) => /^(src|test|bench|scripts|docs|node_modules|\.demo-userdir|\.ci)\//.test(f) || /\.ts$/.test(f),
    );
    assert.deepStrictEqual(stray, []);
    const pkg = JSON.parse(fs.readFileSync(path.join(pack.extractedDir, 'package.json'), 'utf8'));
    assert.ok(fs.existsSync(path.join(pack.extractedDir, pkg['node-red'].nodes['websocket-plus'])));
  });

  for (const runtime of ['node-red-4', 'node-red-5']) {
    const rt = RUNTIMES[runtime];
    const expectVersions =
      runtime === 'node-red-4' ? { red: /^4\.1\./, node: /^v20\./ } : { red: /^5\./, node: /^v22\./ };

    describe(`${rt.label} (${require(rt.packageJson).version}), fresh user dir`, function () {
      let userDir;
      let red;
      let sockets = [];
      let cleanup = [];

      before(async function () {
        userDir = makeUserDir(`wsplus-palette-${runtime}-`);
        writeSettings(userDir, {
          editorTheme: { palette: { upload: true } },
          externalModules: { palette: { allowInstall: true, allowUpload: true } },
          // example 06: the client finds its proxy in settings.js; loopback bypasses it
          proxyOptions: {
            https_proxy: shared.proxy.url,
            http_proxy: shared.proxy.url,
            no_proxy: '127.0.0.1,localhost',
          },
        });
        seedDependencies(userDir);
        const env = {
          npm_config_offline: 'true',
          npm_config_cache: path.join(userDir, '.npm-cache'),
          npm_config_update_notifier: 'false',
          npm_config_audit: 'false',
          npm_config_fund: 'false',
          SITE_ID: 'site-7',
        };
        // npm (run by Node-RED for the install) should run on the same Node as Node-RED
        if (runtime === 'node-red-5') env.PATH = `${path.dirname(rt.node)}${path.delimiter}${process.env.PATH}`;
        red = await startNodeRed({ runtime, userDir, env });
      });

      afterEach(function () {
        closeAll(sockets);
        sockets = [];
        for (const fn of cleanup.splice(0)) fn();
      });

      after(async function () {
        if (red) await red.stop();
        removeDir(userDir);
      });

      it('runs the expected Node-RED and Node.js versions', function () {
        const redVersion = /Node-RED version: v(\S+)/.exec(red.output)?.[1];
        const nodeVersion = /Node\.js\s+version: (\S+)/.exec(red.output)?.[1];
        assert.match(redVersion, expectVersions.red);
        assert.match(nodeVersion, expectVersions.node);
      });

      it('installs the tarball through POST /nodes, as the palette manager uploads it', async function () {
        const before = await red.api('GET', '/nodes', { headers: { accept: 'application/json' } });
        assert.ok(
          !before.json.some((s) => s.module === PACKAGE_NAME),
          'a fresh user dir must not have the package yet',
        );

        const form = new FormData();
        form.append(
          'tarball',
          new Blob([fs.readFileSync(pack.file)], { type: 'application/gzip' }),
          path.basename(pack.file),
        );
        const mark = red.output.length;
        const res = await red.api('POST', '/nodes', { body: form, timeoutMs: 60000 });
        assert.strictEqual(res.status, 200, `install failed: HTTP ${res.status} ${res.text}\n${red.logSince(mark)}`);
        assert.strictEqual(res.json.name, PACKAGE_NAME);
        assert.strictEqual(res.json.version, pack.version);
        assert.deepStrictEqual(problemLines(red.logSince(mark)), []);
        assert.match(red.logSince(mark), new RegExp(`Installed module: ${PACKAGE_NAME}`));

        // a real install: a copy (not a link) whose dependencies resolve inside the user dir
        const installed = path.join(userDir, 'node_modules', PACKAGE_NAME);
        assert.ok(!fs.lstatSync(installed).isSymbolicLink());
        assert.ok(fs.existsSync(path.join(installed, 'nodes', 'websocket-plus.html')));
        for (const dep of Object.keys(require(path.join(installed, 'package.json')).dependencies)) {
          assert.ok(
            fs.existsSync(path.join(userDir, 'node_modules', dep, 'package.json')),
            `${dep} not installed in the user dir`,
          );
        }
        const userPkg = JSON.parse(fs.readFileSync(path.join(userDir, 'package.json'), 'utf8'));
        assert.ok(userPkg.dependencies[PACKAGE_NAME], 'recorded in the user dir package.json');
      });

      it('GET /nodes lists the five types, enabled and loaded without error', async function () {
        const res = await red.api('GET', '/nodes', { headers: { accept: 'application/json' } });
        const sets = res.json.filter((s) => s.module === PACKAGE_NAME);
        assert.strictEqual(sets.length, 1);
        assert.strictEqual(sets[0].enabled, true);
        assert.strictEqual(sets[0].err, undefined, `load error: ${sets[0].err}`);
        assert.deepStrictEqual([...sets[0].types].sort(), TYPES);
        // the editor gets the node definitions and the message catalogue
        const html = await red.api('GET', '/nodes', { headers: { accept: 'text/html' } });
        for (const t of TYPES)
          assert.ok(
            html.text.includes(`RED.nodes.registerType("${t}"`) || html.text.includes(`RED.nodes.registerType('${t}'`),
            `${t} not registered in the editor`,
          );
        const catalogue = await red.api('GET', `/nodes/messages?lng=en-US`);
        assert.ok(catalogue.json[`${PACKAGE_NAME}/websocket-plus`], 'message catalogue not served');
      });

      it('ws.control+ is in the network palette, and the metrics endpoint answers from the installed package', async function () {
        // the editor's definition of the control node, as the palette gets it
        const html = await red.api('GET', '/nodes', { headers: { accept: 'text/html' } });
        const definition = /RED\.nodes\.registerType\("websocket-plus control",\s*\{([\s\S]*?)\n\s*\}\);/.exec(
          html.text,
        );
        assert.ok(definition, 'no definition of websocket-plus control');
        assert.match(definition[1], /category:\s*"network"/);
        assert.match(definition[1], /paletteLabel:\s*"ws\.control\+"/);
        assert.match(html.text, /data-help-name="websocket-plus control"/);
        const info = await red.api('GET', `/nodes/${PACKAGE_NAME}/websocket-plus`, {
          headers: { accept: 'application/json' },
        });
        assert.ok(info.json.types.includes('websocket-plus control'));

        // GET <httpAdminRoot>websocket-plus/metrics, served by the installed copy
        const metrics = await red.api('GET', '/websocket-plus/metrics', { headers: { accept: 'text/plain' } });
        assert.strictEqual(metrics.status, 200);
        assert.match(metrics.headers.get('content-type'), /^text\/plain;.*version=0\.0\.4/);
        const families = parsePrometheus(metrics.text).map((f) => f.name);
        for (const name of [
          'websocket_plus_connections',
          'websocket_plus_handshakes_total',
          'websocket_plus_closes_total',
        ])
          assert.ok(families.includes(name), `${name} missing from the scrape`);
        // every series the Grafana dashboard in docs/ queries is one the package exports
        const dashboard = fs.readFileSync(path.join(ROOT, 'docs', 'grafana-dashboard.json'), 'utf8');
        const queried = [...new Set(dashboard.match(/websocket_plus_[a-z_]+/g))].sort();
        assert.ok(queried.length >= 10, `the dashboard queries ${queried.length} metrics`);
        const exported = new Set([...metrics.text.matchAll(/^# HELP (\S+)/gm)].map((m) => m[1]));
        const histograms = new Set([...metrics.text.matchAll(/^# TYPE (\S+) histogram$/gm)].map((m) => m[1]));
        // a histogram is queried through its _bucket, _sum and _count series
        const family = (name) => {
          const base = name.replace(/_(bucket|sum|count)$/, '');
          return histograms.has(base) ? base : name;
        };
        assert.deepStrictEqual(
          queried.filter((name) => !exported.has(family(name))),
          [],
        );
      });

      it('lists the examples under Import > Examples', async function () {
        const res = await red.api('GET', `/library/examples/flows/${PACKAGE_NAME}`);
        assert.strictEqual(res.status, 200);
        assert.deepStrictEqual(res.json.map((e) => e.fn).sort(), EXAMPLES);
      });

      for (const example of EXAMPLES) {
        it(
          `example ${example}: deploys without ` + `errors${TALK[example] ? ' and a client talks to it' : ''}`,
          async function () {
            const lib = await red.api('GET', `/library/examples/flows/${PACKAGE_NAME}/${example}`);
            assert.strictEqual(lib.status, 200);
            const flow = lib.json;
            assert.ok(Array.isArray(flow) && flow.length > 0);
            const ctx = {
              red,
              cleanup,
              jwks: shared.jwks,
              jwksKey: shared.jwksKey,
              proxy: shared.proxy,
              redis: shared.redis,
              clientToken: await signHS256(SECRET, { tenant_id: 'acme', sub: 'node-red-client' }, { expiresIn: 3600 }),
              sign: (claims) => signHS256(SECRET, claims),
              async connect(p, token, mustOpen = true, wsOptions = {}) {
                const url = `ws://127.0.0.1:${red.port}${p}${token ? `?token=${encodeURIComponent(token)}` : ''}`;
                const r = await connect(url, { ws: wsOptions });
                sockets.push(r.ws);
                if (mustOpen)
                  assert.strictEqual(r.opened, true, `${p}: handshake refused with HTTP ${r.status} ${r.body || ''}`);
                return r;
              },
            };
            const mark = red.output.length;
            await red.deploy(configure(flow, ctx));
            await red.waitForLog((out) => /Started flows/.test(out.slice(mark)));
            try {
              if (TALK[example]) await TALK[example](ctx, flow);
              else await new Promise((r) => setTimeout(r, 500));
            } catch (err) {
              err.message += `\n--- node-red log since the deploy ---\n${red.logSince(mark).slice(-4000)}`;
              throw err;
            }
            const log = red.logSince(mark);
            assert.ok(!/Waiting for missing types/.test(log), `missing types:\n${log}`);
            const allowed = EXPECTED_PROBLEMS[example] || (() => false);
            assert.deepStrictEqual(
              problemLines(log).filter((l) => !allowed(l, flow)),
              [],
            );
          },
        );
      }
    });
  }
});
