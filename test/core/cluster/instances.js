'use strict';
// Several core listener instances in this process, each with its own HTTP server on 127.0.0.1 and
// its own ClusterBus (and, when asked, a Redis connection limiter and session control), all on the
// same Redis topology: what the per-tenant delivery suites run on single Redis, Redis Cluster and
// Sentinel alike. Clients are real ws clients with jose-signed tokens.
const { startHttpServer, startListener } = require('../../helpers/listener');
const { connect, closeAll } = require('../../helpers/ws-client');
const { waitFor } = require('../../helpers/wait');
const { signHS256 } = require('../../helpers/tokens');
const { built } = require('../../helpers/built');
const { ClusterBus } = built('core/cluster/cluster-bus');
const { RedisTenantLimiter } = built('core/cluster/redis-tenant-limiter');
const { ClusterSessionControl } = built('core/cluster/cluster-control');

const SECRET = 'cluster-instances-secret-0123456789abcdef';

/**
 * A group of instances of one listener. `bus`: ClusterBus options besides the prefix (url,
 * topology, sentinelName, tenantLingerMs...). `maxPerTenant`: a Redis limiter on every instance.
 * `control`: a session control on every instance.
 */
function instanceGroup({ prefix, bus: busOptions, scope = 'tenant', maxPerTenant = 0, control = false }) {
  const instances = [];
  const sockets = [];

  async function start(label) {
    const srv = await startHttpServer();
    const bus = new ClusterBus({ prefix, maxReconnectDelayMs: 200, ...busOptions });
    const errors = [];
    bus.on('connectionError', (err) => errors.push(err.message));
    const limiter = maxPerTenant > 0 ? new RedisTenantLimiter(bus, { maxPerTenant, leaseMs: 3000 }) : undefined;
    const rec = startListener(srv, '/ws/group', {
      verifier: { mode: 'hs256', secret: SECRET },
      scope,
      cluster: bus,
      tenantLimiter: limiter,
    });
    await waitFor(() => bus.state === 'ready', 15000, `${label} bus ready (${bus.state}: ${errors.slice(-1)})`);
    let sessionControl;
    if (control) {
      sessionControl = new ClusterSessionControl(bus, rec.listener, {
        answerTimeoutMs: 2000,
        presenceIntervalMs: 300,
        instance: label,
      });
      sessionControl.start();
    }
    const instance = { label, srv, bus, limiter, rec, listener: rec.listener, control: sessionControl, errors };
    instances.push(instance);
    return instance;
  }

  /** A client of `tenant` on `instance`: the socket (with .messages) and its session on the server. */
  async function client(instance, tenant, sub = `${tenant}-user`) {
    const token = await signHS256(SECRET, { tenant_id: tenant, sub });
    const before = new Set(instance.listener.registry.all());
    const { ws, status } = await connect(instance.rec.url(`token=${token}`));
    if (status) throw new Error(`handshake refused with ${status}`);
    sockets.push(ws);
    let session;
    await waitFor(
      () => (session = [...instance.listener.registry.all()].find((s) => !before.has(s))) !== undefined,
      3000,
      'session registered',
    );
    return { ws, session };
  }

  /** Tries to connect a client of `tenant`; resolves with the HTTP status of a refusal or 101. */
  async function attempt(instance, tenant) {
    const token = await signHS256(SECRET, { tenant_id: tenant, sub: `${tenant}-user` });
    const { ws, status } = await connect(instance.rec.url(`token=${token}`));
    sockets.push(ws);
    return { status: status ?? 101, ws };
  }

  /** Starts one instance per label, one after the other; resolves them in that order. */
  async function startAll(labels) {
    const started = [];
    for (const label of labels) started.push(await start(label));
    return started;
  }

  async function stopAll() {
    closeAll(sockets.splice(0));
    for (const instance of instances.splice(0)) {
      await instance.control?.stop();
      await instance.listener.close();
      await instance.srv.close();
    }
  }

  return { instances, start, startAll, client, attempt, stopAll };
}

/** A snapshot of every instance's bus stats, to compare before/after a step. */
function statsOf(instances) {
  return instances.map((i) => ({ ...i.bus.stats }));
}

/** Per instance, how much `field` grew between two snapshots. */
function grown(before, after, field) {
  return after.map((s, i) => s[field] - before[i][field]);
}

module.exports = { instanceGroup, statsOf, grown, SECRET };
