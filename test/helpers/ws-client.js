'use strict';
// Real ws clients for tests: connect and learn either the open socket or the HTTP refusal status.
const WebSocket = require('ws');

/**
 * Resolves { ws } when the socket opens, or { status, body } when the handshake is refused.
 * Never resolves both: a refused handshake must not produce an open socket.
 */
function connect(url, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols, { handshakeTimeout: 5000, ...options.ws });
    const messages = [];
    ws.messages = messages;
    ws.on('message', (data, isBinary) => messages.push(isBinary ? data : data.toString()));
    ws.once('open', () => resolve({ ws, opened: true }));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body, opened: false, ws }));
      res.on('error', () => resolve({ status: res.statusCode, body, opened: false, ws }));
    });
    ws.once('error', (err) => {
      if (ws.readyState !== WebSocket.OPEN) reject(err);
    });
  });
}

/** Waits until `ws` has received `count` messages (or fails after `ms`). */
function waitForMessages(ws, count, ms = 3000) {
  return new Promise((resolve, reject) => {
    if (ws.messages.length >= count) return resolve(ws.messages.slice());
    const timer = setTimeout(() => {
      ws.off('message', check);
      reject(new Error(`expected ${count} messages, got ${ws.messages.length}`));
    }, ms);
    function check() {
      if (ws.messages.length >= count) {
        clearTimeout(timer);
        ws.off('message', check);
        // messages are pushed by the listener installed in connect(); let it run first
        setImmediate(() => resolve(ws.messages.slice()));
      }
    }
    ws.on('message', check);
  });
}

/** Resolves { code, reason } when `ws` closes. */
function waitForClose(ws, ms = 5000) {
  return new Promise((resolve, reject) => {
    if (ws.readyState === WebSocket.CLOSED)
      return resolve({ code: ws._closeCode, reason: String(ws._closeMessage || '') });
    const timer = setTimeout(() => reject(new Error('socket did not close')), ms);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

/** Proves that nothing arrives on `ws` within `ms` (delivery-isolation checks). */
function expectNoMessage(ws, ms = 200) {
  const before = ws.messages.length;
  return new Promise((resolve, reject) =>
    setTimeout(
      () =>
        ws.messages.length === before ? resolve() : reject(new Error(`unexpected message: ${ws.messages[before]}`)),
      ms,
    ),
  );
}

function closeAll(sockets) {
  for (const ws of sockets) {
    if (ws && ws.readyState !== WebSocket.CLOSED) ws.terminate();
  }
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

module.exports = { connect, waitForMessages, waitForClose, expectNoMessage, closeAll, delay };
