'use strict';
// Real multi-process Redis topologies on loopback ports, for the cluster bus and limiter tests:
// - startRedisCluster({ masters }): `redis-server --cluster-enabled yes` processes joined with
//   `redis-cli --cluster create`, ready once every node reports `cluster_state:ok`;
// - startRedisSentinel(): a master, a replica and sentinels with short failover timings, and
//   killMaster() to make them promote the replica; optionally with passwords on the sentinels and
//   on the master group (requirepass, masterauth, sentinel auth-pass).
// Every wait is bounded; stop() ends every process and removes the temporary directories.
const net = require('net');
const { RedisServer, freePort, redisCli } = require('./redis-server');

const READY_TIMEOUT_MS = 20000;
/** Cluster nodes talk on port + 10000 (the cluster bus): both must be free. */
const CLUSTER_BUS_OFFSET = 10000;

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function portFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (port + 10000) is free as well. */
async function freeClusterPort(taken) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freePort();
    if (port + CLUSTER_BUS_OFFSET > 65535 || taken.has(port) || taken.has(port + CLUSTER_BUS_OFFSET)) continue;
    if (taken.has(port - CLUSTER_BUS_OFFSET)) continue;
    if (await portFree(port + CLUSTER_BUS_OFFSET)) {
      taken.add(port);
      taken.add(port + CLUSTER_BUS_OFFSET);
      return port;
    }
  }
  throw new Error('no free port pair for a cluster node');
}

