'use strict';
// Static reading of the editor HTML, the help files and the message catalogues: script blocks,
// registerType definitions (parsed with acorn, as node-red-dev does), i18n keys.
const fs = require('fs');
const path = require('path');
const acorn = require('acorn');
const walk = require('acorn-walk');

const root = path.join(__dirname, '..', '..');
const LANGUAGES = ['en-US', 'de', 'ja'];
const TYPES = [
  'websocket-plus-listener',
  'websocket-plus-client',
  'websocket-plus in',
  'websocket-plus out',
  'websocket-plus control',
];

function parseAttributes(text) {
  const attrs = {};
  const re = /([\w:-]+)\s*=\s*("([^"]*)"|'([^']*)')/g;
  let m;
  while ((m = re.exec(text)) !== null) attrs[m[1].toLowerCase()] = m[3] !== undefined ? m[3] : m[4];
  return attrs;
}

/** Every <script> block: { attrs, body }. */
function scriptBlocks(html) {
  const blocks = [];
  const re = /<script\b([^>]*)>([\s\S]*?)<\/script>/gi;
  let m;
  while ((m = re.exec(html)) !== null) blocks.push({ attrs: parseAttributes(m[1]), body: m[2] });
  return blocks;
}

/** The value of a literal AST node (strings, numbers, booleans, arrays/objects of literals). */
function literal(node) {
  if (!node) return { ok: false };
  if (node.type === 'Literal') return { ok: true, value: node.value };
  if (node.type === 'ArrayExpression') {
    const items = node.elements.map(literal);
    return items.every((i) => i.ok) ? { ok: true, value: items.map((i) => i.value) } : { ok: false };
  }
  if (node.type === 'ObjectExpression') {
    const out = {};
    for (const p of node.properties) {
      if (p.type !== 'Property') return { ok: false };
      const v = literal(p.value);
      if (!v.ok) return { ok: false };
      out[propName(p)] = v.value;
    }
    return { ok: true, value: out };
  }
  return { ok: false };
}

function propName(p) {
  if (!p.key) return undefined;
  return p.key.type === 'Identifier' ? p.key.name : String(p.key.value);
}

/**
 * registerType calls in the text/javascript blocks: [{ type, props: {name: literal|{expr}}, defaults, credentials }].
 * defaults/credentials map a property to { value?, type?, required?, hasValidate, hasLabel }.
 */
function registrations(html) {
  const out = [];
  for (const block of scriptBlocks(html)) {
    if (block.attrs.type !== 'text/javascript') continue;
    const ast = acorn.parse(block.body, { ecmaVersion: 'latest' });
    walk.simple(ast, {
      CallExpression(node) {
        const callee = node.callee;
        if (callee.type !== 'MemberExpression' || callee.property.name !== 'registerType') return;
        const [typeNode, defNode] = node.arguments;
        const reg = {
          type: typeNode && typeNode.type === 'Literal' ? typeNode.value : undefined,
          props: {},
          defaults: undefined,
          credentials: undefined,
          inlineDef: defNode && defNode.type === 'ObjectExpression',
        };
        if (reg.inlineDef) {
          for (const p of defNode.properties) {
            const name = propName(p);
            if (name === 'defaults' || name === 'credentials') {
              const map = {};
              for (const d of p.value.properties || []) {
                const entry = { hasValidate: false, hasLabel: false };
                for (const q of d.value.properties || []) {
                  const k = propName(q);
                  if (k === 'validate') entry.hasValidate = true;
                  else if (k === 'label') entry.hasLabel = true;
                  else {
                    const v = literal(q.value);
                    entry[k] = v.ok ? v.value : { expression: true };
                  }
                }
                map[propName(d)] = entry;
              }
              reg[name] = map;
            } else {
              const v = literal(p.value);
              reg.props[name] = v.ok ? v.value : { expression: p.value.type };
            }
          }
        }
        out.push(reg);
      },
    });
  }
  return out;
}

