"""Billing: what a job costs under the price list (``TERRACUBE_PRICES``), and the capabilities' ``billing``.

A price list names a currency and prices per unit of the usage a job's run measured
(``backend.jobs.execute._Usage``): ``cpu_seconds`` (its ``cpu``), ``result_gb`` (its ``result_bytes``,
per 10⁹ bytes) and ``input_megapixels`` (its ``input_pixels``, per 10⁶ values). There is one plan,
the default. Without a price list there is no ``billing`` section and no job has ``costs``: the API
only shows billing that is real.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULT_PLAN = "pay-as-you-go"

# price name → (usage entry, units of the usage value per priced unit, what the unit is called)
_UNITS: dict[str, tuple[str, float, str]] = {
    "cpu_seconds": ("cpu", 1.0, "CPU second"),
    "result_gb": ("result_bytes", 1e9, "GB of results"),
    "input_megapixels": ("input_pixels", 1e6, "million values read"),
}


def job_costs(prices: Mapping[str, Any] | None, usage: Mapping[str, Any] | None) -> float | None:
    """The costs of a job's run in the price list's currency; None without prices or usage."""
    if not prices or not usage:
        return None
    total = 0.0
    for name, (entry, per, _unit) in _UNITS.items():
        value = (usage.get(entry) or {}).get("value") if isinstance(usage.get(entry), Mapping) else None
        if isinstance(value, int | float):
            total += float(prices.get(name, 0)) * value / per
    return round(total, 6)


def plan_name(prices: Mapping[str, Any]) -> str:
    return str(prices.get("plan") or DEFAULT_PLAN)


def billing_document(prices: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The capabilities' ``billing`` section, or None when there is no price list."""
    if not prices:
        return None
    listed = [f"{prices[name]} {prices['currency']} per {unit}" for name, (_e, _p, unit) in _UNITS.items()
              if prices.get(name)]
    description = ("Batch jobs are charged after they finished, by what they measurably used: "
                   + (", ".join(listed) if listed else "nothing yet") + ". Synchronous requests are free.")
    return {
        "currency": prices["currency"],
        "default_plan": plan_name(prices),
        "plans": [{"name": plan_name(prices), "description": description, "paid": bool(listed)}],
    }
