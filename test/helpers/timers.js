'use strict';
// Counts the timers created from now on that are still alive (cleared or fired ones drop out), so a
// test sees its own leftovers and not those of the rest of the suite.
const { createHook } = require('async_hooks');

/** Also records where each live timer was created when `stacks` is set (for debugging a leak). */
function trackTimers({ stacks = false } = {}) {
  const live = new Map();
  const hook = createHook({
    init(id, type) {
      if (type === 'Timeout') live.set(id, stacks ? new Error('created here').stack : true);
    },
    destroy(id) {
      live.delete(id);
    },
  });
  hook.enable();
  return {
    get count() {
      return live.size;
    },
    /** The count once pending destroy hooks have run (Node emits them asynchronously). */
    async settled() {
      for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
      return live.size;
    },
    where() {
      return [...live.values()].filter((v) => typeof v === 'string');
    },
    stop() {
      hook.disable();
    },
  };
}

module.exports = { trackTimers };
