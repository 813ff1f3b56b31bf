'use strict';
// websocket-plus-client with ws.in+ / ws.out+ in a real Node-RED runtime, against real ws/wss
// servers, a real CONNECT proxy and a websocket-plus listener in the same runtime.
const assert = require('assert');
const { helper, load, wsUrl, collect, listenerNode, clientNode } = require('../helpers/red');
const { signHS256 } = require('../helpers/tokens');
const { startConnectProxy } = require('../helpers/connect-proxy');
const { selfSignedCert } = require('../helpers/self-signed-cert');
const { startRecordingServer, waitFor } = require('../helpers/recording-ws-server');

const tlsNode = require('@node-red/nodes/core/network/05-tls.js');
const SECRET = 'client-test-secret-0123456789abcdef-xyz';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Client c1 with ws.in+ -> helper h1 and a ws.out+ fed by tests. */
function clientFlow(props = {}, inProps = {}) {
  return [
    clientNode('c1', props),
    { id: 'cin', type: 'websocket-plus in', server: '', client: 'c1', wires: [['h1']], ...inProps },
    { id: 'cout', type: 'websocket-plus out', server: '', client: 'c1' },
    { id: 'h1', type: 'helper' },
  ];
}

/** Every status a node has shown, in order. */
function statuses(nodeId) {
  const node = helper.getNode(nodeId);
  return helper._NodePrototype.status
    .getCalls()
    .filter((c) => c.thisValue === node)
    .map((c) => c.args[0]);
}
const lastStatus = (nodeId) => statuses(nodeId).at(-1) || {};

