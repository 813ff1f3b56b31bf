'use strict';
const assert = require('assert');
const http = require('http');
const { dispatcherFor, joinNodeRoot, requestPathname } = require('../../nodes/lib/core/upgrade-dispatcher');

describe('core/upgrade-dispatcher', function () {
  it('adds one upgrade listener for many paths and removes it with the last', function () {
    const server = http.createServer();
    const baseline = server.listenerCount('upgrade');
    const h1 = () => {};
    const h2 = () => {};
    dispatcherFor(server).register('/a', h1);
    dispatcherFor(server).register('/b', h2);
    assert.strictEqual(server.listenerCount('upgrade'), baseline + 1);
    assert.throws(() => dispatcherFor(server).register('/a/', h2), (err) => err.code === 'PATH_CONFLICT');
    dispatcherFor(server).unregister('/a', h2); // not the owner: ignored
    assert.deepStrictEqual(dispatcherFor(server).paths.sort(), ['/a', '/b']);
    dispatcherFor(server).unregister('/a', h1);
    dispatcherFor(server).unregister('/b', h2);
    assert.strictEqual(server.listenerCount('upgrade'), baseline);
  });

  it('dispatches by pathname and leaves other paths alone', function () {
    const server = http.createServer();
    const seen = [];
    const handler = (req) => seen.push(req.url);
    dispatcherFor(server).register('/ws', handler);
    server.emit('upgrade', { url: '/ws?token=x' }, {}, Buffer.alloc(0));
    server.emit('upgrade', { url: '/other' }, {}, Buffer.alloc(0));
    server.emit('upgrade', { url: '/ws/deeper' }, {}, Buffer.alloc(0));
    assert.deepStrictEqual(seen, ['/ws?token=x']);
    dispatcherFor(server).unregister('/ws', handler);
  });

  it('joins httpNodeRoot like core', function () {
    assert.strictEqual(joinNodeRoot('/', 'ws/a'), '/ws/a');
    assert.strictEqual(joinNodeRoot('/api', '/ws/a'), '/api/ws/a');
    assert.strictEqual(joinNodeRoot('/api/', 'ws/a'), '/api/ws/a');
    assert.strictEqual(joinNodeRoot(undefined, 'x'), '/x');
    assert.strictEqual(requestPathname('http://evil/x'), undefined);
  });
});
