"""The one registry of NetBox data tools, used by both model paths.

Path A exposes TOOLS as an in-process SDK MCP server, path B as OpenAI-style function schemas;
both call :func:`run_tool`, which validates the arguments, runs the handler as the asking user in
a read-only transaction with a statement timeout, and keeps the result under the size caps.
"""

import json
import logging
from dataclasses import dataclass
from typing import Callable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import OperationalError, connection, transaction
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..conf import get_settings
from ..proposals import tools as proposal_tools
from . import computed, handlers
from .types import ToolError, scrub

logger = logging.getLogger("netbox_chatbox.tools")

__all__ = ("TOOLS", "Tool", "enabled_tools", "result_objects", "run_tool")


@dataclass(frozen=True)
class Tool:
    """One tool: ``handler(user, **arguments) -> dict`` is called only through :func:`run_tool`."""

    name: str
    description: str
    input_schema: dict
    handler: Callable
    verb: str = "running"
    # Validates NetBox writes (rolled back) and stores a Proposal; offered only when enable_changes is on.
    writes_proposal: bool = False

    def summarize(self, arguments: dict) -> str:
        """A short, UI-safe line: "querying dcim.device (site=ams1)"."""
        if not isinstance(arguments, dict):
            return f"{self.verb} {self.name}"
        target = next((str(arguments[k]) for k in TARGET_KEYS if arguments.get(k)), "")
        if arguments.get("id") is not None or arguments.get("object_id") is not None:
            target = f"{target} #{arguments.get('id', arguments.get('object_id'))}"
        details = []
        if isinstance(arguments.get("filters"), dict):
            details += [f"{k}={v}" for k, v in arguments["filters"].items()]
        for key in ("group_by", "since", "until", "app"):
            if arguments.get(key):
                details.append(f"{key.replace('_', ' ')} {arguments[key]}")
        text = f"{self.verb} {target}".strip() + (f" ({', '.join(details)})" if details else "")
        return text if len(text) <= 120 else text[:119] + "…"


# What a call is about, for its summary line: the first of these arguments it has.
TARGET_KEYS = ("object_type", "query", "prefix", "group", "range", "rack", "device")
TYPE_EXAMPLES = (
    "dcim.device, dcim.site, dcim.rack, dcim.interface, ipam.prefix, ipam.ipaddress, ipam.vlan, "
    "virtualization.virtualmachine, circuits.circuit, tenancy.tenant"
)
_TYPE = {"type": "string", "description": f"object type 'app_label.model', e.g. {TYPE_EXAMPLES}"}
_FILTERS = {
    "type": "object",
    "description": 'NetBox filters of the type (as in its REST API), e.g. {"site": "ams1", "status": '
    '["active", "planned"], "q": "core"}; describe_object_type lists them. '
    "Unknown names and bad values are errors.",
}
_FIELDS = {"type": "array", "items": {"type": "string"}, "description": "fields to return (default: brief)"}
_LIMIT = {"type": "integer", "minimum": 1, "description": "page size (default 20, at most tool_max_results)"}
_OFFSET = {"type": "integer", "minimum": 0, "default": 0}
_ID = {"type": "integer", "minimum": 1}


_SUMMARY = {"type": "string", "maxLength": 300, "description": 'one line the user reads, e.g. "rename rack R3 to R03"'}


