'use strict';
// GET <httpAdminRoot>websocket-plus/metrics: in a real Node-RED runtime (test helper) and in a real
// node-red process with adminAuth, scraped over HTTP and parsed with a Prometheus text parser.
const assert = require('assert');
const fs = require('fs');
const http = require('http');
const path = require('path');
const bcrypt = require('bcryptjs');
const parsePrometheus = require('parse-prometheus-text-format');
const { helper, load, wsUrl, listenerNode } = require('../helpers/red');
const { connect, closeAll } = require('../helpers/ws-client');
const { signHS256 } = require('../helpers/tokens');
const { listenOnLoopback } = require('../helpers/loopback');
const { waitFor } = require('../helpers/wait');
const { makeUserDir, removeDir, writeSettings, linkPackage, startNodeRed } = require('../helpers/node-red-process');

const SECRET = 'metrics-endpoint-secret-0123456789abcdef';

/** Parsed exposition: value(name, labels) sums the samples whose labels match (undefined when none). */
function parse(text) {
  const families = parsePrometheus(text);
  return {
    families,
    value(name, labels = {}) {
      const family = families.find((f) => f.name === name);
      const hits = (family ? family.metrics : []).filter((m) =>
        Object.entries(labels).every(([k, v]) => (m.labels || {})[k] === v),
      );
      return hits.length === 0 ? undefined : hits.reduce((sum, m) => sum + Number(m.value), 0);
    },
  };
}

async function get(url, headers = {}) {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10000) });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

