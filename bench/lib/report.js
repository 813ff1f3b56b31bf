'use strict';
// The markdown table docs/benchmarks.md shows (between <!-- bench:start --> and <!-- bench:end -->).

const fmt = (n, d = 1) =>
  typeof n === 'number' && Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
    : '–';

/** "median ±half-range%" of a described metric. */
function cell(s, d = 1) {
  if (!s) return '–';
  if (s.n < 2 || s.median === 0) return fmt(s.median, d);
  const spread = ((s.max - s.min) / 2 / Math.abs(s.median)) * 100;
  return `${fmt(s.median, d)} ±${fmt(spread, 0)}%`;
}

function renderMarkdown(r) {
  const m = r.machine;
  const s = r.stats;
  const label = Object.fromEntries(r.contenders.map((c) => [c.id, c.label]));
  const ids = r.contenders.map((c) => c.id);
  const lines = [];
  lines.push('Reproduce with `npm run bench` (bench/README.md explains the method).');
  lines.push('');
  lines.push(
    `Measured ${r.date.slice(0, 10)} on ${m.nproc} CPU${m.nproc === 1 ? '' : 's'} (\`nproc\`) ${m.cpuModel}, ` +
      `${m.memGB} GB, ${m.platform}; Node ${m.node}, Node-RED ${m.nodeRed}, ws ${m.ws}, jose ${m.jose}. ` +
      `${r.repeats} rounds (each starts a fresh server process per contender)` +
      `${r.pinned ? '; server pinned to CPU 1, load generator to CPU 0' : ''}; ` +
      `cells show the median ±half the min–max spread. Total run ${r.durationS} s.`,
  );
  lines.push('');
  lines.push(
    "Server CPU is the server process's own `process.cpuUsage()` over each window divided by the work done in it " +
      '(lower is better). ' +
      'The load generator is a separate process on the same machine, so rates are often bounded by it; ' +
      'compare CPU per unit first.' +
      (r.background
        ? ` Other processes on the machine used a median ${fmt(r.background.median * 100, 0)} % ` +
          `(max ${fmt(r.background.max * 100, 0)} %) of its CPU during the measurement windows.`
        : ''),
  );
  lines.push('');
  const main = ids.filter((id) => s[id].hsCpu || s[id].echoCpu || s[id].bcastCpu);
  lines.push(
    '| contender | handshake CPU µs | handshakes/s | echo CPU µs/msg | echo msgs/s | echo p50 / p99 ms ' +
      '| broadcast CPU µs/delivery | deliveries/s | RSS KB per idle conn | heap+external KB per idle conn |',
  );
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const id of main) {
    const x = s[id];
    lines.push(
      `| ${label[id]} | ${cell(x.hsCpu, 0)} | ${cell(x.hsRate, 0)} | ${cell(x.echoCpu, 2)} | ${cell(x.echoRate, 0)} ` +
        `| ${x.p50 ? fmt(x.p50.median, 2) : '–'} / ${cell(x.p99, 2)} ` +
        `| ${cell(x.bcastCpu, 2)} | ${cell(x.bcastRate, 0)} ` +
        `| ${cell(x.rssKB, 1)} | ${cell(x.heapKB, 2)} |`,
    );
  }
  lines.push('');
  lines.push(
    'Once a connection is open every auth mode runs the same code, so echo, latency and broadcast are measured ' +
      'for auth none and HS256 only; the JWKS modes are measured where the key type matters (handshakes, memory).',
  );
  lines.push('');
  lines.push(
    'Ratios (server CPU per unit; p99 latency; RSS): contender ÷ raw ws / raw ws + JWT / Node-RED core, ' +
      'each paired within a round, median over the rounds.',
  );
  lines.push('');
  lines.push('| contender | handshake | echo | p99 latency | broadcast | RSS per conn |');
  lines.push('|---|---|---|---|---|---|');
  const ratioCell = (id, metric) => {
    const q = r.ratios[id] && r.ratios[id][metric];
    if (!q) return '–';
    return ['raw', 'raw-jwt', 'core'].map((ref) => (q[ref] === undefined ? '–' : fmt(q[ref].median, 2))).join(' / ');
  };
  for (const id of main)
    lines.push(
      `| ${label[id]} | ${ratioCell(id, 'hsCpu')} | ${ratioCell(id, 'echoCpu')} | ${ratioCell(id, 'p99')} ` +
        `| ${ratioCell(id, 'bcastCpu')} | ${ratioCell(id, 'rssKB')} |`,
    );
  const tenant = ids.filter((id) => s[id].tenantRatio);
  if (tenant.length) {
    const c = r.counts;
    lines.push('');
    lines.push(
      `Tenant fan-out (tenant scope): one of the tenant's ${c.tenantConnections} connections sends ` +
        `${fmt(c.tenantBroadcasts, 0)} messages, each delivered to the tenant's ${c.tenantConnections} connections; ` +
        `server CPU per tenant broadcast with ${fmt(c.tenantTotalSmall, 0)} vs ${fmt(c.tenantTotalLarge, 0)} ` +
        `connections in total (tenants of ${c.tenantConnections}).`,
    );
    lines.push('');
    lines.push(
      `| contender | ${fmt(c.tenantTotalSmall, 0)} total: CPU µs/broadcast ` +
        `| ${fmt(c.tenantTotalLarge, 0)} total: CPU µs/broadcast | ratio (per round, median) |`,
    );
    lines.push('|---|---:|---:|---:|');
    for (const id of tenant)
      lines.push(
        `| ${label[id]} | ${cell(s[id].tenantSmall, 1)} | ${cell(s[id].tenantLarge, 1)} ` +
          `| ${cell(s[id].tenantRatio, 2)} |`,
      );
  }
  const jwks = ids.filter((id) => s[id].jwksFetches);
  if (jwks.length) {
    lines.push('');
    lines.push(
      'JWKS (served by the bench over HTTP on 127.0.0.1; fetches counted at that server, per listener: ' +
        'the flow has two listeners on the same key set, /echo and /bcast, and each keeps its own key cache), ' +
        'per server process, i.e. per round:',
    );
    lines.push('');
    lines.push(
      '| contender | JWKS fetches (all listeners) | most by one listener | handshakes ' +
        '| fetches per 1,000 handshakes | random-kid handshakes refused | refetches they caused |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const id of jwks) {
      const x = s[id];
      lines.push(
        `| ${label[id]} | ${fmt(x.jwksFetches.max, 0)} ` +
          `| ${x.jwksMaxPerListener ? fmt(x.jwksMaxPerListener.max, 0) : '–'} ` +
          `| ${fmt(x.jwksHandshakes.median, 0)} | ${fmt(x.jwksPer1000.median, 2)} ` +
          `| ${x.stormRefused ? `${fmt(x.stormRefused.median, 0)} / ` : ''}` +
          `${x.stormRefused ? fmt(r.counts.jwksStormHandshakes, 0) : '–'} ` +
          `| ${x.stormFetches ? fmt(x.stormFetches.max, 0) : '–'} |`,
      );
    }
  }
  lines.push('');
  lines.push('Targets: the median over rounds of the per-round ratio (min–max in brackets).');
  lines.push('');
  lines.push('| target | contender | measured | limit | result |');
  lines.push('|---|---|---:|---:|---|');
  for (const t of r.targets) {
    const range =
      t.min !== undefined && t.max !== undefined && t.min !== t.max ? ` (${fmt(t.min, 2)}–${fmt(t.max, 2)})` : '';
    const measured =
      t.value === undefined ? t.detail || '–' : `${fmt(t.value, 2)}${range}${t.unit ? ` ${t.unit}` : ''}`;
    const aim = t.aim !== undefined ? ` (aim ${t.aim}: ${t.aimMet ? 'met' : 'not met'})` : '';
    const extra = t.storm !== undefined ? `; random kids: ${t.storm} refetch` : '';
    lines.push(
      `| ${t.target} | ${label[t.contender] || t.contender} | ${measured}${extra} ` +
        `| ${t.limit === undefined ? '–' : `≤ ${t.limit}`} | **${t.result}**${aim} |`,
    );
  }
  const notes = explainMisses(r);
  if (notes.length) {
    lines.push('');
    lines.push('Where a target is missed, this run shows why:');
    lines.push('');
    for (const n of notes) lines.push(`- ${n}`);
  }
  const c = r.counts;
  lines.push('');
  lines.push(
    `Workloads per round: ${fmt(c.handshakes, 0)} handshakes at concurrency ${c.handshakeConcurrency} ` +
      `(a fresh token each, close after open); ` +
      `echo: ${c.echoConnections} connections × ${c.echoInFlight} in flight, ${c.messageBytes}-byte text messages, ` +
      `${fmt(c.echoMessages, 0)} messages; ` +
      `latency: ${fmt(c.latencyRate, 0)} msgs/s for ${fmt(c.latencyMs / 1000, 1)} s over the same connections; ` +
      `broadcast: ${fmt(c.broadcasts, 0)} messages to ${fmt(c.broadcastClients, 0)} clients ` +
      `(${c.broadcastWindow} in flight); ` +
      `RSS: the growth from ${fmt(c.broadcastClients, 0)} to ${fmt(2 * c.broadcastClients, 0)} idle connections ` +
      `(the first ${fmt(c.broadcastClients, 0)} fill the free space a fresh process has), ` +
      'forced GC before each reading; ' +
      `tenant fan-out: ${fmt(c.tenantBroadcasts, 0)} tenant broadcasts. Warm-up before every window; ` +
      'a full GC before each window starts. All servers run with --expose-gc and 16 MB young-generation semi-spaces.',
  );
  for (const n of r.notes || []) lines.push(`\nNote: ${n}`);
  for (const f of r.failures || []) lines.push(`\nFailed: ${f.contender} round ${f.round}: ${f.error.split('\n')[0]}`);
  return lines.join('\n') + '\n';
}

