"""Example questions for an empty chat, made from objects the user may see (so that clicking one works)."""

from django.apps import apps

from .page_context import readable

GENERIC = ["How many sites are there, and how many devices at each?", "Which prefixes are over 80 % full?"]


def _first(user, label, order):
    model = apps.get_model(label)
    if not readable(model):
        return None
    return model.objects.restrict(user, "view").order_by(order).first()


def example_questions(user) -> list[str]:
    """Up to four questions naming the user's own objects, most of them answered by the computed tools
    (free IPs, rack space, connections); generic ones when the user sees none of these types."""
    questions = []
    if site := _first(user, "dcim.site", "name"):
        questions.append(f'Which devices are at site "{site}"?')
    if prefix := _first(user, "ipam.prefix", "prefix"):
        questions.append(f"What is the next free IP in {prefix}?")
    if rack := _first(user, "dcim.rack", "name"):
        questions.append(f'How many free U are in rack "{rack}", and where?')
    if device := _first(user, "dcim.device", "name"):
        questions.append(f'What is connected to the interfaces of "{device}"?')
    return questions or GENERIC
