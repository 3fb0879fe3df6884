/* netbox-chatbox: the chat panel on every NetBox page (injected by template_content.py for users who
 * may chat). It shows the user's current conversation — the same one on every page, after a reload and
 * in a new tab — and sends the page it is asked from (the chip) with each question; the server resolves
 * that page as the user. The same event stream, transports and renderer as the Chat page.
 */
import {byId, el, icon} from './dom.js';
import {ChatClient, apiClient} from './client.js';
import {MessageView, alertBox, catalogName} from './messages.js';
import {dispatcher, endHttpTurn, sendOnEnter, showConnection, startQuestion, turnHandlers} from './stream.js';

const config = JSON.parse(byId('chatbox-panel-config').textContent);
const api = apiClient(config.apiRoot);
const OPEN_KEY = 'netbox_chatbox.panel.open';  // per tab: the panel stays open while navigating

const state = {
  models: {},
  model: null,
  conversation: null,        // the user's current conversation (null: a new one starts with the next question)
  page: config.page,         // the chip: the page's object or list; null once removed
  answering: null,           // a timer while an answer from another page is still being written
  started: false,
};

const modelName = (id) => catalogName(state.models, id);

// -------------------------------------------------------------------------------------------------
// The panel's elements
// -------------------------------------------------------------------------------------------------

const ui = {};

function button(attrs, ...children) {
  return el('button', {type: 'button', ...attrs}, ...children);
}

function build() {
  ui.model = el('span', {class: 'badge bg-primary-lt text-truncate chatbox-panel-model', title: 'The model answering'});
  ui.connection = el('span', {class: 'small text-secondary text-nowrap', id: 'chatbox-panel-connection', role: 'status'},
    el('span', {class: 'status-dot'}), ' ', el('span', {class: 'chatbox-connection-label'}, 'Connecting…'));
  ui.newChat = button({class: 'btn btn-sm btn-ghost-secondary btn-icon', id: 'chatbox-panel-new', title: 'New chat',
    'aria-label': 'New chat'}, icon('plus'));
  ui.full = el('a', {class: 'btn btn-sm btn-ghost-secondary btn-icon', id: 'chatbox-panel-full', href: config.chatUrl,
    title: 'Open on the Chat page', 'aria-label': 'Open on the Chat page'}, icon('arrow-expand'));
  ui.close = button({class: 'btn-close ms-1', 'aria-label': 'Close the chat panel'});
  ui.empty = el('div', {class: 'chatbox-empty text-center text-secondary my-4', id: 'chatbox-panel-empty'},
    icon('chat-processing-outline'), el('p', {class: 'mt-2 mb-0'}, 'Ask about your NetBox data. The assistant only sees what you may see.'));
  ui.messages = el('div', {class: 'card-body chatbox-messages', id: 'chatbox-panel-messages', 'aria-live': 'polite'}, ui.empty);
  ui.activity = el('div', {class: 'px-3 py-1 small text-secondary d-none', role: 'status'},
    el('span', {class: 'spinner-border spinner-border-sm me-1', 'aria-hidden': 'true'}), el('span', {class: 'chatbox-activity-label'}, 'Working…'));
  ui.chip = el('div', {class: 'chatbox-context mb-2', id: 'chatbox-panel-context'});
  ui.input = el('textarea', {class: 'form-control chatbox-input', id: 'chatbox-panel-input', rows: '2',
    maxlength: config.maxMessageChars, 'aria-label': 'Your message',
    placeholder: 'Ask about your network… (Enter to send)'});
  ui.send = el('button', {type: 'submit', class: 'btn btn-primary btn-icon', id: 'chatbox-panel-send', title: 'Send', 'aria-label': 'Send'}, icon('send'));
  ui.stop = button({class: 'btn btn-danger btn-icon d-none', id: 'chatbox-panel-stop', title: 'Stop the answer', 'aria-label': 'Stop'}, icon('stop'));
  ui.form = el('form', {autocomplete: 'off'}, el('div', {class: 'd-flex gap-2 align-items-end'}, ui.input, ui.send, ui.stop));
  ui.panel = el('aside', {class: 'card chatbox-panel', id: 'chatbox-panel', role: 'dialog', 'aria-modal': 'false',
    'aria-label': 'Chat assistant', hidden: true},
  el('div', {class: 'card-header d-flex align-items-center gap-2'},
    el('h3', {class: 'card-title mb-0 text-nowrap'}, icon('robot-outline'), ' Assistant'), ui.model,
    el('div', {class: 'ms-auto d-flex align-items-center gap-1'}, ui.connection, ui.newChat, ui.full, ui.close)),
  ui.messages, ui.activity,
  el('div', {class: 'card-footer'}, ui.chip, ui.form));
  document.body.append(ui.panel);
  showChip();

  sendOnEnter(ui.form, ui.input, submit);
  ui.stop.addEventListener('click', () => {
    if (view.turn) client.stop();
    ui.input.focus();
  });
  ui.newChat.addEventListener('click', newChat);
  ui.close.addEventListener('click', () => setOpen(false));
  ui.panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') setOpen(false);
  });
}