/** Polls `check` (async) until it is true; fails after `ms` naming `what` and the last output seen. */
async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    try {
      const result = await check();
      if (result === true) return;
      if (typeof result === 'string') last = result;
    } catch (err) {
      last = err.message;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${last}`.trim());
    await delay(100);
  }
}

function infoField(text, field) {
  const match = new RegExp(`^${field}:(.*)$`, 'm').exec(text);
  return match ? match[1].trim() : undefined;
}

async function startNodes(servers) {
  try {
    await Promise.all(servers.map((s) => s.start()));
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    throw err;
  }
}

class RedisClusterHandle {
  constructor(nodes) {
    this.nodes = nodes;
  }

  get ports() {
    return this.nodes.map((n) => n.port);
  }

  /** The seed node URLs, comma-separated (the listener's cluster URL form). */
  get url() {
    return this.nodes.map((n) => n.url).join(',');
  }

  get urls() {
    return this.nodes.map((n) => n.url);
  }

  /** redis-cli against one node (`-c`: follows MOVED redirections). */
  cli(args, node = 0) {
    return redisCli(['-c', '-h', '127.0.0.1', '-p', String(this.nodes[node].port), ...args]);
  }

  /** The port of the master serving `key`'s hash slot. */
  async masterPortOf(key) {
    return (await this.masterPortsOf([key]))[0];
  }

  /** The ports of the masters serving the hash slots of `keys` (two redis-cli runs in all). */
  async masterPortsOf(keys) {
    const port = String(this.nodes[0].port);
    const slots = (await redisCli(['-p', port], 20000, keys.map((k) => `CLUSTER KEYSLOT "${k}"\n`).join('')))
      .trim()
      .split('\n')
      .map(Number);
    const ranges = [];
    for (const line of (await redisCli(['-p', port, 'CLUSTER', 'NODES'])).trim().split('\n')) {
      const fields = line.split(' ');
      if (!fields[2].includes('master')) continue;
      const owner = Number(/:(\d+)@/.exec(fields[1])[1]);
      for (const range of fields.slice(8)) {
        const [from, to = from] = range.split('-').map(Number);
        ranges.push({ from, to, owner });
      }
    }
    return slots.map((slot) => {
      const range = ranges.find((r) => slot >= r.from && slot <= r.to);
      if (!range) throw new Error(`no master for slot ${slot}`);
      return range.owner;
    });
  }

  async stop() {
    await Promise.all(this.nodes.map((n) => n.close()));
  }
}

/**
 * Starts `masters` cluster-mode redis-server processes (no replicas) on loopback ports and joins
 * them into one cluster covering all 16384 slots. Resolves once every node says `cluster_state:ok`
 * and knows every other node.
 */
async function startRedisCluster({ masters = 3 } = {}) {
  if (masters < 3) throw new Error('redis-cli --cluster create needs at least 3 masters');
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const taken = new Set();
    const nodes = [];
    for (let i = 0; i < masters; i++) {
      nodes.push(
        new RedisServer(await freeClusterPort(taken), {
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            '2000',
            '--cluster-announce-ip',
            '127.0.0.1',
          ],
        }),
      );
    }
    const handle = new RedisClusterHandle(nodes);
    try {
      await startNodes(nodes);
      await redisCli([
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ]);
      await until(
        async () => {
          for (const node of nodes) {
            const info = await redisCli(['-p', String(node.port), 'CLUSTER', 'INFO'], 2000);
            if (infoField(info, 'cluster_state') !== 'ok') return `node ${node.port}: ${info.split('\n')[0]}`;
            if (Number(infoField(info, 'cluster_known_nodes')) !== masters) return `node ${node.port} still meeting`;
            if (Number(infoField(info, 'cluster_slots_ok')) !== 16384) return `node ${node.port} slots not ok`;
          }
          return true;
        },
        READY_TIMEOUT_MS,
        'cluster_state:ok on every node',
      );
      return handle;
    } catch (err) {
      lastError = err;
      await handle.stop();
    }
  }
  throw lastError;
}

/** redis-cli arguments that authenticate with `password` (none without one). */
function authArgs(password) {
  return password ? ['-a', password, '--no-auth-warning'] : [];
}

class RedisSentinelHandle {
  constructor(name, master, replica, sentinels, { sentinelPassword, masterPassword } = {}) {
    this.name = name;
    this.master = master;
    this.replica = replica;
    this.sentinels = sentinels;
    this.sentinelPassword = sentinelPassword;
    this.masterPassword = masterPassword;
  }

  /** redis-cli against a sentinel (with the sentinels' password, if any). */
  sentinelCli(port, args, ms = 2000) {
    return redisCli([...authArgs(this.sentinelPassword), '-p', String(port), ...args], ms);
  }

  /** redis-cli against the master or the replica (with the master group's password, if any). */
  dataCli(port, args, ms = 2000) {
    return redisCli([...authArgs(this.masterPassword), '-p', String(port), ...args], ms);
  }

  /**
   * The sentinel URLs, comma-separated (the listener's sentinel URL form); the first carries the
   * master group's password, if any.
   */
  get url() {
    const auth = this.masterPassword ? `:${encodeURIComponent(this.masterPassword)}@` : '';
    return this.sentinels.map((s, i) => (i === 0 ? s.url.replace('//', `//${auth}`) : s.url)).join(',');
  }

  get sentinelAddresses() {
    return this.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port }));
  }

  /** The master's port as the first sentinel that answers reports it. */
  async masterPort() {
    for (const sentinel of this.sentinels) {
      if (!sentinel.running) continue;
      try {
        const out = await this.sentinelCli(sentinel.port, ['SENTINEL', 'get-master-addr-by-name', this.name]);
        const port = Number(out.trim().split('\n')[1]);
        if (port > 0) return port;
      } catch {
        // the next sentinel
      }
    }
    return undefined;
  }

  /**
   * Resolves once every sentinel monitors the master group and knows the replica and (`others`)
   * the other sentinels, which they learn from each other's hello messages every 2 s: a failover
   * needs their votes.
   */
  async watching({ others = true } = {}) {
    await until(
      async () => {
        for (const sentinel of this.sentinels) {
          if (!sentinel.running) continue;
          const out = await this.sentinelCli(sentinel.port, ['SENTINEL', 'master', this.name]);
          const lines = out.trim().split('\n');
          const field = (key) => lines[lines.indexOf(key) + 1];
          if (Number(field('num-slaves')) < 1) return `sentinel ${sentinel.port} has not seen the replica`;
          if (others && Number(field('num-other-sentinels')) < this.sentinels.length - 1)
            return `sentinel ${sentinel.port} has not seen the others`;
        }
        return true;
      },
      READY_TIMEOUT_MS,
      'every sentinel to see the replica and the other sentinels',
    );
  }

  /**
   * Kills the current master (SIGKILL, as a crash) once the sentinels can fail over; they then
   * promote the replica. The killed process stays down. Resolves with the killed master's port.
   */
  async killMaster() {
    await this.watching();
    const port = await this.masterPort();
    const victim = [this.master, this.replica].find((s) => s.port === port) ?? this.master;
    this.killedAt = Date.now();
    await victim.kill();
    return victim.port;
  }

  /** Resolves with the new master's port once every sentinel reports a master other than `oldPort`. */
  async waitForFailover(oldPort, ms = READY_TIMEOUT_MS) {
    let port;
    await until(
      async () => {
        port = await this.masterPort();
        if (port === undefined || port === oldPort) return `master still ${port}`;
        const role = await this.dataCli(port, ['ROLE']);
        return role.startsWith('master') ? true : `new master ${port} not yet promoted`;
      },
      ms,
      'the sentinels to promote the replica',
    );
    return port;
  }

  async stop() {
    await Promise.all(this.sentinels.map((s) => s.close()));
    await Promise.all([this.master.close(), this.replica.close()]);
  }
}

