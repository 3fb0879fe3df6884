"""Example questions for an empty chat, made from objects the user may see (so that clicking one works)."""
from django.apps import apps

from .page_context import readable

GENERIC = ["How many sites are there, and how many devices at each?", "Which devices are not active?"]


def _first(user, label, order):
    model = apps.get_model(label)
    if not readable(model):
        return None
    return model.objects.restrict(user, "view").order_by(order).first()


def example_questions(user) -> list[str]:
    """Up to three questions naming the user's own sites, prefixes and devices; generic ones otherwise."""
    questions = []
    if site := _first(user, "dcim.site", "name"):
        questions.append(f'Which devices are at site "{site}"?')
    if prefix := _first(user, "ipam.prefix", "prefix"):
        questions.append(f"Which IP addresses are in use in {prefix}?")
    if device := _first(user, "dcim.device", "name"):
        questions.append(f'Which interfaces does the device "{device}" have?')
    return questions or GENERIC
