/* netbox-chatbox: the chat page. Plain JavaScript: no build step, no external library.
 *
 * Talks to the plugin over the WebSocket (docs/protocol.md); when no socket can be opened it
 * falls back to the streamed HTTP API (fetch + ReadableStream). Model output and NetBox data are
 * only ever inserted as text nodes or vetted attributes: the Markdown renderer below builds DOM
 * elements itself and never parses HTML strings, so no answer can inject markup or script.
 */
(function () {
  'use strict';

  const config = JSON.parse(document.getElementById('chatbox-config').textContent);
  const byId = (id) => document.getElementById(id);

  // ---------------------------------------------------------------------------------------------
  // DOM helpers and the safe Markdown renderer
  // ---------------------------------------------------------------------------------------------

  /** Create an element; string children become text nodes (never parsed as HTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else node.setAttribute(key, value === true ? '' : value);
    }
    node.append(...children.flat().filter((c) => c !== null && c !== undefined));
    return node;
  }

  const icon = (name) => el('i', {class: `mdi mdi-${name}`, 'aria-hidden': 'true'});

  /** An http(s) URL (absolute or relative to this page), or null for javascript:, data: and the like. */
  function safeUrl(href) {
    try {
      const url = new URL(href, window.location.href);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  /** A link when the URL is safe, else just its text. External links open in a new tab. */
  function link(href, children) {
    const url = safeUrl(href);
    if (!url) return children;
    const external = new URL(url).origin !== window.location.origin;
    return [el('a', {href: url, target: external && '_blank', rel: external && 'noopener noreferrer'}, children)];
  }

  const INLINE_RULES = [
    {re: /`([^`\n]+)`/, make: (m) => [el('code', null, m[1])]},
    {re: /\[([^\]\n]+)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/, make: (m) => link(m[2], inline(m[1]))},
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

  function renderMarkdown(text) {
    return el('div', {class: 'chatbox-md'}, blocks(String(text || '').replace(/\r\n?/g, '\n').split('\n')));
  }

  // ---------------------------------------------------------------------------------------------
  // State and page elements
  // ---------------------------------------------------------------------------------------------

  const state = {
    models: {},                        // id → catalog entry from GET models/
    activeModel: config.activeModel,   // the model of the current session
    selectionEnabled: config.selectionEnabled,
    conversation: null,                // the active (writable) conversation; null until its first message
    shown: undefined,                  // the conversation whose messages are on screen (null: a new one)
    messageCount: 0,                   // stored messages in the active conversation (for the switch warning)
    viewing: null,                     // a conversation shown read-only instead of the active one
    transport: null,                   // 'ws' or 'http'
    socket: null,
    retries: 0,
    abort: null,                       // AbortController of a streamed HTTP answer
    turn: null,                        // the answer being streamed
    pendingModel: null,                // chosen in the selector, waiting for the warning's confirmation
    renaming: null,                    // the conversation in the rename dialog
    deleting: null,                    // the conversation in the delete dialog
  };

  const ui = {
    messages: byId('chatbox-messages'),
    empty: byId('chatbox-empty'),
    input: byId('chatbox-input'),
    form: byId('chatbox-form'),
    send: byId('chatbox-send'),
    stop: byId('chatbox-stop'),
    indicator: byId('chatbox-model-indicator'),
    fallback: byId('chatbox-fallback'),
    connection: byId('chatbox-connection'),
    activity: byId('chatbox-activity'),
    readonly: byId('chatbox-readonly'),
    history: byId('chatbox-history'),
    settings: byId('chatbox-settings'),
    modelList: byId('chatbox-model-list'),
  };

  const modal = (id) => window.Modal.getOrCreateInstance(byId(id));

  // What the user can do about each error code (the server's message says what happened).
  const ERROR_HINTS = {
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

  const modelName = (id) => (state.models[id] && state.models[id].name) || id;

  function scrollToEnd(force) {
    const box = ui.messages;
    if (force || box.scrollHeight - box.scrollTop - box.clientHeight < 120) box.scrollTop = box.scrollHeight;
  }

  function clearMessages() {
    ui.messages.replaceChildren(ui.empty);
    ui.empty.classList.remove('d-none');
  }

  function append(node) {
    ui.empty.classList.add('d-none');
    ui.messages.append(node);
    scrollToEnd(true);
    return node;
  }

  function messageShell(role) {
    const who = role === 'user' ? ['account', 'You'] : ['robot-outline', 'Assistant'];
    const body = el('div', {class: 'chatbox-bubble'});
    const wrap = el('div', {class: `chatbox-msg chatbox-msg-${role}`},
      el('div', {class: 'chatbox-who small text-secondary'}, icon(who[0]), ' ', who[1]), body);
    return {wrap, body};
  }

  function userMessage(text) {
    const {wrap, body} = messageShell('user');
    body.append(el('div', {class: 'chatbox-text'}, text));
    return append(wrap);
  }

  function alertBox(code, message) {
    const hint = ERROR_HINTS[code];
    return el('div', {class: 'alert alert-danger chatbox-error mb-0', role: 'alert', 'data-code': code || ''},
      el('div', null,
        el('div', {class: 'fw-bold'}, icon('alert-circle-outline'), ' ', message || 'Something went wrong.'),
        hint ? el('div', {class: 'small mt-1 chatbox-hint'}, hint) : null));
  }

  function notice(text, kind) {
    return append(el('div', {class: `alert alert-${kind || 'info'} chatbox-notice small`, role: 'status'}, text));
  }

  function objectLinks(objects) {
    const links = [];
    for (const obj of objects || []) {
      const url = safeUrl(obj.url || '');
      if (url) links.push(el('a', {href: url, class: 'badge bg-blue-lt text-decoration-none me-1 mb-1'}, icon('link-variant'), ' ', String(obj.display)));
    }
    return links;
  }

  function metaLine(msg) {
    const parts = [];
    if (msg.model) parts.push(`Answered by ${modelName(msg.model)}`);
    if (msg.output_tokens) parts.push(`${msg.input_tokens || 0} → ${msg.output_tokens} tokens`);
    if (msg.duration_ms) parts.push(`${(msg.duration_ms / 1000).toFixed(1)} s`);
    const meta = el('div', {class: 'chatbox-meta small text-secondary'}, parts.join(' · '));
    if (msg.interrupted) meta.prepend(el('span', {class: 'badge bg-yellow-lt me-1'}, 'Stopped'));
    return meta;
  }

  /** The row of a finished tool call: ✓ or ⚠, what it did, and how it went ("querying dcim.device — 2 found"). */
  function toolRow(row, what, call) {
    row.replaceChildren(el('i', {class: `mdi ${call.ok ? 'mdi-check text-success' : 'mdi-alert text-danger'} me-1`, 'aria-hidden': 'true'}),
      what, call.summary ? ` — ${call.summary}` : '');
    return row;
  }

  /** A stored message from the conversations API (history, reloads). */
  function storedMessage(msg) {
    if (msg.role === 'user') return userMessage(msg.content);
    const {wrap, body} = messageShell('assistant');
    if (msg.role === 'error') {
      body.append(alertBox('', msg.content));
    } else {
      const calls = msg.tool_calls || [];
      body.append(
        el('div', {class: 'chatbox-tools small'}, calls.map((call) => toolRow(el('div', {class: 'chatbox-tool text-secondary'}), call.tool, call))),
        renderMarkdown(msg.content),
        el('div', {class: 'chatbox-objects'}, objectLinks(calls.flatMap((call) => call.objects || []))),
        metaLine(msg));
    }
    return append(wrap);
  }

  // ---------------------------------------------------------------------------------------------
  // Model indicator, connection status, buttons
  // ---------------------------------------------------------------------------------------------

  function showModel(model, fallback) {
    state.activeModel = model;
    ui.indicator.textContent = fallback ? modelName(fallback.actual_model) : model.name || modelName(model.id);
    ui.indicator.dataset.modelId = fallback ? fallback.actual_model : model.id;
    ui.indicator.className = `badge fs-5 ${fallback ? 'bg-yellow-lt' : 'bg-primary-lt'}`;
    ui.fallback.classList.toggle('d-none', !fallback);
    ui.fallback.textContent = fallback ? `Fallback: ${fallback.reason}` : '';
  }

  function setConnection(status) {
    const states = {
      connecting: ['status-yellow status-dot-animated', 'Connecting…'],
      live: ['status-green', 'Live'],
      reconnecting: ['status-red status-dot-animated', 'Connection lost, reconnecting…'],
      http: ['status-green', 'Live (HTTP streaming)'],
      closed: ['status-red', 'Unavailable'],
    };
    const [cls, label] = states[status];
    ui.connection.dataset.status = status;
    ui.connection.querySelector('.status-dot').className = `status-dot ${cls}`;
    ui.connection.querySelector('.chatbox-connection-label').textContent = label;
  }

  function updateControls() {
    const streaming = Boolean(state.turn);
    ui.send.classList.toggle('d-none', streaming);
    ui.stop.classList.toggle('d-none', !streaming);
    ui.send.disabled = Boolean(state.viewing) || !state.transport;
    ui.input.disabled = Boolean(state.viewing);
    if (ui.settings) ui.settings.classList.toggle('d-none', !state.selectionEnabled);
  }

  function showActivity(turn) {
    const running = [...turn.tools.values()].filter((tool) => tool.running);
    ui.activity.classList.toggle('d-none', !running.length);
    if (running.length) {
      ui.activity.querySelector('.chatbox-activity-label').textContent =
        `Working: ${running.map((tool) => tool.summary).join(', ')}…`;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // One streamed answer
  // ---------------------------------------------------------------------------------------------

  function startTurn() {
    const {wrap, body} = messageShell('assistant');
    const turn = {
      text: '',
      tools: new Map(),
      wrap,
      toolsBox: el('div', {class: 'chatbox-tools small'}),
      answer: el('div', {class: 'chatbox-answer'}, el('span', {class: 'chatbox-typing', 'aria-label': 'Thinking'}, el('span'), el('span'), el('span'))),
      objects: el('div', {class: 'chatbox-objects'}),
      seen: new Set(),
      pending: false,
    };
    body.append(turn.toolsBox, turn.answer, turn.objects);
    state.turn = turn;
    append(wrap);
    updateControls();
    return turn;
  }

  function renderTurn(turn) {
    turn.pending = false;
    if (turn.text) turn.answer.replaceChildren(renderMarkdown(turn.text));
    scrollToEnd();
  }

  function endTurn(extra) {
    const turn = state.turn;
    if (!turn) return;
    renderTurn(turn);
    if (!turn.text) turn.answer.replaceChildren();
    for (const tool of turn.tools.values()) {
      if (tool.running) tool.row.replaceChildren(icon('minus-circle-outline'), ' ', tool.summary, ' — stopped');
      tool.running = false;
    }
    if (extra) turn.wrap.querySelector('.chatbox-bubble').append(extra);
    state.turn = null;
    state.abort = null;
    ui.activity.classList.add('d-none');
    updateControls();
    scrollToEnd();
  }

  const handlers = {
    session(ev) {
      state.selectionEnabled = ev.selection_enabled;
      showModel(ev.model);
      const changed = ev.conversation !== state.conversation;
      state.conversation = ev.conversation;
      if (!state.viewing && ev.conversation !== state.shown) showActive();
      if (changed) refreshHistory();
      updateControls();
    },

    delta(ev) {
      const turn = state.turn;
      if (!turn) return;
      turn.text += ev.text;
      if (!turn.pending) {
        turn.pending = true;
        window.requestAnimationFrame(() => renderTurn(turn));
      }
    },

    tool_start(ev) {
      const turn = state.turn;
      if (!turn) return;
      const row = el('div', {class: 'chatbox-tool text-secondary', 'data-tool': ev.tool},
        el('span', {class: 'spinner-border spinner-border-sm me-1', 'aria-hidden': 'true'}), ev.summary);
      turn.tools.set(ev.id, {summary: ev.summary, running: true, row});
      turn.toolsBox.append(row);
      showActivity(turn);
    },

    tool_end(ev) {
      const turn = state.turn;
      if (!turn) return;
      const tool = turn.tools.get(ev.id) || {summary: ev.tool, row: turn.toolsBox.appendChild(el('div', {class: 'chatbox-tool text-secondary'}))};
      tool.running = false;
      toolRow(tool.row, tool.summary, ev);
      turn.tools.set(ev.id, tool);
      const fresh = (ev.objects || []).filter((obj) => !turn.seen.has(obj.url) && turn.seen.add(obj.url));
      turn.objects.append(...objectLinks(fresh));
      showActivity(turn);
    },

    fallback(ev) {
      showModel(state.activeModel, ev);
      if (state.turn) {
        state.turn.toolsBox.before(el('div', {class: 'alert alert-warning small py-2 chatbox-fallback-note'},
          `${modelName(ev.actual_model)} answers instead of ${modelName(ev.requested_model)}. ${ev.reason}`));
      }
    },

    complete(ev) {
      if (ev.conversation) {
        state.conversation = ev.conversation;
        state.shown = ev.conversation;
      }
      state.messageCount += 2;
      endTurn(metaLine(ev));
      refreshHistory();
    },

    error(ev) {
      if (state.turn) endTurn(alertBox(ev.code, ev.message));
      else append(alertBox(ev.code, ev.message));
      refreshHistory();
    },

    model_changed(ev) {
      state.conversation = ev.conversation;
      state.shown = ev.conversation;
      state.messageCount = 0;
      state.viewing = null;
      ui.readonly.classList.add('d-none');
      showModel(state.models[ev.new_model] || {id: ev.new_model, name: modelName(ev.new_model)});
      clearMessages();
      const count = ev.archived_message_count;
      notice(count
        ? `New conversation with ${modelName(ev.new_model)}. The previous conversation with ${modelName(ev.old_model)} (${count} message${count === 1 ? '' : 's'}) was archived; find it under History.`
        : `New conversation with ${modelName(ev.new_model)}.`);
      updateControls();
      refreshHistory();
    },
  };

  function handleEvent(ev) {
    const handler = ev && handlers[ev.type];
    if (handler) handler(ev);
  }

  // ---------------------------------------------------------------------------------------------
  // Transports: WebSocket first, streamed HTTP when no socket can be opened
  // ---------------------------------------------------------------------------------------------

  function connect() {
    setConnection(state.retries ? 'reconnecting' : 'connecting');
    let opened = false;
    let socket;
    try {
      socket = new WebSocket(`${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}${config.wsUrl}`);
    } catch (e) {
      useHttp();
      return;
    }
    socket.onopen = () => {
      opened = true;
      state.socket = socket;
      state.transport = 'ws';
      state.retries = 0;
      setConnection('live');
      updateControls();
      if (state.conversation) send({type: 'resume', conversation: state.conversation});
    };
    socket.onmessage = (message) => {
      try {
        handleEvent(JSON.parse(message.data));
      } catch (e) {
        console.error('chatbox: bad event', e);
      }
    };
    socket.onclose = (event) => {
      state.socket = null;
      if (!opened && !state.retries) {
        useHttp();  // the server offers no socket here (e.g. a WSGI-only deployment)
        return;
      }
      if (state.turn) endTurn(alertBox('connection', 'The connection was lost while answering.'));
      state.transport = null;
      updateControls();
      if (event.code === 4000) {  // the server refused the session and said why (an error event)
        setConnection('closed');
        return;
      }
      if (state.retries >= 5) {
        useHttp();
        return;
      }
      state.retries += 1;
      setConnection('reconnecting');
      window.setTimeout(connect, 500 * 2 ** state.retries);
    };
  }

  function useHttp() {
    state.transport = 'http';
    setConnection('http');
    updateControls();
  }

  function send(message) {
    state.socket.send(JSON.stringify(message));
  }

  async function api(method, path, body) {
    const response = await fetch(config.apiRoot + path, {
      method,
      credentials: 'same-origin',
      headers: {'Accept': 'application/json', 'Content-Type': 'application/json', 'X-CSRFToken': window.CSRF_TOKEN},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = data.detail || Object.values(data).flat().join(' ') || response.statusText;
      const error = new Error(detail);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function apiFailed(error) {
    const codes = {403: 'forbidden', 404: 'not_found', 409: 'in_progress'};
    append(alertBox(codes[error.status] || 'connection',
      error.message || 'The request failed.'));
  }

  /** Dispatch the events of a text/event-stream body as they arrive. */
  async function readEventStream(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, {stream: true}).replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const data = buffer.slice(0, end).split('\n').filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).replace(/^ /, '')).join('\n');
        buffer = buffer.slice(end + 2);
        if (data) handleEvent(JSON.parse(data));
      }
    }
  }

  /** One turn over POST chat/ with Accept: text/event-stream: the same events, read from the response body. */
  async function httpChat(message) {
    const controller = new AbortController();
    state.abort = controller;
    // A continued conversation keeps its own model; a new one uses the model shown on the page.
    const body = state.conversation ? {message, conversation: state.conversation} : {message, model: state.activeModel.id};
    try {
      const response = await fetch(`${config.apiRoot}chat/`, {
        method: 'POST',
        credentials: 'same-origin',
        signal: controller.signal,
        headers: {'Accept': 'text/event-stream', 'Content-Type': 'application/json', 'X-CSRFToken': window.CSRF_TOKEN},
        body: JSON.stringify(body),
      });
      if ((response.headers.get('Content-Type') || '').startsWith('text/event-stream') && response.body) {
        await readEventStream(response.body);  // refusals arrive as one error event, with a 4xx status
      } else if (!response.ok) {
        const data = await response.json().catch(() => ({}));
        handleEvent({type: 'error', code: response.status === 403 ? 'forbidden' : 'bad_request',
          message: data.detail || data.message || `The server answered ${response.status}.`});
      }
      if (state.turn) endTurn(alertBox('connection', 'The answer ended unexpectedly.'));
    } catch (error) {
      if (error.name === 'AbortError') endTurn(metaLine({interrupted: true}));
      else if (state.turn) endTurn(alertBox('connection', 'The connection was lost while answering.'));
      refreshHistory();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Sending, stopping, starting over
  // ---------------------------------------------------------------------------------------------

  function submit() {
    const text = ui.input.value;
    if (!text.trim() || state.turn || state.viewing || !state.transport) return;
    if (text.length > config.maxMessageChars) {
      append(alertBox('message_too_long', `Your message has ${text.length} characters; the limit is ${config.maxMessageChars}.`));
      return;
    }
    ui.input.value = '';
    userMessage(text);
    startTurn();
    if (state.transport === 'ws') send({type: 'chat', message: text});
    else httpChat(text);
  }

  function stop() {
    if (!state.turn) return;
    if (state.transport === 'ws' && state.socket) send({type: 'interrupt'});
    else if (state.abort) state.abort.abort();
  }

  async function newChat() {
    if (state.turn) return;
    state.viewing = null;
    if (state.transport === 'ws') {
      send({type: 'reset'});
      state.shown = undefined;  // the session event that follows shows the new (empty) conversation
    } else {
      try {
        await archiveActive();
      } catch (error) {
        apiFailed(error);
        return;
      }
      state.conversation = null;
      showActive();
    }
    refreshHistory();
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

  // ---------------------------------------------------------------------------------------------
  // Conversations: the active one, read-only views, history
  // ---------------------------------------------------------------------------------------------

  async function showActive() {
    state.viewing = null;
    ui.readonly.classList.add('d-none');
    const id = state.conversation;
    state.shown = id;
    clearMessages();
    state.messageCount = 0;
    updateControls();
    if (!id) return;
    try {
      const conversation = await api('GET', `conversations/${id}/`);
      if (state.shown !== id || state.viewing) return;  // the user moved on meanwhile
      conversation.messages.forEach(storedMessage);
      state.messageCount = conversation.messages.length;
    } catch (error) {
      apiFailed(error);
    }
    markHistory();
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
    clearMessages();
    conversation.messages.forEach(storedMessage);
    if (!conversation.messages.length) notice('This conversation has no messages.', 'secondary');
    const when = formatDate(conversation.created);
    ui.readonly.querySelector('.chatbox-readonly-text').textContent = conversation.archived
      ? `Archived conversation with ${modelName(conversation.model_id)} from ${when}. It is read-only.`
      : `Conversation with ${modelName(conversation.model_id)} from ${when}.`;
    byId('chatbox-continue').classList.toggle('d-none', conversation.archived);
    ui.readonly.classList.remove('d-none');
    updateControls();
    markHistory();
  }

  function continueConversation(conversation) {
    state.viewing = null;
    if (state.transport === 'ws') {
      send({type: 'resume', conversation: conversation.id});  // the session event that follows shows it
    } else {
      state.conversation = conversation.id;
      showModel(state.models[conversation.model_id] || {id: conversation.model_id, name: conversation.model_id});
      showActive();
    }
  }

  function openConversation(conversation) {
    if (state.turn) return;
    if (conversation.id === state.conversation) showActive();
    else showReadOnly(conversation.id);
  }

  const formatDate = (value) => new Date(value).toLocaleString([], {dateStyle: 'medium', timeStyle: 'short'});

  function historyItem(conversation) {
    const title = conversation.title || `Conversation ${conversation.id}`;
    const open = el('button', {type: 'button', class: 'btn btn-link text-reset text-decoration-none text-start p-0 flex-fill chatbox-history-open', title},
      el('div', {class: 'text-truncate fw-medium'}, title),
      el('div', {class: 'small text-secondary text-truncate'},
        conversation.archived ? el('span', {class: 'badge bg-secondary-lt me-1'}, 'Archived') : null,
        conversation.id === state.conversation ? el('span', {class: 'badge bg-green-lt me-1'}, 'Current') : null,
        `${modelName(conversation.model_id)} · ${formatDate(conversation.last_updated || conversation.created)}`));
    open.addEventListener('click', () => openConversation(conversation));
    const rename = el('button', {type: 'button', class: 'btn btn-sm btn-ghost-secondary btn-icon', title: 'Rename', 'aria-label': `Rename ${title}`}, icon('pencil'));
    rename.addEventListener('click', () => askRename(conversation));
    const remove = el('button', {type: 'button', class: 'btn btn-sm btn-ghost-danger btn-icon', title: 'Delete', 'aria-label': `Delete ${title}`}, icon('trash-can-outline'));
    remove.addEventListener('click', () => askDelete(conversation));
    return el('div', {class: 'list-group-item chatbox-history-item', 'data-id': conversation.id, 'data-archived': conversation.archived ? 'true' : 'false'},
      el('div', {class: 'd-flex align-items-center gap-1'}, open, el('div', {class: 'd-flex flex-shrink-0'}, rename, remove)));
  }

  function markHistory() {
    const shown = state.viewing ? state.viewing.id : state.conversation;
    for (const item of ui.history.querySelectorAll('.chatbox-history-item')) {
      item.classList.toggle('active', Number(item.dataset.id) === shown);
    }
  }

  async function refreshHistory() {
    let conversations;
    try {
      // Auditors may read other users' conversations through the API; this page lists one's own.
      conversations = (await api('GET', `conversations/?limit=100&owner_id=${config.userId}`)).results;
    } catch (error) {
      ui.history.replaceChildren(el('div', {class: 'list-group-item text-danger'}, `History is unavailable: ${error.message}`));
      return;
    }
    const active = conversations.find((conversation) => conversation.id === state.conversation);
    if (active && !state.turn) state.messageCount = active.message_count;  // what a switch would archive
    ui.history.replaceChildren(...(conversations.length
      ? conversations.map(historyItem)
      : [el('div', {class: 'list-group-item text-secondary'}, 'No conversations yet.')]));
    markHistory();
  }

  function askRename(conversation) {
    const input = byId('chatbox-rename-input');
    input.value = conversation.title || '';
    state.renaming = conversation;
    modal('chatbox-rename-modal').show();
    window.setTimeout(() => input.focus(), 200);
  }

  async function rename(event) {
    event.preventDefault();
    const title = byId('chatbox-rename-input').value.trim();
    if (!title) return;
    try {
      await api('PATCH', `conversations/${state.renaming.id}/`, {title});
    } catch (error) {
      apiFailed(error);
    }
    modal('chatbox-rename-modal').hide();
    refreshHistory();
  }

  function askDelete(conversation) {
    state.deleting = conversation;
    byId('chatbox-delete-name').textContent = conversation.title || `Conversation ${conversation.id}`;
    modal('chatbox-delete-modal').show();
  }

  async function remove() {
    const conversation = state.deleting;
    modal('chatbox-delete-modal').hide();
    try {
      await api('DELETE', `conversations/${conversation.id}/`);
    } catch (error) {
      apiFailed(error);
      return;
    }
    if (state.viewing && state.viewing.id === conversation.id) showActive();
    else if (conversation.id === state.conversation) newChat();
    refreshHistory();
  }

  // ---------------------------------------------------------------------------------------------
  // Model selector and switch warning
  // ---------------------------------------------------------------------------------------------

  const PROVIDERS = {anthropic: 'Anthropic', ollama: 'Ollama (local)'};

  async function loadModels() {
    const data = await api('GET', 'models/');
    state.models = Object.fromEntries(data.models.map((model) => [model.id, model]));
    state.modelList = data.models;
    state.selectionEnabled = data.selection_enabled;
    return data;
  }

  function modelCard(model, current) {
    const unavailable = !model.available;
    const via = model.path === 'sdk' ? 'Claude Agent SDK' : 'LiteLLM';
    const radio = el('input', {class: 'form-check-input mt-1', type: 'radio', name: 'chatbox-model', value: model.id,
      checked: model.id === current, disabled: unavailable && model.id !== current});
    return el('label', {class: `card card-sm mb-0 chatbox-model-card${unavailable ? ' opacity-75' : ''}`,
      'data-model-id': model.id},
    el('div', {class: 'card-body d-flex gap-3 align-items-start'}, radio,
      el('div', {class: 'flex-fill'},
        el('div', {class: 'd-flex flex-wrap align-items-center gap-2'},
          el('strong', {class: 'chatbox-model-name'}, model.name),
          model.recommended ? el('span', {class: 'badge bg-green-lt'}, 'Recommended') : null,
          model.id === current ? el('span', {class: 'badge bg-blue-lt chatbox-current'}, 'Current') : null,
          unavailable ? el('span', {class: 'badge bg-red-lt'}, 'Unavailable') : el('span', {class: 'badge bg-green-lt'}, icon('check-circle-outline'), ' Available')),
        el('div', {class: 'text-secondary'}, model.description),
        el('div', {class: 'small text-secondary mt-1'},
          `${PROVIDERS[model.provider] || model.provider} · ${Number(model.context_length).toLocaleString()} tokens of context · via ${via}`),
        unavailable && model.unavailable_reason ? el('div', {class: 'small text-danger mt-1'}, model.unavailable_reason) : null)));
  }

  async function openSelector() {
    if (!state.selectionEnabled) return;
    try {
      await loadModels();
    } catch (error) {
      apiFailed(error);
      return;
    }
    ui.modelList.replaceChildren(...state.modelList.map((model) => modelCard(model, state.activeModel.id)));
    modal('chatbox-model-modal').show();
  }

  function applySelection() {
    const chosen = ui.modelList.querySelector('input[name="chatbox-model"]:checked');
    const selector = modal('chatbox-model-modal');
    if (!chosen || chosen.value === state.activeModel.id) {
      selector.hide();
      return;
    }
    state.pendingModel = chosen.value;
    if (!state.messageCount) {
      selector.hide();
      switchModel();
      return;
    }
    byId('chatbox-switch-title').textContent = modelName(chosen.value);
    byId('chatbox-switch-current').textContent = modelName(state.activeModel.id);
    byId('chatbox-switch-new').textContent = modelName(chosen.value);
    // Both transports archive it: the socket's server itself, without a socket switchModel() through the API.
    byId('chatbox-switch-count').textContent =
      `${state.messageCount} message${state.messageCount === 1 ? '' : 's'} will be archived`;
    byId('chatbox-model-modal').addEventListener('hidden.bs.modal', () => modal('chatbox-switch-modal').show(), {once: true});
    selector.hide();
  }

  async function switchModel() {
    const model = state.pendingModel;
    state.pendingModel = null;
    modal('chatbox-switch-modal').hide();
    if (!model) return;
    if (state.transport === 'ws') {  // the server stops a running answer first, then switches
      send({type: 'model_change', model});
      return;
    }
    stop();
    try {
      await api('PUT', 'preference/', {model});  // validates the model first, as the socket's switch does
    } catch (error) {
      apiFailed(error);
      return;
    }
    let archived = 0;
    let failure = null;
    try {
      archived = await archiveActive();
    } catch (error) {
      failure = error;  // switched all the same (the preference is stored); say the old one was not archived
    }
    handlers.model_changed({old_model: state.activeModel.id, new_model: model, conversation: null,
      archived_message_count: archived});
    if (failure) apiFailed(failure);
  }

  // ---------------------------------------------------------------------------------------------
  // Wiring
  // ---------------------------------------------------------------------------------------------

  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
  ui.input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  ui.stop.addEventListener('click', stop);
  byId('chatbox-new').addEventListener('click', newChat);
  if (ui.settings) ui.settings.addEventListener('click', openSelector);
  byId('chatbox-model-apply').addEventListener('click', applySelection);
  byId('chatbox-switch-confirm').addEventListener('click', switchModel);
  byId('chatbox-rename-form').addEventListener('submit', rename);
  byId('chatbox-delete-confirm').addEventListener('click', remove);
  byId('chatbox-back').addEventListener('click', showActive);
  byId('chatbox-continue').addEventListener('click', () => continueConversation(state.viewing));

  if (config.about) ui.input.value = config.about.question;
  showModel(state.activeModel);
  updateControls();

  (async function start() {
    try {
      await loadModels();
      showModel(state.models[state.activeModel.id] || state.activeModel);
    } catch (error) {
      apiFailed(error);
    }
    refreshHistory();
    if (config.conversation) {
      // ?conversation=<id>: open it; an active one is continued once the transport is up.
      await showReadOnly(config.conversation);
    }
    connect();
  })();
}());
