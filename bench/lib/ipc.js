'use strict';
// Request/response over a child process's IPC channel: the parent calls a command and awaits its
// answer; the child side answers commands from a handler table. Every call has a deadline.
const { fork } = require('child_process');
const fs = require('fs');

class Child {
  /**
   * @param {string} script   module to fork
   * @param {object} options  { name, execArgv, env, logFile, args, wrapper, readyTimeoutMs }
   *   wrapper: a command the child runs under (e.g. valgrind and its options), node and the script after it
   */
  constructor(script, options = {}) {
    this.name = options.name || script;
    this.logFile = options.logFile;
    const out = this.logFile ? fs.openSync(this.logFile, 'a') : 'inherit';
    const wrapper = options.wrapper || [];
    this.proc = fork(script, options.args || [], {
      ...(wrapper.length ? { execPath: wrapper[0] } : {}),
      execArgv: wrapper.length
        ? [...wrapper.slice(1), process.execPath, ...(options.execArgv || [])]
        : options.execArgv || [],
      env: { ...process.env, ...(options.env || {}) },
      stdio: ['ignore', out, out, 'ipc'],
    });
    if (typeof out === 'number') fs.closeSync(out);
    if (options.cpu !== undefined) {
      // Pin every thread of the child to one CPU (threads it starts later inherit it).
      try {
        require('child_process').execFileSync(
          'taskset',
          ['-a', '-p', '-c', String(options.cpu), String(this.proc.pid)],
          { stdio: 'ignore' },
        );
      } catch {
        /* taskset missing: leave scheduling to the OS */
      }
    }
    this.nextId = 1;
    this.pending = new Map();
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exitCode = code;
        for (const { reject, timer } of this.pending.values()) {
          clearTimeout(timer);
          reject(new Error(`${this.name} exited (code ${code}, signal ${signal})${this.logTail()}`));
        }
        this.pending.clear();
        resolve({ code, signal });
      });
    });
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name} not ready after ${options.readyTimeoutMs || 60000} ms${this.logTail()}`)),
        options.readyTimeoutMs || 60000,
      );
      this.proc.on('message', (m) => {
        if (m && m.type === 'ready') {
          clearTimeout(timer);
          resolve(m);
        } else if (m && m.type === 'fatal') {
          clearTimeout(timer);
          reject(new Error(`${this.name}: ${m.error}${this.logTail()}`));
        } else if (m && m.id !== undefined && this.pending.has(m.id)) {
          const { resolve: res, reject: rej, timer: t } = this.pending.get(m.id);
          this.pending.delete(m.id);
          clearTimeout(t);
          if (m.ok) res(m.result);
          else rej(new Error(`${this.name}: ${m.error}`));
        }
      });
      this.exited.then(() => reject(new Error(`${this.name} exited before ready${this.logTail()}`)));
    });
    this.ready.catch(() => {});
  }

  logTail() {
    if (!this.logFile) return '';
    try {
      const text = fs.readFileSync(this.logFile, 'utf8');
      return `\n--- ${this.logFile} (tail) ---\n${text.split('\n').slice(-30).join('\n')}`;
    } catch {
      return '';
    }
  }

  call(cmd, args = {}, timeoutMs = 120000) {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: '${cmd}' timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.proc.send({ id, cmd, args });
    });
  }

  async stop(timeoutMs = 5000) {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    try {
      this.proc.send({ id: 0, cmd: 'exit' });
    } catch {
      /* channel already closed */
    }
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Child side: answers { id, cmd, args } with { id, ok, result | error }; 'exit' ends the process. */
function serve(handlers) {
  process.on('message', async (m) => {
    if (!m || m.cmd === undefined) return;
    if (m.cmd === 'exit') {
      process.exit(0);
      return;
    }
    const handler = handlers[m.cmd];
    try {
      if (!handler) throw new Error(`unknown command ${m.cmd}`);
      const result = await handler(m.args || {});
      process.send({ id: m.id, ok: true, result });
    } catch (err) {
      process.send({ id: m.id, ok: false, error: err && err.stack ? err.stack : String(err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

/**
 * The measurement hooks every server process offers. `mark` reads this process's CPU time;
 * with `gcFirst` a full GC runs before the reading (so garbage from the previous phase is not
 * billed to the next window); with `memory` a full GC runs after the CPU reading and the memory
 * figures are read after it.
 */
/** Read and write system calls of this process so far (Linux: /proc/self/io), else {}. */
function syscalls() {
  try {
    const fs = require('fs');
    const io = fs.readFileSync('/proc/self/io', 'utf8');
    // CPU time of the threads other than the main one (V8's GC and compiler helpers, libuv's pool), in ticks.
    let helperTicks = 0;
    for (const tid of fs.readdirSync('/proc/self/task')) {
      if (Number(tid) === process.pid) continue;
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      helperTicks += Number(fields[11]) + Number(fields[12]);
    }
    return {
      syscr: Number(/^syscr: (\d+)/m.exec(io)[1]),
      syscw: Number(/^syscw: (\d+)/m.exec(io)[1]),
      helperTicks,
    };
  } catch {
    return {};
  }
}

function markHandlers() {
  return {
    /** Diagnostics: writes a heap snapshot (after a full GC) to `file`. */
    heapSnapshot({ file }) {
      global.gc();
      return { file: require('v8').writeHeapSnapshot(file) };
    },
    mark({ gcFirst = false, memory = false, window } = {}) {
      if (gcFirst) global.gc();
      const cpu = process.cpuUsage();
      // Profiled servers: the measurement windows on the profile's clock (monotonic µs), so
      // profile-top.js can count only the samples taken inside them (WINDOW=<name>).
      if (window && process.env.BENCH_PROFILE_WINDOWS) {
        const t = Number(process.hrtime.bigint() / 1000n);
        require('fs').appendFileSync(process.env.BENCH_PROFILE_WINDOWS, `${JSON.stringify({ ...window, t })}\n`);
      }
      const result = {
        cpuUs: cpu.user + cpu.system,
        user: cpu.user,
        system: cpu.system,
        at: Date.now(),
        ...syscalls(),
      };
      if (memory) {
        global.gc();
        const mem = process.memoryUsage();
        result.rss = mem.rss;
        result.heapUsed = mem.heapUsed;
        result.heapTotal = mem.heapTotal;
        result.external = mem.external;
        result.arrayBuffers = mem.arrayBuffers;
        result.spaces = Object.fromEntries(
          require('v8')
            .getHeapSpaceStatistics()
            .map((sp) => [sp.space_name, { size: sp.space_size, used: sp.space_used_size }]),
        );
      }
      return result;
    },
  };
}

module.exports = { Child, serve, markHandlers };
