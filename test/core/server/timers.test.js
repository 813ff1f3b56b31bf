'use strict';
// setTimeoutAt: an epoch-ms deadline instead of a delay, safe beyond setTimeout's 2^31-1 ms cap,
// cancellable, and never holding the process open.
const assert = require('assert');
const { execFileSync } = require('child_process');
const { built, builtPath } = require('../../helpers/built');
const { setTimeoutAt } = built('core/server/timers');
const { trackTimers } = require('../../helpers/timers');
const { waitFor } = require('../../helpers/wait');

const DAY_MS = 24 * 60 * 60 * 1000;

/** Live timers created by the built package (the test's own and mocha's are not counted). */
async function liveBuiltTimers(timers) {
  await timers.settled();
  return timers.where().filter((stack) => stack.includes('nodes/lib/')).length;
}

describe('core/server/timers setTimeoutAt', function () {
  it('calls at once when the time is already past', async function () {
    let calls = 0;
    setTimeoutAt(Date.now() - 60_000, () => calls++);
    await waitFor(() => calls === 1, 5000, 'the past-due call');
    assert.strictEqual(calls, 1);
  });

  it('calls at a near deadline, once', async function () {
    let calls = 0;
    setTimeoutAt(Date.now() + 30, () => calls++);
    await waitFor(() => calls === 1, 5000, 'the due call');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.strictEqual(calls, 1);
  });

  it('does not fire early for a deadline beyond the 24.8-day setTimeout cap', async function () {
    // A plain setTimeout with this delay overflows and fires after about 1 ms.
    let calls = 0;
    const timer = setTimeoutAt(Date.now() + 30 * DAY_MS, () => calls++);
    await new Promise((resolve) => setTimeout(resolve, 100));
    timer.cancel();
    assert.strictEqual(calls, 0);
  });

  it('cancel() stops the call and leaves no timer behind', async function () {
    const timers = trackTimers({ stacks: true });
    try {
      let calls = 0;
      const near = setTimeoutAt(Date.now() + 20, () => calls++);
      const far = setTimeoutAt(Date.now() + 40 * DAY_MS, () => calls++);
      near.cancel();
      far.cancel();
      far.cancel(); // a second cancel is harmless
      assert.strictEqual(await liveBuiltTimers(timers), 0);
      await new Promise((resolve) => setTimeout(resolve, 60));
      assert.strictEqual(calls, 0);
    } finally {
      timers.stop();
    }
  });

  it('does not keep the process alive', function () {
    const script = `
      const { setTimeoutAt } = require(${JSON.stringify(builtPath('core/server/timers'))});
      setTimeoutAt(Date.now() + 60000, () => { console.log('fired'); });
      setTimeoutAt(Date.now() + 40 * 86400000, () => { console.log('fired'); });
    `;
    const started = Date.now();
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
    assert.strictEqual(out, '');
    assert.ok(Date.now() - started < 30000, 'the child exits without waiting for the timers');
  });
});

describe('core/timers: bounded', function () {
  const { bounded } = built('core/server/timers');

  it('resolves when the promise settles (fulfilled or rejected), or at the bound for one that never does', async function () {
    let start = Date.now();
    await bounded(Promise.resolve(1), 5000);
    await bounded(Promise.reject(new Error('x')), 5000);
    assert.ok(Date.now() - start < 4000, 'settled promises do not wait for the bound');
    start = Date.now();
    await bounded(new Promise(() => {}), 50);
    assert.ok(Date.now() - start >= 45, 'a pending promise is waited for up to the bound');
  });
});
