'use strict';
// A real redis-server on a free loopback port, without persistence, that tests can stop and start
// again on the same port (Redis outage and recovery). Extra arguments (cluster mode, replicaof) or
// a config file (sentinel mode) come from the options; see redis-cluster.js.
const { spawn, execFile } = require('child_process');
const net = require('net');
const fs = require('fs');
const os = require('os');
const path = require('path');

const READY_TIMEOUT_MS = 10000;

/**
 * Servers still running and directories still there when this process exits without stopping them
 * (a failed hook, an interrupted run): killed and removed then, so no redis-server outlives its test.
 */
const live = new Set();
process.once('exit', () => {
  for (const server of live) {
    if (server.proc) server.proc.kill('SIGKILL');
    fs.rmSync(server.dir, { recursive: true, force: true });
  }
});

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function redisBinary() {
  for (const candidate of [process.env.REDIS_SERVER, '/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
    if (candidate && fs.existsSync(candidate)) return candidate;
  }
  return 'redis-server';
}

function redisCliBinary() {
  for (const candidate of [process.env.REDIS_CLI, '/usr/bin/redis-cli', '/usr/local/bin/redis-cli']) {
    if (candidate && fs.existsSync(candidate)) return candidate;
  }
  return 'redis-cli';
}

/**
 * Runs redis-cli with `args` (bounded by `ms`); resolves its stdout, rejects with its output on
 * failure. `input`: commands for its stdin, one a line (many commands, one process).
 */
function redisCli(args, ms = 20000, input = undefined) {
  return new Promise((resolve, reject) => {
    const child = execFile(redisCliBinary(), args, { timeout: ms, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')} failed: ${err.message} ${stdout} ${stderr}`.trim()));
      else resolve(String(stdout));
    });
    // A redis-cli that exits before reading its input must not turn into an EPIPE thrown elsewhere.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** Sends PING over a raw socket; resolves true on +PONG, or on NOAUTH from a server that requires a password. */
function ping(port, ms = 500) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => done(false), ms);
    let buf = '';
    function done(ok) {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    }
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      buf += d;
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG') || buf.startsWith('-NOAUTH'));
    });
    socket.on('error', () => done(false));
  });
}

class RedisServer {
  /**
   * `options.args`: more redis-server arguments (e.g. cluster mode, replicaof). `options.config`:
   * the text of a config file written to the server's directory and passed first (a sentinel needs
   * a writable file of its own); `options.sentinel`: start with --sentinel.
   */
  constructor(port, options = {}) {
    this.port = port;
    this.proc = undefined;
    this.output = '';
    this.options = options;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsplus-redis-'));
    live.add(this);
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running() {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts redis-server and resolves when it answers PING. */
  async start() {
    if (this.running) return;
    const args = [];
    if (this.options.config !== undefined) {
      const file = path.join(this.dir, 'redis.conf');
      // Written at every start: a sentinel rewrites its file, a restart begins from the original.
      fs.writeFileSync(file, this.options.config);
      args.push(file);
    }
    if (this.options.sentinel) args.push('--sentinel');
    args.push(
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      this.dir,
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
      '--loglevel',
      'warning',
      ...(this.options.args ?? []),
    );
    const proc = spawn(redisBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.stdout.on('data', (d) => (this.output = (this.output + d).slice(-4000)));
    proc.stderr.on('data', (d) => (this.output = (this.output + d).slice(-4000)));
    proc.once('error', (err) => (this.output += `\nspawn error: ${err.message}`));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let exitedEarly = false;
    exited.then(() => (exitedEarly = true));
    while (Date.now() < deadline) {
      if (exitedEarly) break;
      if (await ping(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.stop();
    throw new Error(`redis-server did not start on port ${this.port}: ${this.output.trim()}`);
  }

  /** Stops the server (SIGTERM, then SIGKILL) and resolves when the process is gone. */
  async stop() {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }

  /** Kills the server at once (SIGKILL: no shutdown, as a crash) and resolves when it is gone. */
  async kill() {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  /** Stops the server and removes its working directory. */
  async close() {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }
}

/** Starts a redis-server on a free port (retries if the port was taken meanwhile). */
async function startRedis(options = {}) {
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const server = new RedisServer(await freePort(), options);
    try {
      await server.start();
      return server;
    } catch (err) {
      lastError = err;
      await server.close();
    }
  }
  throw lastError;
}

module.exports = { startRedis, RedisServer, freePort, ping, redisCli };
