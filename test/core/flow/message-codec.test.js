'use strict';
const assert = require('assert');
const { built } = require('../../helpers/built');
const { frameToMessage, messageToFrame, nestsDeeperThan, sessionRef, MAX_MESSAGE_DEPTH } =
  built('core/flow/message-codec');

describe('core/message-codec', function () {
  it('payload mode keeps text as string and binary as Buffer', function () {
    assert.deepStrictEqual(frameToMessage('hi', false), { payload: 'hi' });
    const buf = Buffer.from([1, 2]);
    assert.strictEqual(frameToMessage(buf, false).payload, buf);
  });

  it('entire-message mode survives null, arrays, numbers and invalid JSON', function () {
    assert.deepStrictEqual(frameToMessage('null', true), { payload: null });
    assert.deepStrictEqual(frameToMessage('[1,2]', true), { payload: [1, 2] });
    assert.deepStrictEqual(frameToMessage('7', true), { payload: 7 });
    assert.deepStrictEqual(frameToMessage('{oops', true), { payload: '{oops' });
    assert.deepStrictEqual(frameToMessage('{"payload":"x","topic":"t"}', true), { payload: 'x', topic: 't' });
  });

  it('a peer cannot set _session, _msgid or __proto__', function () {
    const msg = frameToMessage(
      '{"_session":{"id":"x","tenantId":"evil"},"_msgid":"m","__proto__":{"polluted":1},"a":1}',
      true,
    );
    assert.deepStrictEqual(Object.keys(msg), ['a']);
    assert.strictEqual({}.polluted, undefined);
  });

  it('outgoing frames follow core: Buffer binary, objects JSON, no payload nothing', function () {
    assert.strictEqual(messageToFrame({ payload: 'x' }, false), 'x');
    assert.strictEqual(messageToFrame({ payload: { a: 1 } }, false), '{"a":1}');
    assert.strictEqual(messageToFrame({ payload: 5 }, false), '5');
    assert.ok(Buffer.isBuffer(messageToFrame({ payload: Buffer.from('b') }, false)));
    assert.strictEqual(messageToFrame({ topic: 't' }, false), undefined);
    assert.strictEqual(
      messageToFrame({ payload: 1, _session: { id: 's' }, topic: 't' }, true),
      '{"payload":1,"topic":"t"}',
    );
  });

  it(
    'entire-message mode refuses JSON nested deeper than ' + 'MAX_MESSAGE_DEPTH (64), arrays and objects alike',
    function () {
      assert.strictEqual(MAX_MESSAGE_DEPTH, 64);
      const arrays = (n) => '['.repeat(n) + ']'.repeat(n);
      const objects = (n) => '{"a":'.repeat(n - 1) + '{}' + '}'.repeat(n - 1);
      // the value itself is level 1: `{"payload":[[…]]}` with 64 levels in all is accepted
      assert.deepStrictEqual(frameToMessage(`{"payload":${arrays(63)}}`, true).payload.length, 1);
      assert.strictEqual(frameToMessage(`{"payload":${arrays(64)}}`, true), undefined);
      assert.ok(frameToMessage(objects(64), true));
      assert.strictEqual(frameToMessage(objects(65), true), undefined);
      assert.ok(frameToMessage(arrays(64), true));
      assert.strictEqual(frameToMessage(arrays(65), true), undefined);
      // the frame that overflowed Node-RED's recursive clone: 40 KB, 20,000 levels
      assert.strictEqual(frameToMessage(`{"a":${arrays(20000)}}`, true), undefined);
      // far deeper than any stack: still answered (iterative), and payload mode never parses
      assert.strictEqual(nestsDeeperThan(JSON.parse(arrays(500000)), 64), true);
      assert.strictEqual(frameToMessage(arrays(20000), false).payload.length, 40000);
    },
  );

  it('wide JSON is not deep: a 100,000-element array and a 10,000-key object are delivered', function () {
    const wide = frameToMessage(`{"payload":[${Array.from({ length: 100000 }, (_, i) => i).join(',')}]}`, true);
    assert.strictEqual(wide.payload.length, 100000);
    const keys = frameToMessage(
      JSON.stringify(Object.fromEntries(Array.from({ length: 10000 }, (_, i) => [`k${i}`, { v: [i] }]))),
      true,
    );
    assert.strictEqual(Object.keys(keys).length, 10000);
    assert.strictEqual(nestsDeeperThan({ a: [{ b: [] }] }, 4), false);
    assert.strictEqual(nestsDeeperThan({ a: [{ b: [] }] }, 3), true);
    assert.strictEqual(nestsDeeperThan('[[[', 1), false);
  });

  it("sessionRef: a message's own copy of the session info, every field, free to change", function () {
    const info = Object.freeze({
      type: 'websocket',
      id: 'a1b2',
      tenantId: 't1',
      subject: 'user-1',
      authStatus: 'verified',
      routingScope: 'session',
    });
    const ref = sessionRef(info);
    assert.deepStrictEqual(ref, { ...info });
    assert.notStrictEqual(ref, info);
    assert.ok(!Object.isFrozen(ref));
    ref.tenantId = 'changed by the flow';
    assert.strictEqual(info.tenantId, 't1');
    assert.deepStrictEqual(Object.keys(sessionRef(info)), Object.keys(info), 'same properties, same order');
  });
});