def _schema(properties, required=()):
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "list_object_types",
            "List the NetBox object types you can read, grouped by app (dcim, ipam, circuits, "
            'virtualization, tenancy, …). Optional app, e.g. {"app": "ipam"}.',
            _schema({"app": {"type": "string", "description": "only this app, e.g. dcim"}}),
            handlers.list_object_types,
            "listing object types",
        ),
        Tool(
            "describe_object_type",
            f'Fields and accepted filters (with value hints) of one object type, e.g. {{"object_type": '
            f'"dcim.device"}}. Types: {TYPE_EXAMPLES}, … (list_object_types has all).',
            _schema({"object_type": _TYPE}, ["object_type"]),
            handlers.describe_object_type,
            "describing",
        ),
        Tool(
            "query_objects",
            "List NetBox objects of one type with filters, returning total count, has_more and each "
            'object\'s NetBox url. Example: {"object_type": "dcim.device", "filters": {"site": "ams1", '
            '"status": "active"}, "fields": ["name", "rack", "primary_ip4"], "ordering": ["name"], '
            f'"limit": 20}}. Types: {TYPE_EXAMPLES}, … (list_object_types has all).',
            _schema(
                {
                    "object_type": _TYPE,
                    "filters": _FILTERS,
                    "fields": _FIELDS,
                    "ordering": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "field names, '-' prefix for descending, e.g. [\"-created\"]",
                    },
                    "limit": _LIMIT,
                    "offset": _OFFSET,
                },
                ["object_type"],
            ),
            handlers.query_objects,
            "querying",
        ),
        Tool(
            "get_object",
            "One NetBox object by id, all its fields unless fields are given (config_context only when asked "
            'for). Example: {"object_type": "dcim.device", "id": 42}',
            _schema(
                {"object_type": _TYPE, "id": {"type": "integer", "minimum": 1}, "fields": _FIELDS},
                ["object_type", "id"],
            ),
            handlers.get_object,
            "reading",
        ),
        Tool(
            "search",
            "NetBox global search over names, descriptions, serials, IP addresses, … of all types. "
            'Example: {"query": "10.0.0.1"} or {"query": "core", "object_types": ["dcim.device"]}',
            _schema(
                {
                    "query": {"type": "string", "minLength": 1},
                    "object_types": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "limit to these types",
                    },
                    "limit": _LIMIT,
                },
                ["query"],
            ),
            handlers.search,
            "searching",
        ),
        Tool(
            "count_objects",
            "Count objects of one type matching filters, optionally grouped by a field. Example: devices per "
            'site {"object_type": "dcim.device", "group_by": "site"}; per status {"group_by": "status"}; '
            'per manufacturer {"group_by": "device_type__manufacturer"}.',
            _schema(
                {
                    "object_type": _TYPE,
                    "filters": _FILTERS,
                    "group_by": {"type": "string", "description": "a field, or a path like device_type__manufacturer"},
                    "limit": _LIMIT,
                },
                ["object_type"],
            ),
            handlers.count_objects,
            "counting",
        ),
        Tool(
            "get_changelog",
            "NetBox change log, newest first: who changed what and when, with before/after values. For one "
            'object {"object_type": "dcim.device", "object_id": 42}, a type, or a time window '
            '{"since": "24h"} (ISO date/time or relative 30m, 24h, 7d, 2w).',
            _schema(
                {
                    "object_type": _TYPE,
                    "object_id": {"type": "integer", "minimum": 1},
                    "since": {"type": "string"},
                    "until": {"type": "string"},
                    "action": {"type": "string", "enum": ["create", "update", "delete"]},
                    "user_name": {"type": "string", "description": "only changes made by this username"},
                    "limit": _LIMIT,
                    "offset": _OFFSET,
                }
            ),
            handlers.get_changelog,
            "reading change log",
        ),
        # Computed answers (tools/computed.py): NetBox's own calculations, never expanded into rows.
        Tool(
            "available_ips",
            "Free IP addresses of a prefix or IP range as NetBox computes them (its available-ips), summarised "
            "as ranges {first, last, size}, with the first free address, the free count, utilization and the "
            'addresses in use. Example: next free IP in 10.1.2.0/24: {"prefix": "10.1.2.0/24"}; in a VRF '
            '{"prefix": "10.1.2.0/24", "vrf": "blue"}; by id {"prefix_id": 12} or {"ip_range_id": 3}.',
            _schema(
                {
                    "prefix": {"type": "string", "description": "CIDR, e.g. 10.1.2.0/24 or 2001:db8::/64"},
                    "prefix_id": _ID,
                    "ip_range_id": _ID,
                    "vrf": {"type": "string", "description": "VRF name (default: any VRF; '' for global)"},
                    "limit": _LIMIT,
                }
            ),
            computed.available_ips,
            "finding free IPs in",
        ),
        Tool(
            "available_prefixes",
            "Free space inside a prefix or aggregate as NetBox computes it (its available-prefixes), as CIDR "
            "blocks; with prefix_length also how many blocks of that size fit and the first ones. Example: free "
            '/24s in 10.0.0.0/8: {"prefix": "10.0.0.0/8", "prefix_length": 24}; {"aggregate_id": 2}.',
            _schema(
                {
                    "prefix": {"type": "string", "description": "CIDR, e.g. 10.0.0.0/8"},
                    "prefix_id": _ID,
                    "aggregate_id": _ID,
                    "vrf": {"type": "string"},
                    "prefix_length": {"type": "integer", "minimum": 1, "maximum": 128},
                    "limit": _LIMIT,
                }
            ),
            computed.available_prefixes,
            "finding free prefixes in",
        ),
        Tool(
            "prefix_utilization",
            "Utilization (%) of the prefixes matching NetBox prefix filters, fullest first, as NetBox computes it "
            "(child IPs, or child prefixes for containers). Example: prefixes at AMS1 over 80 % full: "
            '{"filters": {"site": "ams1"}, "min_percent": 80}; inside a block {"filters": '
            '{"within": "10.0.0.0/8"}}.',
            _schema(
                {
                    "filters": _FILTERS,
                    "min_percent": {"type": "number", "minimum": 0, "maximum": 100},
                    "max_percent": {"type": "number", "minimum": 0, "maximum": 100},
                    "limit": _LIMIT,
                }
            ),
            computed.prefix_utilization,
            "computing utilization of prefixes",
        ),
        Tool(
            "available_vlans",
            "Free VLAN ids of a VLAN group as NetBox computes them (its available-vlans), as ranges, with the "
            'first free id and the VLANs in use. Example: {"group": "ams1-vlans"} (name or slug) or '
            '{"group_id": 4}.',
            _schema({"group": {"type": "string"}, "group_id": _ID, "limit": _LIMIT}),
            computed.available_vlans,
            "finding free VLAN ids in",
        ),
        Tool(
            "available_asns",
            "Free AS numbers of an ASN range (NetBox's available-asns), as ranges, with the first free ASN and "
            'the ASNs in use. Example: {"range": "private-16bit"} (name or slug) or {"range_id": 1}.',
            _schema({"range": {"type": "string"}, "range_id": _ID, "limit": _LIMIT}),
            computed.available_asns,
            "finding free ASNs in",
        ),
        Tool(
            "rack_space",
            "Free and used rack units of a rack as NetBox computes them: free runs for a device of u_height "
            "(full depth, or front/rear only for half-depth devices), reserved units, the devices in it with "
            'their units, and space and power utilization. Example: {"rack": "R3", "site": "ams1", '
            '"u_height": 2} or {"rack_id": 7}.',
            _schema(
                {
                    "rack": {"type": "string", "description": "rack name"},
                    "site": {"type": "string"},
                    "rack_id": _ID,
                    "u_height": {"type": "number", "minimum": 0.5, "maximum": 100},
                }
            ),
            computed.rack_space,
            "computing space in rack",
        ),
        Tool(
            "trace_cable",
            "Trace the cable path from a port hop by hop (through patch panels' front/rear ports and circuits), "
            'as NetBox\'s trace shows it. Example: {"device": "core-sw1", "name": "xe-0/0/1"}; a console '
            'port {"object_type": "dcim.consoleport", "id": 9}.',
            _schema(
                {
                    "object_type": {
                        "type": "string",
                        "enum": list(computed.ENDPOINT_TYPES),
                        "description": "the port's type (default dcim.interface)",
                    },
                    "id": _ID,
                    "device": {"type": "string"},
                    "name": {"type": "string", "description": "port name"},
                }
            ),
            computed.trace_cable,
            "tracing cable from",
        ),
        Tool(
            "device_connections",
            "What is connected to a device's interfaces: for each cabled or connected interface the cable, the "
            "peer at the cable's other end and the endpoint at the end of the path. Example: "
            '{"device": "core-sw1"} or {"device_id": 42}.',
            _schema({"device": {"type": "string"}, "device_id": _ID, "limit": _LIMIT}),
            computed.device_connections,
            "reading connections of",
        ),
        Tool(
            "device_config",
            "A device's merged config context (all its config contexts, as NetBox merges them) and, with "
            'render=true, its configuration rendered from its config template. Example: {"device": '
            '"core-sw1", "render": true}.',
            _schema({"device": {"type": "string"}, "device_id": _ID, "render": {"type": "boolean", "default": False}}),
            computed.device_config,
            "reading configuration of",
        ),
        # Change proposals (proposals/): offered only with enable_changes; nothing is applied by a tool.
        Tool(
            "propose_create",
            "Propose creating one NetBox object; the user reviews and applies it (nothing changes before). "
            'data as in NetBox\'s REST API, related objects by id. Example: {"object_type": "ipam.vlan", '
            '"data": {"vid": 120, "name": "guest", "site": 3}}. Errors say what to correct.',
            _schema({"object_type": _TYPE, "data": {"type": "object"}, "summary": _SUMMARY}, ["object_type", "data"]),
            proposal_tools.propose_create,
            "proposing to create",
            writes_proposal=True,
        ),
        Tool(
            "propose_update",
            "Propose changing fields of one NetBox object by id; the user reviews and applies it. Example: "
            '{"object_type": "dcim.rack", "id": 7, "data": {"name": "R03"}}',
            _schema(
                {
                    "object_type": _TYPE,
                    "id": {"type": "integer", "minimum": 1},
                    "data": {"type": "object"},
                    "summary": _SUMMARY,
                },
                ["object_type", "id", "data"],
            ),
            proposal_tools.propose_update,
            "proposing to update",
            writes_proposal=True,
        ),
        Tool(
            "propose_delete",
            "Propose deleting one NetBox object by id; the user reviews and applies it. Example: "
            '{"object_type": "ipam.ipaddress", "id": 12}',
            _schema(
                {"object_type": _TYPE, "id": {"type": "integer", "minimum": 1}, "summary": _SUMMARY},
                ["object_type", "id"],
            ),
            proposal_tools.propose_delete,
            "proposing to delete",
            writes_proposal=True,
        ),
        Tool(
            "propose_changes",
            "Propose several creates/updates/deletes applied together (all or nothing), up to the admin's limit. "
            'Example: {"operations": [{"action": "update", "object_type": "dcim.interface", "id": 5, '
            '"data": {"enabled": false}}, …], "summary": "disable 12 interfaces"}',
            _schema(
                {
                    "operations": {"type": "array", "items": proposal_tools.OPERATION_SCHEMA, "minItems": 1},
                    "summary": _SUMMARY,
                },
                ["operations"],
            ),
            proposal_tools.propose,
            "proposing changes",
            writes_proposal=True,
        ),
    )
}

