/* The Chat page's model selector: the catalog (GET models/), its dialogs, and the switch — over the socket
 * (the server stops a running answer, archives and switches) or, without one, through the API.
 */
import {byId} from './dom.js';
import {showBudget} from './budget.js';
import {ModelDialogs} from './modals.js';

export class ModelSelector {
  /** page: {api, state, client, modelName, apiFailed, stop, archiveActive, onSwitched(model_changed event)} */
  constructor(page) {
    this.page = page;
    this.dialogs = new ModelDialogs({onChoose: (model) => this.choose(model), onConfirm: () => this.switch()});
  }

  /** The catalog, the user's limits and whether they may choose; kept in the page's state. */
  async load() {
    const {api, state} = this.page;
    const data = await api('GET', 'models/');
    state.models = Object.fromEntries(data.models.map((model) => [model.id, model]));
    state.modelList = data.models;
    state.selectionEnabled = data.selection_enabled;
    state.budget = data.budget;
    showBudget(byId('chatbox-budget'), state.budget, state.activeModel.id);
    return data;
  }

  async open() {
    const {state, apiFailed} = this.page;
    if (!state.selectionEnabled) return;
    try {
      await this.load();
    } catch (error) {
      apiFailed(error);
      return;
    }
    this.dialogs.open(state.modelList, state.activeModel.id);
  }

  choose(model) {
    const {state, modelName} = this.page;
    state.pendingModel = model;
    if (!state.messageCount) {
      this.dialogs.close();
      this.switch();
      return;
    }
    this.dialogs.confirmSwitch(modelName(state.activeModel.id), modelName(model), state.messageCount);
  }

  async switch() {
    const {api, state, client, apiFailed} = this.page;
    const model = state.pendingModel;
    state.pendingModel = null;
    if (!model) return;
    if (client.transport === 'ws') {  // the server stops a running answer first, then switches
      client.send({type: 'model_change', model});
      return;
    }
    this.page.stop();
    try {
      await api('PUT', 'preference/', {model});  // validates the model first, as the socket's switch does
    } catch (error) {
      apiFailed(error);
      return;
    }
    let archived = 0;
    let failure = null;
    try {
      archived = await this.page.archiveActive();
    } catch (error) {
      failure = error;  // switched all the same (the preference is stored); say the old one was not archived
    }
    this.page.onSwitched({old_model: state.activeModel.id, new_model: model, conversation: null,
      archived_message_count: archived});
    if (failure) apiFailed(failure);
  }
}
