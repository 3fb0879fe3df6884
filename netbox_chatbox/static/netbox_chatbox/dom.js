/* DOM helpers shared by the chat page and the panel. Strings always become text nodes. */

export const byId = (id) => document.getElementById(id);

/** Create an element; string children become text nodes (never parsed as HTML). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined));
  return node;
}

export const icon = (name) => el('i', {class: `mdi mdi-${name}`, 'aria-hidden': 'true'});

/** An http(s) URL (absolute or relative to this page), or null for javascript:, data: and the like. */
export function safeUrl(href) {
  try {
    const url = new URL(href, window.location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch (e) {
    return null;
  }
}

export const formatDate = (value) => new Date(value).toLocaleString([], {dateStyle: 'medium', timeStyle: 'short'});
