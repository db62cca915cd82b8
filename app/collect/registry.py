"""Collectors by network: adding a network is one module and one line here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from app.collect.base import Collector
from app.collect.ok import OKCollector
from app.collect.telegram import TelegramCollector
from app.collect.vk import VKCollector

COLLECTORS: dict[str, type[Collector]] = {
    "vk": VKCollector,
    "ok": OKCollector,
    "telegram": TelegramCollector,
}


def collector_for(network: str, config: Mapping[str, Any], http: requests.Session) -> Collector:
    try:
        collector_class = COLLECTORS[network]
    except KeyError:
        raise LookupError(f"no collector reads {network!r} groups") from None
    return collector_class.from_config(config, http)
