'use strict';
// The flow library scorecard (`node-red-dev validate`, devDependency) on the package exactly as
// it is published (the packed tarball, extracted), run offline: test/helpers/offline-catalogue.js
// answers its catalogue and registry requests locally and blocks anything else.
const assert = require('assert');
const { execFile } = require('child_process');
const fs = require('fs');
const path = require('path');
const { ROOT } = require('../helpers/node-red-process');
const { packOnce } = require('../helpers/package-tarball');

const PRELOAD = path.join(ROOT, 'test', 'helpers', 'offline-catalogue.js');
const CLI = path.join(ROOT, 'node_modules', 'node-red-dev', 'bin', 'run');
const CHECKS = ['P01', 'P03', 'P04', 'P05', 'P06', 'P07', 'P08', 'N01', 'N02', 'D01', 'D02', 'D03'];

/**
 * The one warning that cannot go away without renaming the package: for every package without
 * a creation date (not yet published, or published after 2022-02-01) the tool advises a scoped
 * name, then checks the unscoped name against the node-red-contrib-* rule and records P04 as
 * passed. The package name is fixed by the project (issue 2), so this advisory is accepted.
 */
const ACCEPTED_WARNINGS = [/^Warning: P04 New Packages should use a scoped name$/];

/**
 * P03 wants a repository or bugs URL. The project has no public repository yet and we do not
 * invent one: until package.json names a real one, P03 is the one check allowed to fail (and its
 * warning the one more allowed); once it does, P03 is held like every other check.
 */
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const AWAITING_REPOSITORY = !pkg.repository && !pkg.bugs;
if (AWAITING_REPOSITORY) ACCEPTED_WARNINGS.push(/^Warning: P03 Please provide either a repository URL or a Bugs URL\/Email$/);
const REQUIRED_CHECKS = AWAITING_REPOSITORY ? CHECKS.filter((c) => c !== 'P03') : CHECKS;

function validate(dir, output) {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-r', PRELOAD, CLI, 'validate', '-p', dir, '-o', output], {
      cwd: dir,
      timeout: 60000,
      env: { ...process.env, OFFLINE_CATALOGUE_TRACE: '1' },
    }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

describe('e2e: flow library scorecard (node-red-dev validate, offline)', function () {
  this.timeout(90000);
  let result;
  let scorecard;

  before(async function () {
    const pack = await packOnce();
    const output = path.join(pack.dir, 'scorecard.json');
    result = await validate(pack.extractedDir, output);
    scorecard = fs.existsSync(output) ? JSON.parse(fs.readFileSync(output, 'utf8')) : undefined;
  });

  it('runs to completion without the internet', function () {
    assert.strictEqual(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^Complete$/m);
    const blocked = result.stderr.split('\n').filter((l) => l.startsWith('offline-catalogue: blocked'));
    assert.deepStrictEqual(blocked, []);
    // the stub really was in the path: the catalogue and node-red's versions came from it
    assert.match(result.stderr, /offline-catalogue: answered 200 https:\/\/catalogue\.nodered\.org\/catalogue\.json/);
    assert.match(result.stderr, /offline-catalogue: answered 200 https:\/\/registry\.npmjs\.org\/node-red$/m);
  });

  it('passes every check of the scorecard', function () {
    assert.ok(scorecard, 'no scorecard written');
    const failed = REQUIRED_CHECKS.filter((c) => !scorecard[c] || scorecard[c].test !== true);
    assert.deepStrictEqual(failed, [], `failed checks: ${JSON.stringify(Object.fromEntries(failed.map((c) => [c, scorecard[c]])))}\n${result.stderr}`);
    assert.deepStrictEqual(scorecard.N02.nodes.sort(), ['websocket-plus in', 'websocket-plus out']);
  });

  it('prints no warnings (besides the scoped-name advisory)', function () {
    const warnings = result.stderr
      .split('\n')
      .map((l) => l.replace(/^\s*›\s*/, '').trim())
      .filter((l) => /^(Warning|Error)\b/.test(l) || /Unable to (parse|read)|could not load/i.test(l));
    const unexpected = warnings.filter((w) => !ACCEPTED_WARNINGS.some((re) => re.test(w)));
    assert.deepStrictEqual(unexpected, []);
    assert.ok(!/could not load|Unable to/.test(result.stdout), result.stdout);
  });
});
