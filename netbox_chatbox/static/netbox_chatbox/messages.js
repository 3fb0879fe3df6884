/* A conversation on screen: stored messages, and the answer being streamed (its text, tool activity,
 * links to the objects found). Used by the chat page and the panel, each with its own elements.
 */
import {el, icon, safeUrl} from './dom.js';
import {renderMarkdown} from './markdown.js';
import {markUngrounded, sourcesList, withheldNote} from './grounding.js';
import {proposalCard, storedProposalCard} from './proposal.js';

// What the user can do about each error code (the server's message says what happened).
export const ERROR_HINTS = {
  rate_limited: 'Wait a minute, then send your message again.',
  busy: 'Too many chats are running right now. Try again in a moment.',
  message_too_long: 'Shorten your message and send it again.',
  unknown_model: 'Choose another model in Model settings.',
  provider_error: 'Try again; if it keeps failing, choose another model in Model settings or tell your NetBox administrator.',
  unavailable: 'Choose another model in Model settings, or ask your NetBox administrator to check the model provider.',
  not_found: 'That conversation no longer exists. Start a new chat.',
  bad_request: 'Reload the page and try again.',
  connection: 'Check your network connection; the page reconnects by itself.',
  forbidden: 'Ask your NetBox administrator for the chat permission, or log in again.',
  unauthenticated: 'Your NetBox session has ended: log in again.',
  in_progress: 'Wait for the current answer to finish, or press Stop.',
  archived: 'Archived conversations are read-only. Start a new chat to continue.',
  selection_disabled: 'Your NetBox administrator has fixed the model; reload the page.',
};

export function alertBox(code, message) {
  const hint = ERROR_HINTS[code];
  return el('div', {class: 'alert alert-danger chatbox-error mb-0', role: 'alert', 'data-code': code || ''},
    el('div', null,
      el('div', {class: 'fw-bold'}, icon('alert-circle-outline'), ' ', message || 'Something went wrong.'),
      hint ? el('div', {class: 'small mt-1 chatbox-hint'}, hint) : null));
}

function objectLinks(objects) {
  const links = [];
  for (const obj of objects || []) {
    const url = safeUrl(obj.url || '');
    if (url) links.push(el('a', {href: url, class: 'badge bg-blue-lt text-decoration-none me-1 mb-1'}, icon('link-variant'), ' ', String(obj.display)));
  }
  return links;
}

/** The row of a finished tool call: ✓ or ⚠, what it did, and how it went ("querying dcim.device — 2 found"). */
function toolRow(row, what, call) {
  row.replaceChildren(el('i', {class: `mdi ${call.ok ? 'mdi-check text-success' : 'mdi-alert text-danger'} me-1`, 'aria-hidden': 'true'}),
    what, call.summary ? ` — ${call.summary}` : '');
  return row;
}

/** A model's catalog name from a catalog id or the provider's id (what answers report); else the id itself. */
export function catalogName(models, id) {
  const entry = models[id] || Object.values(models).find((model) => model.provider_model_id && model.provider_model_id === id);
  return entry ? entry.name : id;
}

/** The messages of one conversation in a scrolling box. modelName(id) → the catalog name to show;
 * api: the plugin's API caller (client.js apiClient), for the proposal cards' Apply / Discard. */
export class MessageView {
  constructor({messages, empty, activity}, modelName, api) {
    this.box = messages;
    this.empty = empty;
    this.activity = activity;
    this.modelName = modelName;
    this.api = api;
    this.turn = null;  // the answer being streamed
  }

  scrollToEnd(force) {
    const box = this.box;
    if (force || box.scrollHeight - box.scrollTop - box.clientHeight < 120) box.scrollTop = box.scrollHeight;
  }

  clear() {
    this.box.replaceChildren(this.empty);
    this.empty.classList.remove('d-none');
  }

  append(node) {
    this.empty.classList.add('d-none');
    this.box.append(node);
    this.scrollToEnd(true);
    return node;
  }

  shell(role) {
    const who = role === 'user' ? ['account', 'You'] : ['robot-outline', 'Assistant'];
    const body = el('div', {class: 'chatbox-bubble'});
    const wrap = el('div', {class: `chatbox-msg chatbox-msg-${role}`},
      el('div', {class: 'chatbox-who small text-secondary'}, icon(who[0]), ' ', who[1]), body);
    return {wrap, body};
  }

