'use strict';
// TokenBucket with an explicit clock: bursts up to the rate, refills in proportion to the time
// passed, never beyond the rate, and a clock that steps back adds nothing.
const assert = require('assert');
const { built } = require('../../helpers/built');
const { TokenBucket } = built('core/server/rate-limiter');

function takeAll(bucket, now, max = 1000) {
  let taken = 0;
  while (taken < max && bucket.take(now)) taken++;
  return taken;
}

describe('core/server/rate-limiter TokenBucket', function () {
  it('allows a burst of `rate` messages, then refuses', function () {
    const bucket = new TokenBucket(5, 1000);
    assert.strictEqual(takeAll(bucket, 1000), 5);
    assert.strictEqual(bucket.take(1000), false);
  });

  it('refills at `rate` per second, in proportion to the time passed', function () {
    const bucket = new TokenBucket(10, 0);
    takeAll(bucket, 0);
    assert.strictEqual(bucket.take(50), false, 'half a token after 50 ms');
    assert.strictEqual(bucket.take(100), true, 'one token after 100 ms');
    assert.strictEqual(bucket.take(100), false);
    assert.strictEqual(takeAll(bucket, 600), 5, 'five tokens after another 500 ms');
  });

  it('never holds more than `rate` tokens after a long idle time', function () {
    const bucket = new TokenBucket(3, 0);
    takeAll(bucket, 0);
    assert.strictEqual(takeAll(bucket, 3_600_000), 3);
  });

  it('adds nothing when the clock steps back', function () {
    const bucket = new TokenBucket(4, 10_000);
    takeAll(bucket, 10_000);
    assert.strictEqual(bucket.take(5_000), false);
    // Refill is measured from the last forward reading, not from the step back.
    assert.strictEqual(bucket.take(10_200), false, '0.8 token after 200 ms');
    assert.strictEqual(bucket.take(10_300), true);
  });

  it('uses the wall clock by default', function () {
    const bucket = new TokenBucket(2);
    assert.strictEqual(bucket.take(), true);
    assert.strictEqual(bucket.take(), true);
    assert.strictEqual(bucket.take(), false);
  });
});
