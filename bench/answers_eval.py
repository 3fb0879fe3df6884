"""Are the assistant's answers right? Ask questions through the chat API and grade each answer.

Each question of the question file (YAML or JSON, default ``bench/answers_eval.yaml``) carries a Python
expression over NetBox's ORM that computes the true answer (helpers below). Every question is asked in a
new conversation through ``POST /api/plugins/chatbox/chat/`` (in process, as ``--user``, on the model the
plugin's configuration offers: a real Anthropic key or Ollama measures the real thing) and graded:

- correct:    the true answer appears in the answer, and the grounding check flagged nothing;
- ungrounded: the grounding check flagged a name or value no tool result held (docs/grounding.md);
- wrong:      otherwise.

With ``--fake`` the scripted fake Ollama (tests/fakes) plays the model: it calls the question's ``tool``
with its ``arguments`` and answers with the true value, which checks the plumbing (questions, tools, the
API, grading), not a model.

    NETBOX_DB=netbox_chatbox .venv/bin/python bench/answers_eval.py --fake
    ANTHROPIC_API_KEY=… NETBOX_DB=netbox_chatbox .venv/bin/python bench/answers_eval.py --model claude-haiku-4-5
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "devconf")]
os.environ.setdefault("NETBOX_DB", "netbox_chatbox")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import django  # noqa: E402

django.setup()

import yaml  # noqa: E402
from dcim.models import Device, Interface, Rack  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.utils.text import slugify  # noqa: E402
from ipam.models import RIR, ASNRange, IPRange, Prefix, VLANGroup  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from netbox_chatbox.conf import reset as reset_settings  # noqa: E402
from netbox_chatbox.models import Conversation  # noqa: E402
from netbox_chatbox.tools import run_tool  # noqa: E402

CHAT_URL = "/api/plugins/chatbox/chat/"


# ----------------------------------------------------------------------------------------------
# True answers, from the ORM (NetBox's own methods, independent of the tools' code)


def prefix(cidr, vrf=None):
    return Prefix.objects.get(prefix=cidr, **({"vrf__name": vrf} if vrf else {"vrf__isnull": True}))


def first_free_ip(cidr, vrf=None):
    return prefix(cidr, vrf).get_first_available_ip().split("/")[0]


def free_ip_count(cidr, vrf=None):
    return prefix(cidr, vrf).get_available_ip_count()


def range_id(start):
    return IPRange.objects.get(start_address__net_host=start).pk


def range_free_count(start):
    return IPRange.objects.get(start_address__net_host=start).get_available_ip_count()


def utilization(cidr, vrf=None):
    return round(prefix(cidr, vrf).get_utilization(), 1)


def _free_blocks(cidr, length, vrf=None):
    return [c for c in prefix(cidr, vrf).get_available_prefixes().iter_cidrs() if c.prefixlen <= length]


def first_free_block(cidr, length, vrf=None):
    return str(next(_free_blocks(cidr, length, vrf)[0].subnet(length)))


def free_block_count(cidr, length, vrf=None):
    return sum(2 ** (length - c.prefixlen) for c in _free_blocks(cidr, length, vrf))


def first_free_cidr(cidr, vrf=None):
    return str(prefix(cidr, vrf).get_available_prefixes().iter_cidrs()[0])


def _utilizations(filters):
    lookups = {"vrf__name": filters["vrf"]} if "vrf" in filters else {"prefix__net_contained": filters["within"]}
    return {str(p.prefix): p.get_utilization() for p in Prefix.objects.filter(**lookups)}


def fullest(filters):
    values = _utilizations(filters)
    return max(values, key=lambda p: values[p])


def count_over(filters, percent):
    return sum(1 for value in _utilizations(filters).values() if value >= percent)


def free_vids(group):
    return VLANGroup.objects.get(name=group).get_available_vids()


def asn_range(name):
    return ASNRange.objects.get(name=name)


def first_free_asn(name):
    return min(asn_range(name).get_available_asns())


def free_asn_count(name):
    return len(asn_range(name).get_available_asns())


def used_asns(name):
    return sorted(asn_range(name).get_child_asns().values_list("asn", flat=True))


# The demo data has ASNs (65001-65005, RIR "RFC 6996") but no ASN range: the eval adds these when missing.
EVAL_ASN_RANGES = (("Eval private 16-bit", 64512, 65534), ("Eval demo block", 65000, 65010))


def add_asn_ranges() -> list:
    """Create the eval's ASN ranges that the database lacks; returns them (deleted after the run)."""
    rir, _ = RIR.objects.get_or_create(slug="rfc-6996", defaults={"name": "RFC 6996", "is_private": True})
    made = []
    for name, start, end in EVAL_ASN_RANGES:
        if not ASNRange.objects.filter(name=name).exists():
            made.append(ASNRange.objects.create(name=name, slug=slugify(name), rir=rir, start=start, end=end))
    return made


def rack(name, site):
    return Rack.objects.get(name=name, site__name=site)


def free_units(name, site):
    r = rack(name, site)
    reserved = r.get_reserved_units()
    return sum(1 for u in r.get_available_units() if u == int(u) and u not in reserved)


def rack_utilization(name, site):
    return round(rack(name, site).get_utilization(), 1)


def rack_power(name, site):
    return rack(name, site).get_power_utilization()


def trace_end(device, interface):
    path = Interface.objects.get(device__name=device, name=interface).trace()
    far = path[-1][2]
    return str(far[0].parent_object) if far and hasattr(far[0], "parent_object") else str(far[0])


def neighbours(device):
    names = set()
    for interface in Interface.objects.filter(device__name=device, _path__isnull=False):
        names.update(str(end.parent_object) for end in interface.connected_endpoints if hasattr(end, "parent_object"))
    return sorted(names)


