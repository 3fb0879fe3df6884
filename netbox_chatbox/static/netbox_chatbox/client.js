/* Talking to the plugin: the REST API, and the chat's event stream over the WebSocket
 * (docs/protocol.md) or, when no socket can be opened, over streamed HTTP (fetch + ReadableStream).
 * Both transports deliver the same events (events.py) to one callback.
 */

/** A JSON API caller bound to the plugin's API root; failures throw an Error with .status. */
export function apiClient(apiRoot) {
  return async function api(method, path, body) {
    const response = await fetch(apiRoot + path, {
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
      error.data = data;  // e.g. a proposal's fresh state with a 409
      throw error;
    }
    return data;
  };
}

/** Dispatch the events of a text/event-stream body as they arrive. */
async function readEventStream(body, onEvent) {
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
      if (data) onEvent(JSON.parse(data));
    }
  }
}

/**
 * The event stream of one chat: WebSocket first, streamed HTTP when no socket can be opened.
 *
 * hooks: onEvent(event), onStatus('connecting'|'live'|'reconnecting'|'http'|'closed'),
 * onOpen() (a socket is up: resume the conversation), onLost(message) (the socket closed mid-answer).
 */
export class ChatClient {
  constructor({wsUrl, apiRoot}, hooks) {
    this.wsUrl = wsUrl;
    this.apiRoot = apiRoot;
    this.hooks = hooks;
    this.transport = null;  // 'ws' or 'http'
    this.socket = null;
    this.retries = 0;
    this.abort = null;      // AbortController of a streamed HTTP answer
  }

  connect() {
    this.hooks.onStatus(this.retries ? 'reconnecting' : 'connecting');
    let opened = false;
    let socket;
    try {
      socket = new WebSocket(`${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}${this.wsUrl}`);
    } catch (e) {
      this.useHttp();
      return;
    }
    socket.onopen = () => {
      opened = true;
      this.socket = socket;
      this.transport = 'ws';
      this.retries = 0;
      this.hooks.onStatus('live');
      this.hooks.onOpen();
    };
    socket.onmessage = (message) => {
      try {
        this.hooks.onEvent(JSON.parse(message.data));
      } catch (e) {
        console.error('chatbox: bad event', e);
      }
    };
    socket.onclose = (event) => {
      this.socket = null;
      if (!opened && !this.retries) {
        this.useHttp();  // the server offers no socket here (e.g. a WSGI-only deployment)
        return;
      }
      this.transport = null;
      this.hooks.onLost('The connection was lost while answering.');
      if (event.code === 4000) {  // the server refused the session and said why (an error event)
        this.hooks.onStatus('closed');
        return;
      }
      if (this.retries >= 5) {
        this.useHttp();
        return;
      }
      this.retries += 1;
      this.hooks.onStatus('reconnecting');
      window.setTimeout(() => this.connect(), 500 * 2 ** this.retries);
    };
  }

  useHttp() {
    this.transport = 'http';
    this.hooks.onStatus('http');
  }

  /** A message over the socket (chat, interrupt, reset, resume, model_change). */
  send(message) {
    this.socket.send(JSON.stringify(message));
  }

  /**
   * One turn over POST chat/ with Accept: text/event-stream: the same events, read from the response body.
   * Resolves to 'ended' (the stream closed), 'aborted' (stop()) or 'lost' (the network failed).
   */
  async postChat(body) {
    const controller = new AbortController();
    this.abort = controller;
    try {
      const response = await fetch(`${this.apiRoot}chat/`, {
        method: 'POST',
        credentials: 'same-origin',
        signal: controller.signal,
        headers: {'Accept': 'text/event-stream', 'Content-Type': 'application/json', 'X-CSRFToken': window.CSRF_TOKEN},
        body: JSON.stringify(body),
      });
      if ((response.headers.get('Content-Type') || '').startsWith('text/event-stream') && response.body) {
        await readEventStream(response.body, this.hooks.onEvent);  // refusals arrive as one error event, with a 4xx status
      } else if (!response.ok) {
        const data = await response.json().catch(() => ({}));
        this.hooks.onEvent({type: 'error', code: response.status === 403 ? 'forbidden' : 'bad_request',
          message: data.detail || data.message || `The server answered ${response.status}.`});
      }
      return 'ended';
    } catch (error) {
      return error.name === 'AbortError' ? 'aborted' : 'lost';
    } finally {
      if (this.abort === controller) this.abort = null;
    }
  }

  /** Stop the answer being streamed. */
  stop() {
    if (this.transport === 'ws' && this.socket) this.send({type: 'interrupt'});
    else if (this.abort) this.abort.abort();
  }
}
