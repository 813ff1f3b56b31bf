'use strict';
// A real Node-RED runtime (node-red-node-test-helper) with the built package loaded.
const path = require('path');
const helper = require('node-red-node-test-helper');
const { closeAll } = require('./ws-client');

helper.init(require.resolve('node-red'));
const plusNodes = require(path.join(__dirname, '..', '..', 'nodes', 'websocket-plus.js'));
const { LISTENER_DEFAULTS, CLIENT_DEFAULTS } = require('./built').built('core/flow/defaults');

/** Loads `flow` (with `credentials`) and resolves when it has started. */
function load(flow, credentials = {}, extraNodes = []) {
  return new Promise((resolve, reject) => {
    helper.load([plusNodes, ...extraNodes], flow, credentials, (err) => (err ? reject(err) : resolve()));
  });
}

/** ws:// URL of `path` on the helper's HTTP server. */
function wsUrl(pathname, query) {
  const base = helper.url().replace(/^http/, 'ws');
  return `${base}${pathname}${query ? `?${query}` : ''}`;
}

/** Collects what a helper node receives. */
function collect(nodeId) {
  const node = helper.getNode(nodeId);
  const received = [];
  node.on('input', (msg) => received.push(msg));
  return received;
}

/** Listener + in -> (optional function) -> helper; in -> out echo wiring built by callers. */
function listenerNode(id, props) {
  return { id, type: 'websocket-plus-listener', ...LISTENER_DEFAULTS, path: '/ws/test', authMode: 'none', ...props };
}

/**
 * Mocha hooks for a suite on the runtime: the helper's server for the suite; after each test, the
 * sockets it opened are closed and its flow unloaded. Returns the list a test pushes its sockets to.
 */
function useRuntime() {
  const sockets = [];
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    closeAll(sockets.splice(0));
    await helper.unload();
  });
  return sockets;
}

/** A client config node with the editor's defaults (its own headers array) and `props`. */
function clientNode(id, props) {
  return { id, type: 'websocket-plus-client', ...CLIENT_DEFAULTS, headers: [], ...props };
}

module.exports = { helper, load, wsUrl, collect, listenerNode, clientNode, plusNodes, useRuntime };
