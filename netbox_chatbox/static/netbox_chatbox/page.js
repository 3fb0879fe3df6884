/* netbox-chatbox: the Chat page controller. Native ES modules, no build step, no external library.
 *
 * The page shows the active conversation (writable), or another one read-only. The event stream comes
 * from client.js, messages are drawn by messages.js, the dialogs are in modals.js, History in history.js.
 */
import {byId, formatDate} from './dom.js';
import {ChatClient, apiClient} from './client.js';
import {MessageView, alertBox, catalogName} from './messages.js';
import {dispatcher, endHttpTurn, sendOnEnter, showConnection, startQuestion, turnHandlers} from './stream.js';
import {DeleteDialog, RenameDialog} from './modals.js';
import {ModelSelector} from './selector.js';
import {HistoryList} from './history.js';
import {showBudget} from './budget.js';

const config = JSON.parse(byId('chatbox-config').textContent);
const api = apiClient(config.apiRoot);

const state = {
  models: {},                        // id → catalog entry from GET models/
  modelList: [],
  activeModel: config.activeModel,   // the model of the current session
  selectionEnabled: config.selectionEnabled,
  conversation: null,                // the active (writable) conversation; null until its first message
  shown: undefined,                  // the conversation whose messages are on screen (null: a new one)
  messageCount: 0,                   // stored messages in the active conversation (for the switch warning)
  viewing: null,                     // a conversation shown read-only instead of the active one
  pendingModel: null,                // chosen in the selector, waiting for the warning's confirmation
  budget: undefined,                 // the user's usage limits (GET models/; null: none), see budget.js
  about: config.about,               // ?about=: the object sent with the questions (until removed)
};

const ui = {
  input: byId('chatbox-input'),
  form: byId('chatbox-form'),
  send: byId('chatbox-send'),
  stop: byId('chatbox-stop'),
  indicator: byId('chatbox-model-indicator'),
  fallback: byId('chatbox-fallback'),
  connection: byId('chatbox-connection'),
  readonly: byId('chatbox-readonly'),
  settings: byId('chatbox-settings'),
};

const modelName = (id) => catalogName(state.models, id);

const view = new MessageView(
  {messages: byId('chatbox-messages'), empty: byId('chatbox-empty'), activity: byId('chatbox-activity')}, modelName, api);

const client = new ChatClient(config, {
  onEvent: (ev) => handleEvent(ev),
  onStatus(status) {
    setConnection(status);
    // Without a socket no session event says which conversation is on: show the active one now.
    if (status === 'http' && state.conversation && !state.viewing && state.shown !== state.conversation) showActive();
  },
  onOpen() {
    updateControls();
    if (state.conversation) client.send({type: 'resume', conversation: state.conversation});
  },
  onLost(message) {
    endTurn(alertBox('connection', message));
    updateControls();
  },
});

const history = new HistoryList(byId('chatbox-history'), {api, userId: config.userId}, {
  isCurrent: (id) => id === state.conversation,
  shownId: () => (state.viewing ? state.viewing.id : state.conversation),
  modelName,
  onOpen: openConversation,
  onRename: (conversation) => renameDialog.open(conversation),
  onDelete: (conversation) => deleteDialog.open(conversation),
});

const selector = new ModelSelector({api, state, client, modelName, apiFailed, stop, archiveActive,
  onSwitched: (ev) => handlers.model_changed(ev)});
const loadModels = () => selector.load();

const renameDialog = new RenameDialog(async (conversation, title) => {
  try {
    await api('PATCH', `conversations/${conversation.id}/`, {title});
  } catch (error) {
    apiFailed(error);
  }
  refreshHistory();
});

const deleteDialog = new DeleteDialog(async (conversation) => {
  try {
    await api('DELETE', `conversations/${conversation.id}/`);
  } catch (error) {
    apiFailed(error);
    return;
  }
  if (state.viewing && state.viewing.id === conversation.id) showActive();
  else if (conversation.id === state.conversation) newChat();
  refreshHistory();
});

function apiFailed(error) {
  const codes = {403: 'forbidden', 404: 'not_found', 409: 'in_progress'};
  view.alert(codes[error.status] || 'connection', error.message || 'The request failed.');
}

// -------------------------------------------------------------------------------------------------
// Model indicator, connection status, buttons
// -------------------------------------------------------------------------------------------------

function showModel(model, fallback) {
  state.activeModel = model;
  ui.indicator.textContent = fallback ? modelName(fallback.actual_model) : model.name || modelName(model.id);
  ui.indicator.dataset.modelId = fallback ? fallback.actual_model : model.id;
  ui.indicator.className = `badge fs-5 ${fallback ? 'bg-yellow-lt' : 'bg-primary-lt'}`;
  ui.fallback.classList.toggle('d-none', !fallback);
  ui.fallback.textContent = fallback ? `Fallback: ${fallback.reason}` : '';
  if (state.budget !== undefined) showBudget(byId('chatbox-budget'), state.budget, model.id);
}

function setConnection(status) {
  showConnection(ui.connection, status);
  updateControls();
}

