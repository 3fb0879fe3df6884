"""Grounding: is every NetBox name and value an answer mentions in the data the assistant read?

When a tool finishes, :func:`facts` reduces its result to what an answer may cite: the strings and
their words, the numbers (and list lengths), the IP addresses, and the ranges that computed tools
summarise (free IPs, VLAN ids, ASNs, rack units), so "10.1.2.77 is free" is grounded by a free range
10.1.2.5–10.1.2.250. When the answer is stored, :func:`review` looks in its text for what reads as
NetBox data — IP addresses and prefixes, identifier-like names (letters with digits or joined by -_/.,
or code-formatted), VLAN ids, ASNs, counts and percentages presented as data, links to NetBox pages —
and checks each against the facts of every tool call in the conversation and the user's own words.
Ordinary words, the catalog's model names and numbers the user typed are never flagged.
"""

import ipaddress
import re

from . import catalog
from .conf import get_settings
from .tools import TOOLS
from .tools.types import object_types

MAX_FACTS = 20000  # per tool call
MAX_MENTIONS = 50
WITHHELD = (
    "This answer was withheld: it names {names} that the assistant did not find in the NetBox data "
    "it read in this conversation. Ask again, or ask it to look these up."
)

_IPV4 = r"(?<![\w.:/])(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?![\w.]*\w)"
_IPV6 = r"(?<![\w:/])(?=[0-9a-fA-F:]*:[0-9a-fA-F:]*:)[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}(?:/\d{1,3})?(?![\w:])"
IP_RE = re.compile(f"{_IPV4}|{_IPV6}")
LINK_RE = re.compile(r"\]\((/[^)\s]*)\)")
URL_RE = re.compile(r"https?://\S+|\]\([^)]*\)")
CODE_RE = re.compile(r"`([^`\n]{1,80})`")
TOKEN_RE = re.compile(r"(?<![\w/.-])[A-Za-z0-9][A-Za-z0-9_./:-]*[A-Za-z0-9](?![\w-])")
VLAN_RE = re.compile(r"\b(?:VLAN|VID)s?(?:\s+ids?)?\s*#?\s*(\d{1,4})\b", re.I)
ASN_RE = re.compile(r"\b(?:AS|ASN)\s?(\d{1,10})\b")
UNIT_RE = re.compile(r"\bU\s?(\d{1,3}(?:\.5)?)\b")
COUNT_RE = re.compile(
    r"(?<![\w.,/:-])(\d[\d,]*(?:\.\d+)?)\s*(%|percent\b|U\b|(?:free |available |used |active |planned )?"
    r"(?:devices?|interfaces?|prefix(?:es)?|IPs?|IP addresses|addresses|address|VLANs?|ASNs?|racks?|sites?|"
    r"units?|cables?|circuits?|VMs?|virtual machines?|ports?|hosts?|subnets?|blocks?|ids?|numbers?|objects?|"
    r"tenants?|connections?|changes?|results?)\b)",
    re.I,
)
# Identifier-like words that are general vocabulary, not NetBox data.
GENERIC = re.compile(
    r"(?:ipv[46]|rfc\d+|\d+(?:\.\d+)?(?:u|g|m|k|t|gb|mb|kb|tb|gbps|mbps|ms|s|h|d|w|x|kw|w|va|mm|in|ft|%)|"
    r"\d+(?:st|nd|rd|th)|v?\d+(?:\.\d+)+[a-z]?|802\.\d+[a-z]*|[a-z]-?\d|cat\d[a-z]?|p\d\d|utf-8|e\.g|i\.e|n/a|"
    r"\d{4}-\d{2}-\d{2}(?:t[\d:.]+z?)?|\d{1,2}:\d{2}(?::\d{2})?|layer-?[1-7]|l[1-7]|q[1-4]|x86(?:_64)?|"
    r"[a-z]+/[a-z]+|/\d{1,3}|\d+-[a-z]+|\d+(?:g|m)?(?:base|be)(?:-?[a-z0-9]+)?|[a-z]+/\d)"
)


# ----------------------------------------------------------------------------------------------
# Facts of a tool result


