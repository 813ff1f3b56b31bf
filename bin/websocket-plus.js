#!/usr/bin/env node
/*
 * node-red-contrib-websocket-plus command line.
 *
 *   npx node-red-contrib-websocket-plus migrate flows.json [-o out.json | --in-place] [--force] [--dry-run]
 *
 * Rewrites a flow file that uses Node-RED's core websocket nodes to websocket-plus nodes and prints
 * what changed. The input file is never overwritten unless --in-place is given.
 *
 * Exit codes: 0 done (or nothing to migrate), 1 bad input or output problem, 2 usage error.
 */
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const USAGE = [
  'Usage: node-red-contrib-websocket-plus migrate <flows.json> [options]',
  '',
  'Rewrites core websocket nodes (websocket in/out, websocket-listener, websocket-client)',
  'to websocket-plus nodes, keeps every shared property and sets safe defaults for new ones.',
  '',
  'Options:',
  '  -o, --output <file>  where to write the migrated flow (default: <name>.websocket-plus.json',
  '                       next to the input; "-" writes the flow to stdout, the report to stderr)',
  '      --in-place       overwrite the input file (stop Node-RED first)',
  '                       (the written file keeps the mode and owner of the file it replaces;',
  '                       a target that is a symbolic link is refused: name the real file)',
  '      --force          overwrite an existing output file',
  '      --dry-run        print the report only, write nothing',
  '  -h, --help           show this help',
].join('\n');

const EXIT_OK = 0;
const EXIT_INPUT = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {}

function parseArgs(argv) {
  const opts = {
    command: undefined,
    input: undefined,
    output: undefined,
    inPlace: false,
    force: false,
    dryRun: false,
    help: false,
  };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') opts.help = true;
    else if (arg === '--in-place') opts.inPlace = true;
    else if (arg === '--force') opts.force = true;
    else if (arg === '--dry-run') opts.dryRun = true;
    else if (arg === '-o' || arg === '--output') {
      if (i + 1 >= argv.length || argv[i + 1] === '') throw new UsageError(`${arg} needs a file name`);
      opts.output = argv[++i];
    } else if (arg.startsWith('--output=')) opts.output = arg.slice('--output='.length);
    else if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option ${arg}`);
    else rest.push(arg);
  }
  opts.command = rest.shift();
  opts.input = rest.shift();
  if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0]}`);
  return opts;
}