def connected_count(device):
    return Interface.objects.filter(device__name=device).exclude(cable=None, _path=None).count()


HELPERS = {
    name: value
    for name, value in globals().items()
    if callable(value) and not name.startswith("_") and name != "add_asn_ranges"
}
HELPERS.update(Device=Device)


# ----------------------------------------------------------------------------------------------
# Grading


def _values(expected):
    return expected if isinstance(expected, list) else [expected]


def found(expected, answer: str) -> bool:
    """Every expected value appears: strings as text, numbers as a number in the answer."""
    numbers = [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", answer)]
    for value in _values(expected):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if str(value).lower() not in answer.lower():
                return False
        elif not any(abs(n - value) <= (0 if isinstance(value, int) else 0.5) for n in numbers):
            return False
    return True


def grade(expected, answer, ungrounded) -> str:
    if ungrounded:
        return "ungrounded"
    return "correct" if found(expected, answer) else "wrong"


# ----------------------------------------------------------------------------------------------
# Running


def _arguments(arguments):
    return {
        key: eval(value[1:], HELPERS) if isinstance(value, str) and value.startswith("@") else value
        for key, value in (arguments or {}).items()
    }


def load(path):
    text = Path(path).read_text()
    questions = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    for question in questions:
        missing = {"id", "question", "expect"} - set(question)
        if missing:
            raise SystemExit(f"question {question.get('id', '?')}: missing {', '.join(sorted(missing))}")
    return questions


def configure(**values):
    """Change this process's plugin settings (the chat API runs in process)."""
    config = {**settings.PLUGINS_CONFIG.get("netbox_chatbox", {}), **values}
    settings.PLUGINS_CONFIG = {**settings.PLUGINS_CONFIG, "netbox_chatbox": config}
    reset_settings()


def use_fake_model():
    """Point the plugin at the scripted fake Ollama (path B) and return it."""
    from tests.fakes.ollama import FakeOllama

    fake = FakeOllama().start()
    configure(litellm_enabled=True, litellm_proxy_url="", ollama_base_url=fake.url, default_model="ollama-qwen2.5")
    return fake


def script(fake, question, expected, user):
    """The fake model calls the question's tool, then answers with the true value."""
    arguments = _arguments(question.get("arguments"))
    if question.get("tool"):
        result = run_tool(question["tool"], arguments, user)  # a question whose tool call fails is a bad question
        if "error" in result:
            raise SystemExit(f"{question['id']}: {question['tool']} {arguments}: {result['error']}")
        fake.tool_call(question["tool"], arguments)
    fake.reply("The answer: " + ", ".join(str(v) for v in _values(expected)) + ".")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", default=str(ROOT / "bench" / "answers_eval.yaml"))
    parser.add_argument(
        "--user", default="answers-eval", help="NetBox user who asks (created as a superuser if missing)"
    )
    parser.add_argument("--model", help="catalog model id (default: the user's / the configured default)")
    parser.add_argument("--fake", action="store_true", help="the scripted fake Ollama plays the model")
    parser.add_argument("--only", help="comma-separated question ids")
    parser.add_argument("--keep", action="store_true", help="keep the conversations (default: deleted after)")
    args = parser.parse_args()

    questions = load(args.questions)
    if args.only:
        questions = [q for q in questions if q["id"] in args.only.split(",")]
    configure(rate_limit_per_minute=0)  # a question every few hundred ms is the point here
    fake = use_fake_model() if args.fake else None
    user, created = get_user_model().objects.get_or_create(username=args.user, defaults={"is_superuser": True})
    client = APIClient()
    client.force_login(user)
    rows, started = [], time.perf_counter()
    added = add_asn_ranges()
    try:
        for question in questions:
            try:
                expected = eval(question["expect"], HELPERS)
            except Exception as e:  # a question that does not fit this database
                rows.append((question["id"], "error", 0.0, f"expect failed: {e!r}"[:80], None))
                continue
            if fake is not None:
                script(fake, question, expected, user)
            body = {"message": question["question"], **({"model": args.model} if args.model else {})}
            began = time.perf_counter()
            response = client.post(CHAT_URL, body, format="json")
            seconds = time.perf_counter() - began
            data = response.json()
            complete = (data.get("events") or [{}])[-1]
            if response.status_code != 200 or complete.get("type") != "complete":
                rows.append((question["id"], "error", seconds, str(complete.get("message") or data)[:60], expected))
                continue
            ungrounded = [m["text"] for m in (complete.get("grounding") or {}).get("ungrounded", [])]
            tools = [e["tool"] for e in data["events"] if e["type"] == "tool_end"]
            rows.append(
                (
                    question["id"],
                    grade(expected, data["answer"], ungrounded),
                    seconds,
                    ",".join(tools) + (f" ungrounded: {', '.join(ungrounded)}" if ungrounded else ""),
                    expected,
                )
            )
    finally:
        for made in added:
            made.delete()
        if not args.keep:
            Conversation.objects.filter(owner=user).delete()
        if created:
            user.delete()
        if fake is not None:
            fake.stop()

    print(f"{'question':28} {'grade':10} {'seconds':>7}  tools / notes")
    for qid, outcome, seconds, notes, expected in rows:
        print(
            f"{qid:28} {outcome:10} {seconds:7.2f}  {notes}"
            + (f"  (expected {expected})" if outcome != "correct" else "")
        )
    totals = {
        outcome: sum(1 for row in rows if row[1] == outcome) for outcome in ("correct", "wrong", "ungrounded", "error")
    }
    print(
        "\n"
        + "  ".join(f"{k}: {v}" for k, v in totals.items())
        + f"  of {len(rows)} in {time.perf_counter() - started:.1f} s"
        + ("  (scripted fake model: plumbing only)" if fake else "")
    )
    return 0 if totals["error"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
