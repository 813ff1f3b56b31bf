'use strict';

/** Resolves when `check()` (sync or async) holds, polling; fails after `ms` naming `what`. */
async function waitFor(check, ms = 3000, what = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * What `promise` came to within `ms`: `onValue(value)`, `onError(err)`, or 'still pending' (a
 * promise that never settles is the failure these checks look for, so it must not hang the test).
 */
async function settleWithin(promise, ms, onValue = () => 'resolved', onError = (err) => err.name) {
  let timer;
  const pending = new Promise((resolve) => {
    timer = setTimeout(() => resolve('still pending'), ms);
  });
  try {
    return await Promise.race([promise.then(onValue, onError), pending]);
  } finally {
    clearTimeout(timer);
  }
}

module.exports = { waitFor, settleWithin };
