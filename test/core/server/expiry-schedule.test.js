'use strict';
// ExpirySchedule: many items on one timer, bucketed by due time. Every item is called once at
// its time, removed items never are, an earlier item re-arms the timer, and nothing is left armed.
const assert = require('assert');
const { built } = require('../../helpers/built');
const { ExpirySchedule } = built('core/server/expiry-schedule');
const { trackTimers } = require('../../helpers/timers');
const { waitFor } = require('../../helpers/wait');

const DAY_MS = 24 * 60 * 60 * 1000;

/** Live timers created by the built package (the test's own and mocha's are not counted). */
async function liveBuiltTimers(timers) {
  await timers.settled();
  return timers.where().filter((stack) => stack.includes('nodes/lib/')).length;
}

describe('core/server/expiry-schedule', function () {
  let timers;
  let schedule;
  let due;

  beforeEach(function () {
    timers = trackTimers({ stacks: true });
    due = [];
    schedule = new ExpirySchedule((item) => due.push(item));
  });

  afterEach(function () {
    schedule.clear();
    timers.stop();
  });

  it('calls a past-due item at once', async function () {
    schedule.add('a', Date.now() - 1000);
    await waitFor(() => due.length === 1, 5000, 'the past-due item');
    assert.deepStrictEqual(due, ['a']);
  });

  it('calls every item of a shared due time, once each', async function () {
    const at = Date.now() + 30;
    for (const item of ['a', 'b', 'c']) schedule.add(item, at);
    schedule.add('a', at); // a Set per bucket: adding twice does not call twice
    await waitFor(() => due.length === 3, 5000, 'the bucket');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepStrictEqual([...due].sort(), ['a', 'b', 'c']);
  });

  it('calls items of different times in order, re-arming after each', async function () {
    const t = Date.now();
    schedule.add('late', t + 120);
    schedule.add('early', t + 30);
    schedule.add('middle', t + 70);
    await waitFor(() => due.length === 3, 5000, 'all three items');
    assert.deepStrictEqual(due, ['early', 'middle', 'late']);
  });

  it('re-arms for an item due before the one the timer waits for', async function () {
    schedule.add('far', Date.now() + 30 * DAY_MS);
    schedule.add('soon', Date.now() + 20);
    await waitFor(() => due.length === 1, 5000, 'the earlier item');
    assert.deepStrictEqual(due, ['soon']);
  });

  it('never calls a removed item, and still calls the rest of its bucket and the next bucket', async function () {
    const t = Date.now();
    schedule.add('gone', t + 30);
    schedule.add('kept', t + 30);
    schedule.add('alone', t + 40);
    schedule.add('next', t + 90);
    schedule.remove('gone', t + 30);
    schedule.remove('alone', t + 40); // empties its bucket
    schedule.remove('unknown', t + 12345); // unknown bucket: no effect
    await waitFor(() => due.length === 2, 5000, 'the remaining items');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepStrictEqual(due, ['kept', 'next']);
  });

  it('keeps no timer once the last item is due, and clear() drops everything', async function () {
    schedule.add('a', Date.now() + 20);
    await waitFor(() => due.length === 1, 5000, 'the item');
    assert.strictEqual(await liveBuiltTimers(timers), 0, 'no timer after the last item');

    schedule.add('b', Date.now() + 50);
    schedule.add('c', Date.now() + 40 * DAY_MS);
    schedule.clear();
    assert.strictEqual(await liveBuiltTimers(timers), 0, 'no timer after clear()');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepStrictEqual(due, ['a']);

    // Usable again after clear().
    schedule.add('d', Date.now());
    await waitFor(() => due.length === 2, 5000, 'an item added after clear()');
    assert.deepStrictEqual(due, ['a', 'd']);
  });
});
