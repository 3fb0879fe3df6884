"""The chat model as a NetBox user preference (``plugins.netbox_chatbox.model``).

Registered with NetBox so it also shows on the user's own Preferences page; read and written
through ``user.config`` (UserConfig) by the API, the socket and the page alike.
"""

from users.preferences import UserPreference

from . import catalog
from .conf import get_settings

PREFERENCE_PATH = "plugins.netbox_chatbox.model"

preferences = {
    "model": UserPreference(
        label="Chat model",
        choices=[(m.id, m.name) for m in catalog.enabled_models()],
        default=catalog.default_model_id(),
        description="The AI model the Chat page uses. Changing it starts a new conversation.",
    ),
}


def get_user_model(user) -> str:
    """The user's chosen model; the default when unset, no longer in the catalog, or selection is off."""
    if not get_settings().enable_model_selection:
        return catalog.default_model_id()
    wanted = user.config.get(PREFERENCE_PATH) if user.is_authenticated else None
    try:
        return catalog.get_model(wanted).id
    except catalog.ModelNotAvailable:
        return catalog.default_model_id()


def set_user_model(user, model_id) -> catalog.ModelEntry:
    """Validate and store the user's model. Raises catalog.ModelNotAvailable."""
    entry = catalog.get_model(model_id)
    user.config.set(PREFERENCE_PATH, entry.id, commit=True)
    return entry
