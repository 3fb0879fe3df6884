"""The one registry of NetBox data tools: each tool's name, description and input schema for the model,
and its handler. Both model paths and the MCP server offer these; ``run.run_tool`` calls them."""

from dataclasses import dataclass
from typing import Callable

from ..proposals import tools as proposal_tools
from . import changelog, computed, handlers


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
            changelog.get_changelog,
            "reading change log",
        ),
        # Computed answers (tools/computed/): NetBox's own calculations, never expanded into rows.
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
