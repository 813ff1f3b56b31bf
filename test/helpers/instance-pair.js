'use strict';
// Two Node-RED instances (nr-instance.js) with the same flow on one cluster, and ws clients of them,
// each with an HS256 token of its tenant and subject; every socket is kept until closeAll().
const assert = require('assert');
const { spawnInstance } = require('./nr-instance');
const { connect, closeAll } = require('./ws-client');
const { signHS256 } = require('./tokens');
const { waitFor } = require('./wait');

/**
 * Starts two instances of `flows` at info level and resolves [one, two] once each has logged
 * "cluster connected" `listeners` times: every listener has its cluster subscriptions confirmed.
 */
async function startPair({ flows, credentials, listeners }) {
  const env = { NR_LOG_LEVEL: 'info' };
  const pair = await Promise.all([
    spawnInstance({ flows, credentials, env }),
    spawnInstance({ flows, credentials, env }),
  ]);
  await Promise.all(pair.map((inst) => inst.waitForLines(/cluster connected/, listeners, 20000)));
  return pair;
}

/**
 * The nodes of one listener in a flow on tab1: the listener (`props` over HS256 tokens whose
 * tenant_id claim is the tenant, payloads rather than whole messages, the default cluster prefix),
 * its ws.in+ wired to `wires` (by default straight to its ws.out+: an echo) and its ws.out+.
 */
function listenerNodes(id, props, wires = [`out-${id}`]) {
  return [
    {
      id,
      type: 'websocket-plus-listener',
      wholemsg: 'false',
      authMode: 'hs256',
      tenantFrom: 'claim',
      tenantClaim: 'tenant_id',
      clusterPrefix: '',
      ...props,
    },
    { id: `in-${id}`, type: 'websocket-plus in', z: 'tab1', server: id, client: '', wires: [wires] },
    { id: `out-${id}`, type: 'websocket-plus out', z: 'tab1', server: id, client: '', wires: [] },
  ];
}

function instanceClients(secret) {
  let sockets = [];

  /** Connects to `path` on `inst`; resolves what connect() resolves (opened, status, ws). */
  async function client(inst, path, tenant, sub = 'user') {
    const token = await signHS256(secret, { tenant_id: tenant, sub });
    const result = await connect(inst.url(path, `token=${token}`));
    sockets.push(result.ws);
    return result;
  }

  /** Like client(), and asserts the connection opened; resolves its ws. */
  async function open(inst, path, tenant, sub) {
    const result = await client(inst, path, tenant, sub);
    assert.strictEqual(result.opened, true, `connect refused with ${result.status}`);
    return result.ws;
  }

  /**
   * With tenant a at its limit on `path` (the sockets `held`, the first of them on `one`): tenant b
   * still gets in; a slot freed on `one` is taken on `two`, and then the tenant is full again.
   */
  async function slotMovesAcross({ one, two, path, held }) {
    await open(two, path, 'b');
    held[0].close();
    await waitFor(async () => (await client(two, path, 'a')).opened, 10000, 'freed slot taken on two');
    assert.strictEqual((await client(one, path, 'a')).status, 429, 'full again');
  }

  return {
    client,
    open,
    slotMovesAcross,
    closeAll() {
      closeAll(sockets);
      sockets = [];
    },
  };
}

module.exports = { startPair, listenerNodes, instanceClients };
