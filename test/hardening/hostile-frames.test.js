'use strict';
// Hostile frames after the handshake, through a real `node-red` process with realistic wiring: a
// crash is seen as the process exiting. Each listener and client has two ws.in+ nodes (the second
// gets a copy of every message), and the first is wired to a debug node (whole message), a
// function node and a ws.out+ echo (three wires: Node-RED copies the message for the later two).
// Both modes (payload, entire message), for listeners (hostile clients) and for clients (a hostile
// server in this process). After every case: the process is alive, its admin API answers, a
// session of another tenant still echoes, RSS stays within RSS_BOUND_MB of the start, and every
// connection count is back where it belongs (read from the node status Node-RED publishes).
const assert = require('assert');
const fs = require('fs');
const WebSocket = require('ws');
const { makeUserDir, removeDir, writeSettings, linkPackage, startNodeRed } = require('../helpers/node-red-process');
const { connect, waitForClose, closeAll } = require('../helpers/ws-client');
const { signHS256 } = require('../helpers/tokens');
const { prng } = require('../helpers/hardening');
const { waitFor } = require('../helpers/wait');
const { startRecordingServer } = require('../helpers/recording-ws-server');
const { frame, closeFrame, writeRaw } = require('../helpers/ws-frames');
const { LISTENER_DEFAULTS } = require('../helpers/built').built('core/flow/defaults');

const SECRET = 'hostile-frames-secret-0123456789abcdef-0123';
const SEED = Number(process.env.HOSTILE_FRAMES_SEED || 0x10f4a3e5) >>> 0;
/** RSS growth allowed over the process's RSS after the first deploy. */
const RSS_BOUND_MB = 160;
const MAX_PAYLOAD = 256 * 1024;
/** Nesting the listener and client accept in entire-message mode (MAX_MESSAGE_DEPTH). */
const MAX_DEPTH = 64;
const VERBOSE = !!process.env.HARDENING_VERBOSE;

