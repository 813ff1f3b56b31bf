#!/usr/bin/env node
'use strict';
/**
 * Reads the callgrind dumps of a `BENCH_CALLGRIND=1` run: instructions per message by function,
 * with V8's compiled JavaScript named through the perf map each server wrote (--perf-basic-prof),
 * and by layer (ws, Node-RED, websocket-plus, node's own JavaScript, V8 and native code).
 *
 *   node bench/callgrind-top.js <dump> [<dump> ...] [--per N] [--rows 40] [--vs <dump> ...]
 *
 * Several dumps of one server are added up (their windows together); `--per N` divides by the
 * messages of all of them; `--vs` prints the difference to another server's dumps, function by
 * function. The perf map is found from the process id in the dump's name (perf-<pid>.map beside
 * the dump, where the bench moves it, or in /tmp where V8 writes it).
 */
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

function args(argv) {
  const out = { dumps: [], vs: [], per: 1, rows: 40 };
  let list = out.dumps;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--vs') list = out.vs;
    else if (argv[i] === '--per') out.per = Number(argv[++i]);
    else if (argv[i] === '--rows') out.rows = Number(argv[++i]);
    else list.push(argv[i]);
  }
  return out;
}

/** Sorted [start, end, name] of the JIT code objects in the perf map of the dump's process. */
function perfMap(dump) {
  const pid = /\.(\d+)(?:\.\d+)?(?:-\d+)?$/.exec(dump)?.[1];
  if (!pid) return [];
  const file = [path.join(path.dirname(dump), `perf-${pid}.map`), `/tmp/perf-${pid}.map`].find((f) => fs.existsSync(f));
  if (!file) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line))
    .filter(Boolean)
    .map((m) => [parseInt(m[1], 16), parseInt(m[1], 16) + parseInt(m[2], 16), m[3]])
    .sort((a, b) => a[0] - b[0]);
}

function resolve(map, address) {
  let lo = 0;
  let hi = map.length - 1;
  let found;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (map[mid][0] <= address) {
      found = map[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found && address < found[1] ? found[2] : undefined;
}

/** Self instructions by function name for one dump. */
function selfCosts(dump) {
  const text = execFileSync('callgrind_annotate', ['--threshold=100', dump], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const map = perfMap(dump);
  const costs = new Map();
  for (const line of text.split('\n')) {
    const m = /^\s*([\d,]+) \([^)]*\)\s+(.*)$/.exec(line);
    if (!m || m[2].startsWith('PROGRAM TOTALS')) continue;
    const ir = Number(m[1].replace(/,/g, ''));
    let name = m[2].replace(/ \[[^\]]*\]$/, '').replace(/'\d+$/, '');
    const address = /^\?\?\?:0x([0-9a-f]+)/.exec(name);
    if (address) name = resolve(map, parseInt(address[1], 16)) || 'JIT code (unnamed)';
    else name = name.replace(/^\?\?\?:/, '').replace(/^[^:]*\/([^/:]+):/, '$1:');
    // The tier marks (* optimized, ^ baseline, ~ interpreted, + Maglev) are kept: they say which code ran.
    costs.set(name, (costs.get(name) || 0) + ir);
  }
  return costs;
}

function sum(dumps) {
  const total = new Map();
  for (const d of dumps) for (const [k, v] of selfCosts(d)) total.set(k, (total.get(k) || 0) + v);
  return total;
}

function layer(name) {
  if (/\/ws\/lib\/|node_modules\/ws\//.test(name)) return 'ws';
  if (/@node-red\//.test(name)) return 'Node-RED';
  if (/websocket-plus|\/nodes\/websocket-plus|\/core\/(server|flow|auth)\//.test(name) || /bench-pkg|pkg\//.test(name))
    return 'websocket-plus';
  if (/^JS:.*node:/.test(name)) return "node's JavaScript";
  if (/^JS:|^RegExp:|^Builtin:/.test(name)) return 'other JavaScript';
  if (/^Builtins_/.test(name)) return 'V8 builtins';
  if (/v8::|node::|uv_|libc|malloc|free|memcpy|memmove/.test(name)) return 'V8, node and libc native';
  return 'other';
}

function main() {
  const a = args(process.argv.slice(2));
  if (!a.dumps.length) {
    console.error('usage: callgrind-top.js <dump>... [--per N] [--rows 40] [--vs <dump>...]');
    process.exit(2);
  }
  const x = sum(a.dumps);
  const y = a.vs.length ? sum(a.vs) : undefined;
  const fmt = (v) => (v / a.per).toFixed(1).padStart(10);
  const total = (m) => [...m.values()].reduce((s, v) => s + v, 0);
  console.log(`total ${fmt(total(x))}${y ? `   vs ${fmt(total(y))}   difference ${fmt(total(x) - total(y))}` : ''}`);
  const layers = (m) => {
    const out = new Map();
    for (const [k, v] of m) out.set(layer(k), (out.get(layer(k)) || 0) + v);
    return out;
  };
  const lx = layers(x);
  const ly = y && layers(y);
  console.log('\nby layer');
  for (const k of new Set([...lx.keys(), ...(ly ? ly.keys() : [])]))
    console.log(
      `${fmt(lx.get(k) || 0)}${ly ? ` ${fmt(ly.get(k) || 0)} ${fmt((lx.get(k) || 0) - (ly.get(k) || 0))}` : ''}  ${k}`,
    );
  console.log(`\nby function${y ? ' (this, other, difference; largest differences first)' : ''}`);
  const keys = [...new Set([...x.keys(), ...(y ? y.keys() : [])])];
  const score = (k) => (y ? Math.abs((x.get(k) || 0) - (y.get(k) || 0)) : x.get(k) || 0);
  keys.sort((p, q) => score(q) - score(p));
  for (const k of keys.slice(0, a.rows))
    console.log(
      `${fmt(x.get(k) || 0)}${y ? ` ${fmt(y.get(k) || 0)} ${fmt((x.get(k) || 0) - (y.get(k) || 0))}` : ''}  ${k.slice(0, 150)}`,
    );
}

main();
