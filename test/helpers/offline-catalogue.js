'use strict';
// Preload (`node -r test/helpers/offline-catalogue.js ...`) that lets `node-red-dev validate` run
// offline. The scorecard asks the internet for:
//   - https://catalogue.nodered.org/catalogue.json (similar / duplicate names): answered {modules: []};
//   - https://registry.npmjs.org/<name> (node-red's versions and engines, the dependency tree, the
//     latest version of each dependency): answered with a packument built from the copies of
//     <name> installed in this repository's node_modules. dist-tags.latest is the registry's latest
//     as recorded in OFFLINE_CATALOGUE_LATEST (JSON: {"<name>": "<version>"}) when it names <name>,
//     otherwise the hoisted copy (what package-lock.json resolved) - which can never look out of
//     date, so the caller records the latest of every dependency whose currency it checks.
// Loopback traffic passes through; every other request fails at once and is reported on stderr
// as "offline-catalogue: blocked <url>", so a new network dependency of the tool is visible.
// With OFFLINE_CATALOGUE_TRACE=1 every answered request is reported too ("answered <status> <url>"),
// and where each latest came from ("latest <name> <version> recorded|installed").
const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');
const { Duplex } = require('stream');

const ROOT = path.resolve(__dirname, '..', '..');
const NODE_MODULES = path.join(ROOT, 'node_modules');
const original = { httpRequest: http.request, httpsRequest: https.request };
const RECORDED_LATEST = JSON.parse(process.env.OFFLINE_CATALOGUE_LATEST || '{}');

/** package.json of every installed copy of `name` (top level first), nested at most 3 deep. */
function installedCopies(name) {
  const found = [];
  const visit = (dir, depth) => {
    const pj = path.join(dir, name, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        const manifest = JSON.parse(fs.readFileSync(pj, 'utf8'));
        if (manifest.name === name && manifest.version) found.push(manifest);
      } catch {
        // unreadable copy: skip
      }
    }
    if (depth >= 3) return;
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory() || e.name.startsWith('.')) continue;
      const pkgDirs = e.name.startsWith('@')
        ? fs.readdirSync(path.join(dir, e.name)).map((n) => path.join(dir, e.name, n))
        : [path.join(dir, e.name)];
      for (const p of pkgDirs) {
        const nested = path.join(p, 'node_modules');
        if (fs.existsSync(nested)) visit(nested, depth + 1);
      }
    }
  };
  visit(NODE_MODULES, 0);
  // node-red 5 is installed under an alias (node-red-5); its manifest still says "node-red"
  if (name === 'node-red') {
    const alias = path.join(NODE_MODULES, 'node-red-5', 'package.json');
    if (fs.existsSync(alias)) found.push(JSON.parse(fs.readFileSync(alias, 'utf8')));
  }
  return found;
}

function compareVersions(a, b) {
  const pa = a.split(/[.+-]/).map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  const pb = b.split(/[.+-]/).map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1;
  return 0;
}

function packument(name) {
  const copies = installedCopies(name);
  if (copies.length === 0) return undefined;
  const versions = {};
  for (const m of copies) versions[m.version] = m;
  // node-red: the registry's latest is its newest release; recorded: as recorded; else the hoisted copy
  const recorded = Object.hasOwn(RECORDED_LATEST, name) ? RECORDED_LATEST[name] : undefined;
  const latest =
    recorded ?? (name === 'node-red' ? Object.keys(versions).sort(compareVersions).pop() : copies[0].version);
  // A release newer than every installed copy: listed by its version only (its dependencies unknown).
  if (!versions[latest]) versions[latest] = { name, version: latest };
  if (process.env.OFFLINE_CATALOGUE_TRACE === '1')
    process.stderr.write(`offline-catalogue: latest ${name} ${latest} ${recorded ? 'recorded' : 'installed'}\n`);
  return { name, 'dist-tags': { latest }, versions, homepage: copies[0].homepage, repository: copies[0].repository };
}

