'use strict';
/* global RED, $ -- page.evaluate() callbacks run inside the Node-RED editor page */
// The listener dialog's Cluster topology in a real editor: headless Chromium (playwright-core)
// against a real Node-RED 4 with this package linked in. A flow saved with cluster "redis" (before
// the topologies existed) opens unchanged; switching the topology shows the Sentinel master name
// row and the Sentinels' own user and password for Sentinel only, one URL tip and placeholder per
// topology, and flags a missing master name. Deployed, the flow stores the topology and the name;
// the Redis URL and the Sentinel password stay credentials that neither the flow, the admin API nor
// the log gives back.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const {
  makeUserDir,
  removeDir,
  writeSettings,
  linkPackage,
  startNodeRed,
  freePort,
} = require('../helpers/node-red-process');
const { launchBrowser, flowLoaded } = require('../helpers/chromium');

const PASSWORD = 'sentinel-Pw-5rT0q';
/** The sentinels' own password (a credential of its own, apart from the URLs). */
const SENTINEL_PASSWORD = 'sentinel-own-Pw-Hc48';

describe('editor: the listener dialog in headless Chromium, Cluster topology', function () {
  this.timeout(60000);
  let userDir;
  let red;
  let browser;
  let page;
  let pageErrors;
  let deadPorts;

  before(async function () {
    deadPorts = [await freePort(), await freePort()];
    userDir = makeUserDir('wsplus-topology-');
    writeSettings(userDir);
    linkPackage(userDir);
    // a flow of an earlier version: cluster "redis", no sentinelName property
    fs.writeFileSync(
      path.join(userDir, 'flows.json'),
      JSON.stringify([
        { id: 'tab1', type: 'tab', label: 'topology' },
        {
          id: 'lis1',
          type: 'websocket-plus-listener',
          path: '/ws/topology',
          wholemsg: 'false',
          authMode: 'none',
          tenantFrom: 'static',
          tenantId: 'acme',
          scope: 'tenant',
          cluster: 'redis',
          clusterPrefix: '',
        },
        { id: 'in1', type: 'websocket-plus in', z: 'tab1', server: 'lis1', client: '', x: 200, y: 100, wires: [] },
      ]),
    );
    fs.writeFileSync(
      path.join(userDir, 'flows_cred.json'),
      JSON.stringify({ lis1: { redisUrl: `redis://:${PASSWORD}@127.0.0.1:${deadPorts[0]}` } }),
    );
    red = await startNodeRed({ runtime: 'node-red-4', userDir });
    browser = await launchBrowser(red.port, { width: 1280, height: 960 });
    ({ page, pageErrors } = browser);
    await page.goto(red.url, { waitUntil: 'domcontentloaded' });
    await flowLoaded(page, 'websocket-plus in');
  });

  after(async function () {
    if (browser) await browser.close();
    if (red) await red.stop();
    removeDir(userDir);
  });

  /** Which rows and tips of the Cluster section are visible, and the URL placeholder. */
  async function shown() {
    return page.evaluate(() => ({
      cluster: $('#node-config-input-cluster').val(),
      redisUrl: $('#node-config-input-redisUrl').is(':visible'),
      sentinelName: $('#node-config-input-sentinelName').is(':visible'),
      sentinelAuth: ['Username', 'Password'].filter((f) => $(`#node-config-input-sentinel${f}`).is(':visible')),
      prefix: $('#node-config-input-clusterPrefix').is(':visible'),
      tips: ['single', 'cluster', 'sentinel'].filter((t) => $(`#wsp-tip-redisUrl-${t}`).is(':visible')),
      placeholder: $('#node-config-input-redisUrl').attr('placeholder'),
    }));
  }

  it('opens a flow saved with cluster "redis" as a single node, and shows each topology its own rows', async function () {
    const id = await page.evaluate(() => RED.nodes.filterNodes({ type: 'websocket-plus in' })[0].id);
    await page.locator(`#red-ui-workspace-chart g.red-ui-flow-node-group[id="${id}"]`).dblclick();
    await page.locator('#node-input-mode').waitFor({ state: 'visible' });
    await page.locator('#node-input-btn-server-edit, #node-input-lookup-server').first().click();
    const select = page.locator('#node-config-input-cluster');
    await select.waitFor({ state: 'visible' });
    await select.scrollIntoViewIfNeeded();

    const single = await shown();
    assert.deepStrictEqual(
      { ...single, placeholder: undefined },
      {
        cluster: 'redis',
        redisUrl: true,
        sentinelName: false,
        sentinelAuth: [],
        prefix: true,
        tips: ['single'],
        placeholder: undefined,
      },
    );
    assert.match(single.placeholder, /^redis:\/\/[^,]+$/);
    // the stored URL is not sent to the browser, only that there is one
    assert.strictEqual(await page.locator('#node-config-input-redisUrl').inputValue(), '__PWRD__');

    await select.selectOption('redis-cluster');
    const cluster = await shown();
    assert.deepStrictEqual(
      [cluster.sentinelName, cluster.sentinelAuth, cluster.prefix, cluster.tips],
      [false, [], true, ['cluster']],
    );
    assert.match(cluster.placeholder, /^redis:\/\/.+,redis:\/\/.+/);

    await select.selectOption('redis-sentinel');
    const sentinel = await shown();
    assert.deepStrictEqual(
      [sentinel.sentinelName, sentinel.sentinelAuth, sentinel.prefix, sentinel.tips],
      [true, ['Username', 'Password'], true, ['sentinel']],
    );
    assert.match(sentinel.placeholder, /:26379,/);
    // no master name yet: flagged
    await page.waitForFunction(() => $('#node-config-input-sentinelName').hasClass('input-error'));
    await page.locator('#node-config-input-sentinelName').fill('my master');
    await page.locator('#node-config-input-sentinelName').blur();
    await page.waitForFunction(() => $('#node-config-input-sentinelName').hasClass('input-error'));
    await page.locator('#node-config-input-sentinelName').fill('mymaster');
    await page.locator('#node-config-input-sentinelName').blur();
    await page.waitForFunction(() => !$('#node-config-input-sentinelName').hasClass('input-error'));

    await select.selectOption('off');
    const off = await shown();
    assert.deepStrictEqual(
      [off.redisUrl, off.sentinelName, off.sentinelAuth, off.prefix, off.tips],
      [false, false, [], false, []],
    );
    // the name kept in the hidden row is no error while Sentinel is not chosen
    await page.locator('#node-config-input-sentinelName').evaluate((el) => {
      el.value = '';
      $(el).trigger('change');
    });
    await page.waitForFunction(() => !$('#node-config-input-sentinelName').hasClass('input-error'));

    await select.selectOption('redis-sentinel');
    await page.locator('#node-config-input-sentinelName').fill('mymaster');
    await page
      .locator('#node-config-input-redisUrl')
      .fill(`redis://:${PASSWORD}@127.0.0.1:${deadPorts[0]},redis://127.0.0.1:${deadPorts[1]}`);
    await page.locator('#node-config-input-sentinelUsername').fill('watcher');
    await page.locator('#node-config-input-sentinelPassword').fill(SENTINEL_PASSWORD);
    await page.locator('#node-config-dialog-ok').click();
    await page.locator('#node-config-input-cluster').waitFor({ state: 'detached' });
    await page.locator('#node-dialog-ok').click();
    await page.locator('#node-input-mode').waitFor({ state: 'detached' });
    const stored = await page.evaluate(() => {
      const l = RED.nodes.node('lis1');
      return {
        cluster: l.cluster,
        sentinelName: l.sentinelName,
        valid: l.valid,
        redisUrl: l.redisUrl,
        sentinelPassword: l.sentinelPassword,
      };
    });
    assert.deepStrictEqual(stored, {
      cluster: 'redis-sentinel',
      sentinelName: 'mymaster',
      valid: true,
      redisUrl: undefined,
      sentinelPassword: undefined,
    });
  });

  it('deploys the topology and the name; the Redis URL and the Sentinel password are never given back nor logged', async function () {
    const mark = red.output.length;
    await page.locator('#red-ui-header-button-deploy').click();
    await page.waitForFunction(() => !RED.nodes.dirty());
    // the runtime read the Sentinel topology: it tries the (unreachable) sentinels, no config error
    await red.waitForLog((out) => /Redis cluster unavailable/.test(out.slice(mark)), 20000);
    assert.doesNotMatch(red.logSince(mark), /Sentinel master name|Redis URL invalid|option invalid/);

    const flows = await red.api('GET', '/flows');
    const listener = flows.json.find((n) => n.id === 'lis1');
    assert.strictEqual(listener.cluster, 'redis-sentinel');
    assert.strictEqual(listener.sentinelName, 'mymaster');
    assert.ok(!flows.text.includes(PASSWORD) && !flows.text.includes(String(deadPorts[1])), 'the URL is in the flow');
    assert.ok(
      !flows.text.includes(SENTINEL_PASSWORD) && !flows.text.includes('watcher'),
      'a Sentinel credential is in the flow',
    );
    const creds = await red.api('GET', '/credentials/websocket-plus-listener/lis1');
    assert.strictEqual(creds.json.has_redisUrl, true);
    assert.strictEqual(creds.json.has_sentinelPassword, true);
    // the user is a text credential: shown again in the dialog, still not part of the flow
    assert.strictEqual(creds.json.sentinelUsername, 'watcher');
    assert.ok(!creds.text.includes(PASSWORD) && !creds.text.includes(SENTINEL_PASSWORD));
    const saved = JSON.parse(fs.readFileSync(path.join(userDir, 'flows.json'), 'utf8'));
    assert.strictEqual(saved.find((n) => n.id === 'lis1').sentinelName, 'mymaster');
    assert.ok(!JSON.stringify(saved).includes(PASSWORD) && !JSON.stringify(saved).includes(SENTINEL_PASSWORD));
    assert.ok(!red.output.includes(PASSWORD), 'the password reached the log');
    assert.ok(!red.output.includes(SENTINEL_PASSWORD), 'the Sentinel password reached the log');
    assert.deepStrictEqual(pageErrors, []);
  });
});
