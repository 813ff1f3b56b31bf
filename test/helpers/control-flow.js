'use strict';
// A Node-RED flow that puts ws.control+ behind HTTP, for tests and benchmarks that drive real
// Node-RED processes: POST /control with a JSON body {action, tenantId, subject, sessionId, code,
// reason, all} answers {result, partial} (http in -> function -> ws.control+ -> function -> http
// response). The listener (id LISTENER_ID, HS256 tenant scope on /ws/app, Redis cluster mode) takes
// the core defaults plus `listenerProps`; its credentials are keyed by LISTENER_ID.
const { LISTENER_DEFAULTS } = require('./built').built('core/flow/defaults');

const LISTENER_ID = 'lc';
const WS_PATH = '/ws/app';

function controlFlow(listenerProps = {}) {
  return [
    { id: 'tab1', type: 'tab', label: 'control' },
    {
      id: LISTENER_ID,
      type: 'websocket-plus-listener',
      ...LISTENER_DEFAULTS,
      path: WS_PATH,
      authMode: 'hs256',
      scope: 'tenant',
      cluster: 'redis',
      ...listenerProps,
    },
    { id: 'in', type: 'websocket-plus in', z: 'tab1', server: LISTENER_ID, client: '', wires: [[]] },
    { id: 'http', type: 'http in', z: 'tab1', url: '/control', method: 'post', upload: false, wires: [['req']] },
    {
      id: 'req',
      type: 'function',
      z: 'tab1',
      func:
        "for (const k of ['action', 'tenantId', 'subject', 'sessionId', 'code', 'reason', 'all']) {\n" +
        '  if (msg.payload[k] !== undefined) msg[k] = msg.payload[k];\n}\nreturn msg;',
      outputs: 1,
      wires: [['ctl']],
    },
    { id: 'ctl', type: 'websocket-plus control', z: 'tab1', server: LISTENER_ID, client: '', wires: [['res']] },
    {
      id: 'res',
      type: 'function',
      z: 'tab1',
      func: 'msg.payload = { result: msg.payload, partial: msg.partial };\nreturn msg;',
      outputs: 1,
      wires: [['reply']],
    },
    { id: 'reply', type: 'http response', z: 'tab1', statusCode: '', headers: {} },
  ];
}

module.exports = { controlFlow, LISTENER_ID, WS_PATH };