const nest = (n) => '['.repeat(n) + ']'.repeat(n);
const nestObjects = (n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
/** The frame that killed Node-RED: 40 KB that JSON.parse reads and a recursive clone cannot copy. */
const DEEP_40KB = `{"a":${nest(20000)}}`;

// ---- flow -----------------------------------------------------------------------------------

/** in1 -> [debug (whole msg), function, ws.out+ echo]; in2 -> function: every message is copied. */
function wiring(endpoint, key, isClient) {
  const z = 'hf-tab';
  const ref = isClient ? { server: '', client: endpoint } : { server: endpoint, client: '' };
  return [
    {
      id: `in1-${key}`,
      type: 'websocket-plus in',
      z,
      name: '',
      ...ref,
      wires: [[`dbg-${key}`, `fn-${key}`, `out-${key}`]],
    },
    { id: `in2-${key}`, type: 'websocket-plus in', z, name: '', ...ref, wires: [[`fn2-${key}`]] },
    { id: `out-${key}`, type: 'websocket-plus out', z, name: '', ...ref, wires: [] },
    {
      id: `dbg-${key}`,
      type: 'debug',
      z,
      name: '',
      active: true,
      tosidebar: true,
      console: false,
      tostatus: false,
      complete: 'true',
      targetType: 'full',
      wires: [],
    },
    {
      id: `fn-${key}`,
      type: 'function',
      z,
      name: '',
      func: 'msg.seen = (msg.seen || 0) + 1;\nreturn msg;',
      outputs: 1,
      wires: [[]],
    },
    { id: `fn2-${key}`, type: 'function', z, name: '', func: 'node.done();\nreturn null;', outputs: 1, wires: [[]] },
  ];
}

const LISTENERS = {
  lp: { path: '/ws/hostile-payload', wholemsg: 'false', rateLimit: '' },
  lm: { path: '/ws/hostile-message', wholemsg: 'true', rateLimit: '' },
  lr: { path: '/ws/hostile-rate', wholemsg: 'true', rateLimit: '50' },
};
const CLIENT_CASES = ['deep', 'wide', 'utf8', 'fragments', 'pings', 'close', 'mix'];
const clientKeys = () => CLIENT_CASES.flatMap((c) => ['p', 'm'].map((mode) => `c-${c}-${mode}`));

function flow(hostilePort) {
  const nodes = [{ id: 'hf-tab', type: 'tab', label: 'hostile frames' }];
  for (const [key, props] of Object.entries(LISTENERS)) {
    nodes.push({
      id: `L-${key}`,
      type: 'websocket-plus-listener',
      ...LISTENER_DEFAULTS,
      path: props.path,
      wholemsg: props.wholemsg,
      scope: 'session',
      rateLimit: props.rateLimit,
      maxPayload: String(MAX_PAYLOAD),
      heartbeat: '0',
      credentials: { secret: SECRET },
    });
    nodes.push(...wiring(`L-${key}`, key, false));
  }
  for (const key of clientKeys()) {
    nodes.push({
      id: `C-${key}`,
      type: 'websocket-plus-client',
      path: `ws://127.0.0.1:${hostilePort}/${key}`,
      wholemsg: key.endsWith('-m') ? 'true' : 'false',
      authMode: 'none',
      hb: '0',
      subprotocol: '',
      headers: [],
    });
    nodes.push(...wiring(`C-${key}`, key, true));
  }
  return nodes;
}

// ---- the suite ------------------------------------------------------------------------------

describe('hardening: hostile frames after the handshake (a real node-red process)', function () {
  this.timeout(90000);
  let userDir;
  let red;
  let comms;
  let hostile;
  let bystander;
  let baselineKb = 0;
  let echoes = 0;
  const sockets = [];
  const stats = { frames: 0, crashes: 0, maxRssGrowthKb: 0, cases: 0 };
  /** Per hostile-server path: the client's current socket, what it sent us, how its sockets closed. */
  const peers = new Map();

  const peer = (key) => {
    if (!peers.has(key)) peers.set(key, { ws: undefined, messages: [], closes: [], opened: 0 });
    return peers.get(key);
  };
  const wsUrl = (key) => `${red.url.replace(/^http/, 'ws')}${LISTENERS[key].path}`;
  const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${red.child.pid}/status`, 'utf8'))[1]);
  const statusText = (nodeId) => {
    for (let i = comms.events.length - 1; i >= 0; i--)
      if (comms.events[i].topic === `status/${nodeId}`) return comms.events[i].data?.text;
    return undefined;
  };

  async function openHostile(key, sub = 'hostile') {
    const token = await signHS256(SECRET, { tenant_id: `tenant-${sub}`, sub }, { expiresIn: 600 });
    const r = await connect(`${wsUrl(key)}?token=${token}`, { ws: { perMessageDeflate: false } });
    assert.strictEqual(r.opened, true, `refused with HTTP ${r.status}`);
    r.ws.on('error', () => {});
    sockets.push(r.ws);
    return r.ws;
  }

  async function startRuntime(deploy) {
    red = await startNodeRed({ runtime: 'node-red-4', userDir });
    if (deploy) await red.deploy(flow(hostile.port));
    comms = await red.openComms('status/#');
    const token = await signHS256(SECRET, { tenant_id: 'bystander', sub: 'bystander' }, { expiresIn: 600 });
    await waitFor(
      async () =>
        await connect(`${wsUrl('lp')}?token=${token}`).then(
          (r) => r.ws.terminate() || r.opened,
          () => false,
        ),
      15000,
      'the listeners to start',
    );
    bystander = (await connect(`${wsUrl('lp')}?token=${token}`)).ws;
    for (const key of clientKeys())
      await waitFor(() => peer(key).ws?.readyState === WebSocket.OPEN, 15000, `client ${key} to connect`);
  }

  function assertAlive(what) {
    assert.strictEqual(
      red.exited,
      null,
      `${what}: node-red exited ${JSON.stringify(red.exited)}\n${red.output.slice(-3000)}`,
    );
  }

  /** Every check made after a case; `what` names the case in failures. */
  async function assertHealthy(what) {
    assertAlive(what);
    const settings = await red.api('GET', '/settings', { timeoutMs: 10000 });
    assert.strictEqual(settings.status, 200, `${what}: admin API answered ${settings.status}`);
    const text = `bystander ${++echoes}`;
    bystander.send(text);
    await waitFor(() => bystander.messages.includes(text), 10000, `${what}: the bystander's echo`);
    // every connection count back where it belongs: only the bystander on its listener, one socket per client
    await waitFor(
      () =>
        statusText('in1-lp') === 'connected 1' &&
        statusText('in1-lm') === 'connected 0' &&
        statusText('in1-lr') === 'connected 0',
      10000,
      `${what}: listener connection counts (${statusText('in1-lp')}, ${statusText('in1-lm')}, ${statusText('in1-lr')})`,
    );
    for (const key of clientKeys()) {
      await waitFor(
        () => peer(key).ws?.readyState === WebSocket.OPEN && statusText(`in1-${key}`) === 'connected',
        15000,
        `${what}: client ${key} connected again`,
      );
    }
    assert.strictEqual(hostile.open, clientKeys().length, `${what}: sockets open at the hostile server`);
    const growth = rssKb() - baselineKb;
    stats.maxRssGrowthKb = Math.max(stats.maxRssGrowthKb, growth);
    if (VERBOSE) console.log(`      ${what}: RSS +${(growth / 1024).toFixed(1)} MiB`);
    assert.ok(
      growth <= RSS_BOUND_MB * 1024,
      `${what}: RSS grew ${(growth / 1024).toFixed(1)} MiB (bound ${RSS_BOUND_MB} MiB)`,
    );
  }

  before(async function () {
    hostile = await startRecordingServer({
      onConnection: (ws, req) => {
        const p = peer(req.url.slice(1));
        p.ws = ws;
        p.opened++;
        ws.on('message', (data, isBinary) => p.messages.push(isBinary ? data : data.toString()));
        ws.on('close', (code, reason) => p.closes.push({ code, reason: reason.toString() }));
      },
    });
    userDir = makeUserDir('wsplus-hostile-');
    writeSettings(userDir);
    linkPackage(userDir);
    await startRuntime(true);
    baselineKb = rssKb();
    await assertHealthy('after start');
    console.log(
      `      seed ${SEED} (HOSTILE_FRAMES_SEED=${SEED} replays it); RSS at start ${(baselineKb / 1024).toFixed(1)} MiB`,
    );
  });

  afterEach(async function () {
    closeAll(sockets.splice(0));
    stats.cases++;
    if (red.exited) {
      // a crash fails its case; the next cases run on a fresh process
      stats.crashes++;
      comms.close();
      bystander.terminate();
      await startRuntime(false);
      baselineKb = rssKb();
    }
  });

  after(async function () {
    console.log(
      `      frames tried ${stats.frames}, cases ${stats.cases}, crashes ${stats.crashes}, ` +
        `max RSS growth ${(stats.maxRssGrowthKb / 1024).toFixed(1)} MiB (bound ${RSS_BOUND_MB} MiB)`,
    );
    comms?.close();
    bystander?.terminate();
    closeAll(sockets);
    if (red) await red.stop();
    await hostile?.close();
    removeDir(userDir);
  });

  /** Sends `data` on a fresh session of listener `key`; resolves what came back: an echo or a close. */
  async function sendToListener(key, send, { expectClose = false } = {}) {
    const ws = await openHostile(key);
    const closed = waitForClose(ws, 15000);
    send(ws);
    if (expectClose) {
      const close = await closed;
      // a cut without a close frame may be the process dying: name that, not the close code
      if (close.code === 1006) await Promise.race([red.exitPromise, new Promise((r) => setTimeout(r, 1500))]);
      assertAlive(key);
      return { close };
    }
    await waitFor(() => ws.messages.length > 0 || ws.readyState !== WebSocket.OPEN, 15000, 'an echo');
    assertAlive(key);
    const echo = ws.messages[0];
    ws.close();
    await closed;
    return { echo };
  }

  // ---- listeners: hostile clients -------------------------------------------------------------

  describe('listener (hostile clients)', function () {
    it(
      'the 40 KB frame of 20,000 nested arrays: echoed as text ' +
        'in payload mode, closed 1009 in entire-message mode',
      async function () {
        const payload = await sendToListener('lp', (ws) => ws.send(DEEP_40KB));
        assert.strictEqual(payload.echo, DEEP_40KB);
        const mark = red.output.length;
        const message = await sendToListener('lm', (ws) => ws.send(DEEP_40KB), { expectClose: true });
        assert.deepStrictEqual(message.close, { code: 1009, reason: 'message nested too deep' });
        await red.waitForLog((out) => /session closed: message too deep/.test(out.slice(mark)), 5000);
        stats.frames += 2;
        await assertHealthy('deep arrays');
      },
    );

    it(
      'deep objects (20,000 levels) and deep JSON inside ' + 'a payload: closed 1009; 64 levels are delivered',
      async function () {
        for (const text of [nestObjects(20000), `{"payload":{"x":${nest(5000)}}}`, nest(MAX_DEPTH + 1)]) {
          const r = await sendToListener('lm', (ws) => ws.send(text), { expectClose: true });
          assert.deepStrictEqual(r.close, { code: 1009, reason: 'message nested too deep' });
        }
        const atBound = await sendToListener('lm', (ws) => ws.send(`{"payload":${nest(MAX_DEPTH - 1)}}`));
        assert.deepStrictEqual(JSON.parse(atBound.echo).payload, JSON.parse(nest(MAX_DEPTH - 1)));
        assert.strictEqual((await sendToListener('lp', (ws) => ws.send(nestObjects(20000)))).echo, nestObjects(20000));
        stats.frames += 5;
        await assertHealthy('deep objects');
      },
    );

    it('wide JSON, huge numbers and huge strings are delivered in both modes', async function () {
      const frames = [
        `{"payload":[${Array.from({ length: 40000 }, (_, i) => i % 10).join(',')}]}`,
        JSON.stringify(Object.fromEntries(Array.from({ length: 8000 }, (_, i) => [`k${i}`, i]))),
        `{"payload":[1e400,-1e400,1e-400,${'9'.repeat(5000)},-0,0.${'1'.repeat(3000)}]}`,
        `{"payload":"${'x'.repeat(200 * 1024)}"}`,
        '{"payload":"\\ud800\\udfff\\u0000\\ude00 lone surrogates and NUL","topic":"\\u2028"}',
        `{"constructor":{"prototype":{"polluted":1}},"__proto__":{"polluted":1},"payload":"p"}`,
      ];
      for (const key of ['lp', 'lm']) {
        for (const text of frames) {
          const r = await sendToListener(key, (ws) => ws.send(text));
          assert.ok(typeof r.echo === 'string' && r.echo.length > 0, `${key}: no echo for ${text.slice(0, 40)}`);
          stats.frames++;
        }
      }
      await assertHealthy('wide and huge');
    });

    it('invalid UTF-8 in text frames is closed with 1007 in both modes', async function () {
      for (const key of ['lp', 'lm']) {
        for (const bytes of [
          [0xff, 0xfe],
          [0xc3, 0x28],
          [0xed, 0xa0, 0x80],
          [0xf4, 0x90, 0x80, 0x80],
          [0x7b, 0x22, 0x61, 0x22, 0x3a, 0xe0, 0x80],
        ]) {
          const r = await sendToListener(key, (ws) => ws.send(Buffer.from(bytes), { binary: false }), {
            expectClose: true,
          });
          assert.strictEqual(r.close.code, 1007, `${key} ${bytes}`);
          stats.frames++;
        }
      }
      await assertHealthy('invalid UTF-8');
    });

    it('many tiny fragments: 1,000 make one message, 20,000 are closed (1008) without buffering', async function () {
      const mark = red.output.length;
      for (const key of ['lp', 'lm']) {
        const ok = await sendToListener(key, (ws) => {
          for (let i = 0; i < 999; i++) ws.send(i === 0 ? '"' : 'a', { fin: false });
          ws.send('"', { fin: true });
        });
        assert.ok(ok.echo.includes('a'.repeat(998)), `${key}: the fragmented message`);
        const flood = await sendToListener(
          key,
          (ws) => {
            for (let i = 0; i < 20000; i++) ws.send('b', { fin: false });
          },
          { expectClose: true },
        );
        assert.strictEqual(flood.close.code, 1008, key);
        stats.frames += 21000;
      }
      await red.waitForLog((out) => /session closed: too many fragments/.test(out.slice(mark)), 5000);
      await assertHealthy('fragments');
    });

    it(
      'ping and pong floods: a peer that does not read is cut ' +
        'off, a rate-limited one gets 1008, pongs are ignored',
      async function () {
        const mark = red.output.length;
        // 1) pings from a client that never reads its pongs: closed as a slow consumer, not buffered
        const flooder = await openHostile('lp');
        flooder._socket.pause();
        const PING = Buffer.alloc(125, 7);
        const rssBefore = rssKb();
        let sent = 0;
        // the kernel holds tens of MiB for a reader that does not read (tcp_rmem) before node-red queues any
        const cap = 160 * 1024 * 1024;
        while (sent < cap && !/session closed: slow consumer/.test(red.logSince(mark)) && !red.exited) {
          for (let i = 0; i < 2048 && flooder.readyState === WebSocket.OPEN; i++) flooder.ping(PING);
          sent += 2048 * PING.length;
          stats.frames += 2048;
          await waitFor(
            () => flooder.bufferedAmount < 2 * 1024 * 1024 || flooder.readyState !== WebSocket.OPEN || red.exited,
            20000,
            'node-red to read the pings',
          );
        }
        if (VERBOSE) console.log(`      ping flood: ${(sent / 1048576).toFixed(1)} MiB of pings sent before the cut`);
        const floodGrowth = rssKb() - rssBefore;
        if (VERBOSE) console.log(`      ping flood: RSS +${(floodGrowth / 1024).toFixed(1)} MiB during the flood`);
        // without the bound every pong stays queued in node-red: RSS grows by about the bytes of pings sent
        assert.ok(
          floodGrowth < 64 * 1024,
          `RSS grew ${(floodGrowth / 1024).toFixed(1)} MiB during a ${(sent / 1048576).toFixed(1)} MiB ping flood`,
        );
        await red.waitForLog((out) => /session closed: slow consumer/.test(out.slice(mark)), 10000);
        flooder.terminate();
        // 2) a ping burst and a pong burst over a rate-limited listener: 1008
        for (const kind of ['ping', 'pong']) {
          const r = await sendToListener(
            'lr',
            (ws) => {
              for (let i = 0; i < 500; i++) ws[kind](Buffer.from(String(i)));
            },
            { expectClose: true },
          );
          assert.deepStrictEqual(r.close, { code: 1008, reason: 'rate limit exceeded' }, kind);
          stats.frames += 500;
        }
        // 3) unsolicited pongs without a rate limit: ignored, the session works
        const r = await sendToListener('lp', (ws) => {
          for (let i = 0; i < 20000; i++) ws.pong(PING);
          ws.send('after the pongs');
        });
        assert.strictEqual(r.echo, 'after the pongs');
        stats.frames += 20001;
        await assertHealthy('ping and pong floods');
      },
    );

    it('odd close codes and reasons are answered with a close, never a crash', async function () {
      const odd = [
        [0],
        [999],
        [1004],
        [1005],
        [1006],
        [1015],
        [1016],
        [2999],
        [5000],
        [65535],
        [1000, Buffer.alloc(123, 0x61)],
        [4999, Buffer.from([0xff, 0xfe])],
        [3000, '€'.repeat(41)],
        [null, Buffer.from([0x03])],
        [null],
      ];
      let i = 0;
      for (const [code, reason] of odd) {
        const key = i++ % 2 ? 'lm' : 'lp';
        const r = await sendToListener(key, (ws) => writeRaw(ws, closeFrame(code, reason)), { expectClose: true });
        assert.ok(typeof r.close.code === 'number', `${code}: closed`);
        stats.frames++;
      }
      // a reserved opcode and an unmasked client frame: protocol errors (1002)
      for (const bytes of [frame(0x3, 'x'), frame(0x1, 'unmasked', { mask: false })]) {
        const r = await sendToListener('lm', (ws) => writeRaw(ws, bytes), { expectClose: true });
        assert.strictEqual(r.close.code, 1002);
        stats.frames++;
      }
      await assertHealthy('odd close frames');
    });

    it('frames at maxPayload are delivered, one byte more is closed with 1009', async function () {
      const at = await sendToListener('lp', (ws) => ws.send('z'.repeat(MAX_PAYLOAD)));
      assert.strictEqual(at.echo.length, MAX_PAYLOAD);
      const json = `{"payload":"${'y'.repeat(MAX_PAYLOAD - 14)}"}`;
      assert.strictEqual(json.length, MAX_PAYLOAD);
      assert.ok((await sendToListener('lm', (ws) => ws.send(json))).echo.includes('yyyy'));
      for (const key of ['lp', 'lm']) {
        const over = await sendToListener(
          key,
          (ws) => ws.send(Buffer.alloc(MAX_PAYLOAD + 1, 0x20), { binary: key === 'lp' }),
          { expectClose: true },
        );
        assert.strictEqual(over.close.code, 1009, key);
      }
      const big = await sendToListener('lp', (ws) => ws.send(Buffer.alloc(8 * MAX_PAYLOAD)), { expectClose: true });
      assert.strictEqual(big.close.code, 1009);
      stats.frames += 5;
      await assertHealthy('maxPayload');
    });

    it('a seeded random mix of 4,000 frames over both modes', async function () {
      const random = prng(SEED);
      const TARGET = 4000;
      const live = { lp: [], lm: [] };
      let tried = 0;
      let reopened = 0;
      const pick = async (key) => {
        const list = live[key];
        for (let i = list.length - 1; i >= 0; i--) if (list[i].readyState !== WebSocket.OPEN) list.splice(i, 1);
        while (list.length < 3) {
          list.push(await openHostile(key, `mix-${key}`));
          reopened++;
        }
        return list[random.int(list.length)];
      };
      while (tried < TARGET) {
        for (let batch = 0; batch < 20 && tried < TARGET; batch++) {
          const key = random() < 0.5 ? 'lp' : 'lm';
          const ws = await pick(key);
          tried += randomFrame(random, ws, { client: true });
        }
        // a ping on every session: its pong (or the session's close) says node-red has read the batch
        const open = [...live.lp, ...live.lm].filter((w) => w.readyState === WebSocket.OPEN);
        await Promise.all(
          open.map(
            (w) =>
              new Promise((resolve) => {
                const done = () => {
                  w.off('pong', done);
                  w.off('close', done);
                  resolve();
                };
                w.on('pong', done);
                w.on('close', done);
                w.ping();
              }),
          ),
        );
        assert.strictEqual(
          red.exited,
          null,
          `node-red exited during the mix after ${tried} frames\n${red.output.slice(-3000)}`,
        );
      }
      stats.frames += tried;
      if (VERBOSE) console.log(`      listener mix: ${tried} frames, ${reopened} sessions`);
      for (const ws of [...live.lp, ...live.lm]) ws.close();
      await assertHealthy('random mix (listeners)');
    });
  });

  // ---- clients: a hostile server ---------------------------------------------------------------

  describe('client (a hostile server)', function () {
    /** Sends on the server side of client `key`; waits for `count` echoes or for the client to close. */
    async function sendToClient(key, send, { expectClose = false, echoes: count = 1 } = {}) {
      const p = peer(key);
      const ws = p.ws;
      assert.ok(ws && ws.readyState === WebSocket.OPEN, `${key} is connected`);
      const before = p.messages.length;
      const closesBefore = p.closes.length;
      send(ws);
      if (expectClose) {
        await waitFor(() => p.closes.length > closesBefore, 15000, `${key} to close`);
        return { close: p.closes[closesBefore] };
      }
      await waitFor(
        () => p.messages.length >= before + count || ws.readyState !== WebSocket.OPEN,
        15000,
        `${key}: echo`,
      );
      return { echoes: p.messages.slice(before) };
    }

    it(
      'the 40 KB frame of nested arrays: echoed in payload mode, ' +
        'closed 1009 in entire-message mode; the client reconnects',
      async function () {
        assert.deepStrictEqual((await sendToClient('c-deep-p', (ws) => ws.send(DEEP_40KB))).echoes, [DEEP_40KB]);
        const openedBefore = peer('c-deep-m').opened;
        const mark = red.output.length;
        const r = await sendToClient('c-deep-m', (ws) => ws.send(DEEP_40KB), { expectClose: true });
        if (r.close.code === 1006)
          await Promise.race([red.exitPromise, new Promise((resolve) => setTimeout(resolve, 1500))]);
        assertAlive('client: deep arrays');
        assert.deepStrictEqual(r.close, { code: 1009, reason: 'message nested too deep' });
        await red.waitForLog((out) => /closed: message nested too deep/.test(out.slice(mark)), 5000);
        stats.frames += 2;
        await assertHealthy('client: deep arrays');
        assert.strictEqual(peer('c-deep-m').opened, openedBefore + 1, 'one reconnect');
      },
    );

    it('wide JSON, huge numbers and strings (1 MiB) reach the flow in both modes', async function () {
      const frames = [
        `{"payload":[${Array.from({ length: 40000 }, (_, i) => i % 10).join(',')}]}`,
        JSON.stringify(Object.fromEntries(Array.from({ length: 8000 }, (_, i) => [`k${i}`, [i]]))),
        `{"payload":[1e400,-1e400,${'9'.repeat(5000)}]}`,
        // Exactly the client's default maxPayload (1 MiB): the largest frame it accepts.
        `{"payload":"${'x'.repeat(1024 * 1024 - '{"payload":""}'.length)}"}`,
        `{"payload":${nest(MAX_DEPTH - 1)},"__proto__":{"polluted":1}}`,
      ];
      assert.strictEqual(Buffer.byteLength(frames[3]), 1024 * 1024);
      for (const key of ['c-wide-p', 'c-wide-m']) {
        const r = await sendToClient(key, (ws) => frames.forEach((f) => ws.send(f)), { echoes: frames.length });
        assert.strictEqual(r.echoes.length, frames.length, key);
        stats.frames += frames.length;
      }
      await assertHealthy('client: wide and huge');
    });

    it('invalid UTF-8 from the server: the client closes with 1007 and reconnects', async function () {
      for (const key of ['c-utf8-p', 'c-utf8-m']) {
        const r = await sendToClient(key, (ws) => ws.send(Buffer.from([0x22, 0xff, 0x22]), { binary: false }), {
          expectClose: true,
        });
        assert.strictEqual(r.close.code, 1007, key);
        stats.frames++;
      }
      await assertHealthy('client: invalid UTF-8');
    });

    it('many tiny fragments from the server: 1,000 make a message, 20,000 are closed', async function () {
      for (const key of ['c-fragments-p', 'c-fragments-m']) {
        const ok = await sendToClient(key, (ws) => {
          for (let i = 0; i < 999; i++) ws.send(i === 0 ? '"' : 'a', { fin: false });
          ws.send('"', { fin: true });
        });
        assert.ok(ok.echoes[0].includes('a'.repeat(998)), key);
        const flood = await sendToClient(
          key,
          (ws) => {
            for (let i = 0; i < 20000; i++) ws.send('b', { fin: false });
          },
          { expectClose: true },
        );
        assert.strictEqual(flood.close.code, 1008, key);
        stats.frames += 21000;
      }
      await assertHealthy('client: fragments');
    });

    it(
      'pong and ping floods from the server: pongs are ' + 'ignored, a ping flood that reads nothing is cut off',
      async function () {
        for (const key of ['c-pings-p', 'c-pings-m']) {
          const pongs = await sendToClient(key, (ws) => {
            for (let i = 0; i < 20000; i++) ws.pong(Buffer.alloc(125));
            ws.send('after the pongs');
          });
          assert.ok(String(pongs.echoes[0]).includes('after the pongs'), key);
          const flood = await sendToClient(
            key,
            (ws) => {
              ws._socket.pause(); // the server reads none of the client's pongs for a while
              for (let i = 0; i < 40000; i++) ws.ping(Buffer.alloc(125, 1));
              setTimeout(() => ws._socket.resume(), 500);
            },
            { expectClose: true },
          );
          assert.ok(typeof flood.close.code === 'number', key);
          stats.frames += 60001;
        }
        await assertHealthy('client: ping floods');
      },
    );

    it('odd close frames from the server are answered with a close, never a crash', async function () {
      const r1 = await sendToClient('c-close-p', (ws) => writeRaw(ws, closeFrame(1005, '', { mask: false })), {
        expectClose: true,
      });
      const r2 = await sendToClient(
        'c-close-m',
        (ws) => writeRaw(ws, closeFrame(4999, Buffer.from([0xc3, 0x28]), { mask: false })),
        { expectClose: true },
      );
      assert.strictEqual(r1.close.code, 1002);
      assert.strictEqual(r2.close.code, 1007);
      stats.frames += 2;
      await assertHealthy('client: odd close frames');
    });

    it('a seeded random mix of 1,000 frames from the server over both modes', async function () {
      const random = prng(SEED ^ 0x9e3779b9);
      const openedBefore = peer('c-mix-p').opened + peer('c-mix-m').opened;
      let tried = 0;
      for (const key of ['c-mix-p', 'c-mix-m']) {
        const ws = peer(key).ws;
        for (let batch = 0; tried < (key.endsWith('-p') ? 500 : 1000); batch++) {
          // batches of 100 with a marker in between: ws's client cuts more than 60 unanswered pings at once
          for (let i = 0; i < 100; i++) tried += randomFrame(random, ws, { client: false });
          const marker = `end of batch ${batch}`;
          ws.send(marker);
          await waitFor(
            () => red.exited || peer(key).messages.some((m) => String(m).includes(marker)),
            15000,
            `${key}: ${marker}`,
          );
          assert.strictEqual(red.exited, null, `node-red exited during the mix\n${red.output.slice(-3000)}`);
        }
      }
      stats.frames += tried;
      await assertHealthy('random mix (clients)');
      assert.strictEqual(
        peer('c-mix-p').opened + peer('c-mix-m').opened,
        openedBefore,
        'no client was closed by the mix',
      );
    });
  });
});