function updateControls() {
  const shown = state.viewing ? state.viewing.id : state.conversation;
  byId('chatbox-export').classList.toggle('d-none', !shown);
  for (const format of ['md', 'json']) {
    byId(`chatbox-export-${format}`).href = shown ? `${config.apiRoot}conversations/${shown}/export/?format=${format}` : '#';
  }
  const streaming = Boolean(view.turn);
  ui.send.classList.toggle('d-none', streaming);
  ui.stop.classList.toggle('d-none', !streaming);
  ui.send.disabled = Boolean(state.viewing) || !client.transport;
  ui.input.disabled = Boolean(state.viewing);
  if (ui.settings) ui.settings.classList.toggle('d-none', !state.selectionEnabled);
}

function endTurn(extra) {
  view.endTurn(extra);
  updateControls();
}

/** The address names the active conversation, so a reload or a copied link opens it again. */
function keepInUrl() {
  const url = new URL(window.location.href);
  if (state.conversation) url.searchParams.set('conversation', state.conversation);
  else url.searchParams.delete('conversation');
  url.searchParams.delete('about');
  if (url.href !== window.location.href) window.history.replaceState(null, '', url.href);
}

// -------------------------------------------------------------------------------------------------
// Events of the stream
// -------------------------------------------------------------------------------------------------

const handlers = {
  ...turnHandlers(view, {
    endTurn,
    delta() {
      // A new conversation is stored as its answer starts: show it in History now, not only at the end.
      if (!state.conversation && view.turn && !view.turn.text) window.setTimeout(refreshHistory, 300);
    },
    fallback: (ev) => showModel(state.activeModel, ev),
    complete(ev) {
      if (ev.conversation) {
        state.conversation = ev.conversation;
        state.shown = ev.conversation;
        keepInUrl();
      }
      state.messageCount += 2;
    },
    completed() {
      refreshHistory();
      if (state.budget) loadModels().catch(() => {});  // what is left now
    },
    error(ev) {
      refreshHistory();
      if (ev.code === 'budget_exceeded') loadModels().catch(() => {});
    },
  }),

  session(ev) {
    state.selectionEnabled = ev.selection_enabled;
    showModel(ev.model);
    const changed = ev.conversation !== state.conversation;
    state.conversation = ev.conversation;
    keepInUrl();
    if (!state.viewing && ev.conversation !== state.shown) showActive();
    if (changed) refreshHistory();
    updateControls();
  },

  model_changed(ev) {
    state.conversation = ev.conversation;
    state.shown = ev.conversation;
    keepInUrl();
    state.messageCount = 0;
    state.viewing = null;
    ui.readonly.classList.add('d-none');
    showModel(state.models[ev.new_model] || {id: ev.new_model, name: modelName(ev.new_model)});
    view.clear();
    const count = ev.archived_message_count;
    view.notice(count
      ? `New conversation with ${modelName(ev.new_model)}. The previous conversation with ${modelName(ev.old_model)} (${count} message${count === 1 ? '' : 's'}) was archived; find it under History.`
      : `New conversation with ${modelName(ev.new_model)}.`);
    updateControls();
    refreshHistory();
  },
};

const handleEvent = dispatcher(handlers);

// -------------------------------------------------------------------------------------------------
// Sending, stopping, starting over
// -------------------------------------------------------------------------------------------------

function submit() {
  if (!ui.input.value.trim() || view.turn || state.viewing || !client.transport) return;
  const text = startQuestion(ui.input, view, config.maxMessageChars);
  if (text === null) return;
  updateControls();
  const context = state.about ? state.about.url : undefined;  // resolved again by the server, as the user
  if (client.transport === 'ws') client.send({type: 'chat', message: text, context, finish_if_closed: true});  // a page change keeps the answer
  else httpChat(text, context);
}

/** Without a socket: one turn over the streamed HTTP API. */
async function httpChat(message, context) {
  // A continued conversation keeps its own model; a new one uses the model shown on the page.
  const body = state.conversation ? {message, context, conversation: state.conversation} : {message, context, model: state.activeModel.id};
  const outcome = await client.postChat(body);
  endHttpTurn(outcome, view, endTurn);
  if (outcome !== 'ended') refreshHistory();
}

function stop() {
  if (view.turn) client.stop();
  ui.input.focus();
}

async function newChat() {
  if (view.turn) return;
  state.viewing = null;
  if (client.transport === 'ws') {
    client.send({type: 'reset'});
    state.shown = undefined;  // the session event that follows shows the new (empty) conversation
  } else {
    try {
      await archiveActive();
    } catch (error) {
      apiFailed(error);
      return;
    }
    state.conversation = null;
    keepInUrl();
    showActive();
  }
  refreshHistory();
  ui.input.focus();
}

/** Without a socket: archive the active conversation through the API, as the socket's reset does; its message count. */
async function archiveActive() {
  const id = state.conversation;
  if (!id) return 0;
  for (let attempt = 0; ; attempt++) {
    try {
      return (await api('POST', `conversations/${id}/archive/`)).message_count;
    } catch (error) {
      if (error.status === 404) return 0;  // deleted meanwhile: nothing left to archive
      // 409: a just-stopped answer is still being stored; the server notices the aborted request soon.
      if (error.status !== 409 || attempt >= 20) throw error;
      await new Promise((resolve) => window.setTimeout(resolve, 500));
    }
  }
}

