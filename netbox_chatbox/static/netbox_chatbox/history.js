/* The History list of the chat page: the user's own conversations, the current one marked. */
import {el, formatDate, icon} from './dom.js';

export class HistoryList {
  /** hooks: isCurrent(id), shownId(), modelName(id), onOpen(c), onRename(c), onDelete(c). */
  constructor(box, {api, userId}, hooks) {
    this.box = box;
    this.api = api;
    this.userId = userId;
    this.hooks = hooks;
  }

  item(conversation) {
    const {hooks} = this;
    const title = conversation.title || `Conversation ${conversation.id}`;
    const open = el('button', {type: 'button', class: 'btn btn-link text-reset text-decoration-none text-start p-0 flex-fill chatbox-history-open', title},
      el('div', {class: 'fw-medium chatbox-history-title'}, title),
      el('div', {class: 'small text-secondary text-truncate'},
        conversation.archived ? el('span', {class: 'badge bg-secondary-lt me-1'}, 'Archived') : null,
        hooks.isCurrent(conversation.id) ? el('span', {class: 'badge bg-green-lt me-1'}, 'Current') : null,
        `${hooks.modelName(conversation.model_id)} · ${formatDate(conversation.last_updated || conversation.created)}`));
    open.addEventListener('click', () => hooks.onOpen(conversation));
    const rename = el('button', {type: 'button', class: 'btn btn-sm btn-ghost-secondary btn-icon', title: 'Rename', 'aria-label': `Rename ${title}`}, icon('pencil'));
    rename.addEventListener('click', () => hooks.onRename(conversation));
    const remove = el('button', {type: 'button', class: 'btn btn-sm btn-ghost-danger btn-icon', title: 'Delete', 'aria-label': `Delete ${title}`}, icon('trash-can-outline'));
    remove.addEventListener('click', () => hooks.onDelete(conversation));
    return el('div', {class: 'list-group-item chatbox-history-item', 'data-id': conversation.id, 'data-archived': conversation.archived ? 'true' : 'false'},
      el('div', {class: 'd-flex align-items-center gap-1'}, open, el('div', {class: 'd-flex flex-shrink-0'}, rename, remove)));
  }

  mark() {
    const shown = this.hooks.shownId();
    for (const item of this.box.querySelectorAll('.chatbox-history-item')) {
      item.classList.toggle('active', Number(item.dataset.id) === shown);
    }
  }

  /** Reload the list; resolves to the conversations (or null when the API failed). */
  async refresh() {
    let conversations;
    try {
      // Auditors may read other users' conversations through the API; this page lists one's own.
      conversations = (await this.api('GET', `conversations/?limit=100&owner_id=${this.userId}`)).results;
    } catch (error) {
      this.box.replaceChildren(el('div', {class: 'list-group-item text-danger'}, `History is unavailable: ${error.message}`));
      return null;
    }
    this.box.replaceChildren(...(conversations.length
      ? conversations.map((conversation) => this.item(conversation))
      : [el('div', {class: 'list-group-item text-secondary'}, 'No conversations yet.')]));
    this.mark();
    return conversations;
  }
}