/** Data-driven notes for missed targets: the comparisons in this run that explain them. */
function explainMisses(r) {
  const out = [];
  const s = r.stats;
  const med = (id, m) => s[id] && s[id][m] && s[id][m].median;
  const ratio = (id, m, ref) => r.ratios[id] && r.ratios[id][m] && r.ratios[id][m][ref] && r.ratios[id][m][ref].median;
  const missed = (prefix) => r.targets.some((t) => t.result === 'MISS' && t.target.startsWith(prefix));
  const ws8 = r.machine.ws;
  if (missed('HS256 handshake')) {
    const jwtCore = ratio('raw-jwt', 'hsCpu', 'core');
    const jwtRaw = ratio('raw-jwt', 'hsCpu', 'raw');
    const noneRaw = ratio('plus-none', 'hsCpu', 'raw');
    if (jwtRaw !== undefined) {
      out.push(
        `Handshake: raw ws + jose spends ${fmt(jwtRaw, 2)} × raw ws without verification ` +
          `(${fmt(jwtCore, 2)} × core's unauthenticated handshake); websocket-plus without a token (auth none) ` +
          `spends ${fmt(noneRaw, 2)} × raw ws, which is the listener's own share (origin check, deadline, ` +
          'session record, metrics, the Node-RED runtime around it) on top of what jose costs. ' +
          "jose 6 verifies HS256 through WebCrypto: one asynchronous job on libuv's thread pool per token.",
      );
    }
  }
  if ((missed('echo server') || missed('global broadcast')) && r.ws7 && med('raw-ws7', 'echoCpu') !== undefined) {
    out.push(
      "Echo and broadcast: the CPU per frame is mostly ws's send path (one writev system call per frame). " +
        `websocket-plus depends on ws ${ws8}, while Node-RED core uses the ws ${r.ws7} it bundles; ` +
        `in this run raw ws ${ws8} spends ${fmt(1 / ratio('raw-ws7', 'echoCpu', 'raw'), 2)} × (echo) ` +
        `and ${fmt(1 / ratio('raw-ws7', 'bcastCpu', 'raw'), 2)} × (broadcast) the server CPU of raw ws ` +
        `${r.ws7} (paired by round). ` +
        `websocket-plus HS256 spends ${fmt(ratio('plus-hs256', 'echoCpu', 'raw'), 2)} × (echo) ` +
        `and ${fmt(ratio('plus-hs256', 'bcastCpu', 'raw'), 2)} × (broadcast) raw ws ${ws8}. ` +
        `The bare ws ${ws8} server builds every frame's options in V8's runtime after its first full GCs; ` +
        'websocket-plus keeps ws on its optimized path (bench/README.md, "ws 8\'s send path after a full ' +
        'garbage collection", and instructions per message in bench/results/instructions-latest.md).',
    );
  }
  if (missed('echo p99')) {
    const p = (id) => (s[id] && s[id].p99 ? s[id].p99.values.map((v) => fmt(v, 2)).join(', ') : '–');
    const overlap = ['plus-none', 'plus-hs256'].every(
      (id) => !s[id] || !s[id].p99 || !s.core || !s.core.p99 || s[id].p99.min <= s.core.p99.max,
    );
    out.push(
      `p99 latency (${fmt(r.counts.latencyRate, 0)} msgs/s for ${fmt(r.counts.latencyMs / 1000, 1)} s per round), ` +
        `per round: core ${p('core')} ms; websocket-plus none ${p('plus-none')}; HS256 ${p('plus-hs256')}; ` +
        `raw ws ${p('raw')} ms` +
        (overlap
          ? " — every websocket-plus mode has a round at or below core's worst round: " +
            'the rounds vary more than the contenders differ.'
          : '.'),
    );
  }
  if (missed('RSS')) {
    const h = ['plus-none', 'plus-hs256', 'plus-rs256', 'plus-es256']
      .map((id) => ratio(id, 'heapKB', 'core'))
      .filter((v) => v !== undefined);
    if (h.length) {
      const jwt = ratio('raw-jwt', 'rssKB', 'raw');
      out.push(
        'RSS: the V8 heap (+external) per idle connection of the websocket-plus modes is ' +
          `${fmt(Math.min(...h), 2)}–${fmt(Math.max(...h), 2)} × core's; ` +
          'the rest of the RSS growth is native memory outside the V8 heap' +
          (jwt !== undefined
            ? ` (raw ws + jose has ${fmt(jwt, 2)} × the RSS per connection of raw ws with the same V8 heap per connection: ` +
              'the difference lies outside the V8 heap and comes with verifying the token, not with the listener).'
            : '.'),
      );
    }
  }
  return out;
}

