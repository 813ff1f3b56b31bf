'use strict';
// A real JWKS endpoint over HTTP (or HTTPS with `{ tls: { key, cert } }`) on 127.0.0.1 that counts
// fetches and can misbehave on request.
const http = require('http');
const https = require('https');
const { listenOnLoopback } = require('./loopback');

async function startJwksServer(keys = [], options = {}) {
  const state = { keys: keys.map((k) => k.publicJwk), fetches: 0, mode: 'ok', delayMs: 0 };
  const handler = (req, res) => {
    state.fetches++;
    const reply = () => {
      if (state.mode === 'garbage') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"keys": not json');
      } else if (state.mode === 'error') {
        res.writeHead(500);
        res.end('down');
      } else if (state.mode === 'redirect') {
        res.writeHead(302, { location: state.redirectTo || 'http://127.0.0.1:1/' });
        res.end();
      } else if (state.mode === 'hang') {
        // never answers
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: state.keys }));
      }
    };
    if (state.delayMs > 0) setTimeout(reply, state.delayMs);
    else reply();
  };
  const server = options.tls
    ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, handler)
    : http.createServer(handler);
  const { port, close } = await listenOnLoopback(server);
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}/.well-known/jwks.json`,
    port,
    state,
    setKeys(newKeys) {
      state.keys = newKeys.map((k) => k.publicJwk);
    },
    get fetches() {
      return state.fetches;
    },
    close,
  };
}

module.exports = { startJwksServer };