  /** The user's question; a stored one may end with the page it was asked from (page_context.py). */
  userMessage(text, page) {
    const {wrap, body} = this.shell('user');
    const m = /\n\n\[Context: (.*)\]$/.exec(text);
    body.append(el('div', {class: 'chatbox-text'}, m ? text.slice(0, m.index) : text));
    const about = m ? m[1] : page;
    if (about) body.append(el('div', {class: 'small text-secondary mt-1 chatbox-sent-context'}, icon('link-variant'), ' ', about));
    return this.append(wrap);
  }

  alert(code, message) {
    return this.append(alertBox(code, message));
  }

  notice(text, kind) {
    return this.append(el('div', {class: `alert alert-${kind || 'info'} chatbox-notice small`, role: 'status'}, text));
  }

  /** The footer of an answer: stopped?, which model (catalog name, provider id as detail), tokens, time, Copy. */
  metaLine(msg, markdown) {
    const parts = [];
    if (msg.model) parts.push(`Answered by ${this.modelName(msg.model)}`);
    if (msg.output_tokens) parts.push(`${msg.input_tokens || 0} → ${msg.output_tokens} tokens`);
    if (msg.duration_ms) parts.push(`${(msg.duration_ms / 1000).toFixed(1)} s`);
    const meta = el('div', {class: 'chatbox-meta small text-secondary d-flex flex-wrap align-items-center gap-1'},
      el('span', {title: msg.model || null}, parts.join(' · ')));
    if (msg.interrupted) meta.prepend(el('span', {class: 'badge bg-yellow-lt'}, 'Stopped'));
    if (markdown) {
      const copy = el('button', {type: 'button', class: 'btn btn-sm btn-ghost-secondary py-0 px-1 ms-auto chatbox-copy',
        title: 'Copy the answer (Markdown)'}, icon('content-copy'), ' Copy');
      copy.addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText(markdown);
          copy.replaceChildren(icon('check'), ' Copied');
        } catch (e) {
          copy.replaceChildren(icon('alert'), ' Copy failed');
        }
      });
      meta.append(copy);
    }
    return meta;
  }

  /** A stored message from the conversations API (history, reloads). */
  stored(msg) {
    if (msg.role === 'user') return this.userMessage(msg.content);
    const {wrap, body} = this.shell('assistant');
    if (msg.role === 'error') {
      body.append(alertBox('', msg.content));
    } else {
      const calls = msg.tool_calls || [];
      const answer = el('div', {class: 'chatbox-answer'}, renderMarkdown(msg.content));
      markUngrounded(answer, msg.grounding);
      body.append(
        el('div', {class: 'chatbox-tools small'}, calls.map((call) => toolRow(el('div', {class: 'chatbox-tool text-secondary'}), call.tool, call))),
        answer,
        el('div', {class: 'chatbox-proposals'}, calls.filter((call) => call.proposal).map((call) => storedProposalCard(call.proposal, this.api))),
        msg.grounding && msg.grounding.withheld ? withheldNote() : null,
        el('div', {class: 'chatbox-objects'}, objectLinks(calls.flatMap((call) => call.objects || []))),
        sourcesList(calls),
        this.metaLine(msg, msg.content));
    }
    return this.append(wrap);
  }

  // --- the answer being streamed ---------------------------------------------------------------

  startTurn() {
    const {wrap, body} = this.shell('assistant');
    const turn = {
      text: '',
      tools: new Map(),
      wrap,
      toolsBox: el('div', {class: 'chatbox-tools small'}),
      answer: el('div', {class: 'chatbox-answer'}, el('span', {class: 'chatbox-typing', 'aria-label': 'Thinking'}, el('span'), el('span'), el('span'))),
      cards: el('div', {class: 'chatbox-proposals'}),
      objects: el('div', {class: 'chatbox-objects'}),
      seen: new Set(),
      pending: false,
    };
    body.append(turn.toolsBox, turn.answer, turn.cards, turn.objects);
    this.turn = turn;
    this.append(wrap);
    return turn;
  }

  renderTurn(turn) {
    turn.pending = false;
    if (turn.text) turn.answer.replaceChildren(renderMarkdown(turn.text));
    if (turn.text) markUngrounded(turn.answer, turn.grounding);
    this.scrollToEnd();
  }

  /** Finish the streamed answer, with ``extra`` (a footer or an error) under it; false if none was running. */
  endTurn(extra) {
    const turn = this.turn;
    if (!turn) return false;
    this.renderTurn(turn);
    if (!turn.text) turn.answer.replaceChildren();
    for (const tool of turn.tools.values()) {
      if (tool.running) tool.row.replaceChildren(icon('minus-circle-outline'), ' ', tool.summary, ' — stopped');
      tool.running = false;
    }
    if (extra) turn.wrap.querySelector('.chatbox-bubble').append(extra);
    this.turn = null;
    this.activity.classList.add('d-none');
    this.scrollToEnd();
    return true;
  }

  showActivity(turn) {
    const running = [...turn.tools.values()].filter((tool) => tool.running);
    this.activity.classList.toggle('d-none', !running.length);
    if (running.length) {
      this.activity.querySelector('.chatbox-activity-label').textContent =
        `Working: ${running.map((tool) => tool.summary).join(', ')}…`;
    }
  }

  delta(ev) {
    const turn = this.turn;
    if (!turn) return;
    turn.text += ev.text;
    this.scheduleRender(turn);
  }

  // The provider retried and said otherwise: drop the last `chars` characters shown (docs/protocol.md).
  retract(ev) {
    const turn = this.turn;
    if (!turn) return;
    turn.text = turn.text.slice(0, Math.max(0, turn.text.length - ev.chars));
    this.scheduleRender(turn);
  }

  scheduleRender(turn) {
    if (!turn.pending) {
      turn.pending = true;
      window.requestAnimationFrame(() => this.renderTurn(turn));
    }
  }

  toolStart(ev) {
    const turn = this.turn;
    if (!turn) return;
    const row = el('div', {class: 'chatbox-tool text-secondary', 'data-tool': ev.tool},
      el('span', {class: 'spinner-border spinner-border-sm me-1', 'aria-hidden': 'true'}), ev.summary);
    turn.tools.set(ev.id, {summary: ev.summary, running: true, row});
    turn.toolsBox.append(row);
    this.showActivity(turn);
  }

  toolEnd(ev) {
    const turn = this.turn;
    if (!turn) return;
    const tool = turn.tools.get(ev.id) || {summary: ev.tool, row: turn.toolsBox.appendChild(el('div', {class: 'chatbox-tool text-secondary'}))};
    tool.running = false;
    Object.assign(tool, {tool: ev.tool, ok: ev.ok, objects: ev.objects});
    toolRow(tool.row, tool.summary, ev);
    turn.tools.set(ev.id, tool);
    const fresh = (ev.objects || []).filter((obj) => !turn.seen.has(obj.url) && turn.seen.add(obj.url));
    turn.objects.append(...objectLinks(fresh));
    this.showActivity(turn);
  }

  /** A change proposal for the user's review: its card, under the answer. */
  proposal(ev) {
    if (!this.turn) return;
    this.turn.cards.append(proposalCard(ev.proposal, this.api));
    this.scrollToEnd();
  }

  /** The ``complete`` event's grounding: a withheld answer's replacement, marks, the sources. */
  ground(ev) {
    const turn = this.turn;
    if (!turn) return;
    turn.grounding = ev.grounding;  // marked whenever the answer is drawn (endTurn draws it last)
    const withheld = Boolean(ev.grounding && ev.grounding.withheld);
    if (withheld) turn.text = ev.content || '';
    turn.objects.after(...[withheld ? withheldNote() : null, sourcesList([...turn.tools.values()])].filter(Boolean));
  }

  /** Say above the streamed answer that another model answers, and why. */
  fallbackNote(ev) {
    if (!this.turn) return;
    this.turn.toolsBox.before(el('div', {class: 'alert alert-warning small py-2 chatbox-fallback-note'},
      `${this.modelName(ev.actual_model)} answers instead of ${this.modelName(ev.requested_model)}. ${ev.reason}`));
  }
}
