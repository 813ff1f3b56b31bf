'use strict';
const assert = require('assert');
const { built } = require('../../helpers/built');
const { parsePeerProps, filterPeerProps, isReservedPeerProp, NEVER_FROM_PEER } = built('core/flow/peer-props');
const { frameToMessage } = built('core/flow/message-codec');

/** The ConfigError a parse throws: { code, message }, or undefined when it parses. */
function refusal(value) {
  try {
    parsePeerProps(value);
  } catch (err) {
    return { code: err.code, message: err.message };
  }
  return undefined;
}

/** What a peer's text frame becomes in entire-message mode under `peerProps`. */
const fromPeer = (frame, peerProps) => filterPeerProps(frameToMessage(frame, true), parsePeerProps(peerProps));

describe('core/peer-props', function () {
  afterEach(function () {
    // No case may leave anything on the shared prototypes.
    assert.strictEqual({}.polluted, undefined, 'Object.prototype polluted');
    assert.strictEqual(Object.prototype.polluted, undefined);
  });

  describe('parsePeerProps', function () {
    it('"*", empty and absent keep every property (null)', function () {
      for (const v of ['*', ' * ', '', '   ', undefined, null])
        assert.strictEqual(parsePeerProps(v), null, JSON.stringify(v));
    });

    it('reads a comma-separated list: spaces trimmed, repeats counted once, order kept, frozen', function () {
      assert.deepStrictEqual(parsePeerProps('payload,topic'), ['payload', 'topic']);
      assert.deepStrictEqual(parsePeerProps(' topic , payload ,topic'), ['topic', 'payload']);
      assert.deepStrictEqual(parsePeerProps('$x,_y,a1,Z'), ['$x', '_y', 'a1', 'Z']);
      assert.ok(Object.isFrozen(parsePeerProps('payload')));
    });

    it('refuses empty entries, "*" among names and what is not a top-level property name', function () {
      for (const v of [
        'payload,',
        ',payload',
        'payload,,topic',
        ' , ',
        'payload,*',
        '*,topic',
        'a.b',
        'payload topic',
        '1st',
        'pay-load',
        'x[0]',
        'päyload',
        '"payload"',
      ]) {
        const r = refusal(v);
        assert.ok(r, `${JSON.stringify(v)} was accepted`);
        assert.strictEqual(r.code, 'OPTION_INVALID', v);
        assert.match(r.message, /^option invalid: peerProps: /, v);
      }
      assert.match(refusal('payload,,topic').message, /empty entry/);
      assert.match(refusal('a.b').message, /"a\.b" is not a top-level property name/);
      assert.match(refusal('payload,*').message, /"\*" cannot be combined/);
    });

    it('refuses listing _session, _msgid, __proto__ and members of Object.prototype', function () {
      for (const name of [
        '_session',
        '_msgid',
        '__proto__',
        'constructor',
        'toString',
        'hasOwnProperty',
        'valueOf',
        '__defineGetter__',
      ]) {
        assert.ok(isReservedPeerProp(name), name);
        const r = refusal(`payload,${name}`);
        assert.ok(r, `${name} was accepted`);
        assert.strictEqual(r.code, 'OPTION_INVALID');
        assert.strictEqual(r.message, `option invalid: peerProps: "${name}" can never be set by a peer`);
      }
      assert.deepStrictEqual([...NEVER_FROM_PEER], ['_session', '_msgid', '__proto__']);
      for (const name of ['payload', 'topic', 'url', 'prototype', 'session', 'msgid'])
        assert.ok(!isReservedPeerProp(name), name);
    });
  });

  describe('filterPeerProps', function () {
    it('"*" returns the message itself, untouched (no work on the hot path)', function () {
      const msg = { payload: 1, url: 'http://x', method: 'DELETE' };
      assert.strictEqual(filterPeerProps(msg, null), msg);
      assert.strictEqual(filterPeerProps(msg, undefined), msg);
      assert.deepStrictEqual(msg, { payload: 1, url: 'http://x', method: 'DELETE' });
    });

    it('a list keeps only the listed own properties, in a new plain object', function () {
      const msg = {
        payload: 'x',
        topic: 't',
        url: 'http://169.254.169.254/latest/meta-data/',
        method: 'POST',
        headers: { a: 1 },
      };
      const out = filterPeerProps(msg, parsePeerProps('payload,topic'));
      assert.deepStrictEqual(out, { payload: 'x', topic: 't' });
      assert.notStrictEqual(out, msg);
      assert.strictEqual(Object.getPrototypeOf(out), Object.prototype);
      // A listed property the peer did not send is not created.
      assert.ok(!('topic' in filterPeerProps({ payload: 1 }, parsePeerProps('payload,topic'))));
      // Inherited properties are never copied, only own ones.
      const child = Object.create({ topic: 'inherited' });
      child.payload = 2;
      assert.deepStrictEqual(filterPeerProps(child, parsePeerProps('payload,topic')), { payload: 2 });
    });

    it('keeps values as they are (no copy, no conversion)', function () {
      const deep = { a: [1, { b: null }] };
      const out = filterPeerProps({ payload: deep, topic: 0 }, parsePeerProps('payload,topic'));
      assert.strictEqual(out.payload, deep);
      assert.strictEqual(out.topic, 0);
    });
  });

  describe('a peer frame through frameToMessage and the filter', function () {
    const hostile = JSON.stringify({
      payload: 'x',
      topic: 't',
      url: 'http://169.254.169.254/latest/meta-data/',
      method: 'PUT',
      headers: { Host: 'internal' },
      filename: '/etc/passwd',
      reset: true,
      delay: 1e9,
    })
      // "__proto__" must be an own key of the parsed object, as JSON.parse makes it.
      .replace(
        /}$/,
        ',"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},' +
          '"prototype":{"polluted":1},"_msgid":"forged","_session":{"id":"forged"}}',
      );

    it('with "payload,topic" only payload and topic survive', function () {
      const msg = fromPeer(hostile, 'payload,topic');
      assert.deepStrictEqual(Object.keys(msg).sort(), ['payload', 'topic']);
      assert.deepStrictEqual(msg, { payload: 'x', topic: 't' });
      assert.strictEqual(Object.getPrototypeOf(msg), Object.prototype);
      assert.strictEqual(msg.polluted, undefined);
    });

    it('with "*" every property passes as today, except _session, _msgid and __proto__', function () {
      const msg = fromPeer(hostile, '*');
      assert.deepStrictEqual(Object.keys(msg).sort(), [
        'constructor',
        'delay',
        'filename',
        'headers',
        'method',
        'payload',
        'prototype',
        'reset',
        'topic',
        'url',
      ]);
      assert.strictEqual(msg.url, 'http://169.254.169.254/latest/meta-data/');
      assert.ok(!Object.prototype.hasOwnProperty.call(msg, '__proto__'));
      assert.strictEqual(Object.getPrototypeOf(msg), Object.prototype, 'the prototype of the message is untouched');
      // constructor and prototype are plain data on the message, never the real ones.
      assert.deepStrictEqual(msg.constructor, { prototype: { polluted: 1 } });
      assert.strictEqual(msg.polluted, undefined);
      assert.strictEqual(Object.polluted, undefined);
    });

    it('listing constructor or prototype never reaches a real prototype', function () {
      const msg = fromPeer(hostile, 'payload,prototype');
      assert.deepStrictEqual(msg, { payload: 'x', prototype: { polluted: 1 } });
      assert.strictEqual(Object.getPrototypeOf(msg), Object.prototype);
      assert.strictEqual(refusal('payload,constructor').code, 'OPTION_INVALID');
    });

    it('a frame that is not a JSON object is msg.payload, kept only when payload is listed', function () {
      for (const frame of ['null', '[1,2]', '42', '"s"', '{bad json']) {
        assert.ok('payload' in fromPeer(frame, 'payload,topic'), frame);
        assert.deepStrictEqual(fromPeer(frame, 'topic'), {}, frame);
      }
    });
  });
});
