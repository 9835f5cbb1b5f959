"""Which adapter serves which network: each adapter module registers its class."""

from __future__ import annotations

import functools
import importlib
import json
import pkgutil
from typing import TYPE_CHECKING

from portal.publishing.channels.base import Channel

if TYPE_CHECKING:
    from portal.publishing.models import Channel as ChannelRow

_adapters: dict[str, type[Channel]] = {}


def register(cls: type[Channel]) -> type[Channel]:
    """Class decorator: ``@register`` on an adapter makes its ``network`` connectable."""
    existing = _adapters.get(cls.network)
    if existing is not None and existing is not cls:
        raise ValueError(f"two adapters for network {cls.network!r}")
    _adapters[cls.network] = cls
    return cls


@functools.cache
def _load_all() -> None:
    # Adapters are found, not listed: a module in this package is enough. Once per
    # process: importing registers them, and the modules do not change while it runs.
    import portal.publishing.channels as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in {"base", "registry", "http"}:
            importlib.import_module(f"{package.__name__}.{module.name}")


def networks() -> list[str]:
    _load_all()
    return sorted(_adapters)


def adapter_class(network: str) -> type[Channel]:
    _load_all()
    try:
        return _adapters[network]
    except KeyError:
        raise KeyError(f"no adapter for network {network!r}") from None


def adapter_for(row: ChannelRow) -> Channel:
    """The adapter of a stored channel, with its credentials decrypted."""
    credentials = json.loads(row.credentials or "{}")
    return adapter_class(row.network)(credentials, dict(row.settings or {}))
