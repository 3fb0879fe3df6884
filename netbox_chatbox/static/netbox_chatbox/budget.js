/* The user's usage limits on the chat page: what is left, from the `budget` field of GET models/. */
import {formatDate} from './dom.js';

const PERIOD = {day: 'today', month: 'this month'};

function amount(entry, value) {
  return entry.measure === 'cost_usd'
    ? `$${value.toLocaleString([], {minimumFractionDigits: 2, maximumFractionDigits: 2})}`
    : `${value.toLocaleString()} tokens`;
}

/** Show (or hide, without limits) what is left of each limit for the model in use. */
export function showBudget(node, budget, modelId) {
  if (!node) return;
  if (!budget || !budget.limits.length) {
    node.classList.add('d-none');
    return;
  }
  node.classList.remove('d-none');
  if (budget.exempt_models.includes(modelId)) {
    node.textContent = 'No usage limit for this model';
    node.title = '';
    return;
  }
  const parts = budget.limits.map((entry) => `${amount(entry, entry.remaining)} left ${PERIOD[entry.period]}`);
  node.textContent = parts.join(' · ');
  node.title = budget.limits.map((entry) => `${amount(entry, entry.used)} of ${amount(entry, entry.max)} used `
    + `${PERIOD[entry.period]}; resets ${formatDate(entry.resets)}`).join('\n');
  node.classList.toggle('text-danger', budget.limits.some((entry) => entry.remaining <= 0));
}