/** [status, body] for an intercepted URL, or undefined when the URL is not one we answer. */
function answer(url) {
  if (url.hostname === 'catalogue.nodered.org' && url.pathname === '/catalogue.json') {
    return [
      200,
      { name: 'Node-RED Community catalogue (offline stub)', updated_at: new Date(0).toISOString(), modules: [] },
    ];
  }
  if (url.hostname === 'registry.npmjs.org') {
    const name = decodeURIComponent(url.pathname.slice(1)).replace(/\/$/, '');
    if (!/^(@[a-z0-9._~-]+\/)?[a-z0-9._~-]+$/i.test(name)) return [404, { error: 'not found' }];
    const doc = packument(name);
    return doc ? [200, doc] : [404, { error: 'not found' }];
  }
  return undefined;
}

/** A stand-in socket: whatever the client writes, it answers `responseBytes` once and ends. */
function cannedSocket(responseBytes, error) {
  let answered = false;
  const socket = new Duplex({
    read() {},
    write(chunk, encoding, callback) {
      if (!answered && responseBytes) {
        answered = true;
        this.push(responseBytes);
        this.push(null);
      }
      callback();
    },
  });
  for (const m of ['setTimeout', 'setNoDelay', 'setKeepAlive', 'ref', 'unref']) socket[m] = () => socket;
  if (error) process.nextTick(() => socket.destroy(error));
  return socket;
}

function toUrl(input, options, defaultProtocol) {
  if (typeof input === 'string') return new URL(input);
  if (input instanceof URL) return input;
  const o = input || options || {};
  const host = o.hostname || (o.host || 'localhost').replace(/:\d+$/, '');
  const port = o.port ? `:${o.port}` : '';
  return new URL(`${o.protocol || defaultProtocol}//${host.includes(':') ? `[${host}]` : host}${port}${o.path || '/'}`);
}

function isLoopback(hostname) {
  return (
    hostname === 'localhost' ||
    hostname === '127.0.0.1' ||
    hostname === '[::1]' ||
    hostname === '::1' ||
    /^127\./.test(hostname)
  );
}

function patched(defaultProtocol, realRequest) {
  return function request(input, options, callback) {
    if (typeof options === 'function') {
      callback = options;
      options = undefined;
    }
    let url;
    try {
      url = toUrl(input, options, defaultProtocol);
    } catch {
      return realRequest.call(this, input, options, callback);
    }
    if (isLoopback(url.hostname)) return realRequest.apply(this, arguments);
    const opts = typeof input === 'object' && !(input instanceof URL) ? input : options || {};
    const canned = answer(url);
    let socket;
    if (canned) {
      const body = Buffer.from(JSON.stringify(canned[1]));
      const head =
        `HTTP/1.1 ${canned[0]} ${http.STATUS_CODES[canned[0]]}\r\ncontent-type: application/json\r\n` +
        `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
      socket = cannedSocket(Buffer.concat([Buffer.from(head), body]));
      if (process.env.OFFLINE_CATALOGUE_TRACE === '1')
        process.stderr.write(`offline-catalogue: answered ${canned[0]} ${url.href}\n`);
    } else {
      process.stderr.write(`offline-catalogue: blocked ${url.href}\n`);
      socket = cannedSocket(
        undefined,
        Object.assign(new Error(`offline: request to ${url.host} blocked`), { code: 'ECONNREFUSED' }),
      );
    }
    const req = original.httpRequest(
      {
        method: opts.method || 'GET',
        path: url.pathname + url.search,
        headers: { ...(opts.headers || {}), host: url.host },
        createConnection: () => socket,
      },
      callback,
    );
    return req;
  };
}

http.request = patched('http:', original.httpRequest);
https.request = patched('https:', original.httpsRequest);
http.get = function get(...args) {
  const req = http.request(...args);
  req.end();
  return req;
};
https.get = function get(...args) {
  const req = https.request(...args);
  req.end();
  return req;
};
// Tools that pick the registry from npm config should see the public one (which we answer).
process.env.npm_config_registry = 'https://registry.npmjs.org/';
