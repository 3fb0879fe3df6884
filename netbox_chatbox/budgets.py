"""Usage limits per user (PLUGINS_CONFIG ``budgets``): checked before a turn starts.

Limits are tokens (input + output) and/or cost (USD) per calendar day and per calendar month, in
NetBox's ``TIME_ZONE``, counted from the stored answers of the user's conversations (the same rows the
usage view adds up). ``default`` applies to everyone; a user in a group listed under ``groups`` gets
that group's values instead (with several such groups, the most generous value of each limit; ``None``
lifts a limit). Answers of local models (provider ``ollama``) don't count when ``exempt_local_models``.

A turn that starts below a limit finishes even if it crosses it. So that two turns of one user can't
both start just below it (two tabs, two workers), a user with limits runs one answer at a time: a
Redis key taken in the pre-turn check and released once the answer is stored.
"""

import datetime
import uuid
import zoneinfo
from decimal import Decimal

from django.conf import settings as django_settings
from django.core.cache import cache
from django.db.models import DecimalField, IntegerField, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import catalog, metrics
from .conf import get_settings
from .models import Message

LIMITS = {  # key → (period, measure)
    "day_tokens": ("day", "tokens"),
    "month_tokens": ("month", "tokens"),
    "day_cost_usd": ("day", "cost_usd"),
    "month_cost_usd": ("month", "cost_usd"),
}
LOCAL_PROVIDERS = ("ollama",)
LOCK_TTL = 15  # seconds; the running turn refreshes it (refresh), so only a dead worker's key expires


def _zone():
    return zoneinfo.ZoneInfo(django_settings.TIME_ZONE)


def period_bounds(period: str, now=None) -> tuple[datetime.datetime, datetime.datetime]:
    """(start, next start) of the calendar day or month containing ``now``, in NetBox's time zone."""
    local = (now or timezone.now()).astimezone(_zone())
    if period == "day":
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        day = start.date() + datetime.timedelta(days=1)
    else:
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        day = (start.date() + datetime.timedelta(days=32)).replace(day=1)
    return start, datetime.datetime.combine(day, datetime.time.min, tzinfo=_zone())


def local_model_ids() -> list[str]:
    return [m.id for m in catalog.get_catalog().values() if m.provider in LOCAL_PROVIDERS]


def is_exempt(model: catalog.ModelEntry) -> bool:
    return bool(get_settings().budgets.get("exempt_local_models", True)) and model.provider in LOCAL_PROVIDERS


def limits_for(user) -> dict:
    """{limit key: value} that apply to ``user`` (the group override wins over ``default``)."""
    config = get_settings().budgets
    limits = dict(config.get("default") or {})
    groups = config.get("groups") or {}
    if groups:
        mine = [groups[name] for name in user.groups.values_list("name", flat=True) if name in groups]
        for key in LIMITS:
            values = [group[key] for group in mine if key in group]
            if values:
                limits[key] = None if None in values else max(values)
    return {key: value for key, value in limits.items() if key in LIMITS and value is not None}


def _used(user, since) -> dict:
    """Tokens and cost of the user's answers since ``since`` (answers of exempt local models left out)."""
    answers = Message.objects.order_by().filter(role="assistant", conversation__owner=user, created__gte=since)
    if get_settings().budgets.get("exempt_local_models", True):
        answers = answers.exclude(conversation__model_id__in=local_model_ids(), fallback=False)
    return answers.aggregate(
        tokens=Sum(Coalesce("input_tokens", 0) + Coalesce("output_tokens", 0), output_field=IntegerField(), default=0),
        cost_usd=Coalesce(Sum("cost_usd"), Value(Decimal(0)), output_field=DecimalField()),
    )


def status(user, now=None) -> list[dict]:
    """Each limit that applies to ``user``: how much is used and left, and when it resets."""
    limits = limits_for(user)
    used = {}
    result = []
    for key, limit in limits.items():
        period, measure = LIMITS[key]
        start, resets = period_bounds(period, now)
        if period not in used:
            used[period] = _used(user, start)
        spent = used[period][measure]
        limit = Decimal(str(limit)) if measure == "cost_usd" else int(limit)
        result.append(
            {
                "limit": key,
                "period": period,
                "measure": measure,
                "max": limit,
                "used": spent,
                "remaining": max(limit - spent, 0),
                "resets": resets,
            }
        )
    return result


def _describe(entry) -> str:
    period = "daily" if entry["period"] == "day" else "monthly"
    if entry["measure"] == "tokens":
        amount = f"{entry['max']:,} tokens (used: {entry['used']:,})"
    else:
        amount = f"${entry['max']:,.2f} (used: ${entry['used']:,.2f})"
    resets = entry["resets"].strftime("%Y-%m-%d %H:%M %Z")
    return f"You have reached your {period} chat limit of {amount}. It resets at {resets}."


def reserve(user, model: catalog.ModelEntry):
    """Refuse a turn over a limit; else hold the user's one-answer-at-a-time key (sync: database, Redis).

    Returns what :func:`release` needs, or None when no limit applies.
    """
    from .sessions import Refused

    if is_exempt(model) or not limits_for(user):
        return None
    key, token = f"netbox_chatbox:budget:{user.pk}", uuid.uuid4().hex
    if not cache.add(key, token, timeout=LOCK_TTL):
        raise Refused(
            "in_progress",
            "Another answer of yours is still running (with a usage limit on your "
            "account, one answer runs at a time); wait for it, then ask again.",
        )
    try:
        for entry in status(user):
            if entry["remaining"] <= 0:
                metrics.budget_refused(entry["limit"])
                raise Refused("budget_exceeded", _describe(entry))
    except BaseException:
        release((key, token))
        raise
    return key, token


def release(reservation) -> None:
    """Free the user's key once their answer is stored (only the holder's own key)."""
    if reservation:
        key, token = reservation
        if cache.get(key) == token:
            cache.delete(key)


def refresh(reservation) -> None:
    """Keep the holder's key alive while its turn runs (a worker that died mid-turn stops refreshing it)."""
    if reservation:
        key, token = reservation
        if cache.get(key) == token:
            cache.touch(key, LOCK_TTL)


def summary(user) -> dict | None:
    """What the chat shows: the limits that apply and what is left, or None without limits."""
    entries = status(user)
    if not entries:
        return None
    return {
        "limits": [
            {
                **e,
                "max": float(e["max"]) if e["measure"] == "cost_usd" else e["max"],
                "used": float(e["used"]) if e["measure"] == "cost_usd" else e["used"],
                "remaining": float(e["remaining"]) if e["measure"] == "cost_usd" else e["remaining"],
                "resets": e["resets"].isoformat(),
            }
            for e in entries
        ],
        "exempt_models": local_model_ids() if get_settings().budgets.get("exempt_local_models", True) else [],
    }
