'use strict';
/* global window, RED -- page.waitForFunction() callbacks run inside the Node-RED editor page */
// Headless Debian Chromium (/usr/bin/chromium, or CHROMIUM_PATH) driven by playwright-core, for the
// editor and example-page tests: pages reach only the loopback ports they are given.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { removeDir } = require('./node-red-process');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];

/**
 * Headless Chromium whose pages may reach only 127.0.0.1:`port` (a port or a list of ports; anything
 * else is aborted and recorded in `blocked`); page errors are recorded in `pageErrors`. Each page
 * step may take 30 s, as a loaded 2-core machine needs for the editor.
 */
async function launchBrowser(port, viewport, { deviceScaleFactor = 1 } = {}) {
  const ports = [].concat(port).map(String);
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium)`);
  const { chromium } = require('playwright-core');
  const browserDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsplus-chromium-'));
  const context = await chromium.launchPersistentContext(browserDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport,
    deviceScaleFactor,
    locale: 'en-US',
    timeout: 30000,
  });
  const blocked = [];
  const pageErrors = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1' && ports.includes(url.port)) return route.continue();
    blocked.push(url.origin);
    return route.abort();
  });
  const watch = (p) => {
    p.setDefaultTimeout(30000);
    p.on('pageerror', (err) => pageErrors.push(err.message));
    return p;
  };
  const page = watch(context.pages()[0] || (await context.newPage()));
  return {
    page,
    blocked,
    pageErrors,
    /** Another tab of the same browser, under the same rules. */
    newPage: async () => watch(await context.newPage()),
    async close() {
      await context.close().catch(() => {});
      removeDir(browserDir);
    },
  };
}

/** Waits until the editor (first opened or reloaded) shows the deployed flow's one node of `type`. */
async function flowLoaded(page, type) {
  await page.waitForFunction(
    (t) => window.RED && RED.nodes && RED.nodes.filterNodes && RED.nodes.filterNodes({ type: t }).length === 1,
    type,
    { timeout: 30000 },
  );
}

module.exports = { launchBrowser, flowLoaded };
