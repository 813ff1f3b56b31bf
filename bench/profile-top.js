#!/usr/bin/env node
'use strict';
// Prints the hottest functions of a V8 .cpuprofile (from `BENCH_PROFILE=<contender> npm run bench`,
// written to bench/results/tmp/prof/): self time and total (inclusive) time, with file:line.
// Usage: node bench/profile-top.js <file.cpuprofile> [rows=30] [filter-substring]
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
  for (let i = 0; i < samples.length; i++) dt.set(samples[i], (dt.get(samples[i]) || 0) + (timeDeltas[i] || 0));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
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

main();