_validators = {name: Draft202012Validator(tool.input_schema) for name, tool in TOOLS.items()}


def _argument_error(name, arguments) -> str | None:
    if not isinstance(arguments, dict):
        return "arguments must be a JSON object"
    error = best_match(_validators[name].iter_errors(arguments))
    if error is None:
        return None
    where = ".".join(str(p)[:60] for p in error.absolute_path)
    message = error.message if len(error.message) <= 300 else error.message[:299] + "…"
    return f"invalid arguments for {name}: {where + ': ' if where else ''}{message}"


MAX_ERROR_CHARS = 500


def enabled_tools() -> dict[str, Tool]:
    """The tools offered to models and MCP clients: proposal tools only when the admin enabled changes."""
    changes = get_settings().enable_changes
    return {name: tool for name, tool in TOOLS.items() if changes or not tool.writes_proposal}


def run_tool(name: str, arguments: dict, user, conversation=None) -> dict:
    """Run one tool as ``user``. Never raises: bad input comes back as {"error": "…"} for the model,
    at most MAX_ERROR_CHARS long (an error never echoes unbounded input).

    Read tools run in a read-only transaction; a proposal tool's writes are rolled back and only the
    Proposal (linked to ``conversation``) is stored afterwards, in a transaction of its own."""
    result = _run(name, arguments, user, conversation)
    if isinstance(result.get("error"), str) and len(result["error"]) > MAX_ERROR_CHARS:
        result["error"] = result["error"][: MAX_ERROR_CHARS - 1] + "…"
    return result


