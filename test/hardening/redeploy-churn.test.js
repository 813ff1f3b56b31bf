'use strict';
// Redeploy churn in a real Node-RED runtime (node-red-node-test-helper): 50 full, modified-nodes
// and modified-flows deploys with clients connected. After every deploy the server carries exactly
// one `upgrade` handler for our listeners; clients of a restarted listener are closed with 1001 and
// can reconnect; at the end handlers, timers and sockets are back to the baseline.
const assert = require('assert');
const { helper, wsUrl } = require('../helpers/red');
const { connect, waitForMessages, waitForClose, delay } = require('../helpers/ws-client');
const { signHS256 } = require('../helpers/tokens');
const { waitFor, resourceCounts, trackTimers } = require('../helpers/hardening');

const SECRET = 'churn-secret-0123456789abcdef-0123456789abcd';
const creds = { l1: { secret: SECRET }, l2: { secret: SECRET } };
const ROUNDS = 50;

/**
 * The flow for a state. Like the editor, a deploy carries a listener's credentials only when the
 * listener is new (`prev` lacks it): Node-RED keeps the stored credentials of the others.
 */
function flow({ rateLimit = '', label = 'a', second = false, withListener = true } = {}, prev) {
  const withCreds = (node, isNew) => (prev && isNew ? { ...node, credentials: { secret: SECRET } } : node);
  const nodes = [
    { id: 'tab1', type: 'tab', label: 'churn' },
    { id: 'tab2', type: 'tab', label: 'other' },
    { id: 'fn', type: 'helper', z: 'tab2', name: label, wires: [] },
  ];
  if (withListener) {
    nodes.push(
      withCreds(
        {
          id: 'l1',
          type: 'websocket-plus-listener',
          path: '/ws/churn',
          wholemsg: 'false',
          authMode: 'hs256',
          tenantFrom: 'claim',
          tenantClaim: 'tenant_id',
          tenantId: '',
          scope: 'session',
          sessionTimeout: '',
          onExpiry: 'disconnect',
          rateLimit,
          maxConnections: '5',
          heartbeat: '1',
        },
        prev && !prev.withListener,
      ),
      { id: 'in1', type: 'websocket-plus in', z: 'tab1', server: 'l1', client: '', wires: [['out1']] },
      { id: 'out1', type: 'websocket-plus out', z: 'tab1', server: 'l1', client: '' },
    );
  }
  if (second) {
    nodes.push(
      withCreds(
        {
          id: 'l2',
          type: 'websocket-plus-listener',
          path: '/ws/churn-2',
          wholemsg: 'false',
          authMode: 'hs256',
          tenantFrom: 'claim',
          tenantClaim: 'tenant_id',
          tenantId: '',
          scope: 'tenant',
          sessionTimeout: '30',
          onExpiry: 'disconnect',
          rateLimit: '100',
          maxConnections: '',
          heartbeat: '1',
        },
        prev && !prev.second,
      ),
      { id: 'in2', type: 'websocket-plus in', z: 'tab1', server: 'l2', client: '', wires: [['out2']] },
      { id: 'out2', type: 'websocket-plus out', z: 'tab1', server: 'l2', client: '' },
    );
  }
  return nodes;
}

