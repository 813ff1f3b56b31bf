'use strict';
const assert = require('assert');
const { frameToMessage, messageToFrame } = require('../../nodes/lib/core/message-codec');

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
    const msg = frameToMessage('{"_session":{"id":"x","tenantId":"evil"},"_msgid":"m","__proto__":{"polluted":1},"a":1}', true);
    assert.deepStrictEqual(Object.keys(msg), ['a']);
    assert.strictEqual({}.polluted, undefined);
  });

  it('outgoing frames follow core: Buffer binary, objects JSON, no payload nothing', function () {
    assert.strictEqual(messageToFrame({ payload: 'x' }, false), 'x');
    assert.strictEqual(messageToFrame({ payload: { a: 1 } }, false), '{"a":1}');
    assert.strictEqual(messageToFrame({ payload: 5 }, false), '5');
    assert.ok(Buffer.isBuffer(messageToFrame({ payload: Buffer.from('b') }, false)));
    assert.strictEqual(messageToFrame({ topic: 't' }, false), undefined);
    assert.strictEqual(messageToFrame({ payload: 1, _session: { id: 's' }, topic: 't' }, true), '{"payload":1,"topic":"t"}');
  });
});
