"""Command implementations, one module per command family (mini-redis style).

Importing this package registers every command in the table
(``registry.COMMANDS``); :func:`install` wires the families that need a
hook into a server instance (cron work, shutdown checks).
"""

from __future__ import annotations

import importlib
from typing import Any

_FAMILIES = [
    "connection",
    "transactions",
    "pubsub",
    "strings",
    "bits",
    "hll",
    "keys",
    "lists",
    "expire",
    "introspection",
    "server_cmds",
    "client_cmd",
    "tracking_cmd",
    "debug",
    "zsets",
    "geo",
    "sets",
    "hashes",
    "streams",
    "acl_cmd",
    "persistence_cmd",
    "aof_cmd",
    "scripting_cmd",
    "functions_cmd",
    "replication_cmd",
]

for _name in _FAMILIES:
    importlib.import_module(f"{__name__}.{_name}")


def install(srv: Any) -> None:
    """Let each family attach its per-server hooks."""
    import sys

    for name in _FAMILIES:
        mod = sys.modules.get(f"{__name__}.{name}")
        hook = getattr(mod, "install", None)
        if hook is not None:
            hook(srv)
