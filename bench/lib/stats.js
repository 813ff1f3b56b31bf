'use strict';
// Medians, spreads, ratios and the targets, computed from the per-round figures.

const METRICS = {
  hsCpu: (f) => f.handshake && f.handshake.cpuUsPerHandshake,
  hsRate: (f) => f.handshake && f.handshake.perSecond,
  echoCpu: (f) => f.echo && f.echo.cpuUsPerMessage,
  echoRate: (f) => f.echo && f.echo.perSecond,
  p50: (f) => f.latency && f.latency.p50Ms,
  p99: (f) => f.latency && f.latency.p99Ms,
  bcastCpu: (f) => f.broadcast && f.broadcast.cpuUsPerDelivery,
  bcastRate: (f) => f.broadcast && f.broadcast.perSecond,
  rssKB: (f) => f.rss && f.rss.rssPerConnKB,
  heapKB: (f) => f.rss && f.rss.heapPerConnKB,
  tenantSmall: (f) => f.tenant && f.tenant.small.cpuUsPerBroadcast,
  tenantLarge: (f) => f.tenant && f.tenant.large.cpuUsPerBroadcast,
  tenantRatio: (f) => f.tenant && f.tenant.ratio,
  jwksFetches: (f) => f.jwks && f.jwks.fetches,
  jwksMaxPerListener: (f) => f.jwks && f.jwks.maxPerListener,
  jwksListeners: (f) => f.jwks && Object.keys(f.jwks.perListener).length,
  jwksHandshakes: (f) => f.jwks && f.jwks.handshakes,
  jwksPer1000: (f) => f.jwks && f.jwks.per1000,
  stormFetches: (f) => f.jwksStorm && f.jwksStorm.fetches,
  stormRefused: (f) => f.jwksStorm && f.jwksStorm.refused,
};

function describe(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1], n: v.length, values };
}

const RATIO_METRICS = ['hsCpu', 'echoCpu', 'bcastCpu', 'p99', 'rssKB', 'heapKB'];
const REFERENCES = ['raw', 'raw-jwt', 'core'];
const PLUS_NODE_RED = ['plus-none', 'plus-hs256', 'plus-rs256', 'plus-es256'];

