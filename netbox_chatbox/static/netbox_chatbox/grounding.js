/* Grounding on screen: an answer's ungrounded mentions marked in a quiet warning style, and its sources
 * (the tool calls and the NetBox objects they returned) as links. See docs/grounding.md.
 */
import {el, icon, safeUrl} from './dom.js';

export const UNGROUNDED_TITLE = 'not found in the data the assistant read';

/** Wrap each occurrence of an ungrounded mention in the rendered answer ``node`` (text nodes only). */
export function markUngrounded(node, grounding) {
  const texts = ((grounding && grounding.ungrounded) || []).map((m) => String(m.text)).filter(Boolean);
  if (!texts.length) return;
  const escaped = texts.sort((a, b) => b.length - a.length).map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp(escaped.join('|'), 'g');
  const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    if (!text.parentElement.closest('.chatbox-ungrounded')) found.push(text);
  }
  for (const text of found) {
    const value = text.nodeValue;
    const parts = [];
    let last = 0;
    for (const match of value.matchAll(pattern)) {
      parts.push(value.slice(last, match.index),
        el('mark', {class: 'chatbox-ungrounded', title: UNGROUNDED_TITLE, tabindex: '0'}, match[0]));
      last = match.index + match[0].length;
    }
    if (parts.length) text.replaceWith(...parts, value.slice(last));
  }
}

/** "Sources": each tool call (what it did, how it went) with the objects it returned, as links. */
export function sourcesList(calls) {
  const rows = (calls || []).filter((call) => call.ok !== false);
  if (!rows.length) return null;
  return el('details', {class: 'chatbox-sources small text-secondary'},
    el('summary', null, icon('database-search-outline'), ` Sources (${rows.length})`),
    el('ul', {class: 'mb-0 ps-3'}, rows.map((call) => el('li', null,
      call.summary ? `${call.tool} — ${call.summary}` : call.tool,
      (call.objects || []).flatMap((obj) => {
        const url = safeUrl(obj.url || '');
        return url ? [' ', el('a', {href: url}, String(obj.display))] : [];
      })))));
}

/** The note under a withheld answer. */
export function withheldNote() {
  return el('div', {class: 'small text-warning chatbox-withheld'}, icon('shield-alert-outline'),
    ' Withheld by the administrator\'s grounding setting.');
}