describe('nodes/client (real Node-RED runtime)', function () {
  let server;
  let cert;
  let tlsServer;
  before(async function () {
    cert = selfSignedCert();
    const echo = (ws) =>
      ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo:${data}`, { binary: isBinary }));
    const handleProtocols = (protocols) => (protocols.has('chat.v2') ? 'chat.v2' : false);
    server = await startRecordingServer({ onConnection: echo, handleProtocols });
    tlsServer = await startRecordingServer({ tls: cert, onConnection: echo });
    await helper.startServer();
  });
  after(async function () {
    await helper.stopServer();
    await Promise.all([server.close(), tlsServer.close()]);
  });
  afterEach(async function () {
    await helper.unload();
    helper.settings({});
    delete process.env.WSPLUS_CLIENT_TEST_KEY;
  });

  describe('against a remote server', function () {
    it(
      'sends the token, headers (static and env) and ' + 'subprotocol; payload mode both ways with _session',
      async function () {
        process.env.WSPLUS_CLIENT_TEST_KEY = 'from-env';
        const token = await signHS256(SECRET, { sub: 'device' });
        await load(
          clientFlow({
            path: `${server.url}/feed?site=a%20b`,
            subprotocol: 'chat.v1, chat.v2',
            headers: [
              { keyType: 'other', keyValue: 'X-Static', valueType: 'other', valueValue: 'static-value' },
              { keyType: 'other', keyValue: 'X-Env', valueType: 'env', valueValue: 'WSPLUS_CLIENT_TEST_KEY' },
            ],
          }),
          { c1: { token } },
        );
        const got = collect('h1');
        await waitFor(() => helper.getNode('c1').connection.connected, 'client connected');
        const upgrade = server.upgrades.at(-1);
        assert.strictEqual(upgrade.url, `/feed?site=a%20b&token=${token}`);
        assert.strictEqual(upgrade.headers['x-static'], 'static-value');
        assert.strictEqual(upgrade.headers['x-env'], 'from-env');
        assert.strictEqual(upgrade.headers['sec-websocket-protocol'], 'chat.v1,chat.v2');
        assert.strictEqual(helper.getNode('c1').connection.protocol, 'chat.v2');
        assert.strictEqual(lastStatus('cin').fill, 'green');

        helper.getNode('cout').receive({ payload: 'hello' });
        helper.getNode('cout').receive({ payload: Buffer.from([7, 8]) });
        helper.getNode('cout').receive({ payload: { a: 1 } });
        await waitFor(() => got.length >= 3, 'three echoes');
        assert.strictEqual(got[0].payload, 'echo:hello');
        assert.ok(Buffer.isBuffer(got[1].payload) && got[1].payload.equals(Buffer.from([7, 8])));
        assert.strictEqual(got[2].payload, 'echo:{"a":1}');
        assert.deepStrictEqual(got[0]._session, {
          type: 'websocket',
          id: helper.getNode('c1').connection.id,
          authStatus: 'none',
          routingScope: 'session',
        });
        const logged = JSON.stringify(helper.log().args);
        assert.ok(!logged.includes(token), 'the token is never logged');
      },
    );

    it('entire-message mode: JSON both ways, a peer cannot set _session', async function () {
      await load(clientFlow({ path: `${server.url}/whole`, authMode: 'none', wholemsg: 'true' }));
      const got = collect('h1');
      await waitFor(() => helper.getNode('c1').connection.connected, 'client connected');
      const peer = [...server.wss.clients].at(-1);
      const received = [];
      peer.on('message', (d) => received.push(String(d)));
      peer.send(JSON.stringify({ topic: 't', payload: 1, _session: { id: 'forged' } }));
      peer.send('null');
      peer.send('not json');
      await waitFor(() => got.length >= 3, 'three messages');
      assert.strictEqual(got[0].topic, 't');
      assert.strictEqual(got[0].payload, 1);
      assert.strictEqual(got[0]._session.id, helper.getNode('c1').connection.id);
      assert.strictEqual(got[1].payload, null);
      assert.strictEqual(got[2].payload, 'not json');
      helper.getNode('cout').receive({ topic: 'out', payload: [1, 2], _session: got[0]._session });
      await waitFor(() => received.length, 'entire message at the server');
      const sent = JSON.parse(received[0]);
      assert.strictEqual(sent.topic, 'out');
      assert.deepStrictEqual(sent.payload, [1, 2]);
      assert.strictEqual(sent._session, undefined);
      assert.strictEqual(server.upgrades.at(-1).url, '/whole', 'none mode sends no token');
    });

    it('wss:// trusted through a tls-config node', async function () {
      const flow = clientFlow({ path: `${tlsServer.url}/secure`, authMode: 'none', tls: 'tls1' });
      flow.push({ id: 'tls1', type: 'tls-config', cert: '', key: '', ca: '', verifyservercert: true, servername: '' });
      await load(flow, { tls1: { cadata: cert.cert } }, [tlsNode]);
      const got = collect('h1');
      await waitFor(() => helper.getNode('c1').connection.connected, 'wss connected');
      helper.getNode('cout').receive({ payload: 'over tls' });
      await waitFor(() => got.length, 'echo');
      assert.strictEqual(got[0].payload, 'echo:over tls');
    });

    it('shows disconnected with the code, reconnects, and stops for good on redeploy', async function () {
      await load(clientFlow({ path: `${server.url}/restart`, authMode: 'none' }, { events: true }));
      const got = collect('h1');
      await waitFor(() => helper.getNode('c1').connection.connected, 'connected');
      const before = server.connections;
      for (const ws of server.wss.clients) ws.close(1012, 'restart');
      await waitFor(() => statuses('cin').some((s) => s.text === 'disconnected 1012'), 'disconnected status');
      await waitFor(
        () => server.connections === before + 1 && helper.getNode('c1').connection.connected,
        'reconnected',
        5000,
      );
      const events = got.filter((m) => m.event).map((m) => m.event);
      assert.deepStrictEqual(events.slice(-3), ['connect', 'disconnect', 'connect']);
      assert.strictEqual(got.find((m) => m.event === 'disconnect').code, 1012);
      assert.strictEqual(server.maxOpen, 1);
      await helper.unload();
      const after = server.connections;
      await waitFor(() => server.open === 0, 'socket closed by the redeploy');
      await sleep(1500); // longer than the first backoff delay
      assert.strictEqual(server.connections, after, 'no reconnect after the node closed');
    });

    it(
      'maxPayload: a message at the limit is delivered, a ' + 'bigger one closes with 1009 and the client reconnects',
      async function () {
        await load(clientFlow({ path: `${server.url}/big`, authMode: 'none', maxPayload: '1024' }, { events: true }));
        const got = collect('h1');
        await waitFor(() => helper.getNode('c1').connection.connected, 'connected');
        const before = server.connections;
        const peer = [...server.wss.clients].at(-1);
        let closeCode;
        peer.once('close', (code) => {
          closeCode = code;
        });
        peer.send('a'.repeat(1024));
        await waitFor(() => got.some((m) => m.payload !== undefined), 'message at the limit delivered');
        assert.strictEqual(got.find((m) => m.payload !== undefined).payload, 'a'.repeat(1024));
        peer.send('b'.repeat(1025));
        await waitFor(() => closeCode !== undefined, 'socket closed by the client', 10000);
        assert.strictEqual(closeCode, 1009, 'the client closes with 1009 (message too big)');
        await waitFor(
          () => server.connections === before + 1 && helper.getNode('c1').connection.connected,
          'reconnected',
          10000,
        );
        assert.ok(
          !got.some((m) => typeof m.payload === 'string' && m.payload.startsWith('b')),
          'the big message never reaches the flow',
        );
        assert.deepStrictEqual(
          got
            .filter((m) => m.event)
            .map((m) => m.event)
            .slice(-2),
          ['disconnect', 'connect'],
        );
      },
    );

    it("maxPayload: a client without the property (an older flow) accepts 1 MiB, not ws's 100 MiB", async function () {
      const flow = clientFlow({ path: `${server.url}/default-limit`, authMode: 'none' });
      delete flow[0].maxPayload;
      await load(flow);
      await waitFor(() => helper.getNode('c1').connection.connected, 'connected');
      const peer = [...server.wss.clients].at(-1);
      let closeCode;
      peer.once('close', (code) => {
        closeCode = code;
      });
      peer.send(Buffer.alloc(1024 * 1024 + 1));
      await waitFor(() => closeCode !== undefined, 'socket closed by the client', 10000);
      assert.strictEqual(closeCode, 1009);
    });

    it('warns when ws.out+ has no open connection', async function () {
      await load(clientFlow({ path: 'ws://127.0.0.1:1/nothing', authMode: 'none' }));
      helper.getNode('cout').receive({ payload: 'lost' });
      await sleep(20);
      const warnings = helper.log().args.filter((a) => a[0].level === 30 && a[0].id === 'cout');
      assert.strictEqual(warnings.length, 1);
      assert.match(String(warnings[0][0].msg), /not connected/);
    });

    it('a bad configuration is an error on the node, not a crash', async function () {
      await load(clientFlow({ path: 'http://example.com/x' }), { c1: { token: 'x' } });
      assert.strictEqual(lastStatus('cin').fill, 'red');
      const missing = clientFlow({ path: `${server.url}/no-token` });
      await helper.unload();
      await load(missing);
      assert.strictEqual(lastStatus('cin').fill, 'red');
      assert.match(lastStatus('cin').text, /token missing/);
    });
  });

  describe('proxies', function () {
    let proxy;
    before(async function () {
      proxy = await startConnectProxy({ auth: 'nr:proxy-pass' });
    });
    after(() => proxy.close());

    it('settings.proxyOptions: ws:// through the CONNECT proxy with credentials', async function () {
      helper.settings({ proxyOptions: { http_proxy: proxy.authUrl } });
      await load(clientFlow({ path: `${server.url}/proxied`, authMode: 'none' }));
      await waitFor(() => helper.getNode('c1').connection.connected, 'connected through the proxy');
      assert.strictEqual(proxy.connects.at(-1).target, `127.0.0.1:${server.port}`);
      assert.ok(proxy.connects.at(-1).headers['proxy-authorization']);
    });

    it('a proxy refusing the credentials shows refused 407', async function () {
      helper.settings({ proxyOptions: { http_proxy: proxy.url } });
      await load(clientFlow({ path: `${server.url}/proxied`, authMode: 'none' }));
      await waitFor(() => statuses('cin').some((s) => s.text === 'refused 407'), 'refused 407');
    });
  });

  describe('client and listener in one runtime', function () {
    function bothFlow(scope = 'tenant') {
      const url = wsUrl('/ws/pair');
      return [
        listenerNode('l1', { path: '/ws/pair', authMode: 'hs256', scope }),
        { id: 'lin', type: 'websocket-plus in', server: 'l1', client: '', wires: [['lh', 'lout']] },
        { id: 'lout', type: 'websocket-plus out', server: 'l1', client: '' },
        { id: 'lh', type: 'helper' },
        clientNode('ca', { path: url }),
        { id: 'ain', type: 'websocket-plus in', server: '', client: 'ca', wires: [['ah']] },
        { id: 'aout', type: 'websocket-plus out', server: '', client: 'ca' },
        { id: 'ah', type: 'helper' },
        clientNode('cb', { path: url }),
        { id: 'bin', type: 'websocket-plus in', server: '', client: 'cb', wires: [['bh']] },
        { id: 'bh', type: 'helper' },
      ];
    }

    it('a client with a valid JWT reaches the listener and its tenant routing applies', async function () {
      await load(bothFlow('tenant'), {
        l1: { secret: SECRET },
        ca: { token: await signHS256(SECRET, { tenant_id: 'acme', sub: 'client-a' }) },
        cb: { token: await signHS256(SECRET, { tenant_id: 'other', sub: 'client-b' }) },
      });
      const atListener = collect('lh');
      const atA = collect('ah');
      const atB = collect('bh');
      await waitFor(
        () => helper.getNode('ca').connection.connected && helper.getNode('cb').connection.connected,
        'both connected',
      );
      helper.getNode('aout').receive({ payload: 'from a' });
      await waitFor(() => atA.length, 'echo to a');
      assert.strictEqual(atListener[0].payload, 'from a');
      assert.strictEqual(atListener[0]._session.tenantId, 'acme');
      assert.strictEqual(atListener[0]._session.subject, 'client-a');
      assert.strictEqual(atA[0].payload, 'from a');
      assert.strictEqual(atA[0]._session.authStatus, 'none');
      await sleep(200);
      assert.strictEqual(atB.length, 0, "tenant other never sees acme's message");
    });

    it('a client with a bad JWT is refused and its status says 401', async function () {
      const flow = bothFlow('tenant');
      await load(flow, {
        l1: { secret: SECRET },
        ca: { token: await signHS256('not-the-listener-secret-0123456789abc', { tenant_id: 'acme' }) },
        cb: { token: await signHS256(SECRET, { tenant_id: 'other' }) },
      });
      await waitFor(() => statuses('ain').some((s) => s.text === 'refused 401'), 'refused 401 on the client');
      assert.strictEqual(helper.getNode('ca').connection.connected, false);
      await waitFor(() => helper.getNode('cb').connection.connected, 'the good client connects');
      assert.strictEqual(helper.getNode('l1').listener.connectionCount, 1);
    });

    it('the listener fetches its JWKS through settings.proxyOptions', async function () {
      const { makeKey, signWithKey } = require('../helpers/tokens');
      const { startJwksServer } = require('../helpers/jwks-server');
      const key = await makeKey('ES256', 'k1');
      const jwks = await startJwksServer([key]);
      const open = await startConnectProxy();
      try {
        helper.settings({
          proxyOptions: { http_proxy: open.url, no_proxy: `127.0.0.1:${new URL(helper.url()).port}` },
        });
        await load(
          [
            listenerNode('l1', { path: '/ws/jwks', authMode: 'jwks', jwksUri: jwks.url }),
            clientNode('ca', { path: wsUrl('/ws/jwks') }),
            { id: 'ain', type: 'websocket-plus in', server: '', client: 'ca', wires: [] },
          ],
          { ca: { token: await signWithKey(key, { tenant_id: 'acme' }) } },
        );
        await waitFor(() => helper.getNode('ca').connection.connected, 'connected with a JWKS-verified token');
        assert.ok(
          open.requests.some((r) => r.url === jwks.url),
          'the JWKS request went through the proxy',
        );
        assert.ok(
          !open.connects.some((c) => c.target.endsWith(`:${new URL(helper.url()).port}`)),
          'no_proxy kept the client direct',
        );
      } finally {
        await helper.unload();
        await Promise.all([jwks.close(), open.close()]);
      }
    });
  });

  describe('peerProps: what the remote server may set in entire-message mode', function () {
    const HOSTILE = {
      payload: 'x',
      topic: 't',
      url: 'http://169.254.169.254/latest/meta-data/',
      method: 'DELETE',
      headers: { authorization: 'Bearer stolen' },
      filename: '/etc/passwd',
      reset: true,
      delay: 86400000,
      _msgid: 'forged',
      _session: { id: 'forged' },
    };
    const keysOf = (msg) =>
      Object.keys(msg)
        .filter((k) => k !== '_msgid')
        .sort();

    /** The server side of the client's connection to `pathname`. */
    function peerFor(pathname) {
      return new Promise((resolve) => {
        const onConnection = (ws, req) => {
          if (req.url !== pathname) return;
          server.wss.off('connection', onConnection);
          resolve(ws);
        };
        server.wss.on('connection', onConnection);
      });
    }

    it(
      'with "payload,topic" the server\'s url, method, ' + 'headers and other properties never reach the flow',
      async function () {
        const peer = peerFor('/peer-props-list');
        await load(
          clientFlow({
            path: `${server.url}/peer-props-list`,
            authMode: 'none',
            wholemsg: 'true',
            peerProps: 'payload,topic',
          }),
        );
        const got = collect('h1');
        (await peer).send(JSON.stringify(HOSTILE));
        (await peer).send('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"payload":2}');
        await waitFor(() => got.length >= 2, 'two messages at the helper');
        assert.deepStrictEqual(keysOf(got[0]), ['_session', 'payload', 'topic']);
        assert.strictEqual(got[0].payload, 'x');
        assert.strictEqual(got[0].topic, 't');
        assert.strictEqual(got[0]._session.id, helper.getNode('c1').connection.id);
        assert.notStrictEqual(got[0]._msgid, 'forged');
        assert.deepStrictEqual(keysOf(got[1]), ['_session', 'payload']);
        assert.strictEqual(Object.getPrototypeOf(got[1]), Object.prototype);
        assert.strictEqual({}.polluted, undefined);
      },
    );

    it('with "*" (the default) every property the server sends reaches the flow, as before', async function () {
      for (const peerProps of ['*', undefined]) {
        const pathname = `/peer-props-all-${peerProps ? 'star' : 'absent'}`;
        const peer = peerFor(pathname);
        const flow = clientFlow({ path: `${server.url}${pathname}`, authMode: 'none', wholemsg: 'true', peerProps });
        if (peerProps === undefined) delete flow[0].peerProps; // a flow saved before the property existed
        await load(flow);
        const got = collect('h1');
        (await peer).send(JSON.stringify(HOSTILE));
        await waitFor(() => got.length >= 1, 'a message at the helper');
        assert.deepStrictEqual(
          keysOf(got[0]),
          ['_session', 'delay', 'filename', 'headers', 'method', 'payload', 'reset', 'topic', 'url'],
          String(peerProps),
        );
        assert.strictEqual(got[0].url, HOSTILE.url);
        assert.deepStrictEqual(got[0].headers, HOSTILE.headers);
        assert.strictEqual(got[0]._session.id, helper.getNode('c1').connection.id, "never the server's _session");
        await helper.unload();
      }
    });

    it('payload mode is unaffected: the frame is msg.payload whatever the list says', async function () {
      const peer = peerFor('/peer-props-payload');
      await load(
        clientFlow({
          path: `${server.url}/peer-props-payload`,
          authMode: 'none',
          wholemsg: 'false',
          peerProps: 'topic',
        }),
      );
      const got = collect('h1');
      (await peer).send(JSON.stringify(HOSTILE));
      await waitFor(() => got.length >= 1, 'a message at the helper');
      assert.deepStrictEqual(keysOf(got[0]), ['_session', 'payload']);
      assert.strictEqual(got[0].payload, JSON.stringify(HOSTILE));
    });

    it('an invalid list is a configuration error on the node, and no connection is made', async function () {
      const before = server.connections;
      await load(
        clientFlow({
          path: `${server.url}/peer-props-bad`,
          authMode: 'none',
          wholemsg: 'true',
          peerProps: 'payload,a.b',
        }),
      );
      assert.strictEqual(lastStatus('cin').fill, 'red');
      assert.match(lastStatus('cin').text, /peerProps: "a\.b" is not a top-level property name/);
      assert.strictEqual(helper.getNode('c1').connection, undefined);
      assert.strictEqual(server.connections, before);
    });
  });
});
