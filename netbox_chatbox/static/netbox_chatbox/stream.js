/* The event stream's handlers shared by the Chat page and the panel (docs/protocol.md): both draw a turn
 * the same way; what differs (history, the address bar, budgets) comes in as hooks.
 */
import {alertBox} from './messages.js';

const CONNECTION = {
  connecting: ['status-yellow status-dot-animated', 'Connecting…'],
  live: ['status-green', 'Live'],
  reconnecting: ['status-red status-dot-animated', 'Connection lost, reconnecting…'],
  http: ['status-green', 'Live (HTTP streaming)'],
  closed: ['status-red', 'Unavailable'],
};

/** Show a transport status ('connecting', 'live', …) in an element with a .status-dot and a label. */
export function showConnection(element, status, labels) {
  const [cls, label] = CONNECTION[status];
  element.dataset.status = status;
  element.querySelector('.status-dot').className = `status-dot ${cls}`;
  element.querySelector('.chatbox-connection-label').textContent = (labels && labels[status]) || label;
}

/**
 * The handlers of a turn's events for ``view`` (a MessageView). hooks: endTurn(extra) (finish the turn and
 * update the controls), and optional delta(ev), fallback(ev), complete(ev) (before the turn ends),
 * completed(ev), error(ev) (after). Returns {type: handler}; add the page's own (session, …) to it.
 */
export function turnHandlers(view, hooks) {
  return {
    delta(ev) {
      if (hooks.delta) hooks.delta(ev);
      view.delta(ev);
    },
    retract: (ev) => view.retract(ev),
    tool_start: (ev) => view.toolStart(ev),
    tool_end: (ev) => view.toolEnd(ev),
    proposal: (ev) => view.proposal(ev),
    fallback(ev) {
      if (hooks.fallback) hooks.fallback(ev);
      view.fallbackNote(ev);
    },
    complete(ev) {
      if (hooks.complete) hooks.complete(ev);
      view.ground(ev);
      hooks.endTurn(view.metaLine(ev, view.turn && view.turn.text));
      if (hooks.completed) hooks.completed(ev);
    },
    error(ev) {
      if (view.turn) hooks.endTurn(alertBox(ev.code, ev.message));
      else view.alert(ev.code, ev.message);
      if (hooks.error) hooks.error(ev);
    },
  };
}

/** One function for the client's onEvent: the handler of the event's type, if any. */
export function dispatcher(handlers) {
  return (ev) => {
    const handler = ev && handlers[ev.type];
    if (handler) handler(ev);
  };
}

/** Start a turn with the text of ``input`` (shown as the user's message); null when it is too long (said). */
export function startQuestion(input, view, maxChars, about) {
  const text = input.value;
  if (text.length > maxChars) {
    view.alert('message_too_long', `Your message has ${text.length} characters; the limit is ${maxChars}.`);
    return null;
  }
  input.value = '';
  view.userMessage(text, about);
  view.startTurn();
  return text;
}

/** End a turn streamed over HTTP (client.postChat's outcome) that no complete or error event ended. */
export function endHttpTurn(outcome, view, endTurn) {
  if (outcome === 'aborted') endTurn(view.metaLine({interrupted: true}));
  else if (view.turn) endTurn(alertBox('connection', outcome === 'ended' ? 'The answer ended unexpectedly.' : 'The connection was lost while answering.'));
}

/** Send with the form's button or Enter (Shift+Enter: a new line). */
export function sendOnEnter(form, input, submit) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
}