const chipLabel = (page) => (page.kind === 'object' ? `${page.type_name}: ${page.display}` : `List of ${page.type_name}` +
  (Object.keys(page.filters).length ? ` (${Object.entries(page.filters).map(([k, v]) => `${k}=${v.join('|')}`).join(', ')})` : ''));

/** The chip: what the question will be asked about. */
function showChip() {
  const page = state.page;
  ui.chip.classList.toggle('d-none', !page);
  if (!page) {
    ui.chip.replaceChildren();
    return;
  }
  const what = chipLabel(page);
  const remove = button({class: 'btn-close btn-close-sm ms-1 chatbox-context-remove', 'aria-label': 'Do not send this page with the question'});
  remove.addEventListener('click', () => {
    state.page = null;
    showChip();
    ui.input.focus();
  });
  ui.chip.replaceChildren(el('span', {class: 'badge bg-azure-lt chatbox-chip d-inline-flex align-items-center mw-100',
    title: 'Sent with your question', 'data-type': page.type},
  icon(page.kind === 'object' ? 'link-variant' : 'format-list-bulleted'), ' ',
  el('span', {class: 'text-truncate'}, what), remove));
}

// -------------------------------------------------------------------------------------------------
// Conversation
// -------------------------------------------------------------------------------------------------

let view;
let client;

function setConnection(status) {
  showConnection(ui.connection, status, {reconnecting: 'Reconnecting…', http: 'Live (HTTP)'});
  updateControls();
}

function updateControls() {
  const busy = Boolean(view.turn) || Boolean(state.answering);
  ui.send.classList.toggle('d-none', busy);
  ui.stop.classList.toggle('d-none', !view.turn);
  ui.send.disabled = !client.transport || Boolean(state.answering);
  ui.full.href = state.conversation ? `${config.chatUrl}?conversation=${state.conversation}` : config.chatUrl;
}

function showModel(model) {
  state.model = model;
  ui.model.textContent = model ? model.name || modelName(model.id) : '';
  ui.model.dataset.modelId = model ? model.id : '';
}

function endTurn(extra) {
  view.endTurn(extra);
  updateControls();
}

/** Show the stored conversation; an answer still being written on another page is awaited. */
async function showConversation() {
  const id = state.conversation;
  window.clearTimeout(state.answering);
  state.answering = null;
  view.clear();
  if (!id) {
    updateControls();
    return;
  }
  let conversation;
  try {
    conversation = await api('GET', `conversations/${id}/`);
  } catch (error) {
    if (error.status === 404) state.conversation = null;  // deleted meanwhile: the next question starts a new one
    else view.alert('connection', error.message);
    updateControls();
    return;
  }
  if (state.conversation !== id || view.turn) return;
  conversation.messages.forEach((msg) => view.stored(msg));
  if (conversation.answering) {
    view.append(el('div', {class: 'chatbox-msg chatbox-msg-assistant chatbox-pending'},
      el('div', {class: 'chatbox-bubble text-secondary'}, el('span', {class: 'spinner-border spinner-border-sm me-1', 'aria-hidden': 'true'}),
        'The answer is still being written…')));
    state.answering = window.setTimeout(showConversation, 1500);
  }
  updateControls();
}

let handleEvent;

/** The panel's handlers: the shared ones for a turn, and the session's. */
function panelHandlers() {
  return {
    ...turnHandlers(view, {
      endTurn,
      complete(ev) {
        if (ev.conversation) state.conversation = ev.conversation;
      },
    }),
    session(ev) {
      showModel(ev.model);
      if (ev.conversation !== state.conversation || !state.started) {
        state.started = true;
        state.conversation = ev.conversation;
        if (!view.turn) showConversation();
      }
      updateControls();
    },
    model_changed(ev) {
      state.conversation = ev.conversation;
      showModel(state.models[ev.new_model] || {id: ev.new_model});
      showConversation();
    },
  };
}