def facts(result) -> list[str]:
    """What an answer may cite from one tool result, as a compact list of normalised strings."""
    found = set()

    def add_string(text, available):
        text = text.strip().lower()
        if len(text) <= 300:  # long texts (descriptions, a rendered configuration) count by their words
            found.add(text)
        for word in re.split(r"[\s,;()\[\]{}\"'<>|=]+", text):
            if word:
                found.add(word.strip(".:"))
        for match in IP_RE.finditer(text):
            if network := _network(match.group()):
                found.add(_canonical(network))
                found.add(
                    str(
                        network.network_address
                        if network.prefixlen != network.max_prefixlen
                        else network.network_address
                    )
                )
                if "/" in match.group():
                    found.add(str(ipaddress.ip_interface(match.group()).ip))
                if available:
                    found.add(f"#ip:{int(network.network_address)}:{int(network.broadcast_address)}")

    def walk(value, available=False):
        if len(found) > MAX_FACTS:
            return
        if isinstance(value, dict):
            first, last = value.get("first"), value.get("last")
            if isinstance(first, (int, float)) and isinstance(last, (int, float)) and not isinstance(first, bool):
                found.add(f"#n:{first}:{last}")
            elif isinstance(first, str) and isinstance(last, str) and _address(first) and _address(last):
                found.add(f"#ip:{int(_address(first))}:{int(_address(last))}")
            for key, item in value.items():
                found.add(str(key).lower())
                walk(item, available or str(key).startswith(("available", "blocks", "first")))
        elif isinstance(value, list):
            found.add(_number(len(value)))
            for item in value:
                walk(item, available)
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, (int, float)):
            found.add(_number(value))
        elif isinstance(value, str):
            add_string(value, available)

    walk(result)
    return sorted(found)[:MAX_FACTS]


def _number(value) -> str:
    value = float(value)
    return str(int(value)) if value == int(value) else str(round(value, 2))


def _network(text):
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _address(text):
    try:
        return ipaddress.ip_address(text.split("/")[0].strip())
    except ValueError:
        return None


def _canonical(network) -> str:
    return network.with_prefixlen if network.prefixlen != network.max_prefixlen else str(network.network_address)


# ----------------------------------------------------------------------------------------------
# Checking an answer


class Known:
    """The facts of a conversation's tool results plus the user's own words."""

    def __init__(self, fact_lists, user_texts):
        self.strings, self.numbers, self.ranges, self.ip_ranges = set(), set(), [], []
        for items in fact_lists:
            for fact in items:
                if fact.startswith("#n:"):
                    first, last = fact[3:].split(":")
                    self.ranges.append((float(first), float(last)))
                elif fact.startswith("#ip:"):
                    first, last = fact[4:].split(":")
                    self.ip_ranges.append((int(first), int(last)))
                else:
                    self.strings.add(fact)
                    if re.fullmatch(r"-?\d+(?:\.\d+)?", fact):
                        self.numbers.add(float(fact))
        for model in catalog.get_catalog().values():  # "answered by claude-haiku-4-5" is not NetBox data
            self.strings.update({model.id.lower(), model.name.lower(), *model.name.lower().split()})
        self.strings.update(TOOLS)
        self.strings.update(object_types())
        self.user = " ".join(user_texts).lower()
        for number in re.findall(r"\d+(?:\.\d+)?", self.user.replace(",", "")):
            self.numbers.add(float(number))

    def name(self, text) -> bool:
        text = text.lower().strip(".:")
        return text in self.strings or text in self.user

    def number(self, value: float) -> bool:
        """Known, in a known range, or a known value rounded (83.6 % may be said as 84 %)."""
        if value in self.numbers or any(first <= value <= last for first, last in self.ranges):
            return True
        tolerance = 0.5 if value == int(value) else 0.05
        return any(abs(n - value) <= tolerance for n in self.numbers)

    def ip(self, text) -> bool:
        network = _network(text)
        if network is None:
            return True
        if (
            _canonical(network) in self.strings
            or str(network.network_address) in self.strings
            or text.lower() in self.user
        ):
            return True
        first, last = int(network.network_address), int(network.broadcast_address)
        return any(low <= first and last <= high for low, high in self.ip_ranges)


