'use strict';
// The load generator: one process of real `ws` clients over 127.0.0.1, driven by the
// orchestrator over IPC. It signs tokens (jose) before a measurement window opens, so signing is
// never inside a window, and every run is bounded by a count and a deadline.
const WebSocket = require('ws');
const jose = require('jose');
const { randomUUID } = require('crypto');
const { serve } = require('./lib/ipc');

const now = () => performance.now();
const state = {
  keys: {},
  issuer: undefined,
  audience: undefined,
  tokens: [],
  pools: new Map(),
  pings: 0,
};

function connect(url, timeoutMs = 15000) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    let settled = false;
    const settle = (value) => {
      if (settled) return;
      settled = true;
      resolve(value);
    };
    ws.once('open', () => settle({ ok: true, ws }));
    ws.on('error', (err) => settle({ ok: false, reason: err.code || err.message }));
    ws.once('unexpected-response', (req, res) => {
      settle({ ok: false, reason: `HTTP ${res.statusCode}` });
      res.resume();
      req.destroy();
    });
    ws.on('ping', () => {
      state.pings++;
    });
  });
}

function closeAndWait(ws, timeoutMs = 5000) {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, timeoutMs);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close();
  });
}

async function sign(kind, claims) {
  const { key, alg, kid } = state.keys[kind];
  const header = { alg, typ: 'JWT' };
  if (kid === 'random') header.kid = `unknown-${randomUUID()}`;
  else if (kid) header.kid = kid;
  const jwt = new jose.SignJWT({ ...claims })
    .setProtectedHeader(header)
    .setIssuedAt()
    .setExpirationTime('15m')
    .setJti(randomUUID());
  if (state.issuer) jwt.setIssuer(state.issuer);
  if (state.audience) jwt.setAudience(state.audience);
  return jwt.sign(key);
}

