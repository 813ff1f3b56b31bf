'use strict';
// `npm start` (scripts/start.js) as a user runs it, with its own port and user dir, in its own
// process group so that the Node-RED it starts is stopped with it (also when a run is interrupted).
const { spawn } = require('child_process');
const path = require('path');
const { ROOT, freePort, makeUserDir, removeDir } = require('./node-red-process');

const START_JS = path.join(ROOT, 'scripts', 'start.js');

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
}

/**
 * Starts the demo and resolves once it printed its banner:
 * { port, userDir, child, output(), exited: Promise<{code, signal}>, stop() }.
 */
async function startDemo({ prefix = 'wsplus-start-', readyMs = 45000 } = {}) {
  const userDir = makeUserDir(prefix);
  const port = await freePort();
  const child = spawn(process.execPath, [START_JS], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), WSPLUS_DEMO_USERDIR: userDir },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const onExit = () => killGroup(child.pid, 'SIGKILL');
  process.once('exit', onExit);
  let output = '';
  child.stdout.on('data', (c) => (output = (output + c).slice(-256 * 1024)));
  child.stderr.on('data', (c) => (output = (output + c).slice(-256 * 1024)));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  const demo = {
    port,
    userDir,
    child,
    exited,
    output: () => output,
    /** Stops start.js and its Node-RED (SIGTERM, SIGKILL after 5 s) and removes the user dir. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(child.pid, 'SIGTERM');
        const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      killGroup(child.pid, 'SIGKILL'); // a Node-RED that outlived start.js
      process.removeListener('exit', onExit);
      removeDir(userDir);
    },
  };
  const deadline = Date.now() + readyMs;
  while (!/demo is running[\s\S]*Stop with Ctrl\+C/.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await demo.stop();
      throw new Error(
        `start.js ${child.exitCode !== null ? 'exited early' : 'did not get ready'}:\n${output.slice(-3000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  return demo;
}

module.exports = { START_JS, startDemo };