def mentions(text: str, known: Known) -> list[dict]:
    """The NetBox names and values in ``text`` that ``known`` does not hold, as {text, kind}."""
    found, seen = [], set()

    def flag(value, kind):
        if value.lower() not in seen and len(found) < MAX_MENTIONS:
            seen.add(value.lower())
            found.append({"text": value, "kind": kind})

    for path in LINK_RE.findall(text):
        if path.split("?")[0] not in known.strings:
            flag(path, "link")
    prose = URL_RE.sub(" ", text)
    for match in IP_RE.finditer(prose):
        if _network(match.group()) is not None and not known.ip(match.group()):
            flag(match.group(), "ip")
    without_ips = IP_RE.sub(" ", prose)
    for vid in VLAN_RE.findall(without_ips):
        if not known.number(float(vid)):
            flag(f"VLAN {vid}", "vlan")
    for asn in ASN_RE.findall(without_ips):
        if not known.number(float(asn)):
            flag(f"AS{asn}", "asn")
    for unit in UNIT_RE.findall(without_ips):
        if not known.number(float(unit)):
            flag(f"U{unit}", "number")
    without_ips = UNIT_RE.sub(" ", ASN_RE.sub(" ", VLAN_RE.sub(" ", without_ips)))
    for number, unit in COUNT_RE.findall(without_ips):
        value = float(number.replace(",", ""))
        if not known.number(value):
            flag(f"{number}{unit if unit in ('%', 'U') else ' ' + unit.split()[-1]}", "number")
    for span in CODE_RE.findall(without_ips):
        span = span.strip()
        if _is_name(span, code=True) and not known.name(span):
            flag(span, "name")
    for token in TOKEN_RE.findall(CODE_RE.sub(" ", without_ips)):
        if _is_name(token) and not known.name(token):
            flag(token, "name")
    return found


def _is_name(token, code=False) -> bool:
    """Reads like a NetBox object name: letters with digits, or parts joined by - _ / (any word in code)."""
    token = token.strip(".:")
    if (
        len(token) < 2
        or re.fullmatch(r"[\d.,:/-]+", token)
        or GENERIC.fullmatch(token.lower())
        or all(GENERIC.fullmatch(part) for part in token.lower().split("/") if part)
    ):  # "IPv4/IPv6"
        return False
    if code:  # a code-formatted word is data unless it is a plain lowercase word (`active`)
        return bool(re.fullmatch(r"[\w.:/-]+", token)) and not re.fullmatch(r"[a-z]+", token)
    has_letter, has_digit = re.search(r"[A-Za-z]", token), re.search(r"\d", token)
    return bool(has_letter and (has_digit or re.search(r"[A-Za-z0-9][_/][A-Za-z0-9]", token)))


def review(text: str, fact_lists, user_texts) -> dict:
    """The grounding record of an answer: ``{"ungrounded": [...]}`` (empty when every mention is grounded)."""
    return {"ungrounded": mentions(text, Known(fact_lists, user_texts))}


def apply(conversation, text: str, tool_calls: list, facts_by_call: dict, stored=None) -> tuple[str, dict | None]:
    """Check an answer about to be stored: (the text to store, the grounding record for Message.grounding).

    Called once, where sessions/storage.py stores the answer (sync, inside its transaction). The facts of this
    turn's calls come in ``facts_by_call``; earlier turns' are read from their stored messages, unless the
    caller knows them: ``stored``, the conversation's (role, content, grounding) rows."""
    mode = get_settings().grounding_mode
    if mode == "off":
        return text, None
    fact_lists = list(facts_by_call.values())
    user_texts = []
    if stored is None:
        stored = conversation.messages.values_list("role", "content", "grounding")
    for role, content, grounding in stored:
        if role == "user":
            user_texts.append(content)
        elif grounding and grounding.get("facts"):
            fact_lists.append(grounding["facts"])
    # What the model asked for ("querying dcim.device (site=ams1)") is its own words, not a claim.
    user_texts += [call.get("summary") or "" for call in tool_calls]
    record = review(text, fact_lists, user_texts) if text.strip() else {"ungrounded": []}
    record["facts"] = sorted({fact for items in facts_by_call.values() for fact in items})[:MAX_FACTS]
    if mode == "withhold" and record["ungrounded"]:
        names = ", ".join(m["text"] for m in record["ungrounded"][:5])
        record["withheld"] = True
        return WITHHELD.format(names=names), record
    return text, record


def public(grounding) -> dict | None:
    """What clients see of a grounding record: the ungrounded mentions and whether it was withheld."""
    if not grounding or "ungrounded" not in grounding:
        return None
    return {"ungrounded": grounding["ungrounded"], "withheld": bool(grounding.get("withheld"))}


def event_fields(message) -> dict:
    """Fields of the ``complete`` event: the grounding, and the stored text when the answer was withheld."""
    record = public(getattr(message, "grounding", None))
    if record is None:
        return {}
    return {"grounding": record, **({"content": message.content} if record["withheld"] else {})}
