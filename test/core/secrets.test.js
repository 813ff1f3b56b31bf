'use strict';
// Secret scrubbing: what is logged or shown never carries a token, a password or a URL's credentials.
const assert = require('assert');
const { built } = require('../helpers/built');
const { scrubSecrets, urlSecrets, sanitiseError } = built('core/secrets');

describe('core/secrets', function () {
  it('sanitiseError masks the token (raw and encoded), token parameters and URL credentials', function () {
    const token = 'se+cret/tok=en';
    const original = new Error(
      `failed ws://u:pw@h/x?a=1&token=${encodeURIComponent(token)} and ${token} and ?token=other`,
    );
    original.code = 'ECONNRESET';
    original.cause = new Error(token);
    const safe = sanitiseError(original, [token]);
    assert.ok(!safe.message.includes(token) && !safe.message.includes(encodeURIComponent(token)), safe.message);
    assert.ok(!safe.message.includes('other') && !safe.message.includes(':pw@'), safe.message);
    assert.strictEqual(safe.code, 'ECONNRESET');
    assert.strictEqual(safe.cause, undefined);
    assert.ok(!String(safe.stack).includes(token));
  });

  it('sanitiseError keeps the name and accepts a thrown non-Error', function () {
    const typed = Object.assign(new TypeError('bad ws://h/?token=abc'), { port: 80, secret: 'x' });
    const safe = sanitiseError(typed, []);
    assert.strictEqual(safe.name, 'TypeError');
    assert.strictEqual(safe.message, 'bad ws://h/?token=***');
    assert.strictEqual(safe.port, 80);
    assert.strictEqual(safe.secret, undefined);
    assert.strictEqual(sanitiseError('plain s3cr3t', ['s3cr3t']).message, 'plain ***');
  });

  it('urlSecrets names a Redis URL and its password (as written and decoded)', function () {
    assert.deepStrictEqual(urlSecrets(undefined), []);
    assert.deepStrictEqual(urlSecrets('redis://127.0.0.1:6379'), ['redis://127.0.0.1:6379']);
    assert.deepStrictEqual(urlSecrets('redis://:p%40ss@h:6379/0'), ['redis://:p%40ss@h:6379/0', 'p%40ss', 'p@ss']);
    assert.deepStrictEqual(urlSecrets('not a url'), ['not a url']);
  });

  it('scrubSecrets removes a Redis password from an ioredis-style message, however it is quoted', function () {
    const url = 'rediss://app:p%40ss@redis.example:6380/0';
    const secrets = urlSecrets(url);
    for (const message of [
      `connect to ${url} failed`,
      'WRONGPASS for p@ss',
      'auth p%40ss refused',
      'via redis://other:p@ss@x',
    ]) {
      const out = scrubSecrets(message, secrets);
      assert.ok(!out.includes('p@ss') && !out.includes('p%40ss') && !out.includes(url), `${message} -> ${out}`);
    }
    assert.strictEqual(scrubSecrets('nothing to hide', secrets), 'nothing to hide');
  });
});
