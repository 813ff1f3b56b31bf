'use strict';
// The editor as a user sees it: headless Debian Chromium (/usr/bin/chromium) driven by
// playwright-core opens the editor of a real Node-RED 4 with the package installed, finds ws.in+
// and ws.out+ in the palette, drags a ws.in+ into the flow, creates a listener in its config
// dialog (the JWT mode shows and hides the right fields), deploys, and checks that neither the
// export nor the admin API ever gives the secret back; a ws.control+ dialog and help in three
// languages. Then opens the page of the `npm start` demo,
// connects as tenant A and B and tries a tampered token.
//
// Then the example pages: 09's browser refresh loop against short-lived tokens from a token URL
// served by the test, and 10's metrics dashboard with live data.
//
// Screenshots go to .test-tmp/screenshots/ (gitignored); with UPDATE_SCREENSHOTS=1 they replace the
// README's images in docs/images/ (palette.png, listener-dialog.png, demo.png, metrics-dashboard.png).
const assert = require('assert');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { ROOT, makeUserDir, removeDir, writeSettings, startNodeRed } = require('../helpers/node-red-process');
const { connect, waitForMessages, closeAll } = require('../helpers/ws-client');
const { signHS256, now } = require('../helpers/tokens');
const { installPackedCopy } = require('../helpers/package-tarball');
const { startDemo } = require('../helpers/start-script');
const { listenOnLoopback } = require('../helpers/loopback');
const { launchBrowser, flowLoaded } = require('../helpers/chromium');

const SHOTS =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? path.join(ROOT, 'docs', 'images')
    : path.join(ROOT, '.test-tmp', 'screenshots');
const SECRET = 'browser-typed-secret-7f3a9c2e5b8d1f4a6c0e';
const LISTENER_PATH = '/ws/from-the-editor';

/** Screenshots taken in this run (so a check never passes on a file left by an earlier run). */
const taken = new Set();
async function screenshot(target, name, options = {}) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await target.screenshot({ path: path.join(SHOTS, name), ...options });
  taken.add(name);
}

function assertScreenshots(names, maxBytes) {
  for (const f of names) {
    assert.ok(taken.has(f), `${f} was not taken in this run`);
    const png = fs.readFileSync(path.join(SHOTS, f));
    assert.strictEqual(png.subarray(1, 4).toString(), 'PNG');
    assert.ok(png.length > 2000 && png.length < maxBytes, `${f}: ${png.length} bytes`);
  }
}

/** Drags the palette node of `type` into the workspace at (`x`, `y`) of the chart; resolves its id. */
async function dragFromPalette(page, type, x, y) {
  const source = page.locator(`.red-ui-palette-node[data-palette-type="${type}"]`);
  const created = (t) => RED.nodes.filterNodes({ type: t }).length === 1;
  // On a loaded machine the palette may still be scrolling or laying out when the mouse goes down,
  // and the drop then makes no node: the drag is repeated (at most 3 times), never the check.
  for (let attempt = 1; ; attempt++) {
    await source.scrollIntoViewIfNeeded();
    const from = await source.boundingBox();
    const chart = await page.locator('#red-ui-workspace-chart').boundingBox();
    await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await page.mouse.down();
    await page.mouse.move(chart.x + x - 10, chart.y + y - 10, { steps: 12 });
    await page.mouse.move(chart.x + x, chart.y + y, { steps: 4 });
    await page.mouse.up();
    try {
      await page.waitForFunction(created, type, { timeout: attempt < 3 ? 5000 : 30000 });
      break;
    } catch (err) {
      if (attempt >= 3 || (await page.evaluate((t) => RED.nodes.filterNodes({ type: t }).length, type)) > 1) throw err;
    }
  }
  return page.evaluate((t) => RED.nodes.filterNodes({ type: t })[0].id, type);
}

/** In the page: the text of the help sidebar's node help (the innermost section naming msg.action). */
const helpText = () =>
  $('.red-ui-help')
    .filter((_i, el) => /msg\.action/.test($(el).text()))
    .last()
    .text();

/** Waits until the editor (reloaded or first opened) has loaded the package's node types. */
async function editorReady(page) {
  await page.waitForFunction(
    () => window.RED && RED.nodes && RED.nodes.getType && RED.nodes.getType('websocket-plus control'),
    null,
    { timeout: 30000 },
  );
}

/** The workspace element (SVG group) of the one node of `type` in the flow. */
async function flowNode(page, type) {
  const id = await page.evaluate((t) => RED.nodes.filterNodes({ type: t })[0].id, type);
  return page.locator(`#red-ui-workspace-chart g.red-ui-flow-node-group[id="${id}"]`);
}

