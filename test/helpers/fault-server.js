'use strict';
// A TCP server on 127.0.0.1 that plays a faulty peer: an HTTP(S) server, a proxy or Redis that
// accepts and then misbehaves. Every accepted socket is counted while it is open, so a test can see
// what a client left behind. The mode is read when a connection arrives: switching it (e.g. to
// 'forward', which pipes to a good server) changes what the next connection gets, while connections
// already wedged stay wedged, as they would on a real network.
const { listen } = require('./loopback');
const net = require('net');
const tls = require('tls');

/**
 * Modes:
 * - 'silent': accepts, reads, never writes (also "silence after CONNECT" for a proxy).
 * - 'connect-200-silent': answers the first request head with `200 Connection Established`, then
 *   stays silent (a proxy that opens the tunnel and a target that never speaks).
 * - 'reset': resets the connection (RST) as soon as the client has sent something.
 * - 'drip': sends `dripText` one byte every `dripMs` once the client has spoken, then dots forever.
 * - 'garbage': answers whatever comes with bytes that are no protocol at all, and stays open.
 * - 'tls-untrusted': speaks TLS with a certificate the client does not trust (`tls.key/cert`).
 * - 'forward': pipes the connection to 127.0.0.1:`forwardPort` (the fault is gone). `stall()`
 *   stops relaying on every forwarded connection (a peer that stops answering mid-session) and
 *   `resume()` relays again, what was held back included. With `dropFromClient(chunk)` set, a
 *   client chunk for which it returns true is swallowed (a request that never gets an answer).
 */
const MODES = new Set(['silent', 'connect-200-silent', 'reset', 'drip', 'garbage', 'tls-untrusted', 'forward']);
const GARBAGE = Buffer.from('\u0000\u00ff\u00fe garbage \u0007 -ERR? \r\n$-7\r\n*x\r\n\r\n@@@', 'latin1');

/** startFaultServer({ mode, port, dripMs, dripText, forwardPort, tls }) -> server state and controls. */
async function startFaultServer(options = {}) {
  const sockets = new Set();
  const clients = new Set();
  const timers = new Set();
  const forwarded = new Set();
  let stalled = false;
  const state = {
    mode: options.mode || 'silent',
    dripMs: options.dripMs || 50,
    dripText: options.dripText || 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-drip: ',
    forwardPort: options.forwardPort,
    dropFromClient: options.dropFromClient,
    accepted: 0,
  };
  const track = (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  };
  const server = net.createServer((socket) => {
    state.accepted++;
    track(socket);
    clients.add(socket);
    socket.on('close', () => clients.delete(socket));
    const mode = state.mode;
    if (mode === 'forward') {
      const upstream = net.connect(state.forwardPort, '127.0.0.1');
      track(upstream);
      upstream.on('close', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      if (state.dropFromClient) {
        const drop = state.dropFromClient;
        socket.on('data', (chunk) => {
          if (!drop(chunk)) upstream.write(chunk);
        });
        upstream.pipe(socket);
        return;
      }
      const pair = { socket, upstream };
      forwarded.add(pair);
      socket.on('close', () => forwarded.delete(pair));
      if (!stalled) {
        socket.pipe(upstream);
        upstream.pipe(socket);
      }
      return;
    }
    if (mode === 'tls-untrusted') {
      const secure = new tls.TLSSocket(socket, { isServer: true, key: options.tls.key, cert: options.tls.cert });
      secure.on('error', () => socket.destroy());
      secure.resume();
      return;
    }
    let head = '';
    socket.on('data', (chunk) => {
      if (socket.destroyed) return;
      if (mode === 'silent') return;
      if (mode === 'reset') {
        socket.resetAndDestroy();
        return;
      }
      if (mode === 'garbage') {
        socket.write(GARBAGE);
        return;
      }
      if (mode === 'connect-200-silent') {
        if (head === null) return;
        head += chunk.toString('latin1');
        if (head.includes('\r\n\r\n')) {
          head = null;
          socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        }
        return;
      }
      if (mode === 'drip' && head !== null) {
        head = null;
        let sent = 0;
        const timer = setInterval(() => {
          if (socket.destroyed) {
            clearInterval(timer);
            timers.delete(timer);
            return;
          }
          socket.write(sent < state.dripText.length ? state.dripText[sent] : '.');
          sent++;
        }, state.dripMs);
        timers.add(timer);
        socket.on('close', () => {
          clearInterval(timer);
          timers.delete(timer);
        });
      }
    });
  });
  const port = await listen(server, options.port || 0);
  // Not Object.assign: it would copy the getter's value once instead of the getter.
  Object.defineProperty(state, 'open', {
    /** Sockets accepted from clients (not counting forwarded upstream ones) that are still open. */
    get: () => clients.size,
    enumerable: true,
  });
  return Object.assign(state, {
    port,
    setMode(mode, extra = {}) {
      if (!MODES.has(mode)) throw new Error(`unknown fault mode ${mode}`);
      state.mode = mode;
      Object.assign(state, extra);
    },
    stall() {
      stalled = true;
      for (const { socket, upstream } of forwarded) {
        socket.unpipe(upstream);
        upstream.unpipe(socket);
        socket.pause();
        upstream.pause();
      }
    },
    resume() {
      stalled = false;
      for (const { socket, upstream } of forwarded) {
        socket.pipe(upstream);
        upstream.pipe(socket);
      }
    },
    /** Ends every open connection (wedged ones included), as a restart of the peer would. */
    dropAll() {
      for (const s of sockets) s.destroy();
    },
    close() {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  });
}

module.exports = { startFaultServer };
