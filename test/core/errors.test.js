'use strict';
// The error table: every handshake refusal has an HTTP error status, every session close a close
// code a peer can be sent, and the typed errors carry code and status without leaking details.
const assert = require('assert');
const { built } = require('../helpers/built');
const H = require('../helpers/editor-html');
const errors = built('core/errors');
const {
  HandshakeRefusal,
  SessionClose,
  ConfigProblem,
  MigrationProblem,
  ControlProblem,
  HandshakeError,
  ConfigError,
  MigrationError,
  ControlError,
  isHandshakeError,
  messageKey,
  describeConfigError,
} = errors;

const CATALOGUES = Object.fromEntries(H.LANGUAGES.map((lang) => [lang, H.readCatalogue(H.root, lang)]));
const ALL_CODES = {
  handshake: Object.keys(HandshakeRefusal),
  close: Object.keys(SessionClose),
  config: Object.keys(ConfigProblem),
  migration: Object.keys(MigrationProblem),
  control: Object.keys(ControlProblem),
};

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

  it('has an en-US, de and ja text for every code of every kind, under a key derived from the code', function () {
    let checked = 0;
    for (const [kind, codes] of Object.entries(ALL_CODES)) {
      assert.ok(codes.length > 0, kind);
      for (const code of codes) {
        const key = messageKey(kind, code);
        assert.match(
          key,
          /^websocket-plus\.(refusals|closes|errors|migration|control\.errors)\.[a-z0-9]+(-[a-z0-9]+)*$/,
          key,
        );
        for (const lang of H.LANGUAGES) {
          const value = H.lookup(CATALOGUES[lang], key);
          assert.ok(typeof value === 'string' && value.trim() !== '', `${lang}: ${key} (${kind} ${code}) has no text`);
        }
        checked++;
      }
    }
    assert.ok(checked >= 40, String(checked));
  });

  it('derives catalogue keys from codes: PATH_FORBIDDEN -> websocket-plus.errors.path-forbidden', function () {
    assert.strictEqual(messageKey('config', 'PATH_FORBIDDEN'), 'websocket-plus.errors.path-forbidden');
    assert.strictEqual(messageKey('config', 'URL_INVALID'), 'websocket-plus.errors.url-invalid');
    assert.strictEqual(messageKey('handshake', 'TOKEN_NOT_YET_VALID'), 'websocket-plus.refusals.token-not-yet-valid');
    assert.strictEqual(messageKey('close', 'HEARTBEAT_MISSED'), 'websocket-plus.closes.heartbeat-missed');
    assert.strictEqual(messageKey('migration', 'FLOW_INVALID'), 'websocket-plus.migration.flow-invalid');
  });

  it('MigrationError carries its code and the problem text', function () {
    const err = new MigrationError('FLOW_INVALID', 'element 0 has no "id"');
    assert.ok(err instanceof Error);
    assert.strictEqual(err.name, 'MigrationError');
    assert.strictEqual(err.code, 'FLOW_INVALID');
    assert.strictEqual(err.message, 'not a Node-RED flow: element 0 has no "id"');
  });

  it(
    'describeConfigError: the translated problem with ' + 'its detail; untranslated or other errors as they are',
    function () {
      const seen = [];
      const translate = (key) => {
        seen.push(key);
        return key === 'websocket-plus.errors.path-conflict' ? 'Pfad schon belegt' : key;
      };
      assert.strictEqual(
        describeConfigError(new ConfigError('PATH_CONFLICT', '/ws'), translate),
        'Pfad schon belegt (path is already used by another listener: /ws)',
      );
      assert.strictEqual(describeConfigError(new ConfigError('SERVER_MISSING'), translate), 'no HTTP server');
      assert.strictEqual(
        describeConfigError(new ConfigError('TOKEN_MISSING'), () => ''),
        'token missing',
      );
      assert.strictEqual(describeConfigError(new Error('boom'), translate), 'boom');
      assert.strictEqual(describeConfigError('text', translate), 'text');
      assert.deepStrictEqual(seen, ['websocket-plus.errors.path-conflict', 'websocket-plus.errors.server-missing']);
    },
  );
});