describe('e2e: the editor in headless Chromium (Node-RED 4)', function () {
  this.timeout(60000);
  let userDir;
  let red;
  let browser;
  let page;
  let blocked;
  let pageErrors;
  const sockets = [];

  before(async function () {
    userDir = makeUserDir('wsplus-browser-');
    writeSettings(userDir);
    await installPackedCopy(userDir); // the packed package, as published
    red = await startNodeRed({ runtime: 'node-red-4', userDir });
    // Only the Node-RED under test may be reached (the editor also asks the flow library's
    // catalogue for the palette manager: refused here).
    browser = await launchBrowser(red.port, { width: 1280, height: 960 }, { deviceScaleFactor: 2 });
    ({ page, blocked, pageErrors } = browser);
    await page.goto(red.url, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(
      () => window.RED && RED.nodes && RED.nodes.getType && RED.nodes.getType('websocket-plus in'),
      null,
      { timeout: 30000 },
    );
  });

  after(async function () {
    closeAll(sockets);
    if (browser) await browser.close();
    if (red) await red.stop();
    removeDir(userDir);
  });

  it('the palette shows ws.in+ and ws.out+ in the network category', async function () {
    const plusIn = page.locator('.red-ui-palette-node[data-palette-type="websocket-plus in"]');
    const plusOut = page.locator('.red-ui-palette-node[data-palette-type="websocket-plus out"]');
    await plusIn.scrollIntoViewIfNeeded();
    assert.strictEqual((await plusIn.innerText()).trim(), 'ws.in+');
    assert.strictEqual((await plusOut.innerText()).trim(), 'ws.out+');
    assert.ok(await plusIn.isVisible());
    for (const node of [plusIn, plusOut]) {
      const category = await node.evaluate((el) => el.closest('.red-ui-palette-category').id);
      assert.strictEqual(category, 'red-ui-palette-container-network');
    }
    // our own icons are served (not the default placeholder)
    const icon = await plusIn.locator('.red-ui-palette-icon').evaluate((el) => getComputedStyle(el).backgroundImage);
    assert.match(icon, /websocket-plus-in\.svg/);
    const res = await red.api('GET', '/icons/node-red-contrib-websocket-plus/websocket-plus-in.svg');
    assert.strictEqual(res.status, 200);

    // screenshot: the palette filtered to the websocket nodes, core and plus side by side
    const search = page.locator('#red-ui-palette-search input');
    await search.click();
    await search.pressSequentially('websocket', { delay: 20 });
    await page.waitForFunction(
      () => document.querySelectorAll('#red-ui-palette-container .red-ui-palette-node[data-filter="true"]').length > 0,
    );
    assert.ok(await plusIn.isVisible(), 'ws.in+ matches the filter "websocket"');
    await page.waitForTimeout(300);
    const palette = page.locator('#red-ui-palette-container-network');
    await screenshot(palette, 'palette.png');
    await search.fill('');
    await search.press('Backspace');
    await page.waitForFunction(
      () =>
        document.querySelectorAll('#red-ui-palette-container .red-ui-palette-node[data-filter="true"]').length === 0,
    );
  });

  it('a ws.in+ dragged from the palette lands in the workspace', async function () {
    const source = page.locator('.red-ui-palette-node[data-palette-type="websocket-plus in"]');
    await source.scrollIntoViewIfNeeded();
    const from = await source.boundingBox();
    const chart = await page.locator('#red-ui-workspace-chart').boundingBox();
    await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await page.mouse.down();
    await page.mouse.move(chart.x + 250, chart.y + 150, { steps: 12 });
    await page.mouse.move(chart.x + 260, chart.y + 160, { steps: 4 });
    await page.mouse.up();
    await page.waitForFunction(() => RED.nodes.filterNodes({ type: 'websocket-plus in' }).length === 1);
    const node = await page.evaluate(() => {
      const n = RED.nodes.filterNodes({ type: 'websocket-plus in' })[0];
      return { z: n.z, active: RED.workspaces.active(), x: n.x, y: n.y };
    });
    assert.strictEqual(node.z, node.active);
  });

  it('the listener dialog shows the secret only for HS256 and the JWKS URI only for JWKS', async function () {
    // open ws.in+ (double-click it in the flow), then "add new listener" with the + button
    // (Node-RED 4.1; older editors had a single pencil "lookup" button)
    await (await flowNode(page, 'websocket-plus in')).dblclick();
    await page.locator('#node-input-mode').waitFor({ state: 'visible' });
    assert.strictEqual(await page.locator('#node-input-mode').inputValue(), 'server');
    await page.locator('#node-input-btn-server-add, #node-input-lookup-server').first().click();
    const authMode = page.locator('#node-config-input-authMode');
    await authMode.waitFor({ state: 'visible' });

    const visible = async () => ({
      secret: await page.locator('#node-config-input-secret').isVisible(),
      jwksUri: await page.locator('#node-config-input-jwksUri').isVisible(),
      noneWarning: await page.locator('#wsp-warning-none').isVisible(),
    });
    assert.strictEqual(await authMode.inputValue(), 'hs256', 'a new listener defaults to HS256');
    assert.deepStrictEqual(await visible(), { secret: true, jwksUri: false, noneWarning: false });
    await authMode.selectOption('jwks');
    assert.deepStrictEqual(await visible(), { secret: false, jwksUri: true, noneWarning: false });
    await authMode.selectOption('none');
    assert.deepStrictEqual(await visible(), { secret: false, jwksUri: false, noneWarning: true });
    await authMode.selectOption('hs256');
    assert.deepStrictEqual(await visible(), { secret: true, jwksUri: false, noneWarning: false });

    // tenant: claim name for "Token claim", tenant id for "Static"
    const tenantFrom = page.locator('#node-config-input-tenantFrom');
    assert.strictEqual(await tenantFrom.inputValue(), 'claim');
    assert.ok(await page.locator('#node-config-input-tenantClaim').isVisible());
    assert.ok(!(await page.locator('#node-config-input-tenantId').isVisible()));
    await tenantFrom.selectOption('static');
    assert.ok(!(await page.locator('#node-config-input-tenantClaim').isVisible()));
    assert.ok(await page.locator('#node-config-input-tenantId').isVisible());
    await tenantFrom.selectOption('claim');

    // token refresh: off with a 30 s notice by default; the window must be a number >= 0
    const refresh = page.locator('#node-config-input-refresh');
    const refreshWindow = page.locator('#node-config-input-refreshWindow');
    assert.strictEqual(await refresh.inputValue(), 'off');
    assert.strictEqual(await refreshWindow.inputValue(), '30');
    await refresh.selectOption('message');
    await refreshWindow.fill('-1');
    await refreshWindow.blur();
    await page.waitForFunction(() => $('#node-config-input-refreshWindow').hasClass('input-error'));
    await refreshWindow.fill('20');
    await refreshWindow.blur();
    await page.waitForFunction(() => !$('#node-config-input-refreshWindow').hasClass('input-error'));

    // a forbidden path is flagged by the validator
    await page.locator('#node-config-input-path').fill('/debug/ws');
    await page.locator('#node-config-input-path').blur();
    await page.waitForFunction(() => $('#node-config-input-path').hasClass('input-error'));

    await page.locator('#node-config-input-path').fill(LISTENER_PATH);
    await page.locator('#node-config-input-path').blur();
    await page.waitForFunction(() => !$('#node-config-input-path').hasClass('input-error'));
    await page.locator('#node-config-input-secret').fill(SECRET);
    assert.strictEqual(await page.locator('#node-config-input-secret').getAttribute('type'), 'password');
    await page.waitForTimeout(300);
    const tray = page.locator('.red-ui-tray').last();
    await screenshot(tray, 'listener-dialog.png');

    await page.locator('#node-config-dialog-ok').click();
    await page.locator('#node-config-input-authMode').waitFor({ state: 'detached' });
    await page.locator('#node-dialog-ok').click();
    await page.locator('#node-input-mode').waitFor({ state: 'detached' });
    const configured = await page.evaluate(() => {
      const n = RED.nodes.filterNodes({ type: 'websocket-plus in' })[0];
      const l = RED.nodes.node(n.server);
      return {
        server: !!l,
        type: l && l.type,
        path: l && l.path,
        refresh: l && l.refresh,
        refreshWindow: l && l.refreshWindow,
        valid: n.valid && l.valid,
      };
    });
    assert.deepStrictEqual(configured, {
      server: true,
      type: 'websocket-plus-listener',
      path: LISTENER_PATH,
      refresh: 'message',
      refreshWindow: '20',
      valid: true,
    });
  });

  it('deploys from the editor, and the listener works with the secret typed in the dialog', async function () {
    const mark = red.output.length;
    await page.locator('#red-ui-header-button-deploy').click();
    await page.waitForFunction(() => !RED.nodes.dirty());
    await red.waitForLog((out) => /Started (modified )?flows/.test(out.slice(mark)));
    const token = await signHS256(SECRET, { tenant_id: 'acme', sub: 'from-browser-test' });
    const r = await connect(`ws://127.0.0.1:${red.port}${LISTENER_PATH}?token=${token}`);
    sockets.push(r.ws);
    assert.strictEqual(r.opened, true, `handshake refused: HTTP ${r.status}`);
    const bad = await connect(
      `ws://127.0.0.1:${red.port}${LISTENER_PATH}?token=` +
        `${await signHS256('some-other-secret-0123456789abcdef', { tenant_id: 'acme' })}`,
    );
    sockets.push(bad.ws);
    assert.strictEqual(bad.status, 401);
    // ws.in+ counts the connection in its status, which the editor shows
    await page.waitForFunction(() => {
      const n = RED.nodes.filterNodes({ type: 'websocket-plus in' })[0];
      return n.status && /1/.test(n.status.text || '');
    });
    r.ws.send('nothing is wired, nothing comes back');
    await assert.rejects(waitForMessages(r.ws, 1, 300));
    // refresh "message" was chosen in the dialog: the listener answers a refresh frame
    const exp = Math.floor(Date.now() / 1000) + 600;
    const fresh = await signHS256(SECRET, { tenant_id: 'acme', sub: 'from-browser-test' }, { exp });
    r.ws.send(JSON.stringify({ type: 'websocket-plus:refresh', token: fresh }));
    const [answer] = await waitForMessages(r.ws, 1, 5000);
    assert.deepStrictEqual(JSON.parse(answer), { type: 'websocket-plus:refreshed', exp });
  });

  it('the secret is never exported nor sent back to the browser', async function () {
    // Export dialog (Ctrl+E / menu Export), all flows, as the user copies it
    await page.evaluate(() => RED.actions.invoke('core:show-export-dialog'));
    await page.locator('#red-ui-clipboard-dialog-export-rng-full').click();
    await page
      .locator(
        '#red-ui-clipboard-dialog-export-tab-clipboard-tabs ' +
          'a[href="#red-ui-clipboard-dialog-export-tab-clipboard-json"]',
      )
      .click();
    const exportText = page.locator('#red-ui-clipboard-dialog-export-text');
    await exportText.waitFor({ state: 'visible' });
    await page.waitForFunction(() => /websocket-plus-listener/.test($('#red-ui-clipboard-dialog-export-text').val()));
    const exported = await exportText.inputValue();
    await page.keyboard.press('Escape');
    const flow = JSON.parse(exported);
    const listener = flow.find((n) => n.type === 'websocket-plus-listener');
    assert.ok(listener && listener.path === LISTENER_PATH);
    assert.ok(!exported.includes(SECRET), 'the export contains the secret');
    assert.strictEqual(listener.credentials, undefined);

    // the admin API: flows without credentials, and only "has_secret" for the dialog
    const flows = await red.api('GET', '/flows');
    assert.ok(!flows.text.includes(SECRET));
    const creds = await red.api('GET', `/credentials/websocket-plus-listener/${listener.id}`);
    assert.strictEqual(creds.status, 200);
    assert.strictEqual(creds.json.has_secret, true);
    assert.ok(!creds.text.includes(SECRET));

    // a fresh editor session: the dialog shows a placeholder, not the secret
    await page.reload({ waitUntil: 'domcontentloaded' });
    await flowLoaded(page, 'websocket-plus in');
    await (await flowNode(page, 'websocket-plus in')).dblclick();
    await page.locator('#node-input-btn-server-edit, #node-input-lookup-server').first().click();
    await page.locator('#node-config-input-secret').waitFor({ state: 'visible' });
    const shown = await page.locator('#node-config-input-secret').inputValue();
    assert.notStrictEqual(shown, SECRET);
    assert.strictEqual(shown, '__PWRD__');
    const html = await page.content();
    assert.ok(!html.includes(SECRET), 'the secret reached the browser');
    await page.locator('#node-config-dialog-cancel').click();
    await page.locator('#node-config-input-secret').waitFor({ state: 'detached' });
    await page.locator('#node-dialog-cancel').click();
  });

  it('ws.control+: in the network palette; its dialog offers a listener or a client, with its tip and help', async function () {
    const plusControl = page.locator('.red-ui-palette-node[data-palette-type="websocket-plus control"]');
    await plusControl.scrollIntoViewIfNeeded();
    assert.strictEqual((await plusControl.innerText()).trim(), 'ws.control+');
    assert.strictEqual(
      await plusControl.evaluate((el) => el.closest('.red-ui-palette-category').id),
      'red-ui-palette-container-network',
    );
    const id = await dragFromPalette(page, 'websocket-plus control', 260, 300);
    await (await flowNode(page, 'websocket-plus control')).dblclick();
    const mode = page.locator('#node-input-mode');
    await mode.waitFor({ state: 'visible' });
    const rows = async () => ({
      server: await page.locator('#websocket-plus-server-row').isVisible(),
      client: await page.locator('#websocket-plus-client-row').isVisible(),
    });
    // a new node acts on a listener; the choice shows the listener's or the client's row only
    assert.strictEqual(await mode.inputValue(), 'server');
    assert.deepStrictEqual(await rows(), { server: true, client: false });
    assert.deepStrictEqual(await mode.locator('option').allInnerTexts(), ['Listen on', 'Connect to']);
    await mode.selectOption('client');
    assert.deepStrictEqual(await rows(), { server: false, client: true });
    await mode.selectOption('server');
    assert.deepStrictEqual(await rows(), { server: true, client: false });
    // the listener created in the ws.in+ dialog is offered, next to "add new"
    const listenerId = await page.evaluate(() => RED.nodes.filterNodes({ type: 'websocket-plus in' })[0].server);
    assert.ok(listenerId);
    const server = page.locator('#node-input-server');
    const offered = await server.locator('option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepStrictEqual(offered.sort(), ['_ADD_', listenerId].sort());
    await server.selectOption(listenerId);
    const tip = await page.locator('.form-tips').filter({ hasText: 'msg.action' }).innerText();
    assert.match(tip, /list.*count.*close.*token.*reconnect/s);

    // the help in the sidebar's help tab
    await page.evaluate(() => RED.sidebar.help.show('websocket-plus control'));
    await page.waitForFunction(() => /msg\.action/.test($('.red-ui-help').text()));
    const help = await page.evaluate(helpText);
    for (const word of ['list', 'count', 'close', 'token', 'reconnect', 'partial', 'sessionId', 'tenantId', 'subject'])
      assert.ok(help.includes(word), `the help does not mention ${word}`);

    await page.locator('#node-input-name').fill('who is connected');
    await page.locator('#node-dialog-ok').click();
    await mode.waitFor({ state: 'detached' });
    const stored = await page.evaluate((nid) => {
      const n = RED.nodes.node(nid);
      return { server: n.server, client: n.client, name: n.name, valid: n.valid };
    }, id);
    assert.deepStrictEqual(stored, { server: listenerId, client: '', name: 'who is connected', valid: true });
    const mark = red.output.length;
    await page.locator('#red-ui-header-button-deploy').click();
    await page.waitForFunction(() => !RED.nodes.dirty());
    await red.waitForLog((out) => /Started (modified )?flows/.test(out.slice(mark)));
    const deployed = (await red.api('GET', '/flows')).json.find((n) => n.id === id);
    assert.deepStrictEqual(
      { type: deployed.type, server: deployed.server, client: deployed.client },
      { type: 'websocket-plus control', server: listenerId, client: '' },
    );
  });

  it('ws.control+ in German and Japanese: the dialog, its tip and its help', async function () {
    this.timeout(120000);
    const LANGUAGES = {
      de: { options: ['Lauschen auf', 'Verbinden mit'], tip: /setzen/, help: /Listet, zählt und schließt/ },
      ja: { options: ['待ち受け', '接続先'], tip: /を設定します/, help: /一覧・集計・切断/ },
    };
    try {
      for (const [lang, want] of Object.entries(LANGUAGES)) {
        await page.evaluate((l) => localStorage.setItem('editor-language', l), lang);
        await page.reload({ waitUntil: 'domcontentloaded' });
        await editorReady(page);
        await page.waitForFunction(() => RED.nodes.filterNodes({ type: 'websocket-plus control' }).length === 1);
        await (await flowNode(page, 'websocket-plus control')).dblclick();
        const mode = page.locator('#node-input-mode');
        await mode.waitFor({ state: 'visible' });
        assert.deepStrictEqual(await mode.locator('option').allInnerTexts(), want.options, lang);
        const tip = await page.locator('.form-tips').filter({ hasText: 'msg.action' }).innerText();
        assert.match(tip, want.tip, lang);
        await page.evaluate(() => RED.sidebar.help.show('websocket-plus control'));
        await page.waitForFunction(() => /msg\.action/.test($('.red-ui-help').text()));
        const help = await page.evaluate(helpText);
        assert.match(help, want.help, lang);
        assert.ok(help.includes('token') && help.includes('partial'), `${lang}: help incomplete`);
        await page.locator('#node-dialog-cancel').click();
        await mode.waitFor({ state: 'detached' });
      }
    } finally {
      await page.evaluate(() => localStorage.removeItem('editor-language'));
      await page.reload({ waitUntil: 'domcontentloaded' });
      await editorReady(page);
    }
  });

  it('the editor raised no page errors and reached nothing but this Node-RED', function () {
    assert.deepStrictEqual(pageErrors, []);
    assert.deepStrictEqual(
      [...new Set(blocked)].filter((o) => o !== 'https://catalogue.nodered.org'),
      [],
    );
  });

  it('saved the screenshots for the README', function () {
    assertScreenshots(['palette.png', 'listener-dialog.png'], 600 * 1024);
  });
});

describe('e2e: the npm start demo page in headless Chromium', function () {
  this.timeout(60000);
  let demo;
  let browser;
  let page;
  const sockets = [];
  const pane = (n) => page.locator(`#pane-${n}`);
  const lines = (n, kind) => pane(n).locator(`ul.log li.${kind}`).allInnerTexts();

  async function connectPane(n, tenant) {
    await pane(n).locator('select.tenant').selectOption(tenant);
    await pane(n).locator('button.connect').click();
    const connected = ([id, t]) =>
      new RegExp(`^connected as tenant ${t} `).test(document.querySelector(`#${id} .status`).textContent);
    await page.waitForFunction(connected, [`pane-${n}`, tenant]);
  }

  async function sendFrom(n, text) {
    await pane(n).locator('input.text').fill(text);
    await pane(n).locator('button.send').click();
  }

  async function waitForLine(n, text) {
    const shown = ([id, t]) =>
      [...document.querySelectorAll(`#${id} ul.log li.message`)].some((li) => li.textContent === t);
    await page.waitForFunction(shown, [`pane-${n}`, text]);
  }

  before(async function () {
    demo = await startDemo({ prefix: 'wsplus-browser-demo-' });
    browser = await launchBrowser(demo.port, { width: 1100, height: 560 }, { deviceScaleFactor: 2 });
    page = browser.page;
    await page.goto(`http://127.0.0.1:${demo.port}/demo`, { waitUntil: 'load' });
  });

  after(async function () {
    closeAll(sockets);
    if (browser) await browser.close();
    if (demo) await demo.stop();
  });

  it('pane 1 as tenant A and pane 2 as tenant B: what A sends reaches A, not B', async function () {
    assert.strictEqual(await pane(1).locator('select.tenant').inputValue(), 'A');
    assert.strictEqual(await pane(2).locator('select.tenant').inputValue(), 'B');
    await connectPane(1, 'A');
    await connectPane(2, 'B');
    await sendFrom(1, 'hello from tenant A');
    await waitForLine(1, '[tenant-a] visitor-a: hello from tenant A');
    // B's own message reaches B after anything written to B before it, so A's broadcast would be first
    await sendFrom(2, 'hello from tenant B');
    await waitForLine(2, '[tenant-b] visitor-b: hello from tenant B');
    assert.deepStrictEqual(await lines(2, 'message'), ['[tenant-b] visitor-b: hello from tenant B']);
    assert.deepStrictEqual(await lines(1, 'message'), ['[tenant-a] visitor-a: hello from tenant A']);
    assert.deepStrictEqual(await lines(2, 'info'), ['visitor-b joined tenant-b']);
  });

  it(
    'the tampered-token button shows the refusal, and ' + 'the listener does answer that token with 401',
    async function () {
      await page.locator('#tampered').click();
      const result = page.locator('#tampered-result.refused');
      await result.waitFor({ state: 'visible' });
      assert.match(await result.innerText(), /^refused: .*HTTP 401 "bad signature".*close code 1006/);
      const token = await page.evaluate(() => window.lastTamperedToken);
      assert.strictEqual(JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).tenant_id, 'tenant-b');
      const r = await connect(`ws://127.0.0.1:${demo.port}/ws/tenants?token=${token}`);
      sockets.push(r.ws);
      assert.strictEqual(r.opened, false);
      assert.strictEqual(r.status, 401);
      assert.match(r.body, /bad signature/);
      await page.waitForTimeout(200); // let the last line paint
      await screenshot(page, 'demo.png', { fullPage: true });
    },
  );

  it('pane 2 switched to tenant A receives what pane 1 sends', async function () {
    await connectPane(2, 'A');
    await sendFrom(1, 'to all of tenant A');
    await waitForLine(2, '[tenant-a] visitor-a: to all of tenant A');
    await waitForLine(1, '[tenant-a] visitor-a: to all of tenant A');
  });

  it('the page raised no errors and reached nothing but this Node-RED', function () {
    assert.deepStrictEqual(browser.pageErrors, []);
    assert.deepStrictEqual(browser.blocked, []);
  });

  it('saved the screenshot of the page', function () {
    assertScreenshots(['demo.png'], 900 * 1024);
  });
});

describe('e2e: the example pages in headless Chromium (browser token refresh, metrics dashboard)', function () {
  this.timeout(90000);
  const SECRET_09 = 'browser-refresh-secret-3c1e9a7f5b2d8e4c6a0f';
  const USER = { tenant_id: 'acme', sub: 'page-user' };
  const TOKEN_SECONDS = 6; // each token the page gets lives 5-6 s
  const NOTICE_SECONDS = '3'; // the listener's "expiring" notice, 3 s before exp
  let userDir;
  let red;
  let browser;
  let page;
  let tokens; // the test's stand-in for the site's back end: GET /token
  const sockets = [];

  /** Log lines of the refresh page, newest last: [{ kind, code, text }]. */
  const pageLog = () =>
    page.evaluate(() =>
      [...document.querySelectorAll('#log li')]
        .reverse()
        .map((li) => ({ kind: li.dataset.kind, code: li.dataset.code, text: li.textContent })),
    );
  const ofKind = (entries, kind) => entries.filter((e) => e.kind === kind);

  before(async function () {
    userDir = makeUserDir('wsplus-browser-examples-');
    writeSettings(userDir);
    await installPackedCopy(userDir);
    red = await startNodeRed({ runtime: 'node-red-4', userDir });

    // GET /token answers {"access_token"} for one user while `serving`, 503 after; CORS for the page's origin
    tokens = { serving: true, issued: [], refused: 0 };
    const server = http.createServer(async (req, res) => {
      const cors = {
        'access-control-allow-origin': `http://127.0.0.1:${red.port}`,
        'access-control-allow-credentials': 'true',
        'cache-control': 'no-store',
      };
      if (req.url !== '/token' || !tokens.serving) {
        tokens.refused++;
        res.writeHead(503, cors);
        res.end();
        return;
      }
      const exp = now() + TOKEN_SECONDS;
      tokens.issued.push(exp);
      const accessToken = await signHS256(SECRET_09, USER, { exp });
      res.writeHead(200, { ...cors, 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: accessToken }));
    });
    tokens.http = await listenOnLoopback(server);

    // examples 09 and 10 as shipped, configured as their comments ask; a client of the package
    // connected to /ws/refresh, so the dashboard has a client to show
    const example = (name) => JSON.parse(fs.readFileSync(path.join(ROOT, 'examples', `${name}.json`), 'utf8'));
    const flow = [...example('09-browser-refresh'), ...example('10-metrics-dashboard')];
    for (const n of flow) {
      if (n.type === 'websocket-plus-listener') {
        Object.assign(n, { refreshWindow: NOTICE_SECONDS, clockTolerance: '0', metricsPerTenant: true });
        n.credentials = { secret: SECRET_09 };
      }
      if (n.type === 'change' && n.name === 'page settings')
        for (const r of n.rules) {
          if (r.p === 'tokenUrl') r.to = `http://127.0.0.1:${tokens.http.port}/token`;
          if (r.p === 'intervalSeconds') r.to = '1';
        }
    }
    const tab = flow.find((n) => n.type === 'tab').id;
    flow.push(
      {
        id: 'c0ffee0000000001',
        type: 'websocket-plus-client',
        path: `ws://127.0.0.1:${red.port}/ws/refresh`,
        tls: '',
        subprotocol: '',
        wholemsg: 'false',
        authMode: 'jwt',
        hb: '30',
        headers: [],
        credentials: {
          token: await signHS256(SECRET_09, { tenant_id: 'globex', sub: 'a-node-red' }, { expiresIn: 3600 }),
        },
      },
      {
        id: 'c0ffee0000000002',
        type: 'websocket-plus in',
        z: tab,
        server: '',
        client: 'c0ffee0000000001',
        wires: [[]],
      },
    );
    const mark = red.output.length;
    await red.deploy(flow);
    await red.waitForLog((out) => /Started flows/.test(out.slice(mark)));

    browser = await launchBrowser([red.port, tokens.http.port], { width: 1100, height: 640 }, { deviceScaleFactor: 2 });
    page = browser.page;
  });

  after(async function () {
    closeAll(sockets);
    if (browser) await browser.close();
    if (tokens && tokens.http) await tokens.http.close();
    if (red) await red.stop();
    removeDir(userDir);
  });

  it('the refresh page stays connected across several token lifetimes, refreshing in band (no 4001)', async function () {
    await page.goto(`http://127.0.0.1:${red.port}/refresh-demo`, { waitUntil: 'load' });
    await page.waitForFunction(() => document.getElementById('status').dataset.state === 'open');
    const firstExp = tokens.issued[0];
    assert.ok(firstExp, 'the page got its token from the token URL');
    // past the first token's exp, with at least three refreshes on the same connection
    await page.waitForFunction(
      (exp) => document.querySelectorAll('#log li[data-kind="refreshed"]').length >= 3 && Date.now() / 1000 > exp + 1,
      firstExp,
      { timeout: 45000 },
    );
    const log = await pageLog();
    assert.deepStrictEqual(ofKind(log, 'close'), [], 'the page was disconnected while refreshing');
    assert.deepStrictEqual(ofKind(log, 'refresh-failed'), []);
    assert.strictEqual(ofKind(log, 'info').length, 1, 'one connection, never a reconnect');
    assert.ok(ofKind(log, 'expiring').length >= 3, 'each refresh answered an expiring notice');
    assert.strictEqual(await page.locator('#refreshes').innerText(), String(ofKind(log, 'refreshed').length));
    // the connection still carries the flow's messages (echo)
    await page.locator('#text').fill('hello through the refreshed session');
    await page.locator('#send button').click();
    await page.waitForFunction(() =>
      [...document.querySelectorAll('#log li[data-kind="message"]')].some((li) =>
        li.textContent.endsWith('hello through the refreshed session'),
      ),
    );
  });

  it('without new tokens the session closes with 4001 at the last exp; the page reconnects once tokens come back', async function () {
    tokens.serving = false;
    const lastExp = tokens.issued[tokens.issued.length - 1];
    await page.waitForFunction(
      () => document.querySelector('#log li[data-kind="close"][data-code="4001"]') !== null,
      null,
      { timeout: 30000 },
    );
    assert.ok(Date.now() / 1000 >= lastExp - 1, 'closed before the last refreshed exp');
    // the page asked again (refresh, then reconnect) and said why it could not continue
    await page.waitForFunction(() =>
      [...document.querySelectorAll('#log li[data-kind="error"]')].some((li) =>
        /no token: .*HTTP 503/.test(li.textContent),
      ),
    );
    assert.ok(tokens.refused >= 2, `${tokens.refused} refused token requests`);
    const closes = ofKind(await pageLog(), 'close');
    assert.deepStrictEqual(
      closes.map((c) => c.code),
      ['4001'],
    );
    tokens.serving = true;
    await page.waitForFunction(() => document.getElementById('status').dataset.state === 'open', null, {
      timeout: 30000,
    });
    assert.strictEqual(ofKind(await pageLog(), 'info').length, 2, 'connected again');
  });

  it('the metrics dashboard shows live series of the listener and the client', async function () {
    // traffic for the dashboard: two more users, a refused handshake, messages while it polls
    for (const claims of [USER, { tenant_id: 'globex', sub: 'other-user' }]) {
      const r = await connect(
        `ws://127.0.0.1:${red.port}/ws/refresh?token=${await signHS256(SECRET_09, claims, { expiresIn: 600 })}`,
      );
      assert.strictEqual(r.opened, true);
      sockets.push(r.ws);
    }
    const refused = await connect(
      `ws://127.0.0.1:${red.port}/ws/refresh?token=${await signHS256('not-the-secret-0123456789abcdef', USER)}`,
    );
    assert.strictEqual(refused.status, 401);
    const traffic = setInterval(() => sockets.forEach((ws, i) => ws.send(`reading ${i} ${Date.now()}`)), 100);
    const dashboard = await browser.newPage();
    try {
      await dashboard.setViewportSize({ width: 1100, height: 640 });
      await dashboard.goto(`http://127.0.0.1:${red.port}/metrics-dashboard`, { waitUntil: 'load' });
      // the page, the two users and the package's own client: 4 open; rates after the second poll
      const row = dashboard.locator('#listeners tr[data-listener="/ws/refresh"]');
      await dashboard.waitForFunction(
        () => {
          const r = document.querySelector('#listeners tr[data-listener="/ws/refresh"]');
          return r && r.cells[1].textContent === '4' && Number(r.cells[5].textContent) > 0;
        },
        null,
        { timeout: 20000 },
      );
      const cells = await row.locator('td').allInnerTexts();
      assert.strictEqual(cells[0], '/ws/refresh');
      assert.ok(Number(cells[9]) >= 3, `refreshed: ${cells[9]}`);
      const table = async (id) =>
        (await dashboard.locator(`#${id} tbody tr`).allInnerTexts()).map((t) => t.split('\t'));
      assert.ok((await table('refusals')).some(([l, category]) => l === '/ws/refresh' && category === 'bad_signature'));
      assert.ok((await table('closes')).some(([l, reason]) => l === '/ws/refresh' && reason === 'token_expired'));
      assert.ok((await table('clients')).some(([url, state]) => url.endsWith('/ws/refresh') && state === 'open'));
      // the listener opted in to per-tenant metrics: acme has the page and a user, globex a user and the client
      assert.deepStrictEqual(
        (await table('tenants')).filter(([l]) => l === '/ws/refresh').map(([, tenant, open]) => [tenant, open]),
        [
          ['acme', '2'],
          ['globex', '2'],
        ],
      );
      assert.match(await dashboard.locator('#status').innerText(), /^\/websocket-plus\/metrics, every 1 s/);
      // a few polls for the connections' line
      await dashboard.waitForFunction(
        () => document.querySelector('#listeners polyline').getAttribute('points').split(' ').length >= 5,
      );
      await screenshot(dashboard, 'metrics-dashboard.png', { fullPage: true });
    } finally {
      clearInterval(traffic);
      await dashboard.close();
    }
  });

  it('the pages raised no errors and reached nothing but this Node-RED and the token URL', function () {
    assert.deepStrictEqual(browser.pageErrors, []);
    assert.deepStrictEqual(browser.blocked, []);
  });

  it('saved the screenshot of the dashboard', function () {
    assertScreenshots(['metrics-dashboard.png'], 900 * 1024);
  });
});