/** Keeps the input's style: Node-RED writes flows.json compact or pretty-printed with 4 spaces. */
function indentOf(text) {
  const m = /^[[{]\r?\n([ \t]+)\S/.exec(text.trimStart());
  return m ? m[1] : undefined;
}

function loadMigrate() {
  try {
    return require('../nodes/lib/core/flow/migrate.js');
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') {
      throw new Error(
        'the package is not built (nodes/lib/core/flow/migrate.js is missing): run "npm run build" first',
      );
    }
    throw err;
  }
}

/**
 * Replaces `file` with `text` through a temp file in the same directory, renamed over it. The temp
 * file has an unpredictable name and is created exclusively (O_CREAT|O_EXCL never follows a link
 * planted there), with `like`'s mode set at creation and again exactly (the umask would clear bits),
 * and `like`'s owner where the process may set it. rename() replaces `file` itself, never a target
 * it might point to.
 */
function writeFileAtomic(file, text, like) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${crypto.randomBytes(12).toString('hex')}.tmp`);
  const mode = like.mode & 0o7777;
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    try {
      if (like.keepOwner && (like.uid !== process.getuid?.() || like.gid !== process.getgid?.())) {
        try {
          fs.fchownSync(fd, like.uid, like.gid);
        } catch {
          // only root may give a file away; the file then belongs to whoever runs the command
        }
      }
      fs.fchmodSync(fd, mode);
      fs.writeFileSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** lstat of `file`, or undefined when there is nothing there. */
function lstatOrUndefined(file) {
  try {
    return fs.lstatSync(file);
  } catch (err) {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  }
}

function main(argv, out, errOut) {
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    errOut.write(`error: ${err.message}\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  if (opts.help) {
    out.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if (opts.command !== 'migrate') {
    errOut.write(`${opts.command ? `error: unknown command "${opts.command}"\n\n` : ''}${USAGE}\n`);
    return EXIT_USAGE;
  }
  if (!opts.input) {
    errOut.write(`error: no flow file given\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  if (opts.inPlace && opts.output !== undefined) {
    errOut.write('error: use either --in-place or -o, not both\n');
    return EXIT_USAGE;
  }

  const input = path.resolve(opts.input);
  let text;
  try {
    text = fs.readFileSync(input, 'utf8');
  } catch (err) {
    errOut.write(
      `error: cannot read ${opts.input}: ` +
        `${err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.message}\n`,
    );
    return EXIT_INPUT;
  }
  let parsed;
  try {
    parsed = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    errOut.write(`error: ${opts.input} is not valid JSON: ${err.message}\n`);
    return EXIT_INPUT;
  }

  let migrate;
  try {
    migrate = loadMigrate();
  } catch (err) {
    errOut.write(`error: ${err.message}\n`);
    return EXIT_INPUT;
  }
  let result;
  try {
    result = migrate.migrateFlow(parsed);
  } catch (err) {
    if (err && err.name === 'MigrationError') {
      errOut.write(`error: ${opts.input}: ${err.message}\n`);
      return EXIT_INPUT;
    }
    throw err;
  }

  const toStdout = opts.output === '-';
  const report = toStdout ? errOut : out;
  const lines = migrate.formatReport(result.changes);
  const renamed = result.changes.some((c) => c.kind === 'type');
  if (!renamed) {
    report.write(`${lines.join('\n')}\n`);
    if (toStdout) out.write(text);
    return EXIT_OK;
  }

  const indent = indentOf(text);
  const outText = JSON.stringify(result.flow, null, indent) + (text.endsWith('\n') || indent ? '\n' : '');

  if (opts.dryRun) {
    report.write(`${lines.join('\n')}\n(dry run: nothing written)\n`);
    return EXIT_OK;
  }
  if (toStdout) {
    report.write(`${lines.join('\n')}\n`);
    out.write(outText);
    return EXIT_OK;
  }

  let target;
  if (opts.inPlace) {
    target = input;
  } else if (opts.output !== undefined) {
    target = path.resolve(opts.output);
  } else {
    const ext = path.extname(input);
    target = path.join(path.dirname(input), `${path.basename(input, ext)}.websocket-plus${ext || '.json'}`);
  }
  if (!opts.inPlace && target === input) {
    errOut.write('error: the output is the input file; use --in-place to overwrite it\n');
    return EXIT_USAGE;
  }
  const shown = path.relative(process.cwd(), target) || target;
  let existing;
  try {
    existing = lstatOrUndefined(target);
  } catch (err) {
    errOut.write(`error: cannot write ${target}: ${err.message}\n`);
    return EXIT_INPUT;
  }
  // A link is never written through (nor silently replaced by a file): name the real file instead.
  if (existing && existing.isSymbolicLink()) {
    errOut.write(`error: ${shown} is a symbolic link; refusing to replace it: name the file it points to\n`);
    return EXIT_INPUT;
  }
  if (existing && !existing.isFile()) {
    errOut.write(`error: ${shown} is not a regular file\n`);
    return EXIT_INPUT;
  }
  if (existing && !opts.inPlace && !opts.force) {
    errOut.write(`error: ${shown} already exists; use --force to overwrite it\n`);
    return EXIT_INPUT;
  }
  // The flow may hold secrets: the result is never more readable than the file it replaces, or
  // for a new file, than the input.
  let like;
  try {
    like = existing
      ? { mode: existing.mode, uid: existing.uid, gid: existing.gid, keepOwner: true }
      : { mode: fs.statSync(input).mode, keepOwner: false };
  } catch (err) {
    errOut.write(`error: cannot read ${opts.input}: ${err.message}\n`);
    return EXIT_INPUT;
  }
  try {
    writeFileAtomic(target, outText, like);
  } catch (err) {
    errOut.write(`error: cannot write ${target}: ${err.message}\n`);
    return EXIT_INPUT;
  }
  report.write(`${lines.join('\n')}\nWrote ${target}\n`);
  if (opts.inPlace) {
    report.write(
      'Restart Node-RED to load the migrated flow (a running Node-RED overwrites flows.json on its next deploy).\n',
    );
  }
  return EXIT_OK;
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2), process.stdout, process.stderr);
}

module.exports = { main, parseArgs };