function withToken(url, token) {
  return token ? `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : url;
}

/** Runs `count` jobs with `concurrency` workers. */
async function runPool(count, concurrency, job) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

/** Waits for `done()` to be true, checking on every call of `check`; rejects on deadline. */
function until(deadlineMs, setup) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ timedOut: true }), deadlineMs);
    setup(() => {
      clearTimeout(timer);
      resolve({ timedOut: false });
    });
  });
}

const handlers = {
  async init({ keys, issuer, audience }) {
    for (const [name, k] of Object.entries(keys)) {
      const key = k.secret !== undefined ? new TextEncoder().encode(k.secret) : await jose.importJWK(k.jwk, k.alg);
      state.keys[name] = { key, alg: k.alg, kid: k.kid };
    }
    state.issuer = issuer;
    state.audience = audience;
    return { ok: true };
  },

  /** Signs `count` fresh tokens (distinct sub and jti each) kept for the next `handshakes`. */
  async sign({ kind, count, tenant = 't0', kid }) {
    const t0 = now();
    state.tokens = [];
    if (!kind || kind === 'none') {
      state.tokens = new Array(count).fill(undefined);
      return { count, ms: 0 };
    }
    const saved = state.keys[kind].kid;
    if (kid !== undefined) state.keys[kind].kid = kid;
    try {
      const batch = 64;
      for (let i = 0; i < count; i += batch) {
        const part = await Promise.all(
          Array.from({ length: Math.min(batch, count - i) }, (_, j) =>
            sign(kind, { sub: `user-${i + j}`, tenant_id: tenant }),
          ),
        );
        state.tokens.push(...part);
      }
    } finally {
      state.keys[kind].kid = saved;
    }
    return { count, ms: now() - t0 };
  },

  /** Opens and closes one connection per signed token: open, then close, then wait for the close. */
  async handshakes({ url, concurrency }) {
    const tokens = state.tokens;
    const reasons = {};
    let ok = 0;
    let failed = 0;
    const t0 = now();
    await runPool(tokens.length, concurrency, async (i) => {
      const r = await connect(withToken(url, tokens[i]));
      if (r.ok) {
        ok++;
        await closeAndWait(r.ws);
      } else {
        failed++;
        reasons[r.reason] = (reasons[r.reason] || 0) + 1;
      }
    });
    return { ok, failed, reasons, ms: now() - t0 };
  },

  /**
   * Opens `count` connections and keeps them as pool `name`. `tenants` (optional) is a list of
   * tenant ids, one per connection, each signed once with `kind`.
   */
  async openPool({ name, url, count, concurrency = 50, kind = 'none', tenants }) {
    const tokenByTenant = new Map();
    if (kind !== 'none') {
      for (const t of new Set(tenants || ['t0']))
        tokenByTenant.set(t, await sign(kind, { sub: `pool-${t}`, tenant_id: t }));
    }
    const conns = state.pools.get(name) || [];
    state.pools.set(name, conns);
    let failed = 0;
    const reasons = {};
    const t0 = now();
    const start = conns.length;
    await runPool(count, concurrency, async (i) => {
      const tenant = tenants ? tenants[i] : 't0';
      const r = await connect(withToken(url, tokenByTenant.get(tenant)));
      if (!r.ok) {
        failed++;
        reasons[r.reason] = (reasons[r.reason] || 0) + 1;
        return;
      }
      const conn = { ws: r.ws, tenant, index: start + i, recv: 0, onmsg: null, stray: 0 };
      r.ws.on('message', (data, isBinary) => {
        conn.recv++;
        if (conn.onmsg) conn.onmsg(data, isBinary);
        else conn.stray++;
      });
      conns[start + i] = conn;
    });
    // Keep the array dense (a failed connection leaves no hole).
    const dense = conns.filter(Boolean);
    conns.length = 0;
    conns.push(...dense);
    return { opened: conns.length - start, failed, reasons, ms: now() - t0, total: conns.length };
  },

  async closePool({ name }) {
    const conns = state.pools.get(name) || [];
    state.pools.delete(name);
    await runPool(conns.length, 200, (i) => closeAndWait(conns[i].ws));
    return { closed: conns.length };
  },

  /** Echo throughput: every connection keeps `inflight` messages of `size` bytes outstanding. */
  async echoRun({ pool, inflight, size, total, deadlineMs = 60000 }) {
    const conns = state.pools.get(pool);
    const payload = 'e'.repeat(size);
    let sent = 0;
    let recv = 0;
    const pings0 = state.pings;
    const t0 = now();
    const r = await until(deadlineMs, (done) => {
      for (const c of conns) {
        c.onmsg = () => {
          recv++;
          if (sent < total) {
            sent++;
            c.ws.send(payload);
          }
          if (recv === total) done();
        };
      }
      for (const c of conns) {
        for (let k = 0; k < inflight && sent < total; k++) {
          sent++;
          c.ws.send(payload);
        }
      }
    });
    const ms = now() - t0;
    for (const c of conns) c.onmsg = null;
    return { messages: recv, ms, timedOut: r.timedOut, pings: state.pings - pings0 };
  },

  /** Echo latency at a fixed total rate (messages/s) for `durationMs`, round robin over the pool. */
  async latencyRun({ pool, rate, durationMs, size, deadlineMs = 30000 }) {
    const conns = state.pools.get(pool);
    const total = Math.round((rate * durationMs) / 1000);
    const sentAt = new Float64Array(total);
    const lat = [];
    let sent = 0;
    const pad = 'l'.repeat(size);
    const pings0 = state.pings;
    const r = await until(deadlineMs, (done) => {
      for (const c of conns) {
        c.onmsg = (data) => {
          const seq = parseInt(data.toString('latin1', 0, 10), 10);
          lat.push(now() - sentAt[seq]);
          if (lat.length === total) done();
        };
      }
      const t0 = now();
      const tick = () => {
        const due = Math.min(total, Math.floor(((now() - t0) * rate) / 1000) + 1);
        while (sent < due) {
          const seq = sent++;
          const text = String(seq).padStart(10, '0') + pad.slice(10);
          sentAt[seq] = now();
          conns[seq % conns.length].ws.send(text);
        }
        if (sent < total) setTimeout(tick, 1);
      };
      tick();
    });
    for (const c of conns) c.onmsg = null;
    lat.sort((a, b) => a - b);
    return {
      samples: lat.length,
      expected: total,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      max: lat[lat.length - 1],
      timedOut: r.timedOut,
      pings: state.pings - pings0,
    };
  },

  /**
   * Fan-out: the first connection of `tenant` (default: of the pool) sends `count` messages; each
   * must reach every connection of that tenant (default: every connection of the pool). At most
   * `window` messages are not yet fully delivered. Connections outside the targets must receive
   * nothing (counted as leaks).
   */
  async fanoutRun({ pool, tenant, count, window = 4, size, deadlineMs = 60000 }) {
    const conns = state.pools.get(pool);
    const targetIdx = conns.map((c, i) => (tenant === undefined || c.tenant === tenant ? i : -1)).filter((i) => i >= 0);
    const targetSet = new Set(targetIdx);
    const sender = targetIdx[0];
    const need = targetSet.size;
    const got = new Uint32Array(count);
    const payload = 'b'.repeat(size);
    let sent = 0;
    let complete = 0;
    let deliveries = 0;
    let leaks = 0;
    const pings0 = state.pings;
    const t0 = now();
    const r = await until(deadlineMs, (done) => {
      const pump = () => {
        while (sent < count && sent - complete < window) {
          sent++;
          conns[sender].ws.send(payload);
        }
      };
      conns.forEach((c, i) => {
        if (!targetSet.has(i)) {
          c.onmsg = () => {
            leaks++;
          };
          return;
        }
        let k = 0;
        c.onmsg = () => {
          deliveries++;
          const idx = k++;
          if (idx < count && ++got[idx] === need) {
            complete++;
            if (complete === count) done();
            else pump();
          }
        };
      });
      pump();
    });
    const ms = now() - t0;
    for (const c of conns) c.onmsg = null;
    return { sent, complete, deliveries, leaks, ms, timedOut: r.timedOut, pings: state.pings - pings0 };
  },

  poolInfo({ name }) {
    const conns = state.pools.get(name) || [];
    return {
      count: conns.length,
      open: conns.filter((c) => c.ws.readyState === WebSocket.OPEN).length,
      stray: conns.reduce((s, c) => s + c.stray, 0),
    };
  },
};

serve({ ...handlers, mark: () => ({ cpuUs: process.cpuUsage().user + process.cpuUsage().system }) });
process.send({ type: 'ready' });
