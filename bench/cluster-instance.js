#!/usr/bin/env node
'use strict';
/**
 * One cluster instance of the cluster benchmark, in its own process: an HTTP server on 127.0.0.1,
 * a core WebSocketListener (tenant scope, ws.in+ -> ws.out+ as a reply: every message goes to its
 * sender's tenant) and a ClusterBus, loaded from the compiled tree given in argv (the current
 * build, or a baseline build of another commit).
 *
 * The token is the tenant id (a custom verifier returns { tenant_id: token }): the benchmark is
 * about the bus, not about JWT verification.
 *
 * It counts what Redis delivers to it: every delivery the bus hands to the listener, by kind and
 * routing key, and the bus's own stats (own echoes included). The parent reads and resets the counts
 * over IPC: { cmd: 'stats' } -> { stats, byKey }, { cmd: 'reset' }.
 *
 * Usage (by bench/cluster-run.js): fork('bench/cluster-instance.js', [JSON.stringify(options)]).
 */
const http = require('http');
const path = require('path');

const options = JSON.parse(process.argv[2]);
const lib = path.resolve(options.lib);
const { WebSocketListener } = require(path.join(lib, 'core', 'server', 'listener.js'));
const { createTokenVerifier } = require(path.join(lib, 'core', 'auth', 'token-verifier.js'));
const { ClusterBus, defaultClusterPrefix } = require(path.join(lib, 'core', 'cluster', 'cluster-bus.js'));

async function main() {
  const server = http.createServer((req, res) => res.end());
  const bus = new ClusterBus({
    topology: options.topology,
    url: options.url,
    sentinelName: options.sentinelName,
    prefix: defaultClusterPrefix(options.path),
    instanceId: options.instanceId,
  });
  // Connection problems are expected during the failover run: counted, not printed one by one.
  let connectionErrors = 0;
  bus.on('connectionError', () => connectionErrors++);
  const listener = new WebSocketListener({
    server,
    path: options.path,
    verifier: createTokenVerifier({ mode: 'custom', verifyToken: (token) => ({ tenant_id: token }) }),
    tenant: { from: 'claim', claim: 'tenant_id', staticTenantId: '' },
    scope: 'tenant',
    heartbeatMs: 0,
    cluster: bus,
  });
  // Every delivery the bus hands over, by kind and key (the listener still handles it as usual).
  let byKey = new Map();
  const receive = listener.receiveFromCluster.bind(listener);
  listener.receiveFromCluster = (kind, key, ...rest) => {
    const name = `${kind}:${key}`;
    byKey.set(name, (byKey.get(name) ?? 0) + 1);
    return receive(kind, key, ...rest);
  };
  const statsBase = { ...bus.stats };
  listener.on('message', (session, data) => listener.deliver(session.id, data));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  listener.start();
  await new Promise((resolve) => {
    const check = () => (bus.state === 'ready' ? resolve() : bus.once('state', check));
    check();
  });
  process.on('message', (msg) => {
    if (msg.cmd === 'stats') {
      const stats = {};
      for (const [k, v] of Object.entries(bus.stats)) if (typeof v === 'number') stats[k] = v - (statsBase[k] ?? 0);
      process.send({ reply: 'stats', stats, byKey: Object.fromEntries(byKey), connectionErrors, state: bus.state });
    } else if (msg.cmd === 'reset') {
      Object.assign(statsBase, bus.stats);
      byKey = new Map();
      process.send({ reply: 'reset' });
    }
  });
  process.send({ reply: 'ready', port: server.address().port });
  process.on('disconnect', async () => {
    setTimeout(() => process.exit(0), 3000).unref();
    await listener.close();
    await bus.close();
    server.close(() => process.exit(0));
  });
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