/**
 * The table of a BENCH_CALLGRIND run. The first pass of each contender is left out (it compiles
 * the window's code). Of the others, the least disturbed window (the fewest instructions: no
 * compilation and no major GC inside it) is the steady cost; the median shows how often V8 did
 * such work inside a window. Ratios to core are taken between the least disturbed windows.
 */
function renderInstructionCounts(out) {
  const median = (v) => {
    const x = [...v].sort((a, b) => a - b);
    const m = Math.floor(x.length / 2);
    return x.length % 2 ? x[m] : (x[m - 1] + x[m]) / 2;
  };
  const lines = [
    `Instructions per message (callgrind, main thread, \`--single-threaded\`; echo ${out.mode}), ${out.date.slice(0, 10)}, passes after the first`,
    '',
  ];
  for (const [f, byId] of Object.entries(out.figures)) {
    const unit = { echo: 'echoed message', broadcast: 'delivery', handshake: 'handshake' }[f];
    const least = (id) => Math.min(...byId[id].passes.slice(1));
    lines.push(
      `| ${f}: contender | least disturbed window, per ${unit} | median (min–max) | least disturbed ÷ core |`,
      '|---|---:|---:|---:|',
    );
    for (const [id, fig] of Object.entries(byId)) {
      const v = fig.passes.slice(1);
      if (!v.length) continue;
      const ratio = byId.core ? (least(id) / least('core')).toFixed(3) : '–';
      lines.push(
        `| ${fig.label} | ${Math.round(least(id))} | ${Math.round(median(v))} (${Math.round(Math.min(...v))}–${Math.round(Math.max(...v))}) | ${ratio} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

module.exports = { renderMarkdown, renderInstructionCounts };
