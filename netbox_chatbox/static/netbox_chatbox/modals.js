/* The chat page's dialogs (Bootstrap modals declared in chat.html): model selector, switch warning,
 * rename and delete. Each takes what to show and calls back with what the user chose.
 */
import {byId, el, icon} from './dom.js';

export const modal = (id) => window.Modal.getOrCreateInstance(byId(id));

const PROVIDERS = {anthropic: 'Anthropic', ollama: 'Ollama (local)'};

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

/**
 * The model selector and the switch warning. onChoose(modelId) when another model is applied;
 * the page answers with confirmSwitch(...) when messages would be archived, else switches at once.
 */
export class ModelDialogs {
  constructor({onChoose, onConfirm}) {
    this.list = byId('chatbox-model-list');
    byId('chatbox-model-apply').addEventListener('click', () => this.apply(onChoose));
    byId('chatbox-switch-confirm').addEventListener('click', () => {
      modal('chatbox-switch-modal').hide();
      onConfirm();
    });
  }

  open(models, currentId) {
    this.current = currentId;
    this.list.replaceChildren(...models.map((model) => modelCard(model, currentId)));
    modal('chatbox-model-modal').show();
  }

  apply(onChoose) {
    const chosen = this.list.querySelector('input[name="chatbox-model"]:checked');
    const selector = modal('chatbox-model-modal');
    if (!chosen || chosen.value === this.current) {
      selector.hide();
      return;
    }
    onChoose(chosen.value);
  }

  /** Close the selector (and switch at once): nothing would be archived. */
  close() {
    modal('chatbox-model-modal').hide();
  }

  /** Close the selector, then warn that ``count`` messages will be archived. */
  confirmSwitch(currentName, newName, count) {
    byId('chatbox-switch-title').textContent = newName;
    byId('chatbox-switch-current').textContent = currentName;
    byId('chatbox-switch-new').textContent = newName;
    // Both transports archive it: the socket's server itself, without a socket the page through the API.
    byId('chatbox-switch-count').textContent = `${count} message${count === 1 ? '' : 's'} will be archived`;
    byId('chatbox-model-modal').addEventListener('hidden.bs.modal', () => modal('chatbox-switch-modal').show(), {once: true});
    modal('chatbox-model-modal').hide();
  }
}

/** The rename dialog: open(conversation); onSave(conversation, title) once the user saves. */
export class RenameDialog {
  constructor(onSave) {
    this.input = byId('chatbox-rename-input');
    // Once shown (Bootstrap moves focus to the dialog itself first): type the new title straight away.
    byId('chatbox-rename-modal').addEventListener('shown.bs.modal', () => {
      this.input.focus();
      this.input.select();
    });
    byId('chatbox-rename-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const title = this.input.value.trim();
      if (!title) return;
      await onSave(this.conversation, title);
      modal('chatbox-rename-modal').hide();
    });
  }

  open(conversation) {
    this.conversation = conversation;
    this.input.value = conversation.title || '';
    modal('chatbox-rename-modal').show();
  }
}

/** The delete confirmation: open(conversation); onConfirm(conversation) once confirmed. */
export class DeleteDialog {
  constructor(onConfirm) {
    byId('chatbox-delete-confirm').addEventListener('click', () => {
      modal('chatbox-delete-modal').hide();
      onConfirm(this.conversation);
    });
  }

  open(conversation) {
    this.conversation = conversation;
    byId('chatbox-delete-name').textContent = conversation.title || `Conversation ${conversation.id}`;
    modal('chatbox-delete-modal').show();
  }
}
