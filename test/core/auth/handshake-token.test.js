'use strict';
// readToken: the token comes from the `token` query parameter only; a repeated parameter is
// ambiguous and an oversized one is refused (401) before anything is decoded further.
const assert = require('assert');
const { built } = require('../../helpers/built');
const { readToken } = built('core/auth/handshake-token');
const { DEFAULT_MAX_TOKEN_LENGTH } = built('core/auth/token-verifier');
const { HandshakeError } = built('core/errors');

function refusal(fn) {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HandshakeError, `expected a HandshakeError, got ${err && err.name}`);
    return { code: err.code, status: err.status };
  }
  assert.fail('expected a refusal');
}

describe('core/auth/handshake-token readToken', function () {
  it('reads the token query parameter among others, percent-decoded', function () {
    assert.strictEqual(readToken('/ws?a=1&token=abc.def.ghi&b=2'), 'abc.def.ghi');
    assert.strictEqual(readToken('/ws?token=a%2Bb%3D'), 'a+b=');
  });

  it('finds no token without a query or without the parameter', function () {
    assert.strictEqual(readToken(undefined), undefined);
    assert.strictEqual(readToken(''), undefined);
    assert.strictEqual(readToken('/ws'), undefined);
    assert.strictEqual(readToken('/ws?access_token=abc'), undefined);
    assert.strictEqual(readToken('/ws/token=abc'), undefined, 'not from the path');
  });

  it('refuses a repeated token parameter as ambiguous', function () {
    assert.deepStrictEqual(
      refusal(() => readToken('/ws?token=a&token=b')),
      { code: 'TOKEN_AMBIGUOUS', status: 401 },
    );
    assert.deepStrictEqual(
      refusal(() => readToken('/ws?token=a&token=a')),
      { code: 'TOKEN_AMBIGUOUS', status: 401 },
    );
  });

  it('refuses a token longer than the limit, and accepts one at the limit', function () {
    assert.strictEqual(readToken(`/ws?token=${'x'.repeat(100)}`, { maxTokenLength: 100 }).length, 100);
    assert.deepStrictEqual(
      refusal(() => readToken(`/ws?token=${'x'.repeat(101)}`, { maxTokenLength: 100 })),
      { code: 'TOKEN_TOO_LARGE', status: 401 },
    );
  });

  it('uses the default limit when none is given', function () {
    assert.strictEqual(readToken(`/ws?token=${'x'.repeat(DEFAULT_MAX_TOKEN_LENGTH)}`).length, DEFAULT_MAX_TOKEN_LENGTH);
    assert.deepStrictEqual(
      refusal(() => readToken(`/ws?token=${'x'.repeat(DEFAULT_MAX_TOKEN_LENGTH + 1)}`)),
      { code: 'TOKEN_TOO_LARGE', status: 401 },
    );
  });

  it('refuses an oversized query even when the token itself is short', function () {
    const padding = 'p='.padEnd(100 * 3 + 2000, 'y');
    assert.deepStrictEqual(
      refusal(() => readToken(`/ws?token=abc&${padding}`, { maxTokenLength: 100 })),
      { code: 'TOKEN_TOO_LARGE', status: 401 },
    );
  });
});
