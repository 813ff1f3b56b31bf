'use strict';
// The one way tests load the compiled package: built('core/server/listener') requires
// nodes/lib/core/server/listener.js (run `npm run build` first; tests exercise what ships).
const path = require('path');

const LIB = path.join(__dirname, '..', '..', 'nodes', 'lib');

/** Absolute path of a built module, for child processes that require it themselves. */
function builtPath(name) {
  return path.join(LIB, `${name}.js`);
}

function built(name) {
  return require(builtPath(name));
}

module.exports = { built, builtPath, LIB };