def _run(name, arguments, user, conversation) -> dict:
    tools = enabled_tools()
    tool = tools.get(name)
    if tool is None:
        return {"error": f"unknown tool {str(name)[:60]!r}; available tools: {', '.join(tools)}"}
    if arguments is None:
        arguments = {}
    if isinstance(arguments, dict):  # models often send null for an argument they mean to omit
        arguments = {key: value for key, value in arguments.items() if value is not None}
    if message := _argument_error(name, arguments):
        return {"error": message}
    settings = get_settings()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true), set_config('transaction_read_only', %s, true)",
                    [str(settings.tool_statement_timeout_ms), "off" if tool.writes_proposal else "on"],
                )
            result = tool.handler(user, **arguments)
            # Serialize inside the transaction (lazy values), then roll back: tools never write, and
            # the local settings above must not outlive the call (e.g. inside a caller's transaction).
            if not tool.writes_proposal:  # a proposal's draft is JSON already; store() keeps it whole
                result = json.loads(json.dumps(scrub(result), cls=DjangoJSONEncoder))
            transaction.set_rollback(True)
        if tool.writes_proposal:  # stored only now, outside the rolled-back transaction
            result = proposal_tools.store(user, result, conversation)
    except ToolError as e:
        return {"error": str(e)}
    except OperationalError as e:
        if getattr(e.__cause__, "sqlstate", None) == "57014":  # query_canceled
            return {
                "error": f"the query took longer than {settings.tool_statement_timeout_ms} ms and was "
                "cancelled; narrow it with filters or a smaller limit"
            }
        logger.exception("tool %s failed", name)
        return {"error": f"{name} failed because of a database error; try again or change the arguments"}
    except Exception:
        logger.exception("tool %s failed", name)
        return {"error": f"{name} failed unexpectedly; try different arguments"}
    return fit(result, settings.tool_max_chars)


