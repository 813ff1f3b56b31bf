'use strict';
// Raw WebSocket frames (RFC 6455 §5.2) for tests that must send what a conforming ws endpoint
// refuses to produce: close frames with forbidden codes or reasons, reserved opcodes. Everything
// a conforming peer can send is sent through ws itself.
const { randomBytes } = require('crypto');

/** One frame; `mask` is required from a client and forbidden from a server. */
function frame(opcode, payload = Buffer.alloc(0), { fin = true, mask = true } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  let head;
  if (data.length < 126) {
    head = Buffer.from([0, data.length]);
  } else if (data.length < 65536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(data.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(data.length), 2);
  }
  head[0] = (fin ? 0x80 : 0) | (opcode & 0x0f);
  if (!mask) return Buffer.concat([head, data]);
  head[1] |= 0x80;
  const key = randomBytes(4);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ key[i & 3];
  return Buffer.concat([head, key, masked]);
}

/** A close frame with any code (or none: `code` null) and any reason bytes. */
function closeFrame(code, reason = Buffer.alloc(0), options) {
  if (code === null) return frame(0x8, reason, options);
  const body = Buffer.alloc(2);
  body.writeUInt16BE(code);
  return frame(0x8, Buffer.concat([body, Buffer.isBuffer(reason) ? reason : Buffer.from(reason)]), options);
}

/** Writes raw bytes on the TCP socket under a ws WebSocket (false when it is no longer open). */
function writeRaw(ws, bytes) {
  if (ws.readyState !== 1 || !ws._socket || ws._socket.destroyed) return false;
  ws._socket.write(bytes);
  return true;
}

module.exports = { frame, closeFrame, writeRaw };
