'use strict';
// Shared pieces of the hardening suites: a core WebSocketListener on a real HTTP server (./listener), raw
// handshakes over TCP (full control of every header), a watched HTTP server that records any
// request it gets, tokens with arbitrary (hostile) headers signed with WebCrypto, a seeded PRNG.
const http = require('http');
const net = require('net');
const { webcrypto, createHmac } = require('crypto');

const { startHttpServer, startListener } = require('./listener');

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/**
 * A raw WebSocket handshake over TCP. Resolves { status, head, upgraded } from the first response
 * bytes, or { status: 0, closed: true } when the server closed without a response.
 */
function rawHandshake(
  port,
  { path: target = '/', method = 'GET', headers = {}, version = 13, timeoutMs = 5000, raw } = {},
) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    let done = false;
    const finish = (result) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => {
      if (!done) {
        done = true;
        socket.destroy();
        reject(new Error('raw handshake timed out'));
      }
    }, timeoutMs);
    socket.on('connect', () => {
      if (raw !== undefined) {
        socket.write(raw);
        return;
      }
      const lines = [
        `${method} ${target} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('base64')}`,
        `Sec-WebSocket-Version: ${version}`,
      ];
      for (const [name, value] of Object.entries(headers)) {
        for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
      }
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = data.slice(0, end);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      finish({ status, head, upgraded: status === 101 });
    });
    socket.on('error', () => finish({ status: 0, closed: true }));
    socket.on('close', () => finish({ status: 0, closed: true }));
  });
}

/** An HTTP server that must never be asked anything: it records every request it gets. */
async function startWatchedServer(body = '{"keys":[]}') {
  const requests = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(typeof body === 'function' ? body() : body);
  });
  const { port, close } = await listenOnLoopback(server);
  return { url: `http://127.0.0.1:${port}`, requests, close };
}

const SUBTLE_PARAMS = {
  RS256: { name: 'RSASSA-PKCS1-v1_5' },
  PS256: { name: 'RSA-PSS', saltLength: 32 },
  ES256: { name: 'ECDSA', hash: 'SHA-256' },
};

/**
 * Signs any header and payload (objects or raw strings) with a key from tokens.makeKey: lets a
 * test put headers on a correctly signed token that jose's SignJWT would refuse to produce.
 */
async function signRaw(key, header, payload) {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const sig = await webcrypto.subtle.sign(SUBTLE_PARAMS[key.alg], key.privateKey, Buffer.from(input));
  return `${input}.${Buffer.from(sig).toString('base64url')}`;
}

/** HS256 over any header and payload with any secret (algorithm-confusion tokens). */
async function signRawHS256(secret, header, payload) {
  const input = `${b64url(header)}.${b64url(payload)}`;
  // node:crypto rather than WebCrypto: it also signs with an empty secret.
  return `${input}.${createHmac('sha256', Buffer.from(secret)).update(input).digest('base64url')}`;
}

/** mulberry32: a small seeded PRNG, so a failing fuzz case can be replayed. */
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  next.pick = (list) => list[Math.floor(next() * list.length)];
  return next;
}

/** Polls `check` until it is true or `ms` passes (then rejects with `what`). */
/** Counts of process resources by type (Timeout, TCPSocketWrap, ...). */
function resourceCounts() {
  const counts = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] || 0) + 1;
  return counts;
}

/**
 * Counts live timers, unref'd ones included (process.getActiveResourcesInfo() does not list those):
 * every Timeout created while tracking and not yet fired or cleared. `stacks` records where each
 * was created, for a failure message.
 */

const { trackTimers } = require('./timers');
const { listenOnLoopback } = require('./loopback');
const { waitFor } = require('./wait');

module.exports = {
  startHttpServer,
  startListener,
  rawHandshake,
  startWatchedServer,
  signRaw,
  signRawHS256,
  prng,
  waitFor,
  resourceCounts,
  trackTimers,
  b64url,
};
