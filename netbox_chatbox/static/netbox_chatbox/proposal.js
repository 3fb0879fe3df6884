/* A change proposal's card (docs/changes.md): per object the fields that change (before → after), links,
 * the count, the expiry, and Apply / Discard calling the proposals API as the user (session + CSRF token).
 * Everything the model proposed is shown as text nodes (dom.js el), links only through safeUrl.
 */
import {el, formatDate, icon, safeUrl} from './dom.js';

const ACTIONS = {create: ['Create', 'bg-green-lt'], update: ['Update', 'bg-blue-lt'], delete: ['Delete', 'bg-red-lt']};
const STATUS = {
  pending: ['Waiting for your review', 'bg-yellow-lt'],
  applied: ['Applied', 'bg-green-lt'],
  discarded: ['Discarded', 'bg-secondary-lt'],
  expired: ['Expired', 'bg-secondary-lt'],
  failed: ['Not applied', 'bg-red-lt'],
};

function link(url, ...children) {
  const href = safeUrl(url || '');
  return href ? el('a', {href}, ...children) : el('span', null, ...children);
}

/** A field's value: a related object by name (linked), one the user may not view as such, else its text. */
function value(item) {
  if (item === null || item === undefined || item === '') return el('span', {class: 'text-secondary'}, '—');
  if (Array.isArray(item)) {
    if (!item.length) return el('span', {class: 'text-secondary'}, '—');
    return el('span', null, item.map((part, i) => [i ? ', ' : null, value(part)]));
  }
  if (typeof item === 'object') {
    if (item.hidden) return el('em', {class: 'text-secondary chatbox-hidden-object'}, String(item.display));
    if ('display' in item) return link(item.url, String(item.display));
    return el('code', null, JSON.stringify(item));
  }
  return el('span', null, String(item));
}

function objectRow(change) {
  const [label, cls] = ACTIONS[change.action] || [String(change.action), 'bg-secondary-lt'];
  const fields = Object.entries(change.changes || {});
  return el('li', {class: 'list-group-item px-0 chatbox-proposal-object', 'data-action': change.action},
    el('div', null, el('span', {class: `badge ${cls} me-1`}, label), el('span', {class: 'text-secondary me-1'}, String(change.object_type)),
      link(change.url, el('strong', null, String(change.display)))),
    fields.length ? el('table', {class: 'table table-sm mb-0 mt-1 chatbox-proposal-fields'},
      el('tbody', null, fields.map(([field, {before, after}]) => el('tr', {'data-field': field},
        el('th', {class: 'fw-normal text-secondary'}, field),
        change.action === 'create' ? el('td', {colspan: '3'}, value(after))
          : [el('td', {class: 'chatbox-before'}, value(before)), el('td', {'aria-label': 'becomes'}, '→'), el('td', {class: 'chatbox-after'}, value(after))])))) : null);
}

/** The card for one proposal, as the proposals API describes it; it redraws itself after Apply / Discard. */
export function proposalCard(proposal, api) {
  const card = el('div', {class: 'card card-sm mt-2 chatbox-proposal'});
  draw(card, proposal, api);
  return card;
}

/** A stored message's proposal: fetched, so a reload shows what became of it. */
export function storedProposalCard(id, api) {
  const card = el('div', {class: 'card card-sm mt-2 chatbox-proposal', 'data-proposal-id': String(id)},
    el('div', {class: 'card-body small text-secondary'}, 'Loading the proposed change…'));
  api('GET', `proposals/${Number(id)}/`).then((proposal) => draw(card, proposal, api), (error) => {
    card.querySelector('.card-body').replaceChildren(error.status === 404 ? 'This proposal no longer exists.' : `The proposal could not be loaded: ${error.message}`);
  });
  return card;
}

function draw(card, proposal, api, error) {
  const [statusLabel, statusCls] = STATUS[proposal.status] || [String(proposal.status), 'bg-secondary-lt'];
  const count = Number(proposal.count) || 0;
  card.dataset.proposalId = String(proposal.proposal_id);
  card.dataset.status = proposal.status;
  const pending = proposal.status === 'pending';
  const problem = error || proposal.error;
  const body = el('div', {class: 'card-body'},
    el('div', {class: 'd-flex flex-wrap align-items-center gap-2'},
      el('h4', {class: 'card-title mb-0'}, icon('file-document-edit-outline'), ' Proposed change: ', String(proposal.summary)),
      el('span', {class: `badge ${statusCls} chatbox-proposal-status`}, statusLabel),
      el('span', {class: 'text-secondary small chatbox-proposal-count'}, `${count} change${count === 1 ? '' : 's'}`),
      proposal.branch ? el('span', {class: 'badge bg-purple-lt chatbox-proposal-branch'}, icon('source-branch'), ` Branch ${proposal.branch}`) : null),
    el('ul', {class: 'list-group list-group-flush small'}, (proposal.changes || []).map(objectRow)),
    problem ? el('div', {class: 'alert alert-danger small py-2 mt-2 mb-0 chatbox-proposal-error', role: 'alert'}, String(problem)) : null,
    footer(card, proposal, api, pending));
  card.replaceChildren(body);
}

function footer(card, proposal, api, pending) {
  const row = el('div', {class: 'd-flex flex-wrap align-items-center gap-2 mt-2 small chatbox-proposal-links'});
  if (pending) {
    const apply = el('button', {type: 'button', class: 'btn btn-sm btn-primary chatbox-proposal-apply'}, icon('check'), ' Apply');
    const discard = el('button', {type: 'button', class: 'btn btn-sm btn-outline-secondary chatbox-proposal-discard'}, 'Discard');
    apply.addEventListener('click', () => act(card, proposal, api, 'apply', [apply, discard]));
    discard.addEventListener('click', () => act(card, proposal, api, 'discard', [apply, discard]));
    row.append(apply, discard, el('span', {class: 'text-secondary chatbox-proposal-expiry'},
      `Nothing has changed yet. Expires ${formatDate(proposal.expires)}.`));
  } else if (proposal.status === 'applied') {
    row.append(el('span', {class: 'text-success'}, icon('check-circle-outline'), ' Applied as you.'));
    for (const change of proposal.changes || []) if (change.url) row.append(link(change.url, String(change.display)));
    if (proposal.changelog_url) row.append(link(proposal.changelog_url, icon('history'), ' Change log'));
  } else if (proposal.status === 'expired') {
    row.append(el('span', {class: 'text-secondary chatbox-proposal-expiry'}, `Expired ${formatDate(proposal.expires)}; ask again for a fresh proposal.`));
  }
  return row;
}

async function act(card, proposal, api, action, buttons) {
  for (const button of buttons) button.disabled = true;
  try {
    draw(card, await api('POST', `proposals/${Number(proposal.proposal_id)}/${action}/`), api);
  } catch (error) {
    // 409 (stale: the fresh diff; expired; already applied) and 400 (refused) carry the proposal as it is now.
    if (error.data && error.data.proposal_id) draw(card, error.data, api, error.data.error || error.message);
    else draw(card, proposal, api, error.message || 'The request failed.');
  }
}
