'use strict';
// Static checks of what the Node-RED editor loads from the built package (nodes/): the four type
// registrations, their templates, the message catalogues in every language, the help and the icons.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const H = require('../helpers/editor-html');
const { built: loadBuilt } = require('../helpers/built');
const { LISTENER_DEFAULTS, CLIENT_DEFAULTS } = loadBuilt('core/flow/defaults');

const built = path.join(H.root, 'nodes');
const htmlFile = path.join(built, 'websocket-plus.html');

describe('editor html (built nodes/websocket-plus.html)', function () {
  let html;
  let regs;
  const byType = {};
  const catalogues = {};

  before(function () {
    assert.ok(fs.existsSync(htmlFile), 'nodes/websocket-plus.html missing: run npm run build');
    html = fs.readFileSync(htmlFile, 'utf8');
    regs = H.registrations(html);
    for (const r of regs) byType[r.type] = r;
    for (const lang of H.LANGUAGES) catalogues[lang] = H.readCatalogue(built, lang);
  });

  describe('registrations', function () {
    it('registers each type exactly once, and nothing else', function () {
      const types = regs.map((r) => r.type).sort();
      assert.deepStrictEqual(types, H.TYPES.slice().sort());
    });

    it('defines every type inline (what node-red-dev and the flow library read)', function () {
      for (const r of regs) {
        assert.ok(r.inlineDef, `${r.type}: definition is not an object literal`);
        for (const prop of ['category', 'inputs', 'outputs']) {
          assert.ok(prop in r.props && typeof r.props[prop] !== 'object', `${r.type}: ${prop} must be a literal`);
        }
        assert.ok(r.defaults, `${r.type}: defaults must be an object literal`);
      }
    });

    it('puts ws.in+ / ws.out+ in network and the config nodes in config', function () {
      assert.strictEqual(byType['websocket-plus in'].props.category, 'network');
      assert.strictEqual(byType['websocket-plus out'].props.category, 'network');
      assert.strictEqual(byType['websocket-plus-listener'].props.category, 'config');
      assert.strictEqual(byType['websocket-plus-client'].props.category, 'config');
    });

    it('labels the palette ws.in+ and ws.out+, with core websocket colour and ports', function () {
      const inDef = byType['websocket-plus in'].props;
      const outDef = byType['websocket-plus out'].props;
      assert.strictEqual(inDef.paletteLabel, 'ws.in+');
      assert.strictEqual(outDef.paletteLabel, 'ws.out+');
      assert.strictEqual(inDef.color, 'rgb(215, 215, 160)');
      assert.strictEqual(outDef.color, 'rgb(215, 215, 160)');
      assert.deepStrictEqual([inDef.inputs, inDef.outputs], [0, 1]);
      assert.deepStrictEqual([outDef.inputs, outDef.outputs], [1, 0]);
      assert.strictEqual(outDef.align, 'right');
    });

    it('has the listener properties and defaults of the flow JSON contract', function () {
      const d = byType['websocket-plus-listener'].defaults;
      // The values live in core (LISTENER_DEFAULTS); the ones that decide safety are pinned here too.
      const expected = LISTENER_DEFAULTS;
      assert.deepStrictEqual(
        [expected.authMode, expected.maxPayload, expected.scope, expected.peerProps],
        ['hs256', '1048576', 'tenant', '*'],
      );
      assert.deepStrictEqual(Object.keys(d).sort(), Object.keys(expected).sort());
      for (const [k, v] of Object.entries(expected)) assert.strictEqual(d[k].value, v, `listener ${k}`);
      assert.strictEqual(d.path.required, true);
    });

    it('has the client properties and defaults of the flow JSON contract', function () {
      const d = byType['websocket-plus-client'].defaults;
      assert.deepStrictEqual(Object.keys(d).sort(), Object.keys(CLIENT_DEFAULTS).sort());
      assert.deepStrictEqual(Object.keys(d).sort(), [
        'authMode',
        'hb',
        'headers',
        'maxPayload',
        'path',
        'peerProps',
        'subprotocol',
        'tls',
        'wholemsg',
      ]);
      assert.strictEqual(d.maxPayload.value, CLIENT_DEFAULTS.maxPayload);
      assert.strictEqual(d.maxPayload.value, '1048576');
      assert.strictEqual(d.authMode.value, 'jwt');
      assert.strictEqual(d.peerProps.value, '*');
      assert.strictEqual(d.wholemsg.value, 'false');
      assert.deepStrictEqual(d.headers.value, []);
      assert.strictEqual(d.tls.type, 'tls-config');
      assert.strictEqual(d.tls.required, false);
      assert.strictEqual(d.path.required, true);
    });

    it('links ws.in+ / ws.out+ to a listener or a client, like core', function () {
      for (const t of ['websocket-plus in', 'websocket-plus out']) {
        const d = byType[t].defaults;
        assert.strictEqual(d.server.type, 'websocket-plus-listener', t);
        assert.strictEqual(d.client.type, 'websocket-plus-client', t);
        assert.ok(d.server.hasValidate && d.client.hasValidate, `${t}: server/client need validators`);
        assert.strictEqual(d.name.value, '');
      }
      assert.strictEqual(byType['websocket-plus in'].defaults.events.value, false);
      assert.ok(!('events' in byType['websocket-plus out'].defaults));
    });

    it('has ws.control+ in network, with a name and a listener or client, one input and one output', function () {
      const def = byType['websocket-plus control'];
      assert.strictEqual(def.props.category, 'network');
      assert.strictEqual(def.props.paletteLabel, 'ws.control+');
      assert.strictEqual(def.props.color, 'rgb(215, 215, 160)');
      assert.deepStrictEqual([def.props.inputs, def.props.outputs], [1, 1]);
      assert.deepStrictEqual(Object.keys(def.defaults).sort(), ['client', 'name', 'server']);
      assert.strictEqual(def.defaults.name.value, '');
      assert.strictEqual(def.defaults.server.type, 'websocket-plus-listener');
      assert.strictEqual(def.defaults.client.type, 'websocket-plus-client');
      assert.ok(def.defaults.server.hasValidate && def.defaults.client.hasValidate, 'server/client need validators');
      // An icon of the package's own, present in the build.
      assert.ok(fs.existsSync(path.join(built, 'icons', def.props.icon)), def.props.icon);
      assert.match(html, /W\.endpointLabel\(this, "ws\.control\+"\)/);
      for (const lang of H.LANGUAGES) {
        for (const key of [
          'tip',
          'status.listed',
          'status.counted',
          'status.closed',
          'status.reconnecting',
          'errors.action-unknown',
          'errors.selector-missing',
          'errors.selector-invalid',
          'errors.code-invalid',
          'errors.reason-invalid',
          'errors.target-missing',
        ]) {
          assert.ok(
            typeof H.lookup(catalogues[lang], `websocket-plus.control.${key}`) === 'string',
            `${lang}: control.${key}`,
          );
        }
      }
    });

    it('keeps secrets in password credentials only', function () {
      assert.deepStrictEqual(byType['websocket-plus-listener'].credentials, {
        secret: { type: 'password', hasValidate: false, hasLabel: false },
        redisUrl: { type: 'password', hasValidate: false, hasLabel: false },
        // a user name, a text credential as core's MQTT broker user
        sentinelUsername: { type: 'text', hasValidate: false, hasLabel: false },
        sentinelPassword: { type: 'password', hasValidate: false, hasLabel: false },
      });
      assert.deepStrictEqual(byType['websocket-plus-client'].credentials, {
        token: { type: 'password', hasValidate: false, hasLabel: false },
      });
      for (const t of H.TYPES) {
        for (const secretName of ['secret', 'token', 'redisUrl', 'sentinelUsername', 'sentinelPassword']) {
          assert.ok(!(secretName in byType[t].defaults), `${t}: ${secretName} must not be a flow property`);
        }
      }
    });

    it('validates the fields the issue names (path, URL, JWKS URI, numbers)', function () {
      const l = byType['websocket-plus-listener'].defaults;
      for (const k of [
        'path',
        'peerProps',
        'jwksUri',
        'publicKey',
        'tenantClaim',
        'tenantId',
        'sentinelName',
        'sessionTimeout',
        'rateLimit',
        'maxConnections',
        'maxPayload',
        'origins',
        'heartbeat',
        'clockTolerance',
      ]) {
        assert.ok(l[k].hasValidate, `listener ${k} has no validator`);
        assert.ok(l[k].hasLabel, `listener ${k} has no label (validator messages name the field)`);
      }
      const c = byType['websocket-plus-client'].defaults;
      for (const k of ['path', 'hb', 'subprotocol', 'peerProps'])
        assert.ok(c[k].hasValidate, `client ${k} has no validator`);
    });

    it('uses its own icons, present in the build as white-on-transparent 40x60 SVGs', function () {
      const icons = [byType['websocket-plus in'].props.icon, byType['websocket-plus out'].props.icon];
      assert.deepStrictEqual(icons, ['websocket-plus-in.svg', 'websocket-plus-out.svg']);
      const coreIcons = fs.readdirSync(path.join(H.root, 'node_modules', '@node-red', 'nodes', 'icons'));
      for (const icon of icons) {
        assert.ok(!coreIcons.includes(icon), `${icon} clashes with a core icon name`);
        const svg = fs.readFileSync(path.join(built, 'icons', icon), 'utf8');
        assert.match(svg, /<svg\b[^>]*viewBox="0 0 40 60"/);
        const colours = [...svg.matchAll(/(?:fill|stroke)="([^"]*)"/g)].map((m) => m[1].toLowerCase());
        assert.ok(colours.length > 0);
        for (const c of colours)
          assert.ok(['#fff', '#ffffff', 'white', 'none'].includes(c), `${icon}: colour ${c} is not white`);
        assert.ok(!/<(rect|path|circle|ellipse)\b[^>]*fill="(?!none|#fff)/i.test(svg), `${icon}: has a background`);
      }
    });
  });

  describe('templates', function () {
    it('has exactly one edit template per type', function () {
      const names = H.templates(html)
        .map((t) => t.name)
        .sort();
      assert.deepStrictEqual(names, H.TYPES.slice().sort());
    });

    it('has an input for every property and credential, and no input for an unknown property', function () {
      const extraIds = {
        'websocket-plus in': ['mode'],
        'websocket-plus out': ['mode'],
        'websocket-plus control': ['mode'],
        'websocket-plus-client': ['hb-cb', 'headers-container'],
        'websocket-plus-listener': [],
      };
      for (const t of H.templates(html)) {
        const reg = byType[t.name];
        const prefix = reg.props.category === 'config' ? 'node-config-input-' : 'node-input-';
        const ids = [...t.body.matchAll(/\bid="([^"]+)"/g)]
          .map((m) => m[1])
          .filter((id) => id.startsWith(prefix))
          .map((id) => id.slice(prefix.length));
        const props = [...Object.keys(reg.defaults), ...Object.keys(reg.credentials || {})];
        for (const p of props) {
          if (t.name === 'websocket-plus-client' && p === 'headers') continue; // an editable list, saved in oneditsave
          assert.ok(ids.includes(p), `${t.name}: no #${prefix}${p}`);
        }
        for (const id of ids)
          assert.ok(
            props.includes(id) || extraIds[t.name].includes(id),
            `${t.name}: #${prefix}${id} is not a property`,
          );
        assert.strictEqual(new Set(ids).size, ids.length, `${t.name}: duplicate ids`);
      }
    });

    it('uses password inputs for credentials', function () {
      const tpl = Object.fromEntries(H.templates(html).map((t) => [t.name, t.body]));
      assert.match(tpl['websocket-plus-listener'], /<input type="password" id="node-config-input-secret"/);
      assert.match(tpl['websocket-plus-listener'], /<input type="password" id="node-config-input-redisUrl"/);
      assert.match(tpl['websocket-plus-client'], /<input type="password" id="node-config-input-token"/);
    });

    it('offers exactly the documented choices in each select', function () {
      const tpl = Object.fromEntries(H.templates(html).map((t) => [t.name, t.body]));
      const options = (body, id) => {
        const m = new RegExp(`<select id="${id}">([\\s\\S]*?)</select>`).exec(body);
        assert.ok(m, `select #${id} missing`);
        return [...m[1].matchAll(/<option value="([^"]*)"/g)].map((o) => o[1]);
      };
      const l = tpl['websocket-plus-listener'];
      assert.deepStrictEqual(options(l, 'node-config-input-authMode'), [
        'none',
        'hs256',
        'jwks',
        'publickey',
        'custom',
      ]);
      assert.deepStrictEqual(options(l, 'node-config-input-tenantFrom'), ['claim', 'static']);
      assert.deepStrictEqual(options(l, 'node-config-input-scope'), ['session', 'tenant', 'global']);
      assert.deepStrictEqual(options(l, 'node-config-input-onExpiry'), ['disconnect', 'allow']);
      assert.deepStrictEqual(options(l, 'node-config-input-cluster'), [
        'off',
        'redis',
        'redis-cluster',
        'redis-sentinel',
      ]);
      assert.deepStrictEqual(options(l, 'node-config-input-wholemsg'), ['false', 'true']);
      assert.deepStrictEqual(options(tpl['websocket-plus-client'], 'node-config-input-authMode'), ['jwt', 'none']);
      for (const t of ['websocket-plus in', 'websocket-plus out', 'websocket-plus control'])
        assert.deepStrictEqual(options(tpl[t], 'node-input-mode'), ['server', 'client']);
    });

    it('has the listener sections, warnings and mode-dependent rows the browser test drives', function () {
      const l = H.templates(html).find((t) => t.name === 'websocket-plus-listener').body;
      const sections = [...l.matchAll(/data-i18n="websocket-plus\.section\.(\w+)"/g)].map((m) => m[1]);
      assert.deepStrictEqual(sections, ['connection', 'security', 'tenant', 'advanced', 'cluster']);
      for (const marker of [
        'id="wsp-warning-none"',
        'id="wsp-warning-global"',
        'id="wsp-warning-allow"',
        'wsp-row-secret',
        'wsp-row-jwksUri',
        'wsp-row-publicKey',
        'wsp-row-tenantClaim',
        'wsp-row-tenantId',
        'wsp-row-redisUrl',
        'wsp-row-redisUrlTip',
        'wsp-row-sentinelName',
        'wsp-row-clusterPrefix',
      ]) {
        assert.ok(l.includes(marker), `listener template lacks ${marker}`);
      }
      // The secret row is shown for hs256 only, the JWKS URI for jwks only, the key for publickey only.
      assert.match(html, /\.wsp-row-secret"\)\.toggle\(mode === "hs256"\)/);
      assert.match(html, /\.wsp-row-jwksUri"\)\.toggle\(mode === "jwks"\)/);
      assert.match(html, /\.wsp-row-publicKey"\)\.toggle\(mode === "publickey"\)/);
      assert.match(html, /#wsp-warning-none"\)\.toggle\(mode === "none"\)/);
      assert.match(html, /#wsp-warning-global"\)\.toggle\(\$\("#node-config-input-scope"\)\.val\(\) === "global"\)/);
    });

    it('marks "Allow stale session" as unsafe in every language', function () {
      for (const lang of H.LANGUAGES) {
        const text = H.lookup(catalogues[lang], 'websocket-plus.onExpiry.allow');
        assert.match(text, /\(.+\)/, `${lang}: ${text}`);
        assert.notStrictEqual(text, H.lookup(catalogues['en-US'], 'websocket-plus.onExpiry.disconnect'));
      }
    });
  });

  describe('message catalogues', function () {
    it('defines every data-i18n key of the templates in en-US, de and ja', function () {
      const keys = H.templateKeys(html);
      assert.ok(keys.length > 80, `only ${keys.length} data-i18n keys found`);
      for (const key of keys) {
        assert.ok(!key.includes(':'), `${key}: use our own catalogue, not another namespace`);
        for (const lang of H.LANGUAGES) {
          const v = H.lookup(catalogues[lang], key);
          assert.ok(typeof v === 'string' && v.trim() !== '', `${lang}: data-i18n key ${key} missing`);
        }
      }
    });

    it('defines every i18n(...) key of the scripts in en-US, de and ja, and uses no computed keys', function () {
      const { keys, dynamic, redUnderscoreCalls } = H.scriptKeys(html);
      assert.deepStrictEqual(dynamic, [], 'translation keys must be string literals');
      assert.strictEqual(redUnderscoreCalls, 1, 'RED._ is only called by the i18n() wrapper (namespaced)');
      assert.ok(keys.length > 20, `only ${keys.length} script keys found`);
      for (const key of keys) {
        for (const lang of H.LANGUAGES) {
          const v = H.lookup(catalogues[lang], key);
          assert.ok(typeof v === 'string' && v.trim() !== '', `${lang}: i18n key ${key} missing`);
        }
      }
    });

    it('translates into de and ja exactly the keys of en-US, with the same placeholders', function () {
      const en = H.flatten(catalogues['en-US']);
      for (const lang of ['de', 'ja']) {
        const other = H.flatten(catalogues[lang]);
        assert.deepStrictEqual(Object.keys(other).sort(), Object.keys(en).sort(), `${lang}: keys differ from en-US`);
        for (const [key, value] of Object.entries(en)) {
          const placeholders = (s) => [...String(s).matchAll(/__(\w+)__/g)].map((m) => m[1]).sort();
          assert.deepStrictEqual(placeholders(other[key]), placeholders(value), `${lang}: ${key} placeholders`);
          assert.ok(typeof other[key] === 'string' && other[key].trim() !== '', `${lang}: ${key} empty`);
        }
      }
    });

    it('uses Node-RED interpolation (__name__), never {{name}}', function () {
      for (const lang of H.LANGUAGES) {
        for (const [key, value] of Object.entries(H.flatten(catalogues[lang]))) {
          assert.ok(!/\{\{/.test(value), `${lang}: ${key} uses {{ }}, which Node-RED does not interpolate`);
        }
      }
    });

    it('has the status and error texts the runtime uses', function () {
      const required = {
        'websocket-plus.status.connected': ['count'],
        'websocket-plus.status.disconnected': [],
        'websocket-plus.status.connecting': [],
        'websocket-plus.status.error': [],
        'websocket-plus.status.refused': ['status'],
        'websocket-plus.status.degraded': ['count'],
        'websocket-plus.status.disconnected-code': ['code'],
        'websocket-plus.warnings.short-secret': ['bytes'],
      };
      // Texts the runtime completes with " (detail)" carry no placeholder of their own.
      for (const k of [
        'path-conflict',
        'path-forbidden',
        'path-invalid',
        'missing-conf',
        'secret-missing',
        'jwks-uri-invalid',
        'public-key-invalid',
        'custom-verifier-missing',
        'tenant-missing',
        'no-session',
        'session-closed',
        'url-invalid',
        'server-missing',
        'cluster-unavailable',
        'option-invalid',
        'not-connected',
        'token-missing',
      ]) {
        required[`websocket-plus.errors.${k}`] = [];
      }
      for (const lang of H.LANGUAGES) {
        for (const [key, params] of Object.entries(required)) {
          const v = H.lookup(catalogues[lang], key);
          assert.ok(typeof v === 'string' && v !== '', `${lang}: ${key} missing`);
          for (const p of params) assert.ok(v.includes(`__${p}__`), `${lang}: ${key} lacks __${p}__`);
        }
      }
      assert.strictEqual(H.lookup(catalogues['en-US'], 'websocket-plus.status.connected'), 'connected __count__');
      assert.strictEqual(
        H.lookup(catalogues['en-US'], 'websocket-plus.errors.no-session'),
        'message has no known _session: not sent',
      );
    });

    it('has every websocket-plus.* key the runtime source uses', function () {
      const srcDir = path.join(H.root, 'src');
      const files = fs
        .readdirSync(srcDir, { recursive: true })
        .filter((f) => f.endsWith('.ts'))
        .map((f) => path.join(srcDir, f));
      const used = new Set();
      for (const f of files) {
        for (const m of fs.readFileSync(f, 'utf8').matchAll(/['"`](websocket-plus\.[\w-]+\.[\w.-]*[\w-])['"`]/g))
          used.add(m[1]);
      }
      assert.ok(used.size > 0, 'no catalogue keys found in src/');
      for (const key of used) {
        for (const lang of H.LANGUAGES)
          assert.ok(typeof H.lookup(catalogues[lang], key) === 'string', `${lang}: ${key} (used in src/) missing`);
      }
    });
  });

  describe('peerProps (what a peer may set in entire-message mode)', function () {
    const CONFIG_TYPES = ['websocket-plus-listener', 'websocket-plus-client'];
    const body = (type) => H.templates(html).find((t) => t.name === type).body;

    it(
      'is a listener and client property, default "*" ' + '(every property, as before), validated and labelled',
      function () {
        for (const t of CONFIG_TYPES) {
          const d = byType[t].defaults.peerProps;
          assert.ok(d, `${t}: no peerProps property`);
          assert.strictEqual(d.value, '*', `${t}: default`);
          assert.ok(d.hasValidate && d.hasLabel, `${t}: peerProps needs a validator and a label`);
        }
      },
    );

    it('sits right after Send/Receive, followed by its warning, in both dialogs', function () {
      for (const t of CONFIG_TYPES) {
        const b = body(t);
        const select = b.indexOf('<select id="node-config-input-wholemsg">');
        const field = b.indexOf('<input type="text" id="node-config-input-peerProps"');
        const warning = b.indexOf('id="wsp-warning-peerProps"');
        assert.ok(
          select !== -1 && field > select && warning > field,
          `${t}: wholemsg, peerProps, warning in this order`,
        );
        // Nothing but the end of the Send/Receive row stands between the select and the peerProps row.
        assert.match(
          b.slice(select, field),
          new RegExp(
            /^<select id="node-config-input-wholemsg">[\s\S]*?<\/select>\s*<\/div>\s*/.source +
              /<div class="form-row wsp-row-peerProps">\s*<label for="node-config-input-peerProps">/.source,
          ),
        );
        assert.match(
          b,
          new RegExp(
            /<div class="form-tips wsp-warning" id="wsp-warning-peerProps">\s*/.source +
              /<i class="fa fa-exclamation-triangle"><\/i> /.source +
              /<span data-i18n="websocket-plus\.warnings\.peerProps"><\/span>/.source,
          ),
        );
        assert.match(b, /data-i18n="websocket-plus\.label\.peerProps"/);
        assert.match(b, /data-i18n="\[html\]websocket-plus\.tip\.peerProps"/);
      }
    });

    it('shows the row in entire-message mode only and the warning while the value is "*"', function () {
      // Both dialogs call the shared refresh, wired to Send/Receive and to the field itself.
      assert.strictEqual((html.match(/W\.peerPropsPrepare\(\);/g) || []).length, 2);
      assert.match(html, /var whole = \$\("#node-config-input-wholemsg"\)\.val\(\) === "true";/);
      assert.match(html, /\$\("\.wsp-row-peerProps"\)\.toggle\(whole\);/);
      assert.match(html, /\$\("#wsp-warning-peerProps"\)\.toggle\(whole && \(value === "\*" \|\| value === ""\)\);/);
      assert.match(html, /\$\("#node-config-input-peerProps"\)\.on\("change keyup input", peerPropsRefresh\);/);
    });

    it('warns in every language, naming the control properties a peer could set', function () {
      for (const lang of H.LANGUAGES) {
        const warning = H.lookup(catalogues[lang], 'websocket-plus.warnings.peerProps');
        for (const p of [
          'msg.url',
          'msg.method',
          'msg.headers',
          'msg.filename',
          'msg.reset',
          'msg.delay',
          'payload,topic',
        ]) {
          assert.ok(warning.includes(p), `${lang}: warning lacks ${p}`);
        }
        const tip = H.lookup(catalogues[lang], 'websocket-plus.tip.peerProps');
        for (const p of ['_session', '_msgid', '__proto__']) assert.ok(tip.includes(p), `${lang}: tip lacks ${p}`);
        assert.ok(H.lookup(catalogues[lang], 'websocket-plus.errors.peerprops-reserved').includes('__name__'), lang);
      }
    });

    it('the editor validator accepts and refuses exactly what the runtime does', function () {
      // The validator as the built file has it.
      const noDialog = () => ({ length: 0 }); // validation of a stored node: no dialog is open
      const i18n = (key, opts) => (opts ? `${key}:${opts.name}` : key);
      const validate = H.editorValidator(html, 'validatePeerProps', noDialog, i18n);
      const { parsePeerProps } = loadBuilt('core/flow/peer-props');
      const runtimeAccepts = (v) => {
        try {
          parsePeerProps(v);
          return true;
        } catch {
          return false;
        }
      };
      const cases = [
        '*',
        ' * ',
        '',
        '  ',
        'payload',
        'payload,topic',
        ' payload , topic ',
        '$a,_b,c1',
        'payload,',
        ',payload',
        'payload,,topic',
        'payload,*',
        'a.b',
        'pay load',
        '1st',
        'pay-load',
        'päyload',
        '__proto__',
        'payload,_session',
        '_msgid',
        'constructor',
        'toString',
        'prototype',
      ];
      for (const v of cases) {
        const editor = validate.call({ wholemsg: 'true' }, v);
        assert.strictEqual(editor === true, runtimeAccepts(v), `${JSON.stringify(v)}: editor says ${editor}`);
        assert.strictEqual(
          validate.call({ wholemsg: 'false' }, v),
          true,
          `${JSON.stringify(v)}: payload mode does not use the field`,
        );
      }
      assert.strictEqual(
        validate.call({ wholemsg: 'true' }, '__proto__'),
        'websocket-plus.errors.peerprops-reserved:__proto__',
      );
      assert.strictEqual(validate.call({ wholemsg: 'true' }, 'a.b'), 'websocket-plus.errors.peerprops-invalid');
      // Nodes saved before the property existed have none: valid, and read as "*" by both.
      assert.strictEqual(validate.call({ wholemsg: 'true' }, ''), true);
      assert.strictEqual(validate.call({ wholemsg: 'true' }, undefined), true);
      assert.match(
        html,
        /if \(asText\(field\.val\(\)\) === ""\) \{ field\.val\("\*"\); \}/,
        'the dialog shows "*" for a node without the property',
      );
    });
  });

  describe('cluster topology (Redis single node, Redis Cluster, Redis Sentinel)', function () {
    const body = () => H.templates(html).find((t) => t.name === 'websocket-plus-listener').body;

    it('stores the Sentinel master name as a flow property, right after Cluster; the URL stays a credential', function () {
      const d = byType['websocket-plus-listener'].defaults;
      const keys = Object.keys(d);
      assert.strictEqual(keys[keys.indexOf('cluster') + 1], 'sentinelName');
      assert.strictEqual(d.sentinelName.value, '');
      assert.strictEqual(d.cluster.value, 'off');
      assert.ok(!('sentinelName' in byType['websocket-plus-listener'].credentials));
      assert.ok(!('redisUrl' in d));
      // the rows in the dialog: Cluster, Redis URL, the URL tips, the master name, the prefix
      const b = body();
      const at = (marker) => {
        const i = b.indexOf(marker);
        assert.ok(i !== -1, marker);
        return i;
      };
      const order = [
        'id="node-config-input-cluster"',
        'id="node-config-input-redisUrl"',
        'id="wsp-tip-redisUrl-single"',
        'id="wsp-tip-redisUrl-cluster"',
        'id="wsp-tip-redisUrl-sentinel"',
        'id="node-config-input-sentinelName"',
        'id="node-config-input-clusterPrefix"',
      ].map(at);
      assert.deepStrictEqual(
        order,
        order.slice().sort((a, b) => a - b),
      );
      assert.match(b, /<input type="text" id="node-config-input-sentinelName"/);
    });

    it('shows the URL rows for every Redis topology, the master name for Sentinel only, one URL tip each', function () {
      assert.match(html, /var redis = cluster !== "off";/);
      assert.match(
        html,
        /\$\("\.wsp-row-redisUrl, \.wsp-row-redisUrlTip, \.wsp-row-clusterPrefix, \.wsp-row-clusterTip"\)\.toggle\(redis\);/,
      );
      assert.match(html, /\$\("\.wsp-row-sentinelName"\)\.toggle\(cluster === "redis-sentinel"\);/);
      assert.match(html, /\$\("#wsp-tip-redisUrl-single"\)\.toggle\(cluster === "redis"\);/);
      assert.match(html, /\$\("#wsp-tip-redisUrl-cluster"\)\.toggle\(cluster === "redis-cluster"\);/);
      assert.match(html, /\$\("#wsp-tip-redisUrl-sentinel"\)\.toggle\(cluster === "redis-sentinel"\);/);
      // the master name is checked again when the topology changes
      assert.match(html, /#node-config-input-sentinelName"\)\.trigger\("change"\)/);
    });

    it("asks for the Sentinels' own user and password, as credentials, right after the master name, for Sentinel only", function () {
      const reg = byType['websocket-plus-listener'];
      assert.strictEqual(reg.credentials.sentinelUsername.type, 'text');
      assert.strictEqual(reg.credentials.sentinelPassword.type, 'password');
      assert.ok(!('sentinelUsername' in reg.defaults) && !('sentinelPassword' in reg.defaults));
      const b = body();
      const order = [
        'id="node-config-input-sentinelName"',
        'id="node-config-input-sentinelUsername"',
        'id="node-config-input-sentinelPassword"',
        'data-i18n="[html]websocket-plus.tip.sentinelAuth"',
        'id="node-config-input-clusterPrefix"',
      ].map((marker) => {
        const i = b.indexOf(marker);
        assert.ok(i !== -1, marker);
        return i;
      });
      assert.deepStrictEqual(
        order,
        order.slice().sort((x, y) => x - y),
      );
      assert.match(
        b,
        /<div class="form-row wsp-row-sentinelUsername">\s*<label[^>]*>[\s\S]*?<input type="text" id="node-config-input-sentinelUsername"/,
      );
      assert.match(
        b,
        /<div class="form-row wsp-row-sentinelPassword">\s*<label[^>]*>[\s\S]*?<input type="password" id="node-config-input-sentinelPassword"/,
      );
      assert.match(b, /<div class="form-tips wsp-row-sentinelAuthTip">/);
      // shown for Sentinel only, hidden for the other topologies and for "off"
      assert.match(
        html,
        /\$\("\.wsp-row-sentinelUsername, \.wsp-row-sentinelPassword, \.wsp-row-sentinelAuthTip"\)\.toggle\(cluster === "redis-sentinel"\);/,
      );
      for (const lang of H.LANGUAGES) {
        for (const key of [
          'label.sentinelUsername',
          'label.sentinelPassword',
          'placeholder.sentinelUsername',
          'tip.sentinelAuth',
        ]) {
          const v = H.lookup(catalogues[lang], `websocket-plus.${key}`);
          assert.ok(typeof v === 'string' && v.trim() !== '', `${lang}: ${key}`);
        }
        assert.match(H.lookup(catalogues[lang], 'websocket-plus.tip.sentinelAuth'), /requirepass/, lang);
      }
    });

    it('has the labels, placeholders, tips and errors of the topologies in every language', function () {
      const keys = [
        'cluster.redis',
        'cluster.redis-cluster',
        'cluster.redis-sentinel',
        'label.sentinelName',
        'placeholder.redisUrl',
        'placeholder.redisClusterUrl',
        'placeholder.redisSentinelUrl',
        'placeholder.sentinelName',
        'tip.redisUrl',
        'tip.redisClusterUrl',
        'tip.redisSentinelUrl',
        'errors.redis-url-invalid',
        'errors.sentinel-name-invalid',
      ];
      for (const lang of H.LANGUAGES) {
        for (const key of keys) {
          const v = H.lookup(catalogues[lang], `websocket-plus.${key}`);
          assert.ok(typeof v === 'string' && v.trim() !== '', `${lang}: ${key}`);
        }
        // the list forms are shown as lists
        assert.ok(H.lookup(catalogues[lang], 'websocket-plus.placeholder.redisClusterUrl').includes(','), lang);
        assert.ok(H.lookup(catalogues[lang], 'websocket-plus.placeholder.redisSentinelUrl').includes(','), lang);
        for (const k of ['redisUrl', 'redisClusterUrl', 'redisSentinelUrl'])
          assert.match(H.lookup(catalogues[lang], `websocket-plus.tip.${k}`), /rediss?:\/\//, `${lang}: tip.${k}`);
      }
      // the script picks one placeholder per topology, each a literal key
      const { keys: scriptKeys } = H.scriptKeys(html);
      for (const k of ['placeholder.redisUrl', 'placeholder.redisClusterUrl', 'placeholder.redisSentinelUrl'])
        assert.ok(scriptKeys.includes(`websocket-plus.${k}`), k);
    });

    it('the master name validator accepts and refuses exactly what the runtime does', function () {
      const validate = H.editorValidator(
        html,
        'validateSentinelName',
        () => ({ length: 0 }),
        (key) => key,
      );
      const { parseListenerConfig } = loadBuilt('core/flow/listener-config');
      const runtimeAccepts = (sentinelName) => {
        try {
          parseListenerConfig(
            { path: '/x', authMode: 'none', cluster: 'redis-sentinel', sentinelName },
            { redisUrl: 'redis://127.0.0.1:26379' },
          );
          return true;
        } catch (err) {
          assert.strictEqual(err.code, 'SENTINEL_NAME_INVALID');
          return false;
        }
      };
      const cases = [
        'mymaster',
        ' mymaster ',
        '',
        '  ',
        'my master',
        'a\tb',
        'a\u0000b',
        'x'.repeat(200),
        'x'.repeat(201),
      ];
      cases.push('wsplus-master', 'm.1_2:3', 'マスター');
      for (const v of cases) {
        const editor = validate.call({ cluster: 'redis-sentinel' }, v);
        assert.strictEqual(editor === true, runtimeAccepts(v), `${JSON.stringify(v)}: editor says ${editor}`);
        if (editor !== true) assert.strictEqual(editor, 'websocket-plus.errors.sentinel-name-invalid');
        for (const cluster of ['off', 'redis', 'redis-cluster', undefined])
          assert.strictEqual(validate.call({ cluster }, v), true, `${cluster}: the name is not used`);
      }
      assert.strictEqual(
        validate.call({ cluster: 'redis-sentinel' }, undefined),
        'websocket-plus.errors.sentinel-name-invalid',
      );
    });
  });

  describe('help', function () {
    const helps = {};
    before(function () {
      for (const lang of H.LANGUAGES) {
        const file = path.join(built, 'locales', lang, 'websocket-plus.html');
        assert.ok(fs.existsSync(file), `${lang}: help file missing`);
        helps[lang] = H.helpSections(fs.readFileSync(file, 'utf8'));
      }
    });

    it('has one help section per type in every language', function () {
      for (const lang of H.LANGUAGES) {
        assert.deepStrictEqual(helps[lang].map((h) => h.name).sort(), H.TYPES.slice().sort(), lang);
      }
    });

    it('starts each help with a one-paragraph palette tooltip', function () {
      for (const lang of H.LANGUAGES) {
        for (const h of helps[lang]) {
          const m = /^\s*<p>([^<]{20,})<\/p>/.exec(h.body);
          assert.ok(m, `${lang} ${h.name}: help must start with a plain <p> tooltip`);
        }
      }
    });

    it('has the same structure in de and ja as in en-US (sections and message properties)', function () {
      const shape = (body) => ({
        h3: (body.match(/<h3>/g) || []).length,
        h4: (body.match(/<h4>/g) || []).length,
        dt: [...body.matchAll(/<dt[^>]*>\s*([\w.]+)/g)].map((m) => m[1]),
        rows: (body.match(/<tr>/g) || []).length,
      });
      for (const type of H.TYPES) {
        const en = shape(helps['en-US'].find((h) => h.name === type).body);
        for (const lang of ['de', 'ja']) {
          assert.deepStrictEqual(shape(helps[lang].find((h) => h.name === type).body), en, `${lang} ${type}`);
        }
      }
      const inHelp = shape(helps['en-US'].find((h) => h.name === 'websocket-plus in').body);
      const outHelp = shape(helps['en-US'].find((h) => h.name === 'websocket-plus out').body);
      assert.deepStrictEqual(inHelp.dt, ['payload', '_session', 'event', 'code', 'reason']);
      assert.deepStrictEqual(outHelp.dt, ['payload', '_session']);
      const controlHelp = shape(helps['en-US'].find((h) => h.name === 'websocket-plus control').body);
      assert.deepStrictEqual(controlHelp.dt, [
        'action',
        'tenantId',
        'subject',
        'sessionId',
        '_session',
        'all',
        'code',
        'reason',
        'token',
        'payload',
        'partial',
      ]);
      assert.strictEqual(inHelp.h3, 2, 'ws.in+: Outputs and Details');
      assert.strictEqual(outHelp.h3, 2, 'ws.out+: Inputs and Details');
    });

    it('documents _session, scopes, close codes and HTTP refusals in every language', function () {
      for (const lang of H.LANGUAGES) {
        const get = (t) => helps[lang].find((h) => h.name === t).body;
        for (const p of ['type', 'id', 'tenantId', 'subject', 'authStatus', 'routingScope']) {
          assert.ok(get('websocket-plus in').includes(`<code>${p}</code>`), `${lang}: _session.${p} not documented`);
        }
        for (const scope of ['session', 'tenant', 'global'])
          assert.ok(get('websocket-plus in').includes(`"${scope}"`), `${lang}: scope ${scope}`);
        const listener = get('websocket-plus-listener');
        for (const code of [
          '4001',
          '4002',
          '1001',
          '1008',
          '1009',
          '1013',
          'HTTP 401',
          'HTTP 403',
          'HTTP 429',
          'HTTP 503',
        ]) {
          assert.ok(listener.includes(`<td>${code}</td>`), `${lang}: listener help lacks ${code}`);
        }
        assert.ok(
          (get('websocket-plus out').match(/<li>/g) || []).length >= 3,
          `${lang}: out help lists the three scopes`,
        );
      }
    });
  });
});
