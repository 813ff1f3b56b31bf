#!/usr/bin/env node
'use strict';
// Replaces the block between <!-- bench:start --> and <!-- bench:end --> in README.md with
// bench/results/latest.md. Skips (with a message) when README.md or the markers are missing.
const fs = require('fs');
const path = require('path');

const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

function update(root = path.resolve(__dirname, '..')) {
  const readme = path.join(root, 'README.md');
  const latest = path.join(__dirname, 'results', 'latest.md');
  if (!fs.existsSync(latest)) {
    console.log('update-readme: bench/results/latest.md does not exist yet (run npm run bench); skipped');
    return false;
  }
  if (!fs.existsSync(readme)) {
    console.log('update-readme: README.md does not exist; skipped');
    return false;
  }
  const text = fs.readFileSync(readme, 'utf8');
  const a = text.indexOf(START);
  const b = text.indexOf(END, a + START.length);
  if (a === -1 || b === -1) {
    console.log(`update-readme: README.md has no ${START} … ${END} block; skipped`);
    return false;
  }
  const table = fs.readFileSync(latest, 'utf8').trim();
  const next = `${text.slice(0, a + START.length)}\n${table}\n${text.slice(b)}`;
  if (next === text) {
    console.log('update-readme: README.md already up to date');
    return true;
  }
  fs.writeFileSync(readme, next);
  console.log('update-readme: README.md benchmark block updated');
  return true;
}

module.exports = { update };
if (require.main === module) update();
