'use strict';
// The error table: every handshake refusal has an HTTP error status, every session close a close
// code a peer can be sent, and the typed errors carry code and status without leaking details.
const assert = require('assert');
const { built } = require('../helpers/built');
const errors = built('core/errors');
const { HandshakeRefusal, SessionClose, ConfigProblem, ControlProblem, HandshakeError, ConfigError, ControlError, isHandshakeError } = errors;

describe('core/errors', function () {
  it('maps every handshake refusal to a 4xx/5xx status and a non-empty reason', function () {
    assert.ok(Object.keys(HandshakeRefusal).length > 0);
    for (const [code, { status, reason }] of Object.entries(HandshakeRefusal)) {
      assert.ok(Number.isInteger(status) && status >= 400 && status < 600, `${code}: ${status}`);
      assert.ok(typeof reason === 'string' && reason.length > 0, code);
    }
  });

  it('maps every session close to a standard or private-use close code', function () {
    for (const [code, entry] of Object.entries(SessionClose)) {
      const c = entry.code;
      assert.ok((c >= 1000 && c <= 1014) || (c >= 4000 && c <= 4999), `${code}: ${c}`);
      // A close reason travels in the close frame: at most 123 bytes.
      assert.ok(entry.reason.length > 0 && Buffer.byteLength(entry.reason) <= 123, code);
    }
  });

  it('gives distinct public reasons, so a peer can tell refusals apart', function () {
    const reasons = Object.values(HandshakeRefusal).map((r) => r.reason);
    assert.strictEqual(new Set(reasons).size, reasons.length);
  });

  it('HandshakeError carries code and status; the public reason never includes the detail', function () {
    const err = new HandshakeError('ORIGIN_NOT_ALLOWED', 'https://evil.example');
    assert.ok(err instanceof Error);
    assert.strictEqual(err.name, 'HandshakeError');
    assert.strictEqual(err.code, 'ORIGIN_NOT_ALLOWED');
    assert.strictEqual(err.status, 403);
    assert.strictEqual(err.message, 'origin not allowed: https://evil.example');
    assert.strictEqual(err.publicReason, 'origin not allowed');
    assert.strictEqual(new HandshakeError('VERIFY_TIMEOUT').status, 503);
    assert.strictEqual(new HandshakeError('TENANT_CONNECTION_LIMIT').status, 429);
    assert.strictEqual(new HandshakeError('TOKEN_MISSING').message, 'token missing');
  });

  it('ConfigError carries its code and the problem text', function () {
    const err = new ConfigError('PATH_CONFLICT', '/ws');
    assert.ok(err instanceof Error);
    assert.strictEqual(err.name, 'ConfigError');
    assert.strictEqual(err.code, 'PATH_CONFLICT');
    assert.strictEqual(err.message, `${ConfigProblem.PATH_CONFLICT}: /ws`);
    assert.strictEqual(new ConfigError('SERVER_MISSING').message, ConfigProblem.SERVER_MISSING);
  });

  it('closes from a control node with 4003 by default, and ControlError names the problem', function () {
    assert.deepStrictEqual(SessionClose.CONTROL_CLOSED, { code: 4003, reason: 'closed by control' });
    const err = new ControlError('CODE_INVALID', '1000');
    assert.ok(err instanceof Error);
    assert.strictEqual(err.name, 'ControlError');
    assert.strictEqual(err.code, 'CODE_INVALID');
    assert.strictEqual(err.message, `${ControlProblem.CODE_INVALID}: 1000`);
    assert.strictEqual(isHandshakeError(err), false);
  });

  it('isHandshakeError tells a refusal from any other error', function () {
    assert.strictEqual(isHandshakeError(new HandshakeError('TOKEN_EXPIRED')), true);
    assert.strictEqual(isHandshakeError(new ConfigError('OPTION_INVALID')), false);
    assert.strictEqual(isHandshakeError(Object.assign(new Error('x'), { code: 'TOKEN_EXPIRED', status: 401 })), false);
    assert.strictEqual(isHandshakeError(undefined), false);
  });
});