/** i18n keys used by the scripts: literal first arguments of i18n(...), W.i18n(...), this._(...). */
function scriptKeys(html) {
  const keys = [];
  const dynamic = [];
  let redUnderscoreCalls = 0;
  for (const block of scriptBlocks(html)) {
    if (block.attrs.type !== 'text/javascript') continue;
    const ast = acorn.parse(block.body, { ecmaVersion: 'latest' });
    walk.simple(ast, {
      CallExpression(node) {
        const c = node.callee;
        let translator = false;
        if (c.type === 'Identifier' && c.name === 'i18n') translator = true;
        if (c.type === 'MemberExpression' && !c.computed && c.property.name === 'i18n') translator = true;
        if (
          c.type === 'MemberExpression' &&
          !c.computed &&
          c.property.name === '_' &&
          c.object.type === 'ThisExpression'
        )
          translator = true;
        if (
          c.type === 'MemberExpression' &&
          !c.computed &&
          c.property.name === '_' &&
          c.object.type === 'Identifier' &&
          c.object.name === 'RED'
        )
          redUnderscoreCalls++;
        if (!translator) return;
        const arg = node.arguments[0];
        if (arg && arg.type === 'Literal' && typeof arg.value === 'string') keys.push(arg.value);
        else dynamic.push(block.body.slice(node.start, node.end));
      },
    });
  }
  return { keys, dynamic, redUnderscoreCalls };
}

/** data-i18n keys of the templates, without their [attr] prefixes. */
function templateKeys(html) {
  const keys = [];
  const re = /data-i18n\s*=\s*"([^"]*)"/g;
  let m;
  while ((m = re.exec(html)) !== null) {
    for (const part of m[1].split(';')) {
      const key = part.trim().replace(/^\[[^\]]*\]/, '');
      if (key !== '') keys.push(key);
    }
  }
  return keys;
}

/** Templates by data-template-name (as a list, to see duplicates). */
function templates(html) {
  return scriptBlocks(html)
    .filter((b) => b.attrs.type === 'text/html' && b.attrs['data-template-name'] !== undefined)
    .map((b) => ({ name: b.attrs['data-template-name'], body: b.body }));
}

function helpSections(html) {
  return scriptBlocks(html)
    .filter((b) => b.attrs.type === 'text/html' && b.attrs['data-help-name'] !== undefined)
    .map((b) => ({ name: b.attrs['data-help-name'], body: b.body }));
}

function lookup(catalogue, key) {
  let node = catalogue;
  for (const part of key.split('.')) {
    if (node === null || typeof node !== 'object' || !Object.prototype.hasOwnProperty.call(node, part))
      return undefined;
    node = node[part];
  }
  return node;
}

/** Every leaf key of a catalogue as "a.b.c" → value. */
function flatten(catalogue, prefix = '', out = {}) {
  for (const [k, v] of Object.entries(catalogue)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object') flatten(v, key, out);
    else out[key] = v;
  }
  return out;
}

/**
 * The editor's validator `name` as a function, with the two helpers it uses (asText, current), taken
 * from the shared script of `html` and run as they are; `$` and `i18n` stand for the editor's.
 */
function editorValidator(html, name, $, i18n) {
  const shared = scriptBlocks(html).find(
    (b) => b.attrs.type === 'text/javascript' && b.body.includes(`function ${name}`),
  ).body;
  const fn = (n) => {
    const m = new RegExp(`\\n    function ${n}\\([^)]*\\) \\{[\\s\\S]*?\\n    \\}\\n`).exec(shared);
    if (!m) throw new Error(`function ${n} not found`);
    return m[0];
  };
  return new Function('$', 'i18n', `${fn('asText')}${fn('current')}${fn(name)}; return ${name};`)($, i18n);
}

function readCatalogue(dir, lang) {
  return JSON.parse(fs.readFileSync(path.join(dir, 'locales', lang, 'websocket-plus.json'), 'utf8'));
}

module.exports = {
  root,
  LANGUAGES,
  TYPES,
  scriptBlocks,
  registrations,
  scriptKeys,
  templateKeys,
  templates,
  helpSections,
  lookup,
  flatten,
  readCatalogue,
  parseAttributes,
  editorValidator,
};