LIST_KEYS = ("results", "changes", "groups")


def fit(result: dict, max_chars: int) -> dict:
    """Keep a result under ``max_chars`` of JSON: drop trailing items first, then shorten long values.

    Whatever is cut is said so in ``truncated``, and ``has_more`` / ``next_offset`` say how to get the rest.
    """

    def size(value):
        return len(json.dumps(value, ensure_ascii=False))

    if size(result) <= max_chars:
        return result
    key = next((k for k in LIST_KEYS if isinstance(result.get(k), list) and result[k]), None)
    if key:
        items, low, high = result[key], 0, len(result[key])
        while low < high:  # the most items that fit
            middle = (low + high + 1) // 2
            if size({**result, key: items[:middle]}) + 200 <= max_chars:
                low = middle
            else:
                high = middle - 1
        if low:
            kept = {**result, key: items[:low], "returned": low, "has_more": True}
            if "offset" in result:
                kept["next_offset"] = result["offset"] + low
            kept["truncated"] = (
                f"only {low} of {len(items)} items fit the {max_chars}-character limit; "
                "ask for fewer fields or page with offset"
            )
            return kept
    shortened = _shorten(result, 200)
    shortened["truncated"] = f"long values were cut to stay under the {max_chars}-character limit"
    if size(shortened) <= max_chars:
        return shortened
    return {
        "truncated": f"the result exceeds the {max_chars}-character limit; ask for fewer fields or a smaller limit",
        "has_more": True,
    }


def _shorten(value, chars):
    if isinstance(value, dict):
        return {k: _shorten(v, chars) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v, chars) for v in value]
    if isinstance(value, str) and len(value) > chars:
        return value[:chars] + "…"
    return value


def result_objects(result: dict) -> list[dict]:
    """Up to 10 NetBox objects a result mentions, as {display, url}, for links in the UI."""
    if not isinstance(result, dict):
        return []
    found, candidates = [], [result.get("object")]
    for key in LIST_KEYS:
        for item in result.get(key) or []:  # change log entries name their object under "object"
            candidates.append(item.get("object") if isinstance(item, dict) and "object" in item else item)
    for item in candidates:
        if isinstance(item, dict) and item.get("url") and item.get("display"):
            link = {"display": str(item["display"]), "url": item["url"]}
            if link not in found:
                found.append(link)
        if len(found) == 10:
            break
    return found
