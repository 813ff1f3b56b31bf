'use strict';
// The documentation's links: every relative link and image in the README and the docs/ pages names a
// file that exists and, with a #fragment, a heading that exists in it (GitHub's anchor rules); every
// docs/ path named in code, tests or scripts exists; every docs/ page is reachable from the README; and
// the benchmark block lives in docs/benchmarks.md, where bench/update-readme.js writes it.
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.join(__dirname, '..', '..');
const rel = (f) => path.relative(ROOT, f).split(path.sep).join('/');
const read = (f) => fs.readFileSync(f, 'utf8');

const DOC_PAGES = fs
  .readdirSync(path.join(ROOT, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => path.join(ROOT, 'docs', f));
const MARKDOWN = [
  ...['README.md', 'CONTRIBUTING.md', 'SECURITY.md', 'CHANGELOG.md', 'bench/README.md'].map((f) => path.join(ROOT, f)),
  ...DOC_PAGES,
].filter((f) => fs.existsSync(f));

/** GitHub's heading anchor (github-slugger): lower case, punctuation and symbols dropped, spaces → '-'. */
function slug(heading) {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Markdown outside fenced code blocks (a `#` line in a shell example is not a heading). */
function prose(text) {
  let fenced = false;
  return text
    .split('\n')
    .filter((line) => {
      if (/^\s*(```|~~~)/.test(line)) {
        fenced = !fenced;
        return false;
      }
      return !fenced;
    })
    .join('\n');
}

/** The anchors of a markdown file's headings, with GitHub's -1, -2 … suffixes for repeats. */
function anchors(file) {
  const seen = new Map();
  const out = new Set();
  for (const m of prose(read(file)).matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every relative link target of a markdown file: [text](target) and <img src="target">. */
function links(file) {
  const text = prose(read(file)).replace(/`[^`\n]*`/g, (code) => (code.includes('](') ? '' : code));
  const out = [];
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push(m[1]);
  for (const m of text.matchAll(/<img\b[^>]*\bsrc="([^"]+)"/g)) out.push(m[1]);
  return out.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

function broken(file) {
  const problems = [];
  for (const target of links(file)) {
    const [p, fragment] = target.split('#');
    const dest = p === '' ? file : path.resolve(path.dirname(file), decodeURI(p));
    if (!fs.existsSync(dest)) {
      problems.push(`${rel(file)}: ${target} (no such file)`);
      continue;
    }
    if (fragment !== undefined && !(dest.endsWith('.md') && anchors(dest).has(fragment))) {
      problems.push(`${rel(file)}: ${target} (no such heading in ${rel(dest)})`);
    }
  }
  return problems;
}

/** Files whose text may name a docs/ page: sources, tests, scripts, locales, examples, CI. */
function codeFiles() {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!['node_modules', 'results', 'fixtures'].includes(e.name)) walk(f);
      } else if (/\.(ts|js|json|html|md|sh)$/.test(e.name) || dir.endsWith('.ci')) out.push(f);
    }
  };
  for (const d of ['src', 'test', 'bench', 'scripts', 'bin', 'locales', 'examples', '.ci']) {
    if (fs.existsSync(path.join(ROOT, d))) walk(path.join(ROOT, d));
  }
  return out;
}

describe('documentation links', function () {
  it('computes GitHub anchors', function () {
    assert.strictEqual(slug('Close codes and HTTP statuses'), 'close-codes-and-http-statuses');
    assert.strictEqual(slug('ws.in+ (`websocket-plus in`)'), 'wsin-websocket-plus-in');
    assert.strictEqual(slug('`maxConnections` across the cluster'), 'maxconnections-across-the-cluster');
    assert.strictEqual(
      slug('Scaling out: several Node-RED instances through Redis'),
      'scaling-out-several-node-red-instances-through-redis',
    );
    assert.strictEqual(
      slug('RFC 8725 (JWT Best Current Practices) checklist'),
      'rfc-8725-jwt-best-current-practices-checklist',
    );
  });

  it('reads the README and the docs pages, with links in them', function () {
    assert.ok(MARKDOWN.includes(path.join(ROOT, 'README.md')));
    assert.ok(DOC_PAGES.length >= 4, `docs pages: ${DOC_PAGES.map(rel).join(', ')}`);
    const all = MARKDOWN.flatMap(links);
    assert.ok(
      all.some((t) => t.startsWith('#')),
      'an in-page anchor link',
    );
    assert.ok(
      all.some((t) => /^docs\/[^#]+#./.test(t)),
      'a link to a heading of a docs page',
    );
    assert.ok(
      all.some((t) => t.startsWith('../README.md#')),
      'a link back to a README heading',
    );
  });

  it('resolves every relative link and image to a file, and every #fragment to a heading', function () {
    assert.deepStrictEqual(MARKDOWN.flatMap(broken), []);
  });

  it('links every docs page from the README', function () {
    const targets = new Set(links(path.join(ROOT, 'README.md')).map((t) => t.split('#')[0]));
    assert.deepStrictEqual(
      DOC_PAGES.map(rel).filter((p) => !targets.has(p)),
      [],
    );
  });

  it('names only docs/ paths that exist in code, tests, scripts and CI', function () {
    const missing = [];
    for (const f of codeFiles()) {
      for (const m of read(f).matchAll(/(?<![\w./-])docs\/[A-Za-z0-9_./-]*[A-Za-z0-9_]/g)) {
        if (!fs.existsSync(path.join(ROOT, m[0]))) missing.push(`${rel(f)}: ${m[0]}`);
      }
    }
    assert.deepStrictEqual(missing, []);
  });

  describe('benchmark block', function () {
    const { update, PAGE, START, END } = require('../../bench/update-readme');
    const latest = path.join(ROOT, 'bench', 'results', 'latest.md');
    const block = (text) => {
      const a = text.indexOf(START);
      const b = text.indexOf(END, a);
      return text.slice(a + START.length, b).trim();
    };

    it('lives once in docs/benchmarks.md and shows bench/results/latest.md; not in the README', function () {
      const page = read(path.join(ROOT, PAGE));
      assert.strictEqual(page.split(START).length, 2);
      assert.strictEqual(page.split(END).length, 2);
      assert.strictEqual(block(page), read(latest).trim());
      const readme = read(path.join(ROOT, 'README.md'));
      assert.ok(!readme.includes(START) && !readme.includes(END));
    });

    it('is rewritten by bench/update-readme.js from bench/results/latest.md', function () {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wsp-bench-page-'));
      const log = console.log;
      try {
        fs.mkdirSync(path.join(tmp, 'docs'));
        const before = `# Benchmarks\n\nintro\n\n${START}\nstale table\n${END}\n\nafter\n`;
        fs.writeFileSync(path.join(tmp, PAGE), before);
        console.log = () => {};
        assert.strictEqual(update(tmp), true);
        const after = read(path.join(tmp, PAGE));
        assert.strictEqual(block(after), read(latest).trim());
        assert.ok(after.startsWith('# Benchmarks\n\nintro\n\n') && after.endsWith(`${END}\n\nafter\n`));
      } finally {
        console.log = log;
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });
  });
});
