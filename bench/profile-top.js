#!/usr/bin/env node
'use strict';
// Prints the hottest functions of a V8 .cpuprofile (from `BENCH_PROFILE=<contender> npm run bench`,
// written to bench/results/tmp/prof/): self time and total (inclusive) time, with file:line.
// Usage: node bench/profile-top.js <file.cpuprofile> [rows=30] [filter-substring]
// WINDOW=echo (only the samples inside the bench's echo windows), LAYERS=1 (share by layer: ws,
// Node-RED, websocket-plus, ...), CALLERS=<name> (stacks through a function).
const fs = require('fs');
const path = require('path');

function main() {
  const [file, rowsArg, filter] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node bench/profile-top.js <file.cpuprofile> [rows] [filter]');
    process.exit(2);
  }
  const rows = Number(rowsArg || 30);
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const dt = new Map();
  const { samples, timeDeltas } = profile;
  const inWindow = windowFilter(file, profile);
  for (let t = profile.startTime, i = 0; i < samples.length; i++) {
    t += timeDeltas[i] || 0;
    if (inWindow && !inWindow(t)) continue;
    dt.set(samples[i], (dt.get(samples[i]) || 0) + (timeDeltas[i] || 0));
  }
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
  if (process.env.LAYERS) printLayers(byId, parent, dt);
  const key = (n) => {
    const f = n.callFrame;
    const url = f.url ? f.url.replace(/^file:\/\//, '') : '';
    const short = url ? path.relative(process.cwd(), url) : '(native)';
    return `${f.functionName || '(anonymous)'} ${short}:${f.lineNumber + 1}`;
  };
  const self = new Map();
  const total = new Map();
  let all = 0;
  for (const [id, us] of dt) {
    all += us;
    const n = byId.get(id);
    self.set(key(n), (self.get(key(n)) || 0) + us);
    // Inclusive time: each distinct function once per stack.
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur));
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) || 0) + us);
    }
  }
  const show = (title, map) => {
    console.log(`\n${title} (of ${(all / 1000).toFixed(0)} ms sampled)`);
    [...map.entries()]
      .filter(([k]) => !filter || k.includes(filter))
      .sort((a, b) => b[1] - a[1])
      .slice(0, rows)
      .forEach(([k, us]) =>
        console.log(`${(us / 1000).toFixed(1).padStart(9)} ms ${((us / all) * 100).toFixed(1).padStart(5)}%  ${k}`),
      );
  };
  show('self time', self);
  show('total time', total);
  if (process.env.CALLERS) {
    // Stacks (up to 8 frames) that lead to functions matching CALLERS, by sampled time.
    const stacks = new Map();
    for (const [id, us] of dt) {
      const chain = [];
      let hit = false;
      for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
        const k = key(byId.get(cur));
        if (!hit && k.includes(process.env.CALLERS)) hit = true;
        if (hit) chain.push(k);
        if (chain.length >= 8) break;
      }
      if (!hit) continue;
      const s = chain.join('\n      <- ');
      stacks.set(s, (stacks.get(s) || 0) + us);
    }
    console.log(`\nstacks through ${process.env.CALLERS}`);
    [...stacks.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .forEach(([s, us]) => console.log(`${(us / 1000).toFixed(1).padStart(9)} ms  ${s}`));
  }
}

/**
 * WINDOW=<name>[,<name>]: only the samples taken inside the bench's measurement windows of that
 * name (echo, broadcast, handshake, tenant), read from the .windows.jsonl file the profiled server
 * wrote beside its profile (same monotonic clock as the profile's timestamps).
 */
function windowFilter(file, profile) {
  if (!process.env.WINDOW) return undefined;
  const names = new Set(process.env.WINDOW.split(','));
  const wfile = file.replace(/\.cpuprofile$/, '.windows.jsonl');
  const marks = fs
    .readFileSync(wfile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const ranges = [];
  let open;
  for (const m of marks) {
    if (!names.has(m.name)) continue;
    if (m.phase === 'start') open = m.t;
    else if (open !== undefined) (ranges.push([open, m.t]), (open = undefined));
  }
  if (ranges.length === 0) throw new Error(`no window named ${process.env.WINDOW} in ${wfile}`);
  if (ranges[0][0] < profile.startTime || ranges[ranges.length - 1][1] > profile.endTime)
    console.log('note: some windows lie outside the profile (different clocks?)');
  console.log(
    `windows ${process.env.WINDOW}: ${ranges.length}, ${ranges.map(([a, b]) => ((b - a) / 1000).toFixed(0)).join(' + ')} ms`,
  );
  return (t) => ranges.some(([a, b]) => t >= a && t <= b);
}

/** The layer a frame's code belongs to; undefined for node's own code and native frames. */
function layerOf(url) {
  if (!url) return undefined;
  if (/\/ws\/lib\//.test(url)) return 'ws';
  if (/@node-red\/|\/node-red\//.test(url)) return 'Node-RED';
  if (/\/nodes\/lib\//.test(url)) return 'websocket-plus';
  if (/node_modules\//.test(url)) return 'other packages';
  if (/\/bench\//.test(url)) return 'bench harness';
  return undefined;
}

/**
 * LAYERS=1: each non-idle sample goes to the layer of the innermost frame that belongs to one (ws,
 * Node-RED, websocket-plus, ...): node's own code and native calls (writev, Buffer, JSON) count
 * for the layer that called them. Garbage collection and V8's (program) are shown apart.
 */
function printLayers(byId, parent, dt) {
  const layers = new Map();
  const byFn = new Map();
  let all = 0;
  for (const [id, us] of dt) {
    const leaf = byId.get(id).callFrame;
    if (leaf.functionName === '(idle)') continue;
    all += us;
    let layer;
    let owner;
    if (leaf.functionName === '(garbage collector)') layer = 'garbage collector';
    else if (leaf.functionName === '(program)') layer = 'V8 (program)';
    else {
      for (let cur = id; cur !== undefined && !layer; cur = parent.get(cur)) {
        const f = byId.get(cur).callFrame;
        layer = layerOf(f.url);
        if (layer) owner = `${f.functionName || '(anonymous)'} ${path.basename(f.url)}:${f.lineNumber + 1}`;
      }
      layer = layer || 'node core only (no package frame)';
    }
    layers.set(layer, (layers.get(layer) || 0) + us);
    if (owner) byFn.set(`${layer}: ${owner}`, (byFn.get(`${layer}: ${owner}`) || 0) + us);
  }
  console.log(`\nlayers (innermost package frame; of ${(all / 1000).toFixed(0)} ms busy)`);
  [...layers.entries()]
    .sort((a, b) => b[1] - a[1])
    .forEach(([k, us]) =>
      console.log(`${(us / 1000).toFixed(1).padStart(9)} ms ${((us / all) * 100).toFixed(1).padStart(5)}%  ${k}`),
    );
  console.log('\nby owning function (incl. the node/native calls it makes)');
  [...byFn.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(process.env.LAYERS) > 1 ? Number(process.env.LAYERS) : 25)
    .forEach(([k, us]) =>
      console.log(`${(us / 1000).toFixed(1).padStart(9)} ms ${((us / all) * 100).toFixed(1).padStart(5)}%  ${k}`),
    );
}

main();
