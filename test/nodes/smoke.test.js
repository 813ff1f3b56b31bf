'use strict';
const assert = require('assert');
const { helper, load, wsUrl, collect, listenerNode } = require('../helpers/red');
const { connect, waitForMessages, closeAll } = require('../helpers/ws-client');
const { signHS256 } = require('../helpers/tokens');

describe('smoke', function () {
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it('echoes on session scope with hs256', async function () {
    await load([
      listenerNode('l1', { path: '/ws/echo', authMode: 'hs256', scope: 'session' }),
      { id: 'in1', type: 'websocket-plus in', server: 'l1', client: '', wires: [['out1', 'h1']] },
      { id: 'out1', type: 'websocket-plus out', server: 'l1', client: '' },
      { id: 'h1', type: 'helper' },
    ], { l1: { secret: 'test-secret-0123456789abcdef0123' } });
    const got = collect('h1');
    const token = await signHS256('test-secret-0123456789abcdef0123', { tenant_id: 'acme', sub: 'alice' });
    const bad = await connect(wsUrl('/ws/echo', 'token=nope'));
    assert.strictEqual(bad.status, 401);
    const { ws } = await connect(wsUrl('/ws/echo', `token=${token}`));
    ws.send('hello');
    const msgs = await waitForMessages(ws, 1);
    assert.deepStrictEqual(msgs, ['hello']);
    assert.strictEqual(got[0]._session.tenantId, 'acme');
    assert.strictEqual(got[0]._session.subject, 'alice');
    closeAll([ws]);
  });
});