/**
 * Starts a master, one replica and `sentinels` sentinels (quorum `quorum`) watching master group
 * `name`. The master is reported down after `downAfterMs` without an answer; with the defaults a
 * killed master is replaced within a few seconds. Resolves once the replica is in sync and every
 * sentinel knows the replica and the other sentinels.
 * `sentinelPassword`: the sentinels require it (requirepass) and use it among themselves.
 * `masterPassword`: master and replica require it (requirepass), the replica and a demoted master
 * sync with it (masterauth), and the sentinels monitor with it (sentinel auth-pass).
 */
async function startRedisSentinel({
  name = 'wsplus-master',
  sentinels = 3,
  quorum = 2,
  downAfterMs = 1000,
  failoverTimeoutMs = 3000,
  sentinelPassword,
  masterPassword,
} = {}) {
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    // Diskless sync waits 5 s by default for more replicas to join: one is all there is.
    const dataArgs = ['--repl-diskless-sync-delay', '0'];
    if (masterPassword) dataArgs.push('--requirepass', masterPassword, '--masterauth', masterPassword);
    const master = new RedisServer(await freePort(), { args: dataArgs });
    const replicaPort = await freePort();
    const replica = new RedisServer(replicaPort, {
      args: [...dataArgs, '--replicaof', '127.0.0.1', String(master.port), '--replica-announce-ip', '127.0.0.1'],
    });
    const watchers = [];
    for (let i = 0; i < sentinels; i++) {
      const port = await freePort();
      watchers.push(
        new RedisServer(port, {
          sentinel: true,
          config: [
            `sentinel monitor ${name} 127.0.0.1 ${master.port} ${quorum}`,
            `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
            `sentinel failover-timeout ${name} ${failoverTimeoutMs}`,
            `sentinel parallel-syncs ${name} 1`,
            'sentinel announce-ip 127.0.0.1',
            ...(masterPassword ? [`sentinel auth-pass ${name} ${masterPassword}`] : []),
            ...(sentinelPassword
              ? [`requirepass ${sentinelPassword}`, `sentinel sentinel-pass ${sentinelPassword}`]
              : []),
            '',
          ].join('\n'),
        }),
      );
    }
    const handle = new RedisSentinelHandle(name, master, replica, watchers, { sentinelPassword, masterPassword });
    try {
      await startNodes([master, replica]);
      await until(
        async () => {
          const info = await handle.dataCli(replica.port, ['INFO', 'replication']);
          return infoField(info, 'master_link_status') === 'up' || 'replica not in sync';
        },
        READY_TIMEOUT_MS,
        'the replica to sync',
      );
      await startNodes(watchers);
      await handle.watching({ others: false });
      return handle;
    } catch (err) {
      lastError = err;
      await handle.stop();
    }
  }
  throw lastError;
}

module.exports = { startRedisCluster, startRedisSentinel, freeClusterPort };
