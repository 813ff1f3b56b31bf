'use strict';
// What the cross-instance latency benches (cluster-latency.js, control-latency.js) share: their
// clients, their figures, their teardown and their command-line entry.
const WebSocket = require('ws');

/** Resolves an open ws client of `url`; no compression, so a sample is the frame's way alone. */
function open(url, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** The nearest-rank percentile `p` of the ascending `sorted`. */
function percentile(sorted, p) {
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Count, p50, p99, min and max of `times` (ms), rounded to `digits` decimals. */
function summary(times, digits) {
  const scale = 10 ** digits;
  const round = (x) => Math.round(x * scale) / scale;
  const sorted = times.slice().sort((a, b) => a - b);
  return {
    samples: sorted.length,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    min: round(sorted[0]),
    max: round(sorted[sorted.length - 1]),
  };
}

/** Ends a run: its clients, then its instances, then Redis. */
async function teardown({ sockets, instances, redis }) {
  for (const ws of sockets) ws.terminate();
  await Promise.all(instances.map((i) => i.stop()));
  await redis.close();
}

/** As a script: prints what `running` resolves as JSON, or the error (exit code 1). */
function printResult(running) {
  running.then(
    (result) => console.log(JSON.stringify(result)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}

module.exports = { open, summary, teardown, printResult };