function targetsFor(stats, ratios, counts = {}) {
  const n = (v, d) => (typeof v === 'number' ? v.toLocaleString('en-US') : d);
  const tenantTarget =
    `tenant fan-out: CPU per tenant broadcast at ${n(counts.tenantTotalLarge, '10,000')} total ` +
    `≤ 1.5 × at ${n(counts.tenantTotalSmall, '100')}`;
  const med = (id, m) => stats[id] && stats[id][m] && stats[id][m].median;
  const max = (id, m) => stats[id] && stats[id][m] && stats[id][m].max;
  const rows = [];
  const ratioRow = (target, id, metric, ref, limit, extra = {}) => {
    const q = ratios[id] && ratios[id][metric] && ratios[id][metric][ref];
    if (!q) return rows.push({ target, contender: id, result: 'n/a', detail: 'not measured' });
    const aim = extra.aim !== undefined ? { aim: extra.aim, aimMet: q.median <= extra.aim } : {};
    rows.push({
      target,
      contender: id,
      value: q.median,
      min: q.min,
      max: q.max,
      limit,
      unit: `× ${ref}`,
      result: q.median <= limit ? 'PASS' : 'MISS',
      ...aim,
    });
  };
  ratioRow(
    'HS256 handshake server CPU ≤ 1.0 × raw ws + jose (jose verifying the same tokens)',
    'plus-hs256',
    'hsCpu',
    'raw-jwt',
    1.0,
  );
  // Echo, latency and broadcast run the same code in every auth mode once connected: none and HS256.
  const measuredModes = (m) => PLUS_NODE_RED.filter((id) => stats[id] && stats[id][m]);
  for (const id of measuredModes('echoCpu'))
    ratioRow('echo server CPU per message ≤ 1.0 × core (aim 0.9 ×)', id, 'echoCpu', 'core', 1.0, { aim: 0.9 });
  const p99Target = 'echo p99 latency no worse than core (≤ 1.1 ×: 10 % allowance for timer noise)';
  for (const id of measuredModes('p99')) ratioRow(p99Target, id, 'p99', 'core', 1.1);
  for (const id of measuredModes('bcastCpu'))
    ratioRow('global broadcast server CPU per delivery ≤ 0.95 × core', id, 'bcastCpu', 'core', 0.95);
  for (const id of ['plus-hs256', 'listener']) {
    const r = med(id, 'tenantRatio');
    if (r === undefined) rows.push({ target: tenantTarget, contender: id, result: 'n/a', detail: 'not measured' });
    else
      rows.push({
        target: tenantTarget,
        contender: id,
        value: r,
        min: stats[id].tenantRatio.min,
        max: stats[id].tenantRatio.max,
        limit: 1.5,
        unit: `× (${n(counts.tenantTotalSmall, '100')} total)`,
        result: r <= 1.5 ? 'PASS' : 'MISS',
      });
  }
  for (const id of PLUS_NODE_RED)
    ratioRow('RSS per idle connection (after forced GC) ≤ 1.0 × core', id, 'rssKB', 'core', 1.0);
  for (const id of ['plus-rs256', 'plus-es256']) {
    const fetches = max(id, 'jwksMaxPerListener');
    const storm = max(id, 'stormFetches');
    if (fetches === undefined) {
      rows.push({
        target: 'JWKS: at most one fetch per key set per cache period',
        contender: id,
        result: 'n/a',
        detail: 'not measured',
      });
      continue;
    }
    const ok = fetches <= 1 && (storm === undefined || storm <= 1);
    rows.push({
      target: 'JWKS: at most one fetch per key set per cache period',
      contender: id,
      value: fetches,
      limit: 1,
      unit: 'fetch per listener per server lifetime (< cache period)',
      storm,
      result: ok ? 'PASS' : 'MISS',
    });
  }
  return rows;
}

function summarise(raw) {
  const stats = {};
  for (const { id } of raw.contenders) {
    stats[id] = {};
    for (const [name, pick] of Object.entries(METRICS)) {
      const d = describe(raw.runs[id].map((f) => pick(f)));
      if (d) stats[id][name] = d;
    }
  }
  // Ratios are paired by round: contender ÷ reference measured in the same round (the rounds
  // interleave the contenders, so pairing cancels slow drifts of the machine); median over rounds.
  const ratios = {};
  for (const { id } of raw.contenders) {
    ratios[id] = {};
    for (const m of RATIO_METRICS) {
      const pick = METRICS[m];
      const own = raw.runs[id].map((f) => pick(f));
      if (!own.some((v) => typeof v === 'number')) continue;
      ratios[id][m] = {};
      for (const ref of REFERENCES) {
        if (!raw.runs[ref]) continue;
        const theirs = raw.runs[ref].map((f) => pick(f));
        const paired = [];
        for (let i = 0; i < Math.min(own.length, theirs.length); i++) {
          if (typeof own[i] === 'number' && typeof theirs[i] === 'number' && theirs[i] > 0)
            paired.push(own[i] / theirs[i]);
        }
        const d = describe(paired);
        if (d) ratios[id][m][ref] = d;
      }
    }
  }
  // CPU used by other processes on the machine during the windows (a noise indicator).
  const shares = [];
  for (const runs of Object.values(raw.runs)) {
    for (const f of runs) {
      for (const part of [f.handshake, f.echo, f.broadcast, f.tenant && f.tenant.small, f.tenant && f.tenant.large]) {
        if (part && typeof part.otherCpuShare === 'number') shares.push(part.otherCpuShare);
      }
    }
  }
  const background = describe(shares);
  return { ...raw, stats, ratios, background, targets: targetsFor(stats, ratios, raw.counts) };
}

module.exports = { summarise, describe, METRICS };
