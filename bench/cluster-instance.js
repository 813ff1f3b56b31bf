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
 * A second listener on `replyPath` has session scope: the parent asks an instance to reply to a
 * session held by another one ({ cmd: 'deliver', path, sessionId, data }, as a flow does with a
 * message that reached it over a queue), which the bus routes to the session's owner.
 *
 * It counts what Redis delivers to it: every delivery the bus hands to a listener, by kind and
 * routing key, and the bus's own stats (own echoes included). The parent reads and resets the counts
 * over IPC, per listener path: { cmd: 'stats', path } -> { stats, byKey }, { cmd: 'reset', path },
 * { cmd: 'sessions', path } -> [{ id, tenant }].
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

/** One listener and its own bus (channels and keys are per listener path, as in Node-RED). */
async function startListener(server, path, scope) {
  const bus = new ClusterBus({
    topology: options.topology,
    url: options.url,
    sentinelName: options.sentinelName,
    prefix: defaultClusterPrefix(path),
    instanceId: options.instanceId,
  });
  // Connection problems are expected during the failover run: counted, not printed one by one.
  const counts = { connectionErrors: 0, lastErrors: [], byKey: new Map(), statsBase: { ...bus.stats } };
  bus.on('connectionError', (err) => {
    counts.connectionErrors++;
    counts.lastErrors = [...counts.lastErrors.slice(-4), err.message];
  });
  const listener = new WebSocketListener({
    server,
    path,
    verifier: createTokenVerifier({ mode: 'custom', verifyToken: (token) => ({ tenant_id: token }) }),
    tenant: { from: 'claim', claim: 'tenant_id', staticTenantId: '' },
    scope,
    heartbeatMs: 0,
    cluster: bus,
  });
  // Every delivery the bus hands over, by kind and key (the listener still handles it as usual).
  const receive = listener.receiveFromCluster.bind(listener);
  listener.receiveFromCluster = (kind, key, ...rest) => {
    const name = `${kind}:${key}`;
    counts.byKey.set(name, (counts.byKey.get(name) ?? 0) + 1);
    return receive(kind, key, ...rest);
  };
  const sessions = new Map();
  listener.on('open', (session) => sessions.set(session.id, session.info.tenantId));
  listener.on('close', (session) => sessions.delete(session.id));
  // as ws.in+ -> ws.out+ does: the reply goes out with the session's own id
  listener.on('message', (session, data) => listener.deliver(session.id, data));
  listener.start();
  await new Promise((resolve) => {
    const check = () => (bus.state === 'ready' ? resolve() : bus.once('state', check));
    check();
  });
  return { bus, listener, counts, sessions };
}

async function main() {
  const server = http.createServer((req, res) => res.end());
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  // tenant scope (a tenant broadcast per message) and session scope (replies addressed to one session)
  const listeners = {
    [options.path]: await startListener(server, options.path, 'tenant'),
    [options.replyPath]: await startListener(server, options.replyPath, 'session'),
  };
  process.on('message', (msg) => {
    const l = listeners[msg.path];
    if (msg.cmd === 'stats') {
      const stats = {};
      for (const [k, v] of Object.entries(l.bus.stats))
        if (typeof v === 'number') stats[k] = v - (l.counts.statsBase[k] ?? 0);
      const byKey = Object.fromEntries(l.counts.byKey);
      // the connections' own states, for a run that ends degraded (fields of the bus, read as they are)
      const status = (c) => (c ? c.status : undefined);
      const connections = {
        publisher: status(l.bus.publisher),
        subscriber: status(l.bus.subscriber),
        subscribed: l.bus.subscribed,
      };
      process.send({
        reply: 'stats',
        stats,
        byKey,
        connectionErrors: l.counts.connectionErrors,
        lastErrors: l.counts.lastErrors,
        state: l.bus.state,
        connections,
      });
    } else if (msg.cmd === 'reset') {
      l.counts.statsBase = { ...l.bus.stats };
      l.counts.byKey = new Map();
      process.send({ reply: 'reset' });
    } else if (msg.cmd === 'sessions') {
      process.send({ reply: 'sessions', sessions: [...l.sessions].map(([id, tenant]) => ({ id, tenant })) });
    } else if (msg.cmd === 'deliver') {
      // a flow on this instance replying to a session it may not hold (e.g. it came over a queue)
      const result = l.listener.deliver(msg.sessionId, msg.data);
      process.send({ reply: 'deliver', delivered: result.delivered, published: result.published });
    }
  });
  process.send({ reply: 'ready', port: server.address().port });
  process.on('disconnect', async () => {
    setTimeout(() => process.exit(0), 3000).unref();
    await Promise.all(Object.values(listeners).map((l) => l.listener.close()));
    server.close(() => process.exit(0));
  });
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
