#!/usr/bin/env node
'use strict';
// Replaces the block between <!-- bench:start --> and <!-- bench:end --> in docs/benchmarks.md with
// bench/results/latest.md (the README links to that page and quotes its headline ratios). Skips (with
// a message) when the page or the markers are missing. The name is kept from when the block lived in
// the README: `npm run bench` (bench/run.js) and contributors call it by this name.
const fs = require('fs');
const path = require('path');

const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';
const PAGE = path.join('docs', 'benchmarks.md');

function update(root = path.resolve(__dirname, '..')) {
  const page = path.join(root, PAGE);
  const latest = path.join(__dirname, 'results', 'latest.md');
  if (!fs.existsSync(latest)) {
    console.log('update-readme: bench/results/latest.md does not exist yet (run npm run bench); skipped');
    return false;
  }
  if (!fs.existsSync(page)) {
    console.log(`update-readme: ${PAGE} does not exist; skipped`);
    return false;
  }
  const text = fs.readFileSync(page, 'utf8');
  const a = text.indexOf(START);
  const b = text.indexOf(END, a + START.length);
  if (a === -1 || b === -1) {
    console.log(`update-readme: ${PAGE} has no ${START} … ${END} block; skipped`);
    return false;
  }
  const table = fs.readFileSync(latest, 'utf8').trim();
  const next = `${text.slice(0, a + START.length)}\n${table}\n${text.slice(b)}`;
  if (next === text) {
    console.log(`update-readme: ${PAGE} already up to date`);
    return true;
  }
  fs.writeFileSync(page, next);
  console.log(`update-readme: ${PAGE} benchmark block updated`);
  return true;
}

module.exports = { update, PAGE, START, END };
if (require.main === module) update();
