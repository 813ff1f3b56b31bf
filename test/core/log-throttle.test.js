'use strict';
// LogThrottle: the first line of a kind is written at once; repeats within the window are summed
// up in one line when it ends; close() drops what is pending and leaves no timer.
const assert = require('assert');
const { built } = require('../helpers/built');
const { LogThrottle } = built('core/log-throttle');
const { trackTimers } = require('../helpers/timers');
const { waitFor } = require('../helpers/wait');

/** Live timers created by the built package (the test's own and mocha's are not counted). */
async function liveBuiltTimers(timers) {
  await timers.settled();
  return timers.where().filter((stack) => stack.includes('nodes/lib/')).length;
}

describe('core/log-throttle', function () {
  let timers;
  beforeEach(function () {
    timers = trackTimers({ stacks: true });
  });
  afterEach(function () {
    timers.stop();
  });

  it('writes the first line at once and sums up repeats when the window ends', async function () {
    const lines = [];
    const throttle = new LogThrottle((line) => lines.push(line), 50);
    for (let i = 0; i < 5; i++) throttle.note('refused: bad signature');
    throttle.note('refused: expired');
    throttle.note('refused: expired');
    assert.deepStrictEqual(lines, ['refused: bad signature', 'refused: expired']);
    await waitFor(() => lines.length === 4, 5000, 'the summary lines');
    assert.deepStrictEqual(lines.slice(2), ['refused: bad signature (×4 more)', 'refused: expired (×1 more)']);
    assert.strictEqual(await liveBuiltTimers(timers), 0, 'no timer once the window has ended');
    throttle.close();
  });

  it('writes no summary for a line seen once, and starts afresh after the window', async function () {
    const lines = [];
    const throttle = new LogThrottle((line) => lines.push(line), 30);
    throttle.note('once');
    await waitFor(async () => (await liveBuiltTimers(timers)) === 0, 5000, 'the window to end');
    assert.deepStrictEqual(lines, ['once']);
    throttle.note('once');
    assert.deepStrictEqual(lines, ['once', 'once'], 'a new window writes the line at once again');
    throttle.close();
  });

  it('counts lines of one given kind as repeats and sums them up under the first one', async function () {
    const lines = [];
    const throttle = new LogThrottle((line) => lines.push(line), 50);
    for (const ms of [100, 200, 300]) throttle.note(`retrying after ${ms}ms`, 'retrying after N ms');
    throttle.note('another line');
    assert.deepStrictEqual(lines, ['retrying after 100ms', 'another line']);
    await waitFor(() => lines.length === 3, 2000);
    assert.deepStrictEqual(lines, ['retrying after 100ms', 'another line', 'retrying after 100ms (×2 more)']);
  });

  it('close() drops pending repeats and leaves no timer', async function () {
    const lines = [];
    const throttle = new LogThrottle((line) => lines.push(line), 50);
    throttle.note('x');
    throttle.note('x');
    throttle.close();
    assert.strictEqual(await liveBuiltTimers(timers), 0);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepStrictEqual(lines, ['x']);
  });
});
