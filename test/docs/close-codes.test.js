'use strict';
// docs/close-codes.md and the README's summary against src/core/errors.ts, the one table from error
// codes to HTTP statuses and close codes: a refusal or close added, renumbered or renamed in the code
// must show up in the documentation, and the documentation must not list one the code does not make.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { built } = require('../helpers/built');

const { HandshakeRefusal, SessionClose } = built('core/errors');
const ROOT = path.join(__dirname, '..', '..');
const PAGE = fs.readFileSync(path.join(ROOT, 'docs', 'close-codes.md'), 'utf8');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The body of the section under a heading (up to the next heading of the same or a higher level). */
function section(text, heading) {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.replace(/^#+\s+/, '') === heading && /^#+\s/.test(l));
  assert.ok(start !== -1, `heading "${heading}"`);
  const level = lines[start].match(/^#+/)[0].length;
  const end = lines.findIndex((l, i) => i > start && /^#+\s/.test(l) && l.match(/^#+/)[0].length <= level);
  return lines.slice(start + 1, end === -1 ? undefined : end).join('\n');
}

/** The rows of the first table in a section, as arrays of trimmed cells (header and rule skipped). */
function rows(body) {
  return body
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .slice(2)
    .map((l) =>
      l
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    );
}

describe('close codes and HTTP statuses in the docs', function () {
  it('lists every handshake refusal of errors.ts with its status and reason, and no other', function () {
    const documented = rows(
      section(PAGE, 'Refusals before the upgrade (HTTP status, no WebSocket frame is ever exchanged)'),
    )
      .map(([status, reason]) => `${status} ${reason}`)
      .sort();
    const coded = Object.values(HandshakeRefusal)
      .map(({ status, reason }) => `${status} \`${reason}\``)
      .sort();
    assert.ok(coded.length > 10);
    assert.deepStrictEqual(documented, coded);
  });

  it("lists every session close of errors.ts by its close code, with the package's own reasons", function () {
    const table = rows(section(PAGE, 'Closing an open session'));
    const codes = new Set(table.map(([code]) => Number(code)));
    for (const [name, { code }] of Object.entries(SessionClose)) assert.ok(codes.has(code), `${name} (${code})`);
    // A reason in backticks is one the package sends; the others are closes by ws or a terminated socket.
    const sent = new Set(Object.values(SessionClose).map(({ code, reason }) => `${code} \`${reason}\``));
    const documented = table
      .filter(([, reason]) => reason.startsWith('`'))
      .map(([code, reason]) => `${code} ${reason}`);
    assert.ok(documented.length >= 6);
    assert.deepStrictEqual(
      documented.filter((r) => !sent.has(r)),
      [],
    );
  });

  it('names every status and close code in the overview and in the README summary', function () {
    const overview = section(PAGE, 'Overview');
    const summary = section(README, 'Close codes and HTTP statuses');
    assert.ok(summary.includes('(docs/close-codes.md)'), 'the README summary links the page');
    const numbers = [
      ...Object.values(HandshakeRefusal).map(({ status }) => status),
      ...Object.values(SessionClose).map(({ code }) => code),
    ];
    for (const n of new Set(numbers)) {
      assert.ok(overview.includes(`**${n}**`), `overview: ${n}`);
      assert.ok(summary.includes(`**${n}**`), `README summary: ${n}`);
    }
  });
});
