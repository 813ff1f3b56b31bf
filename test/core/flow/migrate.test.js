'use strict';
// The migration aid, on flows shaped as Node-RED 4 exports them (test/fixtures/core-*.json): the
// pure function, the CLI as a child process, and the flows themselves on a real Node-RED runtime
// (core websocket nodes before, websocket-plus after).
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFile } = require('child_process');
const { built } = require('../../helpers/built');
const { migrateFlow, formatReport, TYPE_MAP, MIGRATION_DEFAULTS } = built('core/flow/migrate');
const { parseListenerConfig } = built('core/flow/listener-config');
const H = require('../../helpers/editor-html');

const root = path.join(__dirname, '..', '..', '..');
const fixturesDir = path.join(__dirname, '..', '..', 'fixtures');
const cli = path.join(root, 'bin', 'websocket-plus.js');
const FIXTURES = ['core-echo-export.json', 'core-client-export.json', 'core-userdir-flows.json'];
const CORE_TYPES = Object.keys(TYPE_MAP);

function fixture(name) {
  return JSON.parse(fs.readFileSync(path.join(fixturesDir, name), 'utf8'));
}

function runCli(args, options = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd: options.cwd || root, timeout: 20000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('migrate: core websocket flows -> websocket-plus', function () {
  describe('migrateFlow()', function () {
    for (const name of FIXTURES) {
      describe(name, function () {
        let input;
        let result;
        before(function () {
          input = fixture(name);
          result = migrateFlow(input);
        });

        it('renames every core websocket node and nothing else, keeping ids and order', function () {
          assert.strictEqual(result.flow.length, input.length);
          input.forEach((before, i) => {
            const after = result.flow[i];
            assert.strictEqual(after.id, before.id);
            assert.strictEqual(after.type, TYPE_MAP[before.type] || before.type);
          });
          assert.ok(!result.flow.some((n) => CORE_TYPES.includes(n.type)), 'a core websocket node is left');
          assert.ok(
            input.some((n) => CORE_TYPES.includes(n.type)),
            'fixture has no core websocket node',
          );
        });

        it('keeps every property of every node with its value', function () {
          input.forEach((before, i) => {
            const after = result.flow[i];
            for (const [k, v] of Object.entries(before)) {
              if (k === 'type') continue;
              assert.deepStrictEqual(after[k], v, `${before.id}.${k} changed`);
            }
            if (!TYPE_MAP[before.type])
              assert.deepStrictEqual(after, before, `${before.type} ${before.id} was modified`);
          });
        });

        it('gives migrated nodes every property the editor defines, with safe defaults', function () {
          const html = fs.readFileSync(path.join(root, 'nodes', 'websocket-plus.html'), 'utf8');
          const defs = Object.fromEntries(H.registrations(html).map((r) => [r.type, r.defaults]));
          input.forEach((before, i) => {
            if (!TYPE_MAP[before.type]) return;
            const after = result.flow[i];
            for (const prop of Object.keys(defs[after.type])) {
              assert.ok(Object.prototype.hasOwnProperty.call(after, prop), `${after.type} ${after.id} lacks ${prop}`);
            }
            for (const [prop, value] of Object.entries(MIGRATION_DEFAULTS[after.type])) {
              if (!(prop in before)) assert.deepStrictEqual(after[prop], value, `${after.id}.${prop}`);
            }
          });
          for (const l of result.flow.filter((n) => n.type === 'websocket-plus-listener')) {
            assert.strictEqual(l.authMode, 'hs256', 'a migrated listener must refuse everyone until a secret is set');
            assert.strictEqual(l.scope, 'session', 'replies go to the sender, like core');
            assert.strictEqual(l.tenantFrom, 'claim');
            assert.strictEqual(l.tenantClaim, 'tenant_id');
            assert.strictEqual(l.onExpiry, 'disconnect');
            assert.strictEqual(l.maxPayload, '1048576');
            assert.strictEqual(l.heartbeat, '30');
            assert.strictEqual(l.clockTolerance, '5');
            assert.strictEqual(l.cluster, 'off');
            assert.strictEqual(l.peerProps, '*', 'core forwards every property of an entire-message frame');
          }
          for (const c of result.flow.filter((n) => n.type === 'websocket-plus-client')) {
            assert.strictEqual(c.authMode, 'none', 'core clients sent no token');
            assert.strictEqual(c.peerProps, '*', 'core forwards every property of an entire-message frame');
          }
          for (const n of result.flow.filter((x) => x.type === 'websocket-plus in'))
            assert.strictEqual(n.events, false);
        });

        it('reports each rename and each added property once, and a note per migrated config node', function () {
          const renamed = result.changes.filter((c) => c.kind === 'type');
          assert.strictEqual(renamed.length, input.filter((n) => TYPE_MAP[n.type]).length);
          const added = result.changes.filter((c) => c.kind === 'default');
          let expectedAdded = 0;
          for (const n of input) {
            if (TYPE_MAP[n.type])
              expectedAdded += Object.keys(MIGRATION_DEFAULTS[TYPE_MAP[n.type]]).filter((p) => !(p in n)).length;
          }
          assert.strictEqual(added.length, expectedAdded);
          const keys = added.map((c) => `${c.id}.${c.property}`);
          assert.strictEqual(new Set(keys).size, keys.length, 'a property reported twice');
          const listeners = input.filter((n) => n.type === 'websocket-listener');
          const secretNotes = result.changes.filter((c) => c.kind === 'note' && /Shared secret/.test(c.message));
          assert.deepStrictEqual(secretNotes.map((c) => c.id).sort(), listeners.map((n) => n.id).sort());
          for (const c of result.changes) assert.ok(typeof c.message === 'string' && c.message.includes(c.id));
        });

        it('does not modify its input', function () {
          assert.deepStrictEqual(input, fixture(name));
        });

        it('is idempotent: a migrated flow has nothing left to migrate', function () {
          const again = migrateFlow(result.flow);
          assert.deepStrictEqual(again.flow, result.flow);
          assert.deepStrictEqual(
            again.changes.filter((c) => c.kind !== 'note'),
            [],
          );
        });

        it('produces listeners the runtime accepts once a secret is set, and refuses without one', function () {
          for (const l of result.flow.filter((n) => n.type === 'websocket-plus-listener')) {
            assert.throws(
              () => parseListenerConfig(l, {}),
              (err) => err.code === 'SECRET_MISSING',
            );
            const config = parseListenerConfig(l, { secret: 'a-long-random-secret-0123456789abcdef' });
            assert.strictEqual(config.scope, 'session');
            assert.strictEqual(config.verifier.mode, 'hs256');
            assert.strictEqual(config.wholeMessage, l.wholemsg === 'true');
            assert.strictEqual(config.path, l.path.startsWith('/') ? l.path : `/${l.path}`);
          }
        });
      });
    }

    it('keeps the client TLS link, heartbeat, subprotocols and headers (presets, env vars) unchanged', function () {
      const out = migrateFlow(fixture('core-client-export.json')).flow;
      const c = out.find((n) => n.id === 'f2a6d0c4e8b1a357');
      assert.strictEqual(c.type, 'websocket-plus-client');
      assert.strictEqual(c.path, 'wss://feed.example.com/v2/stream?format=json');
      assert.strictEqual(c.tls, '1c5e9a3d7f2b6e40');
      assert.strictEqual(c.hb, '15');
      assert.strictEqual(c.subprotocol, 'feed.v2, feed.v1');
      assert.deepStrictEqual(c.headers, fixture('core-client-export.json').find((n) => n.id === c.id).headers);
      assert.deepStrictEqual(
        out.find((n) => n.type === 'tls-config'),
        fixture('core-client-export.json').find((n) => n.type === 'tls-config'),
      );
    });

    it('fills in the properties a Node-RED 1.x client lacked', function () {
      const { flow, changes } = migrateFlow(fixture('core-userdir-flows.json'));
      const c = flow.find((n) => n.id === '061728394a5b6c7d');
      // Core's client had no message size limit: a migrated one gets the client default.
      assert.deepStrictEqual(
        [c.hb, c.subprotocol, c.headers, c.authMode, c.maxPayload],
        ['', '', [], 'none', '1048576'],
      );
      const added = changes
        .filter((x) => x.id === c.id && x.kind === 'default')
        .map((x) => x.property)
        .sort();
      assert.deepStrictEqual(added, ['authMode', 'hb', 'headers', 'maxPayload', 'peerProps', 'subprotocol']);
    });

    it('migrates nodes inside subflows, disabled nodes and flow-scoped config nodes', function () {
      const { flow } = migrateFlow(fixture('core-userdir-flows.json'));
      const byId = Object.fromEntries(flow.map((n) => [n.id, n]));
      assert.strictEqual(byId.d3e4f5061728394a.type, 'websocket-plus out');
      assert.strictEqual(byId.d3e4f5061728394a.z, 'c2d3e4f506172839');
      assert.strictEqual(byId['5b6c7d8e9fa0b1c2'].d, true);
      assert.strictEqual(byId['5b6c7d8e9fa0b1c2'].type, 'websocket-plus in');
      assert.strictEqual(byId.f5061728394a5b6c.z, 'b1c2d3e4f5061728');
      assert.strictEqual(byId.f5061728394a5b6c.type, 'websocket-plus-listener');
      assert.strictEqual(byId.e4f5061728394a5b.path, 'ws/legacy');
      assert.strictEqual(byId.e4f5061728394a5b.wholemsg, 'true');
      assert.strictEqual(byId['4a5b6c7d8e9fa0b1'].type, 'subflow:c2d3e4f506172839');
    });

    it('keeps the admin API shape { flows, rev }', function () {
      const input = { rev: 'abc123', flows: fixture('core-echo-export.json') };
      const { flow, changes } = migrateFlow(input);
      assert.strictEqual(flow.rev, 'abc123');
      assert.ok(Array.isArray(flow.flows));
      assert.strictEqual(flow.flows.find((n) => n.id === '2b7e4d9a1c6f3e58').type, 'websocket-plus-listener');
      assert.ok(changes.length > 0);
    });

    it('warns when two listeners end up on the same path, and about /debug/ws', function () {
      const { changes } = migrateFlow([
        { id: 'l1', type: 'websocket-listener', path: '/ws/a', wholemsg: 'false' },
        { id: 'l2', type: 'websocket-listener', path: 'ws/a', wholemsg: 'false' },
        { id: 'l3', type: 'websocket-listener', path: '/x/debug/ws', wholemsg: 'false' },
      ]);
      const notes = changes.filter((c) => c.kind === 'note').map((c) => c.message);
      assert.strictEqual(notes.filter((m) => /used by 2 listeners/.test(m)).length, 2);
      assert.strictEqual(notes.filter((m) => /contains \/debug\/ws/.test(m)).length, 1);
    });

    it('leaves a flow without core websocket nodes alone', function () {
      const flow = [
        { id: 't', type: 'tab', label: 'x' },
        { id: 'n', type: 'inject', z: 't', wires: [[]] },
      ];
      const result = migrateFlow(flow);
      assert.deepStrictEqual(result.flow, flow);
      assert.deepStrictEqual(result.changes, []);
      assert.deepStrictEqual(formatReport(result.changes), ['No core websocket nodes found: nothing to migrate.']);
    });

    it('refuses input that is not a flow, with the reason', function () {
      const cases = [
        [{ nodes: [] }, /expected a JSON array/],
        ['flows', /expected a JSON array/],
        [null, /expected a JSON array/],
        [[1, 2], /every element must be a node object/],
        [[{ id: 'a' }], /element 0 has no "type"/],
        [[{ type: 'websocket in' }], /element 0 \(websocket in\) has no "id"/],
        [{ flows: {} }, /expected a JSON array/],
      ];
      for (const [input, re] of cases) {
        assert.throws(
          () => migrateFlow(input),
          (err) => err.name === 'MigrationError' && err.code === 'FLOW_INVALID' && re.test(err.message),
          JSON.stringify(input),
        );
      }
    });

    it('formats a report with a summary, the defaults and the notes', function () {
      const lines = formatReport(migrateFlow(fixture('core-echo-export.json')).changes);
      assert.strictEqual(lines[0], 'Migrated 3 node(s):');
      assert.ok(lines.includes('  1 x websocket in -> websocket-plus in'));
      assert.ok(lines.includes('  1 x websocket out -> websocket-plus out'));
      assert.ok(lines.includes('  1 x websocket-listener -> websocket-plus-listener'));
      assert.ok(lines.some((l) => /2b7e4d9a1c6f3e58: authMode = "hs256"/.test(l)));
      assert.ok(lines.some((l) => /^ {2}! 2b7e4d9a1c6f3e58: listener "\/ws\/echo" refuses every connection/.test(l)));
    });
  });

  describe('CLI (bin/websocket-plus.js)', function () {
    let dir;
    beforeEach(function () {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsp-migrate-'));
      for (const name of FIXTURES) fs.copyFileSync(path.join(fixturesDir, name), path.join(dir, name));
    });
    afterEach(function () {
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it(
      'writes <name>.websocket-plus.json next to the input, ' + 'leaves the input untouched and prints the report',
      async function () {
        const input = path.join(dir, 'core-echo-export.json');
        const before = fs.readFileSync(input);
        const r = await runCli(['migrate', input]);
        assert.strictEqual(r.code, 0, r.stderr);
        assert.deepStrictEqual(fs.readFileSync(input), before);
        const outFile = path.join(dir, 'core-echo-export.websocket-plus.json');
        const written = JSON.parse(fs.readFileSync(outFile, 'utf8'));
        assert.deepStrictEqual(written, migrateFlow(JSON.parse(before)).flow);
        assert.match(r.stdout, /Migrated 3 node\(s\):/);
        assert.match(r.stdout, /refuses every connection until you set its Shared secret/);
        assert.ok(r.stdout.includes(`Wrote ${outFile}`));
        assert.strictEqual(r.stderr, '');
      },
    );

    it('keeps the file style: compact stays compact, 4-space pretty stays pretty', async function () {
      let r = await runCli(['migrate', 'core-echo-export.json'], { cwd: dir });
      assert.strictEqual(r.code, 0, r.stderr);
      const compact = fs.readFileSync(path.join(dir, 'core-echo-export.websocket-plus.json'), 'utf8');
      assert.strictEqual(compact.split('\n').length, 1);
      r = await runCli(['migrate', 'core-userdir-flows.json'], { cwd: dir });
      assert.strictEqual(r.code, 0, r.stderr);
      const pretty = fs.readFileSync(path.join(dir, 'core-userdir-flows.websocket-plus.json'), 'utf8');
      assert.strictEqual(pretty, `${JSON.stringify(JSON.parse(pretty), null, 4)}\n`);
    });

    it('writes to -o, refuses to overwrite an existing file without --force', async function () {
      const out = path.join(dir, 'out.json');
      let r = await runCli(['migrate', path.join(dir, 'core-client-export.json'), '-o', out]);
      assert.strictEqual(r.code, 0, r.stderr);
      const first = fs.readFileSync(out, 'utf8');
      assert.strictEqual(JSON.parse(first).find((n) => n.id === 'f2a6d0c4e8b1a357').type, 'websocket-plus-client');
      fs.writeFileSync(out, 'keep me');
      r = await runCli(['migrate', path.join(dir, 'core-client-export.json'), '-o', out]);
      assert.strictEqual(r.code, 1);
      assert.match(r.stderr, /already exists; use --force/);
      assert.strictEqual(fs.readFileSync(out, 'utf8'), 'keep me');
      r = await runCli(['migrate', path.join(dir, 'core-client-export.json'), '--output', out, '--force']);
      assert.strictEqual(r.code, 0, r.stderr);
      assert.strictEqual(fs.readFileSync(out, 'utf8'), first);
    });

    it('overwrites the input only with --in-place', async function () {
      const input = path.join(dir, 'core-userdir-flows.json');
      let r = await runCli(['migrate', input, '-o', input]);
      assert.strictEqual(r.code, 2);
      assert.match(r.stderr, /use --in-place/);
      assert.deepStrictEqual(fixture('core-userdir-flows.json'), JSON.parse(fs.readFileSync(input, 'utf8')));
      r = await runCli(['migrate', input, '--in-place']);
      assert.strictEqual(r.code, 0, r.stderr);
      const now = JSON.parse(fs.readFileSync(input, 'utf8'));
      assert.ok(!now.some((n) => CORE_TYPES.includes(n.type)));
      assert.match(r.stdout, /Restart Node-RED/);
      assert.deepStrictEqual(
        fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')),
        [],
      );
    });

    it("--in-place keeps a 0600 file 0600; a new output gets the input's mode", async function () {
      const input = path.join(dir, 'core-userdir-flows.json');
      fs.chmodSync(input, 0o600);
      let r = await runCli(['migrate', input, '--in-place']);
      assert.strictEqual(r.code, 0, r.stderr);
      assert.ok(!JSON.parse(fs.readFileSync(input, 'utf8')).some((n) => CORE_TYPES.includes(n.type)));
      assert.strictEqual((fs.statSync(input).mode & 0o777).toString(8), '600');
      const other = path.join(dir, 'core-client-export.json');
      fs.chmodSync(other, 0o640);
      r = await runCli(['migrate', other]);
      assert.strictEqual(r.code, 0, r.stderr);
      assert.strictEqual(
        (fs.statSync(path.join(dir, 'core-client-export.websocket-plus.json')).mode & 0o777).toString(8),
        '640',
      );
      assert.deepStrictEqual(
        fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')),
        [],
      );
    });

    it('--in-place never writes through a link planted where the temp file goes', function () {
      // The command in this process: its pid is the one a predictable temp name would use.
      const { main } = require(cli);
      const input = path.join(dir, 'core-userdir-flows.json');
      const victim = path.join(dir, 'victim.txt');
      fs.writeFileSync(victim, 'untouched');
      const planted = path.join(dir, `.core-userdir-flows.json.${process.pid}.tmp`);
      fs.symlinkSync(victim, planted);
      const sink = () => {
        let text = '';
        return {
          write: (chunk) => (text += chunk),
          get text() {
            return text;
          },
        };
      };
      const out = sink();
      const err = sink();
      assert.strictEqual(main(['migrate', input, '--in-place'], out, err), 0, err.text);
      assert.strictEqual(fs.readFileSync(victim, 'utf8'), 'untouched');
      assert.ok(fs.lstatSync(planted).isSymbolicLink(), 'the planted link is left alone');
      assert.ok(!fs.lstatSync(input).isSymbolicLink(), 'the flow file is still a file');
      assert.ok(!JSON.parse(fs.readFileSync(input, 'utf8')).some((n) => CORE_TYPES.includes(n.type)));
      assert.deepStrictEqual(
        fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')),
        [path.basename(planted)],
      );
    });

    it('refuses an in-place or --force target that is a symbolic link, and changes nothing', async function () {
      const real = path.join(dir, 'core-userdir-flows.json');
      const link = path.join(dir, 'flows-link.json');
      fs.symlinkSync(real, link);
      const before = fs.readFileSync(real, 'utf8');
      let r = await runCli(['migrate', link, '--in-place']);
      assert.strictEqual(r.code, 1);
      assert.match(r.stderr, /flows-link\.json is a symbolic link; refusing to replace it/);
      assert.strictEqual(fs.readFileSync(real, 'utf8'), before);
      assert.ok(fs.lstatSync(link).isSymbolicLink());
      // The real file is migrated when named.
      r = await runCli(['migrate', real, '--in-place']);
      assert.strictEqual(r.code, 0, r.stderr);
      // -o onto a link (even a dangling one) with --force: refused, the link's target untouched.
      const victim = path.join(dir, 'victim.txt');
      fs.writeFileSync(victim, 'untouched');
      const outLink = path.join(dir, 'out-link.json');
      fs.symlinkSync(victim, outLink);
      r = await runCli(['migrate', path.join(dir, 'core-client-export.json'), '-o', outLink, '--force']);
      assert.strictEqual(r.code, 1);
      assert.match(r.stderr, /is a symbolic link/);
      assert.strictEqual(fs.readFileSync(victim, 'utf8'), 'untouched');
      const dangling = path.join(dir, 'dangling.json');
      fs.symlinkSync(path.join(dir, 'nowhere.json'), dangling);
      r = await runCli(['migrate', path.join(dir, 'core-client-export.json'), '-o', dangling]);
      assert.strictEqual(r.code, 1);
      assert.ok(!fs.existsSync(path.join(dir, 'nowhere.json')));
      assert.deepStrictEqual(
        fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')),
        [],
      );
    });

    it('with -o - writes the flow to stdout and the report to stderr; --dry-run writes nothing', async function () {
      let r = await runCli(['migrate', 'core-echo-export.json', '-o', '-'], { cwd: dir });
      assert.strictEqual(r.code, 0, r.stderr);
      assert.deepStrictEqual(JSON.parse(r.stdout), migrateFlow(fixture('core-echo-export.json')).flow);
      assert.match(r.stderr, /Migrated 3 node\(s\)/);
      const before = fs.readdirSync(dir).sort();
      r = await runCli(['migrate', 'core-echo-export.json', '--dry-run'], { cwd: dir });
      assert.strictEqual(r.code, 0, r.stderr);
      assert.match(r.stdout, /dry run: nothing written/);
      assert.deepStrictEqual(fs.readdirSync(dir).sort(), before);
    });

    it('says so and writes nothing when there is nothing to migrate', async function () {
      const file = path.join(dir, 'plain.json');
      fs.writeFileSync(file, JSON.stringify([{ id: 'a', type: 'inject', wires: [] }]));
      const r = await runCli(['migrate', file]);
      assert.strictEqual(r.code, 0, r.stderr);
      assert.match(r.stdout, /nothing to migrate/);
      assert.ok(!fs.existsSync(path.join(dir, 'plain.websocket-plus.json')));
    });

    it('fails with exit code 1 and a clear message on bad input', async function () {
      fs.writeFileSync(path.join(dir, 'broken.json'), '[{"id": "a", "type": ');
      fs.writeFileSync(path.join(dir, 'object.json'), '{"hello": "world"}');
      fs.writeFileSync(path.join(dir, 'untyped.json'), '[{"id": "a"}]');
      const cases = [
        [['migrate', 'missing.json'], /cannot read missing\.json: no such file/],
        [['migrate', 'broken.json'], /broken\.json is not valid JSON/],
        [['migrate', 'object.json'], /object\.json: not a Node-RED flow: expected a JSON array/],
        [['migrate', 'untyped.json'], /untyped\.json: not a Node-RED flow: element 0 has no "type"/],
        [['migrate', '.'], /cannot read \.: is a directory/],
      ];
      for (const [args, re] of cases) {
        const r = await runCli(args, { cwd: dir });
        assert.strictEqual(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, re);
        assert.strictEqual(r.stdout, '');
      }
      assert.deepStrictEqual(
        fs.readdirSync(dir).filter((f) => f.includes('websocket-plus')),
        [],
      );
    });

    it('fails with exit code 2 and the usage on bad arguments; --help exits 0', async function () {
      const cases = [
        [],
        ['frobnicate', 'x.json'],
        ['migrate'],
        ['migrate', 'a.json', '--bogus'],
        ['migrate', 'a.json', 'b.json'],
        ['migrate', 'a.json', '-o'],
        ['migrate', 'a.json', '--in-place', '-o', 'b.json'],
      ];
      for (const args of cases) {
        const r = await runCli(args, { cwd: dir });
        assert.strictEqual(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.ok(r.stderr.length > 0);
      }
      const help = await runCli(['--help']);
      assert.strictEqual(help.code, 0);
      assert.match(help.stdout, /Usage: node-red-contrib-websocket-plus migrate <flows\.json>/);
    });
  });

  describe('on a real Node-RED runtime', function () {
    const red = require('../../helpers/red');
    const { connect, waitForMessages, closeAll } = require('../../helpers/ws-client');
    const { signHS256 } = require('../../helpers/tokens');
    const coreWebsocket = require('@node-red/nodes/core/network/22-websocket.js');
    const coreFunction = require('@node-red/nodes/core/function/10-function.js');
    const SECRET = 'migrated-listener-secret-0123456789abcdef';

    // The echo export with a tab, without its debug node (the test helper has no editor comms).
    function echoFlow(nodes) {
      const tab = { id: 'c3a9d1e2f4b50607', type: 'tab', label: 'echo' };
      return [
        tab,
        ...nodes
          .filter((n) => n.type !== 'debug')
          .map((n) => (n.wires ? { ...n, wires: n.wires.map((w) => w.filter((id) => id !== '1a6c3e9f2d8b5a47')) } : n)),
      ];
    }

    before(() => red.helper.startServer());
    after(() => red.helper.stopServer());
    afterEach(() => red.helper.unload());

    it(
      'the core flow echoes in upper case on core nodes; ' + 'migrated, it does the same for a verified client only',
      async function () {
        const sockets = [];
        try {
          await new Promise((resolve, reject) =>
            red.helper.load([coreWebsocket, coreFunction], echoFlow(fixture('core-echo-export.json')), (err) =>
              err ? reject(err) : resolve(),
            ),
          );
          const core = await connect(red.wsUrl('/ws/echo'));
          sockets.push(core.ws);
          assert.ok(core.opened, 'core listener did not accept the connection');
          core.ws.send('hello core');
          assert.deepStrictEqual(await waitForMessages(core.ws, 1), ['HELLO CORE']);
          closeAll(sockets);
          await red.helper.unload();

          const migrated = migrateFlow(echoFlow(fixture('core-echo-export.json'))).flow;
          await red.load(migrated, { '2b7e4d9a1c6f3e58': { secret: SECRET } }, [coreFunction]);
          const anonymous = await connect(red.wsUrl('/ws/echo'));
          sockets.push(anonymous.ws);
          assert.strictEqual(anonymous.status, 401, 'a migrated listener must refuse a client without a token');
          const token = await signHS256(SECRET, { tenant_id: 'acme', sub: 'alice' });
          const a = await connect(red.wsUrl('/ws/echo', `token=${token}`));
          const b = await connect(red.wsUrl('/ws/echo', `token=${token}`));
          sockets.push(a.ws, b.ws);
          assert.ok(a.opened && b.opened);
          a.ws.send('hello plus');
          assert.deepStrictEqual(await waitForMessages(a.ws, 1), ['HELLO PLUS']);
          // Session scope: the other connection of the same tenant does not get the reply (core semantics).
          await new Promise((resolve) => setTimeout(resolve, 200));
          assert.deepStrictEqual(b.ws.messages, []);
        } finally {
          closeAll(sockets);
        }
      },
    );

    it('a migrated listener without a secret refuses every client (fail closed)', async function () {
      const migrated = migrateFlow(echoFlow(fixture('core-echo-export.json'))).flow;
      await red.load(migrated, {}, [coreFunction]);
      const token = await signHS256('anything-at-all-0123456789abcdef', { tenant_id: 'acme' });
      // Refused with an HTTP status, or left unanswered until the client gives up: never opened.
      let r;
      try {
        r = await connect(red.wsUrl('/ws/echo', `token=${token}`), { ws: { handshakeTimeout: 1500 } });
      } catch (err) {
        r = { opened: false, error: err };
      }
      try {
        assert.notStrictEqual(r.opened, true, 'connection accepted by a listener with no secret');
        assert.ok(r.error || r.status >= 400, `expected a refusal, got ${r.status}`);
      } finally {
        closeAll([r.ws]);
      }
    });
  });
});
