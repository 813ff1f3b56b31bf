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

module.exports = { waitFor };
