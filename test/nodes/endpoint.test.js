'use strict';
// What ws.in+ nodes receive from their listener (AttachedNodes in nodes/endpoint), in a real
// Node-RED runtime with real ws clients: message ids, one or several inputs, events.
const assert = require('assert');
const { load, wsUrl, collect, listenerNode, useRuntime } = require('../helpers/red');
const { connect } = require('../helpers/ws-client');
const { waitFor } = require('../helpers/wait');
const { built } = require('../helpers/built');
const { newMessageId } = built('nodes/endpoint');

describe('nodes/endpoint: what the inputs receive', function () {
  const sockets = useRuntime();

  it('newMessageId: 16 hex digits, as Node-RED makes them, never the same twice in a long run', function () {
    const seen = new Set();
    for (let i = 0; i < 20000; i++) {
      const id = newMessageId();
      assert.match(id, /^[0-9a-f]{16}$/);
      seen.add(id);
    }
    assert.strictEqual(seen.size, 20000);
  });

  it('one input: each message has its own _msgid and _session', async function () {
    await load([
      listenerNode('l1', { path: '/ws/ep1' }),
      { id: 'in1', type: 'websocket-plus in', server: 'l1', client: '', wires: [['h1']] },
      { id: 'h1', type: 'helper' },
    ]);
    const got = collect('h1');
    const { ws } = await connect(wsUrl('/ws/ep1'));
    sockets.push(ws);
    ws.send('a');
    ws.send('b');
    await waitFor(() => got.length === 2, 5000);
    assert.deepStrictEqual(
      got.map((m) => m.payload),
      ['a', 'b'],
    );
    for (const m of got) assert.match(m._msgid, /^[0-9a-f]{16}$/);
    for (const m of got) assert.deepStrictEqual(Object.keys(m).sort(), ['_msgid', '_session', 'payload']);
    assert.notStrictEqual(got[0]._msgid, got[1]._msgid);
    assert.notStrictEqual(got[0]._session, got[1]._session);
    assert.deepStrictEqual(got[0]._session, got[1]._session);
    assert.deepStrictEqual(Object.keys(got[0]._session), [
      'type',
      'id',
      'tenantId',
      'subject',
      'authStatus',
      'routingScope',
    ]);
  });

  it('several inputs: each gets its own copy of one message (one _msgid); events only where asked', async function () {
    await load([
      listenerNode('l1', { path: '/ws/ep2' }),
      { id: 'in1', type: 'websocket-plus in', server: 'l1', client: '', events: true, wires: [['h1']] },
      { id: 'in2', type: 'websocket-plus in', server: 'l1', client: '', events: false, wires: [['h2']] },
      { id: 'h1', type: 'helper' },
      { id: 'h2', type: 'helper' },
    ]);
    const one = collect('h1');
    const two = collect('h2');
    const { ws } = await connect(wsUrl('/ws/ep2'));
    sockets.push(ws);
    await waitFor(() => one.length === 1, 5000);
    assert.strictEqual(one[0].event, 'connect');
    ws.send('x');
    await waitFor(() => one.length === 2 && two.length === 1, 5000);
    assert.deepStrictEqual(
      two.map((m) => m.payload),
      ['x'],
      'the input without events gets the message and no connect event',
    );
    const [a, b] = [one[1], two[0]];
    assert.strictEqual(a.payload, 'x');
    assert.notStrictEqual(a, b);
    assert.notStrictEqual(a._session, b._session);
    assert.deepStrictEqual(a._session, b._session);
    assert.strictEqual(a._msgid, b._msgid, 'copies of one message keep its id, as Node-RED does for several wires');
  });
});
