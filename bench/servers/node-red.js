'use strict';
// Contender host: a real Node-RED runtime embedded in this process (RED.init + RED.start) on a
// loopback HTTP server with an ephemeral port. The orchestrator has written flows.json (and a
// plain flows_cred.json: credentialSecret is false) into the fresh user dir BENCH_USERDIR; the
// websocket-plus package, when wanted, is loaded from BENCH_NODES_DIR (a snapshot of the built
// package) through `nodesDir`.
const http = require('http');
const { serve, markHandlers } = require('../lib/ipc');

async function main() {
  const RED = require(process.env.BENCH_NODE_RED || 'node-red');
  const userDir = process.env.BENCH_USERDIR;
  if (!userDir) throw new Error('BENCH_USERDIR not set');
  const server = http.createServer((req, res) => {
    RED.httpNode(req, res, () => {
      res.writeHead(404);
      res.end();
    });
  });
  const settings = {
    userDir,
    flowFile: 'flows.json',
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: '/',
    uiPort: 0,
    uiHost: '127.0.0.1',
    disableEditor: true,
    telemetry: { enabled: false },
    logging: { console: { level: 'warn', metrics: false, audit: false } },
    externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
  };
  if (process.env.BENCH_NODES_DIR) settings.nodesDir = [process.env.BENCH_NODES_DIR];
  RED.init(server, settings);
  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('flows did not start within 30 s')), 30000);
    RED.events.once('flows:started', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  await RED.start();
  const missing = (process.env.BENCH_REQUIRE_TYPES || '').split(',').filter((t) => t && !RED.nodes.getType(t));
  if (missing.length) {
    const errors = RED.nodes
      .getNodeList()
      .filter((n) => n.err)
      .map((n) => `${n.id}: ${n.err}`);
    throw new Error(
      `node types not registered: ${missing.join(', ')}${errors.length ? `; load errors: ${errors.join('; ')}` : ''}`,
    );
  }
  await started;
  serve({ ...markHandlers() });
  const version = typeof RED.version === 'function' ? RED.version() : RED.version;
  process.send({ type: 'ready', port: server.address().port, version });
}

main().catch((err) => {
  process.send({ type: 'fatal', error: String((err && err.stack) || err) });
  process.exit(1);
});
