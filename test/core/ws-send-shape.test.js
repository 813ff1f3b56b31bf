'use strict';
// keepWsSendShape: without it, V8 throws away ws 8's optimized send code at a full GC because the
// per-frame options' maps died ("weak objects"), and the code compiled again builds every frame's
// options in the runtime. With it, one held frame keeps those maps alive and the code stays.
// The child processes count V8's own deoptimization log lines; nothing here is timed.
const assert = require('assert');
const { execFileSync } = require('child_process');
const path = require('path');
const { builtPath } = require('../helpers/built');

const ROOT = path.join(__dirname, '..', '..');
const { node22Path } = require(path.join(ROOT, 'scripts', 'node22.js'));

/** Node-RED 4 runs here on Node 20, Node-RED 5 on Node 22: V8 11.3 and 12.4 both do this. */
const NODES = [
  { label: `Node ${process.versions.node}`, binary: () => process.execPath },
  { label: 'Node 22', binary: node22Path },
];

/**
 * Sends 8 rounds of 30,000 text frames through ws's Sender (as a server's WebSocket does) with a
 * full GC after each, and returns how often V8 discarded ws's optimized `send` for dead maps.
 */
function weakObjectDeopts(node, keep) {
  const script = `
    const { WebSocket } = require('ws');
    if (${keep}) require(${JSON.stringify(builtPath('core/ws-send-shape'))}).keepWsSendShape();
    const sender = new WebSocket.Sender({ cork() {}, uncork() {}, write() { return true; } });
    const data = Buffer.alloc(64, 120);
    for (let round = 0; round < 8; round++) {
      for (let i = 0; i < 30000; i++) sender.send(data, { binary: false, mask: false, compress: false, fin: true });
      global.gc();
    }
  `;
  const out = execFileSync(node, ['--expose-gc', '--trace-deopt-verbose', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 60000,
  });
  return out
    .split('\n')
    .filter((line) => /marking dependent code .*SharedFunctionInfo send>.*reason: weak objects/.test(line)).length;
}

describe('core/ws-send-shape', function () {
  this.timeout(120000);

  for (const node of NODES) {
    it(`${node.label}: without it, a full GC discards ws 8’s optimized send (the behaviour it works around)`, function () {
      assert.ok(weakObjectDeopts(node.binary(), false) >= 1);
    });

    it(`${node.label}: keeps ws’s optimized send across full GCs`, function () {
      assert.strictEqual(weakObjectDeopts(node.binary(), true), 0);
    });
  }

  it('holds one frame per process, and nothing that keeps the process running', function () {
    // A timer or handle left behind would keep this child from exiting (execFileSync times out).
    const script = `
      const { keepWsSendShape } = require(${JSON.stringify(builtPath('core/ws-send-shape'))});
      const before = process.getActiveResourcesInfo();
      const first = keepWsSendShape();
      const second = keepWsSendShape();
      const after = process.getActiveResourcesInfo();
      process.stdout.write(JSON.stringify({ first, second, before, after }));
    `;
    const out = JSON.parse(
      execFileSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 20000 }),
    );
    assert.deepStrictEqual(out.after, out.before);
    assert.deepStrictEqual([out.first, out.second], [true, true]);
  });
});
