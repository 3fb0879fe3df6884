"""Latency (p50/p95) and SQL queries per call of the NetBox data tools, on the NetBox demo data.

Runs ``run_tool`` exactly as both model paths do (validation, read-only transaction, statement
timeout, serialization, size cap), as a superuser and as a user who may view only the devices,
interfaces and site of one site and the active IP addresses. The bench's own users and permissions
are created in a transaction that is rolled back at the end, so the demo database is left as it was
(each tool call is then a savepoint, which costs the same statements as its own transaction would).

    NETBOX_DB=netbox_chatbox .venv/bin/python bench/tools_bench.py [--calls 50]

The database (default ``netbox_chatbox``, made by scripts/demo.sh) must be migrated.
Target (issue 3): p50 < 50 ms per tool call.
"""

import argparse
import os
import statistics
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

from dcim.models import Device, Interface, Site  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from ipam.models import IPAddress  # noqa: E402

from netbox_chatbox.tools import run_tool  # noqa: E402
from tests.conftest import grant  # noqa: E402

TARGET_MS = 50


def cases(site):
    device = Device.objects.filter(site__slug=site).annotate(n=Count("interfaces")).order_by("-n").first().pk
    return [
        ("query_objects", {"object_type": "dcim.device", "limit": 20}),
        (
            "query_objects",
            {
                "object_type": "dcim.device",
                "filters": {"status": "active"},
                "fields": ["name", "site", "status", "primary_ip4"],
                "limit": 20,
            },
        ),
        (
            "query_objects",
            {
                "object_type": "dcim.device",
                "limit": 50,
                "fields": ["name", "site", "rack", "role", "device_type", "status", "primary_ip4", "tags"],
            },
        ),
        # By device: for the constrained user a filter through the sites of devices is refused.
        (
            "query_objects",
            {
                "object_type": "dcim.interface",
                "filters": {"device_id": device, "enabled": True},
                "fields": ["name", "device", "type", "enabled", "mac_address", "link_peers"],
                "limit": 50,
            },
        ),
        ("query_objects", {"object_type": "dcim.device", "filters": {"q": "a"}, "limit": 20}),
        ("query_objects", {"object_type": "ipam.ipaddress", "filters": {"parent": "192.168.0.0/16"}, "limit": 50}),
        ("count_objects", {"object_type": "dcim.device"}),
        ("count_objects", {"object_type": "dcim.device", "group_by": "site"}),
        ("count_objects", {"object_type": "dcim.interface", "group_by": "type"}),
        ("search", {"query": site}),
        ("search", {"query": "192.168.0.1"}),
        ("get_object", {"object_type": "dcim.device", "id": device}),
        ("get_changelog", {"since": "30d"}),
    ]


def measure(user, name, arguments, calls):
    for _ in range(3):  # warm caches (permissions, content types, URL resolver)
        result = run_tool(name, arguments, user)
    if "error" in result:
        raise SystemExit(f"{name} {arguments}: {result['error']}")
    with CaptureQueriesContext(connection) as captured:
        run_tool(name, arguments, user)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        run_tool(name, arguments, user)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
    return statistics.median(times), p95, len(captured.captured_queries), result.get("count")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="timed calls per case (default 50)")
    args = parser.parse_args()

    site = Site.objects.annotate(n=Count("devices")).order_by("-n").first().slug
    print(
        f"database {connection.settings_dict['NAME']}: {Device.objects.count()} devices, "
        f"constrained user sees site {site}; {args.calls} calls per case\n"
    )
    print(f"{'user':<12}{'tool':<15}{'arguments':<62}{'p50 ms':>8}{'p95 ms':>8}{'SQL':>5}{'count':>7}")
    worst, over = 0.0, []
    with transaction.atomic():
        User = get_user_model()
        admin = User.objects.create_user("bench-admin", is_superuser=True)
        constrained = User.objects.create_user("bench-site-viewer")
        grant(constrained, Device, ["view"], {"site__slug": site})
        grant(constrained, Site, ["view"], {"slug": site})
        grant(constrained, Interface, ["view"], {"device__site__slug": site})
        grant(constrained, IPAddress, ["view"], {"status": "active"})
        for user in (admin, constrained):
            for name, arguments in cases(site):
                p50, p95, queries, count = measure(user, name, arguments, args.calls)
                worst = max(worst, p50)
                if p50 >= TARGET_MS:
                    over.append(f"{name} {arguments.get('object_type', '')} as {user.username}".replace("  ", " "))
                shown = str({k: v for k, v in arguments.items() if k != "object_type"})
                shown = f"{arguments.get('object_type', '')} {shown}".strip()
                print(
                    f"{user.username:<12.11}{name:<15}{shown[:60]:<62}{p50:>8.1f}{p95:>8.1f}{queries:>5}"
                    f"{'' if count is None else count:>7}"
                )
        transaction.set_rollback(True)
    print(f"\nworst p50: {worst:.1f} ms (target < {TARGET_MS} ms); over target: {', '.join(over) or 'none'}")
    print(
        "SQL counts include 4 statements of per-call overhead: savepoint, set_config(timeout, read-only), "
        "rollback, release."
    )


if __name__ == "__main__":
    main()