// -------------------------------------------------------------------------------------------------
// Conversations: the active one, read-only views, history
// -------------------------------------------------------------------------------------------------

async function showActive() {
  state.viewing = null;
  ui.readonly.classList.add('d-none');
  const id = state.conversation;
  state.shown = id;
  view.clear();
  state.messageCount = 0;
  updateControls();
  if (!id) return;
  try {
    const conversation = await api('GET', `conversations/${id}/`);
    if (state.shown !== id || state.viewing) return;  // the user moved on meanwhile
    conversation.messages.forEach((msg) => view.stored(msg));
    state.messageCount = conversation.messages.length;
  } catch (error) {
    apiFailed(error);
  }
  history.mark();
}

async function showReadOnly(id) {
  let conversation;
  try {
    conversation = await api('GET', `conversations/${id}/`);
  } catch (error) {
    apiFailed(error);
    return;
  }
  state.viewing = conversation;
  view.clear();
  conversation.messages.forEach((msg) => view.stored(msg));
  if (!conversation.messages.length) view.notice('This conversation has no messages.', 'secondary');
  const when = formatDate(conversation.created);
  ui.readonly.querySelector('.chatbox-readonly-text').textContent = conversation.archived
    ? `Archived conversation with ${modelName(conversation.model_id)} from ${when}. It is read-only.`
    : `Conversation with ${modelName(conversation.model_id)} from ${when}.`;
  byId('chatbox-continue').classList.toggle('d-none', conversation.archived);
  ui.readonly.classList.remove('d-none');
  updateControls();
  history.mark();
}

function continueConversation(conversation) {
  state.viewing = null;
  if (client.transport === 'ws') {
    client.send({type: 'resume', conversation: conversation.id});  // the session event that follows shows it
  } else {
    state.conversation = conversation.id;
    showModel(state.models[conversation.model_id] || {id: conversation.model_id, name: conversation.model_id});
    showActive();
  }
}

function openConversation(conversation) {
  if (view.turn) return;
  if (conversation.id === state.conversation) showActive();
  else showReadOnly(conversation.id);
}

async function refreshHistory() {
  const conversations = await history.refresh();
  const active = (conversations || []).find((conversation) => conversation.id === state.conversation);
  if (active && !view.turn) state.messageCount = active.message_count;  // what a switch would archive
}

// -------------------------------------------------------------------------------------------------
// Wiring
// -------------------------------------------------------------------------------------------------

sendOnEnter(ui.form, ui.input, submit);
ui.stop.addEventListener('click', stop);
for (const example of document.querySelectorAll('.chatbox-example')) {
  example.addEventListener('click', () => {  // the user's own data: a question that works, ready to send
    ui.input.value = example.textContent;
    ui.input.focus();
  });
}
byId('chatbox-new').addEventListener('click', newChat);
if (ui.settings) ui.settings.addEventListener('click', () => selector.open());
byId('chatbox-back').addEventListener('click', showActive);
byId('chatbox-continue').addEventListener('click', () => continueConversation(state.viewing));

if (config.about) ui.input.value = config.about.question;
const aboutRemove = byId('chatbox-about-remove');
if (aboutRemove) {
  aboutRemove.addEventListener('click', () => {
    state.about = null;
    byId('chatbox-about').remove();
    ui.input.focus();
  });
}
showModel(state.activeModel);
updateControls();
ui.input.focus();
for (const dialog of document.querySelectorAll('#chatbox-model-modal, #chatbox-switch-modal, #chatbox-rename-modal, #chatbox-delete-modal')) {
  dialog.addEventListener('hidden.bs.modal', () => {
    if (!document.querySelector('.modal.show')) ui.input.focus();  // back to the message box after a dialog
  });
}

/** The conversation to open: ?conversation=<id>, else the user's current one (the latest not archived). */
async function initialConversation() {
  if (config.conversation) {
    try {
      const conversation = await api('GET', `conversations/${config.conversation}/`);
      return conversation.archived || conversation.owner.id !== config.userId ? {readOnly: conversation.id} : {active: conversation.id};
    } catch (error) {
      apiFailed(error);
      return {};
    }
  }
  if (config.about) return {};  // a question about an object starts a new conversation
  try {
    const data = await api('GET', `conversations/?owner_id=${config.userId}&archived=false&limit=1`);
    return data.results.length ? {active: data.results[0].id} : {};
  } catch (error) {
    return {};
  }
}

try {
  await loadModels();
  showModel(state.models[state.activeModel.id] || state.activeModel);
} catch (error) {
  apiFailed(error);
}
const initial = await initialConversation();
if (initial.active) {
  state.conversation = initial.active;  // continued once the transport is up (resume), or shown at once over HTTP
} else if (initial.readOnly) {
  await showReadOnly(initial.readOnly);
}
refreshHistory();
client.connect();
