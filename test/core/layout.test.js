'use strict';
// The layout rules of src/core, checked on the sources: every core file has a test file at the
// mirrored path, and no core file imports Node-RED.
const assert = require('assert');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..', '..');
const SRC = path.join(ROOT, 'src', 'core');

const coreFiles = fs
  .readdirSync(SRC, { recursive: true })
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.split(path.sep).join('/'));

describe('core layout', function () {
  it('finds the core sources grouped in folders', function () {
    assert.ok(coreFiles.includes('errors.ts'));
    assert.ok(coreFiles.some((f) => f.startsWith('server/')));
  });

  it('has test/core/<dir>/<name>.test.js for every src/core/<dir>/<name>.ts', function () {
    const missing = coreFiles
      .map((f) => f.replace(/\.ts$/, '.test.js'))
      .filter((t) => !fs.existsSync(path.join(__dirname, t)));
    assert.deepStrictEqual(missing, []);
  });

  it('has no Node-RED import in src/core', function () {
    const offenders = coreFiles.filter((f) =>
      /(from\s+|require\()['"](node-red|@node-red\/)/.test(fs.readFileSync(path.join(SRC, f), 'utf8')),
    );
    assert.deepStrictEqual(offenders, []);
  });
});