describe('hardening: redeploy churn', function () {
  this.timeout(120000);
  let server;
  let tokens;

  before(async function () {
    await helper.startServer();
    server = helper._server;
    tokens = await Promise.all(
      ['a', 'a', 'b', 'c'].map((t, i) => signHS256(SECRET, { tenant_id: t, sub: `u${i}` }, { expiresIn: 3600 })),
    );
  });
  let timers;
  after(async () => {
    if (timers) timers.stop();
    // after a failure mid-churn the flows are still running: stop them (a second unload is harmless)
    await Promise.resolve()
      .then(() => helper.unload())
      .catch(() => undefined);
    await helper.stopServer();
  });

  async function echoWorks(ws, text) {
    const before = ws.messages.length;
    ws.send(text);
    const got = await waitForMessages(ws, before + 1);
    assert.strictEqual(got[before], text);
  }

  async function connectAll(path = '/ws/churn') {
    const sockets = [];
    for (const t of tokens) {
      const r = await connect(wsUrl(path, `token=${t}`));
      assert.ok(r.opened, `connect refused with ${r.status}`);
      sockets.push(r.ws);
    }
    return sockets;
  }

  const socketCount = () =>
    new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

  it(`${ROUNDS} redeploys with clients connected leave no handler, timer or socket behind`, async function () {
    const upgradeBaseline = server.listenerCount('upgrade');
    // Warm up once (module loading, Node-RED's lazy runtime state), then take the baseline.
    await new Promise((resolve, reject) =>
      helper.load(require('../helpers/red').plusNodes, flow(), creds, (e) => (e ? reject(e) : resolve())),
    );
    const warm = await connectAll();
    await echoWorks(warm[0], 'warm');
    for (const ws of warm) ws.close();
    await helper.unload();
    await waitFor(async () => (await socketCount()) === 0, 5000, 'warm-up sockets to close');
    await delay(100);
    const resourcesBaseline = resourceCounts();
    timers = trackTimers({ stacks: true });
    assert.strictEqual(server.listenerCount('upgrade'), upgradeBaseline);

    await new Promise((resolve, reject) =>
      helper.load(require('../helpers/red').plusNodes, flow(), creds, (e) => (e ? reject(e) : resolve())),
    );
    assert.strictEqual(server.listenerCount('upgrade'), upgradeBaseline + 1, 'one dispatcher for our listeners');
    let sockets = await connectAll();
    let second = [];
    const kinds = { full: 0, nodes: 0, flows: 0, removed: 0 };

    let state = { rateLimit: '', second: false, label: 'a', withListener: true };
    for (let round = 0; round < ROUNDS; round++) {
      const prev = state;
      let type;
      let restarts;
      if (round % 10 === 9) {
        // the listener is deleted: its clients go, the dispatcher leaves the server
        state = { ...state, withListener: false, second: false };
        type = 'full';
        restarts = true;
        kinds.removed++;
      } else if (round % 3 === 0) {
        state = { ...state, withListener: true, second: !state.second };
        type = 'full';
        restarts = true;
        kinds.full++;
      } else if (round % 3 === 1) {
        // modified listener (rate limit changed): it and its in/out nodes restart
        state = { ...state, withListener: true, rateLimit: String(50 + round) };
        type = 'nodes';
        restarts = true;
        kinds.nodes++;
      } else {
        // modified unrelated flow only: the listener keeps running and its clients stay
        // (after a round that deleted the listener, this deploy brings it back)
        state = { ...state, label: `r${round}`, withListener: true };
        type = 'flows';
        restarts = !prev.withListener;
        kinds.flows++;
      }
      const next = flow(state, prev);
      const closes = sockets.map((ws) => waitForClose(ws, 5000).catch(() => null));
      await helper.setFlows(next, type, creds);
      if (restarts) {
        for (const closed of await Promise.all(closes))
          assert.strictEqual(closed?.code, 1001, `round ${round} (${type}): close code`);
        sockets = [];
      } else {
        for (const ws of sockets)
          assert.strictEqual(ws.readyState, 1, `round ${round}: a client of an unchanged listener was dropped`);
        await echoWorks(sockets[0], `still-${round}`);
      }
      for (const ws of second) if (ws.readyState !== 3) ws.terminate();
      second = [];
      const hasListener = next.some((n) => n.type === 'websocket-plus-listener');
      assert.strictEqual(
        server.listenerCount('upgrade'),
        upgradeBaseline + (hasListener ? 1 : 0),
        `round ${round}: upgrade handlers`,
      );
      if (!hasListener) {
        // Nobody serves the path any more: Node-RED leaves such upgrades unanswered (see SECURITY).
        const r = await connect(wsUrl('/ws/churn', `token=${tokens[0]}`), { ws: { handshakeTimeout: 500 } }).catch(
          (err) => ({ error: err }),
        );
        assert.ok(!r.opened, `round ${round}: a deleted listener still accepted a client`);
        if (r.ws) r.ws.terminate();
        continue;
      }
      if (sockets.length === 0) sockets = await connectAll();
      await echoWorks(sockets[round % sockets.length], `round-${round}`);
      if (next.some((n) => n.id === 'l2')) {
        second = await connectAll('/ws/churn-2');
        await echoWorks(second[0], `second-${round}`);
      }
    }

    for (const ws of [...sockets, ...second]) ws.close();
    await helper.unload();
    assert.strictEqual(server.listenerCount('upgrade'), upgradeBaseline, 'upgrade handlers back to baseline');
    await waitFor(async () => (await socketCount()) === 0, 5000, 'sockets back to baseline');
    await delay(100);
    // Every timer made during the churn (unref'd ones included) has fired or been cleared; the
    // listeners' log throttles and status coalescing need at most ~1 s to run out.
    const leftover = () => timers.where().filter((stack) => !stack.includes('at waitFor ('));
    await waitFor(() => leftover().length === 0, 3000, 'timers to run out').catch(() => undefined);
    assert.deepStrictEqual(leftover(), [], 'timers still live');
    const end = resourceCounts();
    for (const type of ['Timeout', 'TCPSocketWrap', 'TCPServerWrap']) {
      assert.ok(
        (end[type] || 0) <= (resourcesBaseline[type] || 0),
        `${type}: ${end[type]} after, ${resourcesBaseline[type]} at baseline`,
      );
    }
    assert.ok(kinds.full >= 10 && kinds.nodes >= 10 && kinds.flows >= 10 && kinds.removed >= 5, JSON.stringify(kinds));
  });
});