function submit() {
  if (!ui.input.value.trim() || view.turn || state.answering || !client.transport) return;
  const text = startQuestion(ui.input, view, config.maxMessageChars, state.page ? chipLabel(state.page) : null);
  if (text === null) return;
  updateControls();
  const context = state.page ? state.page.url : undefined;
  if (client.transport === 'ws') {
    client.send({type: 'chat', message: text, context, finish_if_closed: true});  // a page change keeps the answer
  } else {
    httpChat(state.conversation ? {message: text, conversation: state.conversation, context} : {message: text, context});
  }
}

async function httpChat(body) {
  endHttpTurn(await client.postChat(body), view, endTurn);
}

async function newChat() {
  if (view.turn) return;
  if (client.transport === 'ws') {
    client.send({type: 'reset'});  // the session event that follows shows the new (empty) conversation
  } else if (state.conversation) {
    try {
      await api('POST', `conversations/${state.conversation}/archive/`);
    } catch (error) {
      if (error.status !== 404) {
        view.alert(error.status === 409 ? 'in_progress' : 'connection', error.message);
        return;
      }
    }
    state.conversation = null;
    showConversation();
  }
  ui.input.focus();
}

/** The user's current conversation: the most recently used one that is not archived. */
async function currentConversation() {
  const data = await api('GET', `conversations/?owner_id=${config.userId}&archived=false&limit=1`);
  return data.results.length ? data.results[0].id : null;
}

async function start() {
  view = new MessageView({messages: ui.messages, empty: ui.empty, activity: ui.activity}, modelName, api);
  handleEvent = dispatcher(panelHandlers());
  client = new ChatClient(config, {
    onEvent: handleEvent,
    onStatus(status) {
      setConnection(status);
      if (status === 'http') showConversation();  // no session event over HTTP: show the current one now
    },
    onOpen() {
      if (state.conversation) client.send({type: 'resume', conversation: state.conversation});
      else showConversation();
    },
    onLost(message) {
      endTurn(alertBox('connection', message));
    },
  });
  try {
    const [models, current] = await Promise.all([api('GET', 'models/'), currentConversation()]);
    state.models = Object.fromEntries(models.models.map((model) => [model.id, model]));
    state.conversation = current;
  } catch (error) {
    view.alert('connection', error.message);
  }
  client.connect();
}

// -------------------------------------------------------------------------------------------------
// Opening and closing
// -------------------------------------------------------------------------------------------------

function setOpen(open) {
  if (open && !ui.panel) build();
  if (!ui.panel) return;
  ui.panel.hidden = !open;
  document.body.classList.toggle('chatbox-panel-open', open);
  for (const toggle of document.querySelectorAll('.chatbox-panel-toggle')) toggle.setAttribute('aria-expanded', String(open));
  window.sessionStorage.setItem(OPEN_KEY, open ? '1' : '');
  if (open) {
    if (!client) start();
    ui.input.focus();
  }
}

const isOpen = () => Boolean(ui.panel && !ui.panel.hidden);

for (const toggle of document.querySelectorAll('.chatbox-panel-toggle')) {
  toggle.addEventListener('click', () => setOpen(!isOpen()));
}

// Ctrl+/ (⌘/ on a Mac) opens or closes the panel from anywhere on the page. NetBox's own "/" (focus
// the search box) must not see this key press, down or up: caught first, on the window.
let swallowSlash = false;
window.addEventListener('keydown', (event) => {
  if (event.key === '/' && (event.ctrlKey || event.metaKey) && !event.altKey) {
    event.preventDefault();
    event.stopImmediatePropagation();
    swallowSlash = true;
    setOpen(!isOpen());
  }
}, true);
window.addEventListener('keyup', (event) => {
  if (event.key === '/' && swallowSlash) {
    event.stopImmediatePropagation();
    swallowSlash = false;
  }
}, true);

// "Ask about this" on an object's page: ask in the panel, about this page's object.
for (const ask of document.querySelectorAll('.chatbox-ask-about')) {
  ask.addEventListener('click', (event) => {
    if (!config.page || config.page.kind !== 'object') return;  // the Chat page takes over
    event.preventDefault();
    setOpen(true);
    state.page = config.page;
    showChip();
    ui.input.value = `Tell me about the ${config.page.type_name} "${config.page.display}".`;
    ui.input.focus();
  });
}

if (window.sessionStorage.getItem(OPEN_KEY)) setOpen(true);
