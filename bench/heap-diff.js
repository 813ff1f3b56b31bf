#!/usr/bin/env node
'use strict';
// Diagnostics: compares two V8 heap snapshots (BENCH_HEAP_SNAPSHOTS=1 writes them with N and 2N
// idle connections) and prints, per object kind, how many objects and bytes the second has more,
// divided by `perUnit` (e.g. the N extra connections). Usage: node bench/heap-diff.js a b [perUnit]
const fs = require('fs');

function summarise(file) {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8'));
  const meta = snap.snapshot.meta;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const stride = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const out = new Map();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += stride) {
    const type = types[nodes[i + iType]];
    let name = snap.strings[nodes[i + iName]];
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(string)';
    else if (type === 'code') name = '(code)';
    else if (type === 'closure') name = `closure ${name}`;
    else if (type === 'array') name = `(array) ${name}`.slice(0, 60);
    else if (type === 'hidden') name = `(hidden) ${name}`.slice(0, 60);
    else if (type === 'number') name = '(heap number)';
    const key = `${type}:${name}`;
    const e = out.get(key) || { count: 0, bytes: 0 };
    e.count++;
    e.bytes += nodes[i + iSize];
    out.set(key, e);
  }
  return out;
}

const [a, b, perArg] = process.argv.slice(2);
const per = Number(perArg || 1);
const A = summarise(a);
const B = summarise(b);
const rows = [];
for (const [k, e] of B) {
  const f = A.get(k) || { count: 0, bytes: 0 };
  rows.push({ k, count: (e.count - f.count) / per, bytes: (e.bytes - f.bytes) / per });
}
rows.sort((x, y) => y.bytes - x.bytes);
let total = 0;
for (const r of rows) total += r.bytes;
console.log(`total ${total.toFixed(0)} bytes per unit`);
for (const r of rows.slice(0, 40))
  console.log(`${r.bytes.toFixed(0).padStart(7)} B ${r.count.toFixed(2).padStart(7)}×  ${r.k}`);
