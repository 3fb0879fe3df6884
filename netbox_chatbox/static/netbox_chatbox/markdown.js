/* The safe Markdown renderer: builds DOM elements itself and never parses HTML strings, so no answer
 * (model output, NetBox data) can inject markup or script.
 */
import {el, safeUrl} from './dom.js';

/** A link when the URL is safe, else just its text. External links open in a new tab. */
function link(href, children) {
  const url = safeUrl(href);
  if (!url) return children;
  const external = new URL(url).origin !== window.location.origin;
  return [el('a', {href: url, target: external && '_blank', rel: external && 'noopener noreferrer'}, children)];
}

const INLINE_RULES = [
  {re: /`([^`\n]+)`/, make: (m) => [el('code', null, m[1])]},
  // [text](url): the URL may hold balanced parentheses (wiki-style links, "?q=(a)").
  {re: /\[([^\]\n]+)\]\(\s*<?((?:[^()\s>]|\([^()\s]*\))+)>?(?:\s+"[^"]*")?\s*\)/, make: (m) => link(m[2], inline(m[1]))},
  {re: /<(https?:\/\/[^\s>]+)>/, make: (m) => link(m[1], [m[1]])},
  {re: /\bhttps?:\/\/[^\s<>"'`]*[^\s<>"'`.,;:!?)\]]/, make: (m) => link(m[0], [m[0]])},
  {re: /\*\*(?=\S)(.*?\S)\*\*|(?<!\w)__(?=\S)(.*?\S)__(?!\w)/, make: (m) => [el('strong', null, inline(m[1] || m[2]))]},
  {re: /~~(?=\S)(.*?\S)~~/, make: (m) => [el('del', null, inline(m[1]))]},
  {re: /\*(?=[^\s*])([^*]*?[^\s*])\*|(?<!\w)_(?=[^\s_])([^_]*?[^\s_])_(?!\w)/, make: (m) => [el('em', null, inline(m[1] || m[2]))]},
];

/** Inline Markdown (code, links, bold, italic, strikethrough) → a list of nodes and strings. */
function inline(text) {
  const out = [];
  while (text) {
    let best = null;
    for (const rule of INLINE_RULES) {
      const m = rule.re.exec(text);
      if (m && (!best || m.index < best.m.index)) best = {rule, m};
    }
    if (!best) {
      out.push(text);
      break;
    }
    if (best.m.index) out.push(text.slice(0, best.m.index));
    out.push(...best.rule.make(best.m));
    text = text.slice(best.m.index + best.m[0].length);
  }
  return out;
}

const RE_FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w#+.-]*)/;
const RE_HEADING = /^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
const RE_HR = /^\s{0,3}([-*_])(?:\s*\1){2,}\s*$/;
const RE_LIST = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const RE_QUOTE = /^\s{0,3}>\s?(.*)$/;
const RE_TABLE_SEP = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

const isTableStart = (lines, i) => lines[i].includes('|') && i + 1 < lines.length && RE_TABLE_SEP.test(lines[i + 1]);
const isBlockStart = (lines, i) => RE_FENCE.test(lines[i]) || RE_HEADING.test(lines[i]) || RE_HR.test(lines[i]) ||
  RE_LIST.test(lines[i]) || RE_QUOTE.test(lines[i]) || isTableStart(lines, i);

function splitRow(line) {
  let row = line.trim();
  if (row.startsWith('|')) row = row.slice(1);
  if (row.endsWith('|') && !row.endsWith('\\|')) row = row.slice(0, -1);
  return row.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, '|'));
}

function table(lines, i) {
  const head = splitRow(lines[i]);
  const aligns = splitRow(lines[i + 1]).map((c) =>
    c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : c.startsWith(':') ? 'left' : null);
  const rows = [];
  i += 2;
  while (i < lines.length && lines[i].includes('|') && lines[i].trim()) rows.push(splitRow(lines[i++]));
  const cell = (tag, text, k) => el(tag, {style: aligns[k] && `text-align: ${aligns[k]}`}, inline(text || ''));
  const node = el('div', {class: 'table-responsive'}, el('table', {class: 'table table-sm table-bordered'},
    el('thead', null, el('tr', null, head.map((text, k) => cell('th', text, k)))),
    el('tbody', null, rows.map((row) => el('tr', null, head.map((_, k) => cell('td', row[k], k)))))));
  return [node, i];
}

function list(lines, start) {
  const first = RE_LIST.exec(lines[start]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const node = el(ordered ? 'ol' : 'ul', {start: ordered && parseInt(first[2], 10) !== 1 && parseInt(first[2], 10)});
  let item = null;
  let i = start;
  while (i < lines.length) {
    const m = RE_LIST.exec(lines[i]);
    if (!m || m[1].length < indent) break;
    if (m[1].length > indent) {
      const [sub, next] = list(lines, i);
      if (!item) node.append(item = el('li'));
      item.append(sub);
      i = next;
      continue;
    }
    if (/\d/.test(m[2]) !== ordered) break;
    node.append(item = el('li', null, inline(m[3])));
    i++;
    while (i < lines.length && /^\s+\S/.test(lines[i]) && !RE_LIST.test(lines[i])) {
      item.append(el('br'), ...inline(lines[i++].trim()));
    }
    if (i + 1 < lines.length && !lines[i].trim() && RE_LIST.test(lines[i + 1])) i++;  // loose list
  }
  return [node, i];
}

/** Block Markdown: fenced code, headings, rules, tables, quotes, lists, paragraphs. */
function blocks(lines) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (!line.trim()) {
      i++;
    } else if ((m = RE_FENCE.exec(line))) {
      const body = [];
      for (i++; i < lines.length && !lines[i].trim().startsWith(m[1]); i++) body.push(lines[i]);
      i++;
      out.push(el('pre', null, el('code', {class: m[2] && `language-${m[2]}`}, body.join('\n'))));
    } else if ((m = RE_HEADING.exec(line))) {
      out.push(el(`h${m[1].length}`, null, inline(m[2])));
      i++;
    } else if (RE_HR.test(line)) {
      out.push(el('hr'));
      i++;
    } else if (isTableStart(lines, i)) {
      const [node, next] = table(lines, i);
      out.push(node);
      i = next;
    } else if (RE_QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && (m = RE_QUOTE.exec(lines[i]))) {
        body.push(m[1]);
        i++;
      }
      out.push(el('blockquote', null, blocks(body)));
    } else if (RE_LIST.test(line)) {
      const [node, next] = list(lines, i);
      out.push(node);
      i = next;
    } else {
      const para = el('p');
      do {
        if (para.childNodes.length) para.append(el('br'));
        para.append(...inline(lines[i++].trim()));
      } while (i < lines.length && lines[i].trim() && !isBlockStart(lines, i));
      out.push(para);
    }
  }
  return out;
}

export function renderMarkdown(text) {
  return el('div', {class: 'chatbox-md'}, blocks(String(text || '').replace(/\r\n?/g, '\n').split('\n')));
}
