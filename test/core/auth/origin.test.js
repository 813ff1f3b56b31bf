'use strict';
// Origin checks against an allow list: exact scheme, host and port after normalisation; a
// browser's opaque "null" origin or garbage is refused; no list, or no Origin header, allows.
const assert = require('assert');
const { built } = require('../../helpers/built');
const { normaliseOrigin, isOriginAllowed } = built('core/auth/origin');

describe('core/auth/origin', function () {
  describe('normaliseOrigin', function () {
    it('keeps scheme, host and a non-default port, lower-cased', function () {
      assert.strictEqual(normaliseOrigin('HTTPS://App.Example.COM'), 'https://app.example.com');
      assert.strictEqual(normaliseOrigin(' https://app.example.com:8443/path?q#f '), 'https://app.example.com:8443');
    });

    it('drops the default port of the scheme', function () {
      assert.strictEqual(normaliseOrigin('https://app.example.com:443'), 'https://app.example.com');
      assert.strictEqual(normaliseOrigin('http://app.example.com:80'), 'http://app.example.com');
    });

    it('has no origin for "null", garbage or an opaque scheme', function () {
      assert.strictEqual(normaliseOrigin('null'), undefined);
      assert.strictEqual(normaliseOrigin(''), undefined);
      assert.strictEqual(normaliseOrigin('not a url'), undefined);
      assert.strictEqual(normaliseOrigin('file:///etc/passwd'), undefined);
    });
  });

  describe('isOriginAllowed', function () {
    const allowed = ['https://app.example.com', 'http://localhost:3000'];

    it('allows everything without a list', function () {
      assert.strictEqual(isOriginAllowed('https://evil.example', undefined), true);
      assert.strictEqual(isOriginAllowed('https://evil.example', []), true);
    });

    it('allows a handshake without Origin (not a browser)', function () {
      assert.strictEqual(isOriginAllowed(undefined, allowed), true);
    });

    it('allows a listed origin however it is spelled', function () {
      assert.strictEqual(isOriginAllowed('https://APP.example.com', allowed), true);
      assert.strictEqual(isOriginAllowed('https://app.example.com:443', allowed), true);
      assert.strictEqual(isOriginAllowed('http://localhost:3000', allowed), true);
    });

    it('refuses look-alikes: other scheme, port, subdomain or suffix', function () {
      for (const origin of [
        'http://app.example.com',
        'https://app.example.com:8443',
        'https://evil.app.example.com',
        'https://app.example.com.evil.example',
        'http://localhost:3001',
        'http://localhost',
      ]) {
        assert.strictEqual(isOriginAllowed(origin, allowed), false, origin);
      }
    });

    it('refuses an opaque or unparsable Origin when a list is set', function () {
      assert.strictEqual(isOriginAllowed('null', allowed), false);
      assert.strictEqual(isOriginAllowed('', allowed), false);
      assert.strictEqual(isOriginAllowed('%%%', allowed), false);
    });

    it('ignores list entries that are not origins', function () {
      assert.strictEqual(isOriginAllowed('null', ['null']), false);
    });
  });
});