describe('nodes/metrics-endpoint', function () {
  this.timeout(60000);

  describe('in a Node-RED runtime (no adminAuth); per-tenant connections only when the listener opts in', function () {
    const sockets = [];
    let admin;
    before(async function () {
      await helper.startServer();
      // The runtime's admin app, served on loopback as Node-RED serves it under httpAdminRoot.
      admin = await listenOnLoopback(http.createServer((req, res) => helper._httpAdmin(req, res)));
    });
    after(async function () {
      await admin.close();
      await helper.stopServer();
    });
    afterEach(async function () {
      closeAll(sockets.splice(0));
      await helper.unload();
    });

    it(
      'answers the Prometheus text format with the ' + "listeners' connections, handshakes and messages",
      async function () {
        await load([listenerNode('l1', { path: '/ws/metrics-a', authMode: 'hs256' })], { l1: { secret: SECRET } });
        const L = { listener: '/ws/metrics-a' };
        for (const tenant of ['a', 'b']) {
          const { ws, status } = await connect(
            wsUrl('/ws/metrics-a', `token=${await signHS256(SECRET, { tenant_id: tenant })}`),
          );
          assert.strictEqual(status, undefined);
          sockets.push(ws);
        }
        const refused = await connect(wsUrl('/ws/metrics-a'));
        assert.strictEqual(refused.status, 401);
        sockets[0].send('ping me');
        await waitFor(
          async () =>
            parse((await get(`http://127.0.0.1:${admin.port}/websocket-plus/metrics`)).text).value(
              'websocket_plus_messages_received_total',
              L,
            ) === 1,
          5000,
          'the message counted',
        );

        const res = await get(`http://127.0.0.1:${admin.port}/websocket-plus/metrics`);
        assert.strictEqual(res.status, 200);
        assert.match(res.type, /^text\/plain;.*version=0\.0\.4/);
        const m = parse(res.text);
        assert.strictEqual(m.value('websocket_plus_connections', L), 2);
        assert.strictEqual(m.value('websocket_plus_handshakes_total', { ...L, result: 'accepted' }), 2);
        assert.strictEqual(
          m.value('websocket_plus_handshakes_total', { ...L, result: 'refused', category: 'token_missing' }),
          1,
        );
        assert.strictEqual(m.value('websocket_plus_received_bytes_total', L), 7);
        assert.ok(
          m.families.every((f) => f.name.startsWith('websocket_plus_')),
          "only the package's metrics are served",
        );

        // A redeploy that removes the listener removes its connections from the report.
        await helper.unload();
        closeAll(sockets.splice(0));
        await load([]);
        const after = parse((await get(`http://127.0.0.1:${admin.port}/websocket-plus/metrics`)).text);
        assert.strictEqual(after.value('websocket_plus_connections', L), undefined);
        assert.strictEqual(after.value('websocket_plus_handshakes_total', { ...L, result: 'accepted' }), 2);
      },
    );

    for (const perTenant of [true, false]) {
      it(
        `reports tenants ${perTenant ? 'when' : 'only when'} ` + `the listener opts in (metricsPerTenant ${perTenant})`,
        async function () {
          const p = `/ws/metrics-tenants-${perTenant}`;
          await load([listenerNode('l1', { path: p, authMode: 'hs256', metricsPerTenant: perTenant })], {
            l1: { secret: SECRET },
          });
          for (const tenant of ['acme', 'acme', 'globex']) {
            const { ws, status } = await connect(wsUrl(p, `token=${await signHS256(SECRET, { tenant_id: tenant })}`));
            assert.strictEqual(status, undefined);
            sockets.push(ws);
          }
          const m = parse((await get(`http://127.0.0.1:${admin.port}/websocket-plus/metrics`)).text);
          assert.strictEqual(m.value('websocket_plus_connections', { listener: p }), 3);
          if (perTenant) {
            assert.strictEqual(m.value('websocket_plus_tenant_connections', { listener: p, tenant: 'acme' }), 2);
            assert.strictEqual(m.value('websocket_plus_tenant_connections', { listener: p, tenant: 'globex' }), 1);
          } else {
            assert.strictEqual(m.value('websocket_plus_tenant_connections', { listener: p }), undefined);
          }
        },
      );
    }
  });

  describe('in a node-red process with adminAuth', function () {
    let userDir;
    let red;
    const sockets = [];
    before(async function () {
      userDir = makeUserDir('wsplus-metrics-');
      const hash = bcrypt.hashSync('metrics-password', 8);
      writeSettings(userDir, {
        adminAuth: {
          type: 'credentials',
          users: [
            { username: 'reader', password: hash, permissions: 'read' },
            { username: 'flowsonly', password: hash, permissions: 'flows.read' },
          ],
          // Anonymous may read the settings (how the test helper sees the runtime is up), nothing else.
          default: { permissions: 'settings.read' },
        },
      });
      fs.writeFileSync(
        path.join(userDir, 'flows.json'),
        JSON.stringify([listenerNode('l1', { path: '/ws/metrics-b', authMode: 'none' })]),
      );
      linkPackage(userDir);
      red = await startNodeRed({ runtime: 'node-red-4', userDir });
    });
    after(async function () {
      closeAll(sockets.splice(0));
      if (red) await red.stop();
      removeDir(userDir);
    });

    async function tokenOf(username, scope) {
      const body = new URLSearchParams({
        client_id: 'node-red-admin',
        grant_type: 'password',
        scope,
        username,
        password: 'metrics-password',
      });
      const res = await fetch(`${red.url}/auth/token`, { method: 'POST', body, signal: AbortSignal.timeout(10000) });
      assert.strictEqual(res.status, 200, `login of ${username}`);
      return (await res.json()).access_token;
    }

    it('refuses anonymous and a user without read permission (401); a read token gets the metrics', async function () {
      const url = `${red.url}/websocket-plus/metrics`;
      const wsBase = red.url.replace(/^http/, 'ws');
      let opened;
      await waitFor(
        async () => {
          opened = await connect(`${wsBase}/ws/metrics-b`);
          return opened.status === undefined;
        },
        15000,
        'the listener to answer',
      );
      sockets.push(opened.ws);

      assert.strictEqual((await get(url)).status, 401);
      assert.strictEqual((await get(url, { authorization: 'Bearer not-a-token' })).status, 401);
      const narrow = await tokenOf('flowsonly', 'flows.read');
      assert.strictEqual((await get(url, { authorization: `Bearer ${narrow}` })).status, 401);

      const token = await tokenOf('reader', 'read');
      const res = await get(url, { authorization: `Bearer ${token}` });
      assert.strictEqual(res.status, 200);
      const m = parse(res.text);
      assert.strictEqual(m.value('websocket_plus_connections', { listener: '/ws/metrics-b' }), 1);
      assert.strictEqual(
        m.value('websocket_plus_handshakes_total', { listener: '/ws/metrics-b', result: 'accepted' }),
        1,
      );
    });
  });
});
