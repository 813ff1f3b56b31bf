'use strict';
// One real Node-RED runtime in its own process, with this package loaded from the repository.
//
// As a script:  node test/helpers/nr-instance.js <userDir>
//   starts Node-RED embedded (RED.init on its own HTTP server, loopback, ephemeral port) with the
//   flows.json / flows_cred.json already written in <userDir>, then prints "READY <port>" and one
//   "STATUS <json>" line per node status change. SIGTERM stops the flows and exits.
// As a module:  spawnInstance({ flows, credentials }) runs the script and returns a handle.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const { EventEmitter } = require('events');

const REPO = path.join(__dirname, '..', '..');
const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 8000;

function runInstance(userDir) {
  const http = require('http');
  const RED = require('node-red');
  const server = http.createServer((req, res) => {
    if (RED.httpNode) RED.httpNode(req, res);
    else {
      res.statusCode = 503;
      res.end();
    }
  });
  const settings = {
    userDir,
    flowFile: 'flows.json',
    credentialSecret: false,
    uiHost: '127.0.0.1',
    httpAdminRoot: false,
    httpNodeRoot: '/',
    // the repository root is a Node-RED module (package.json "node-red" section): load it from there
    nodesDir: [REPO],
    logging: { console: { level: process.env.NR_LOG_LEVEL || 'warn', metrics: false, audit: false } },
    externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
    editorTheme: { tours: false },
  };
  // Settings of a test (may hold functions): <userDir>/extra-settings.js, merged over the defaults.
  const extra = path.join(userDir, 'extra-settings.js');
  if (fs.existsSync(extra)) Object.assign(settings, require(extra));
  RED.init(server, settings);
  RED.events.on('node-status', (event) => {
    process.stdout.write(`STATUS ${JSON.stringify({ id: event.id, status: event.status || {} })}\n`);
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await RED.stop();
    } catch (err) {
      process.stderr.write(`stop failed: ${err && err.message}\n`);
    }
    server.closeAllConnections?.();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  server.listen(0, '127.0.0.1', () => {
    RED.start().then(
      () => process.stdout.write(`READY ${server.address().port}\n`),
      (err) => {
        process.stderr.write(`start failed: ${err && err.stack}\n`);
        process.exit(1);
      },
    );
  });
}

/**
 * Starts a Node-RED process with `flows` and `credentials` (plain, credentialSecret false);
 * `settingsModule` is the source of a module whose exports override the settings.
 * Resolves { port, url(path, query), statuses, waitForStatus, stop, output }.
 */
async function spawnInstance({ flows, credentials = {}, env = {}, settingsModule }) {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsplus-nr-'));
  if (settingsModule) fs.writeFileSync(path.join(userDir, 'extra-settings.js'), settingsModule);
  fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flows, null, 2));
  fs.writeFileSync(path.join(userDir, 'flows_cred.json'), JSON.stringify(credentials, null, 2));
  const proc = spawn(process.execPath, [__filename, userDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const events = new EventEmitter();
  const statuses = new Map();
  let output = '';
  const lines = [];
  let port;
  let buffered = '';
  proc.stdout.on('data', (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.startsWith('READY ')) {
        port = Number(line.slice(6));
        events.emit('ready');
      } else if (line.startsWith('STATUS ')) {
        const { id, status } = JSON.parse(line.slice(7));
        statuses.set(id, status);
        events.emit('status', id, status);
      } else {
        output = (output + line + '\n').slice(-8000);
        if (lines.length < 5000) lines.push(line);
        events.emit('line', line);
      }
    }
  });
  proc.stderr.on('data', (chunk) => (output = (output + chunk).slice(-8000)));
  const exited = new Promise((resolve) => proc.once('exit', resolve));

  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Node-RED did not start:\n${output}`)), START_TIMEOUT_MS);
    events.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`Node-RED exited (${code}) before it was ready:\n${output}`));
    });
  }).catch(async (err) => {
    proc.kill('SIGKILL');
    fs.rmSync(userDir, { recursive: true, force: true });
    throw err;
  });

  return {
    get port() {
      return port;
    },
    get output() {
      return output;
    },
    statuses,
    url(pathname, query) {
      return `ws://127.0.0.1:${port}${pathname}${query ? `?${query}` : ''}`;
    },
    /** Resolves with the status of node `id` once `predicate(status)` holds. */
    waitForStatus(id, predicate, ms = 10000) {
      return new Promise((resolve, reject) => {
        const current = statuses.get(id);
        if (current && predicate(current)) return resolve(current);
        const timer = setTimeout(() => {
          events.off('status', check);
          reject(new Error(`status of ${id} never matched (last: ${JSON.stringify(statuses.get(id))})`));
        }, ms);
        function check(nodeId, status) {
          if (nodeId !== id || !predicate(status)) return;
          clearTimeout(timer);
          events.off('status', check);
          resolve(status);
        }
        events.on('status', check);
      });
    },
    /** Resolves once `count` lines of the runtime's log have matched `regex`. */
    waitForLines(regex, count = 1, ms = 10000) {
      return new Promise((resolve, reject) => {
        const matched = () => lines.filter((l) => regex.test(l)).length;
        if (matched() >= count) return resolve();
        const timer = setTimeout(() => {
          events.off('line', check);
          reject(new Error(`log never had ${count} × ${regex} (had ${matched()}):\n${output}`));
        }, ms);
        function check() {
          if (matched() < count) return;
          clearTimeout(timer);
          events.off('line', check);
          resolve();
        }
        events.on('line', check);
      });
    },
    /** SIGKILL at once: the process vanishes without closing anything, as in a crash. */
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
    /** SIGTERM (flows stop, sockets close with 1001), SIGKILL if it takes too long. */
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(userDir, { recursive: true, force: true });
    },
  };
}

if (require.main === module) runInstance(path.resolve(process.argv[2]));

/** After a failed test, prints the output of each named instance (what the runtime logged is the evidence). */
function printOutputOnFailure(test, instances) {
  if (test.state !== 'failed') return;
  for (const [name, inst] of Object.entries(instances)) if (inst) console.log(`--- ${name} output ---\n${inst.output}`);
}

module.exports = { spawnInstance, printOutputOnFailure };
