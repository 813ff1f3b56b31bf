'use strict';
// The package as npm publishes it: `npm pack --ignore-scripts` of the built tree (run
// `npm run build` first), made once per test process, plus what an offline palette install needs.
const { execFile } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
let packed;

function run(cmd, args, options) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024, timeout: 120000, ...options }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/**
 * Resolves { file, dir, files } — the .tgz, the temp dir holding it (and its extracted copy at
 * dir/extracted/package) and the list of paths inside. Packed once; removed on process exit.
 */
function packOnce() {
  if (!packed) {
    packed = (async () => {
      if (!fs.existsSync(path.join(ROOT, 'nodes', 'websocket-plus.js')))
        throw new Error('nodes/ is missing: run `npm run build` first');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsplus-pack-'));
      process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
      const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
        cwd: ROOT,
      });
      const info = JSON.parse(stdout)[0];
      const file = path.join(dir, info.filename);
      const extracted = path.join(dir, 'extracted');
      fs.mkdirSync(extracted);
      await run('tar', ['-xzf', file, '-C', extracted]);
      return {
        file,
        dir,
        extractedDir: path.join(extracted, 'package'),
        files: info.files.map((f) => f.path),
        name: info.name,
        version: info.version,
      };
    })();
  }
  return packed;
}

/**
 * Package directories (absolute) of the runtime dependency closure of `fromDir`'s package.json,
 * resolved the way Node does from this repository's node_modules.
 */
function runtimeDependencyDirs(fromDir = ROOT) {
  const found = new Set();
  const visit = (parentDir, name, optional) => {
    let dir = parentDir;
    for (;;) {
      const candidate = path.join(dir, 'node_modules', name);
      if (fs.existsSync(path.join(candidate, 'package.json'))) {
        if (found.has(candidate)) return;
        found.add(candidate);
        const pkg = JSON.parse(fs.readFileSync(path.join(candidate, 'package.json'), 'utf8'));
        for (const dep of Object.keys(pkg.dependencies || {})) visit(candidate, dep, false);
        for (const dep of Object.keys(pkg.optionalDependencies || {})) visit(candidate, dep, true);
        return;
      }
      if (dir === ROOT || dir === path.dirname(dir)) break;
      dir = path.dirname(dir);
    }
    if (!optional) throw new Error(`dependency ${name} of ${parentDir} is not installed`);
  };
  const pkg = JSON.parse(fs.readFileSync(path.join(fromDir, 'package.json'), 'utf8'));
  for (const dep of Object.keys(pkg.dependencies || {})) visit(fromDir, dep, false);
  return [...found];
}

/**
 * Copies the package's runtime dependencies (already installed in this repository) into
 * `userDir/node_modules`, keeping their layout, so that npm can install the package tarball
 * there without the registry. Returns the number of packages copied.
 */
function seedDependencies(userDir) {
  const dirs = runtimeDependencyDirs();
  for (const abs of dirs) {
    const rel = path.relative(ROOT, abs); // node_modules/x or node_modules/x/node_modules/y
    const dest = path.join(userDir, rel);
    const nested = path.join(abs, 'node_modules');
    fs.cpSync(abs, dest, { recursive: true, filter: (src) => src !== nested && !src.startsWith(nested + path.sep) });
  }
  return dirs.length;
}

/**
 * Installs the packed package into `userDir` without npm: its runtime dependencies (copied as
 * above) and the extracted tarball as node_modules/<name>, listed in the user dir's package.json.
 * The copy is a snapshot: later rebuilds of nodes/ in the working tree do not affect it.
 */
async function installPackedCopy(userDir) {
  const pack = await packOnce();
  seedDependencies(userDir);
  fs.cpSync(pack.extractedDir, path.join(userDir, 'node_modules', pack.name), { recursive: true });
  fs.writeFileSync(
    path.join(userDir, 'package.json'),
    JSON.stringify(
      { name: 'node-red-project', version: '0.0.1', private: true, dependencies: { [pack.name]: pack.version } },
      null,
      2,
    ),
  );
  return pack;
}

module.exports = { packOnce, runtimeDependencyDirs, seedDependencies, installPackedCopy, run };