/**
 * Sends one randomly chosen frame (or a short fragmented message) on `ws`; returns the number of
 * frames written. From a client (`client: true`) everything goes, protocol errors included; from
 * the hostile server only what a client must carry on after (a closed client waits for its backoff).
 */
function randomFrame(random, ws, { client }) {
  if (ws.readyState !== WebSocket.OPEN) return 0;
  // weights per kind; from a client about one frame in twelve ends its session
  const weights = {
    text: 20,
    json: 25,
    binary: 12,
    number: 8,
    ping: 8,
    pong: 6,
    fragments: 8,
    brackets: 6,
    ...(client ? { badtext: 2, reserved: 1, badclose: 1, deep: 1 } : {}),
  };
  let roll = random() * Object.values(weights).reduce((a, b) => a + b, 0);
  const kind = Object.keys(weights).find((k) => (roll -= weights[k]) < 0) || 'text';
  const mask = client;
  switch (kind) {
    case 'text':
      ws.send(randomText(random, random.int(300)));
      return 1;
    case 'json':
      ws.send(JSON.stringify(randomJson(random, 1 + random.int(client ? MAX_DEPTH + 8 : MAX_DEPTH - 1))));
      return 1;
    case 'binary':
      ws.send(randomBytes(random, random.int(600)), { binary: true });
      return 1;
    case 'number':
      ws.send(
        random.pick([
          '1e400',
          '-1e400',
          `${'9'.repeat(1 + random.int(4000))}`,
          '-0',
          `0.${'0'.repeat(random.int(500))}1`,
          `{"payload":1e${random.int(999)}}`,
        ]),
      );
      return 1;
    case 'ping':
      ws.ping(randomBytes(random, random.int(126)));
      return 1;
    case 'pong':
      ws.pong(randomBytes(random, random.int(126)));
      return 1;
    case 'fragments': {
      const n = 2 + random.int(30);
      for (let i = 0; i < n; i++) ws.send(randomText(random, random.int(20)), { fin: i === n - 1 });
      return n;
    }
    case 'brackets':
      ws.send(random.pick(['[', '{"a":', '{"payload":[']).repeat(1 + random.int(3000)));
      return 1;
    case 'badtext':
      ws.send(randomBytes(random, 1 + random.int(40)), { binary: false });
      return 1;
    case 'reserved':
      writeRaw(ws, frame(3 + random.int(5), randomBytes(random, random.int(20)), { mask }));
      return 1;
    case 'badclose':
      writeRaw(ws, closeFrame(random.int(65536), randomBytes(random, random.int(124)), { mask }));
      return 1;
    case 'deep':
      ws.send(`{"x":${nest(MAX_DEPTH + 1 + random.int(20000))}}`);
      return 1;
    default:
      throw new Error(kind);
  }
}

function randomBytes(random, n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = random.int(256);
  return b;
}

function randomText(random, n) {
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = random();
    s +=
      r < 0.8
        ? String.fromCharCode(32 + random.int(95))
        : r < 0.95
          ? String.fromCharCode(0x80 + random.int(0x7000))
          : random.pick(['"', '\\', '{', '[', '\u0000', '😀']);
  }
  return s;
}

/** A random JSON value nesting exactly `depth` containers along one path, with random siblings. */
function randomJson(random, depth) {
  let value = random.pick([null, true, 0, -1.5e300, 'leaf', '']);
  for (let d = 0; d < depth; d++) {
    if (random() < 0.5) {
      value = [value, ...Array.from({ length: random.int(3) }, () => random.int(1000))];
    } else {
      const obj = {
        [random.pick(['payload', 'topic', 'a', '_session', '_msgid', 'constructor', 'req', 'res'])]: value,
      };
      if (random() < 0.3) obj.k = randomText(random, random.int(10));
      value = obj;
    }
  }
  return value;
}
