"""Regenerate ``data/command_table.json`` from a running Redis 7.0 server.

Redis builds its command table from ``src/commands/*.json``; Ambry keeps the
same facts (arity, flags, key specs, ACL categories, tips, documentation) as
one data file, captured from the reference server with ``COMMAND INFO`` and
``COMMAND DOCS`` over RESP3 so that maps, sets and status strings keep their
wire types.  Which commands *exist* is decided by the implementations
registered in ``ambry.server.commands``; this file only describes them.

Usage: python -m ambry.server.gen_command_table [port]
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any


class _Resp3:
    """Minimal typed RESP3 reader used only by this generator."""

    def __init__(self, sock: socket.socket) -> None:
        self.f = sock.makefile("rb")

    def read(self) -> Any:
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return {"s": rest.decode()}
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            data = self.f.read(n + 2)[:-2]
            return data.decode()
        if t == b"_":
            return None
        if t in (b"*", b"~"):
            items = [self.read() for _ in range(int(rest))]
            return items if t == b"*" else {"set": items}
        if t == b"%":
            pairs = []
            for _ in range(int(rest)):
                k = self.read()
                pairs.append([k, self.read()])
            return {"map": pairs}
        raise RuntimeError(f"unexpected RESP3 type {t!r}")


def _cmd(sock: socket.socket, rd: _Resp3, *args: str) -> Any:
    out = b"*%d\r\n" % len(args)
    for a in args:
        b = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(b), b)
    sock.sendall(out)
    return rd.read()


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
    sock = socket.create_connection(("127.0.0.1", port))
    rd = _Resp3(sock)
    _cmd(sock, rd, "HELLO", "3")
    infos = _cmd(sock, rd, "COMMAND", "INFO")
    docs = _cmd(sock, rd, "COMMAND", "DOCS")
    table: dict[str, Any] = {}

    def add_info(info: list[Any]) -> None:
        name = info[0]
        subs = info[9]
        table.setdefault(name, {})["info"] = info[:9]
        # Redis answers an empty set, not an array, when there are none.
        for sub in subs["set"] if isinstance(subs, dict) else subs:
            add_info(sub)

    for info in infos:
        add_info(info)

    def add_doc(name: str, doc: dict[str, Any]) -> None:
        fields = []
        for k, v in doc["map"]:
            if k == "subcommands":
                for sname, sdoc in v["map"]:
                    add_doc(sname, sdoc)
            else:
                fields.append([k, v])
        table.setdefault(name, {})["docs"] = {"map": fields}

    for name, doc in docs["map"]:
        add_doc(name, doc)
    out = Path(__file__).with_name("data") / "command_table.json"
    out.write_text(json.dumps(table, indent=0, sort_keys=True) + "\n")
    print(f"wrote {len(table)} commands to {out}")


if __name__ == "__main__":
    main()
