"""The differential runner: the same commands to real redis-server and to Ambry.

Replies are compared byte for byte, so this talks RESP over raw sockets (no
client library that would decode and hide differences).  :class:`RespConn`
reads exactly one complete RESP2/RESP3 reply per command and returns its raw
bytes; :func:`parse_reply` turns raw bytes into a comparable tree for the
order-insensitive (``~``) and type-only (``?``) line modes.

Corpus format (``tests/corpus/*.txt``), one item per line:

* a command in redis-cli quoting (split with ``sdssplitargs``, i.e.
  :func:`ambry.server.protocol.split_args`), sent as a RESP multibulk;
* blank lines and lines starting with ``#`` are ignored;
* ``~ <command>``: replies compared order-insensitively (arrays, sets and
  maps as multisets, recursively one level);
* ``? <command>``: only the reply *type* must match (TIME, RANDOMKEY...);
* ``!sleep <seconds>``: pause;
* ``!raw <python bytes literal>``: send the bytes as they are, compare all
  that comes back until the connection closes or 0.5 s of silence, then
  reconnect (protocol errors);
* ``!reconnect``: open fresh connections (RESP3 is re-negotiated).

Every file starts from FLUSHALL on fresh connections (db 0).  Mismatches are
collected, never raised one by one, so one bad line does not hide others.
"""

from __future__ import annotations

import ast
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ambry.server.protocol import split_args

REPLY_TIMEOUT = 10.0
CLOSED_MARK = b"<connection closed>"
RAW_SILENCE = 0.5
RAW_MAX = 10.0


class ConnectionClosed(Exception):
    """The peer closed the connection before a whole reply arrived."""


class ReplyTimeout(Exception):
    """No complete reply within the time limit."""


class BadReply(Exception):
    """Bytes that are not RESP."""


# -- RESP parsing ---------------------------------------------------------------

_LINE_TYPES = b"+-:_,#("
_BLOB_TYPES = b"$!="
_AGG_TYPES = b"*%~>|"


def _line(buf: bytes, pos: int) -> tuple[bytes, int] | None:
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    return buf[pos:end], end + 2


def reply_end(buf: bytes, pos: int = 0) -> int | None:
    """Offset just past the complete reply starting at ``pos`` (None: incomplete).

    An attribute (``|``) is not a reply of its own: it belongs to the reply
    that follows it, so both are returned together."""
    if pos >= len(buf):
        return None
    t = buf[pos]
    got = _line(buf, pos + 1)
    if got is None:
        return None
    head, nxt = got
    if t in _LINE_TYPES:
        return nxt
    if t in _BLOB_TYPES:
        try:
            n = int(head)
        except ValueError as e:
            raise BadReply(buf[pos : pos + 40]) from e
        if n < 0:
            return nxt
        if len(buf) < nxt + n + 2:
            return None
        return nxt + n + 2
    if t in _AGG_TYPES:
        try:
            n = int(head)
        except ValueError as e:
            raise BadReply(buf[pos : pos + 40]) from e
        if n < 0:
            return nxt
        if t in b"%|":
            n *= 2
        p: int | None = nxt
        for _ in range(n):
            assert p is not None
            p = reply_end(buf, p)
            if p is None:
                return None
        if t == ord("|"):
            return reply_end(buf, p)  # type: ignore[arg-type]
        return p
    raise BadReply(buf[pos : pos + 40])


def parse_reply(buf: bytes, pos: int = 0) -> tuple[Any, int]:
    """Parse one complete reply into a tagged tree ``(type_char, payload)``.

    Aggregates carry a tuple of children; maps and attributes a tuple of
    ``(key, value)`` pairs; an attribute is ``("|", (pairs, reply))``."""
    t = chr(buf[pos])
    got = _line(buf, pos + 1)
    if got is None:
        raise BadReply(b"incomplete reply")
    head, nxt = got
    if t in "+-:_,#(":
        return (t, head), nxt
    n = int(head)
    if t in "$!=":
        if n < 0:
            return (t, None), nxt
        return (t, buf[nxt : nxt + n]), nxt + n + 2
    if n < 0:
        return (t, None), nxt
    p = nxt
    if t in "%|":
        pairs = []
        for _ in range(n):
            k, p = parse_reply(buf, p)
            v, p = parse_reply(buf, p)
            pairs.append((k, v))
        if t == "|":
            inner, p = parse_reply(buf, p)
            return ("|", (tuple(pairs), inner)), p
        return (t, tuple(pairs)), p
    items = []
    for _ in range(n):
        v, p = parse_reply(buf, p)
        items.append(v)
    return (t, tuple(items)), p


def parse_one(raw: bytes) -> Any:
    """The tree of a raw reply that must be exactly one reply."""
    v, end = parse_reply(raw, 0)
    if end != len(raw):
        raise BadReply(b"trailing bytes after reply")
    return v


def unordered(tree: Any, level: int = 0) -> Any:
    """Canonical form for ``~`` lines: arrays, sets, pushes and maps become
    sorted (multisets) at the top level and one level below; deeper values
    are compared exactly."""
    t, payload = tree
    if payload is None or t not in "*~>%|":
        return tree
    if t == "|":
        pairs, inner = payload
        return ("|", (pairs, unordered(inner, level)))
    if t == "%":
        items = [
            (unordered(k, level + 1), unordered(v, level + 1)) if level < 1 else (k, v) for k, v in payload
        ]
    else:
        items = [unordered(x, level + 1) if level < 1 else x for x in payload]
    return (t, tuple(sorted(items, key=repr)))


def reply_type(raw: bytes) -> str:
    """The RESP type character of a raw reply (after any attribute)."""
    if not raw or raw.startswith(b"<"):
        return raw.decode("latin-1")  # our own markers: <connection closed> ...
    tree = parse_one(raw)
    while tree[0] == "|":
        tree = tree[1][1]
    return tree[0]


def render(tree: Any) -> str:
    """A short human form of a reply tree (used by the AOF effects test)."""
    t, p = tree
    if t == "|":
        return render(p[1])
    if p is None or t == "_":
        return "None"
    if t in "*~>":
        return "[" + ", ".join(render(x) for x in p) + "]"
    if t == "%":
        return "{" + ", ".join(f"{render(k)}: {render(v)}" for k, v in p) + "}"
    if t == "=":
        return p[4:].decode("utf-8", "backslashreplace")
    if t == "#":
        return "True" if p == b"t" else "False"
    return p.decode("utf-8", "backslashreplace")


# -- connections ----------------------------------------------------------------


def encode_command(args: list[bytes]) -> bytes:
    """RESP multibulk request."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespConn:
    """A raw RESP connection: send bytes, read whole replies as raw bytes."""

    def __init__(self, host: str, port: int, timeout: float = REPLY_TIMEOUT) -> None:
        self.addr = (host, port)
        self.timeout = timeout
        self.sock = socket.create_connection(self.addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.closed = False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ReplyTimeout
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 20)
        except TimeoutError:
            raise ReplyTimeout from None
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            raise ConnectionClosed
        self.buf += data

    def read_reply(self, timeout: float | None = None) -> bytes:
        """Exactly one reply's raw bytes (an attribute travels with its reply)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            end = reply_end(self.buf, 0) if self.buf else None
            if end is not None:
                raw, self.buf = self.buf[:end], self.buf[end:]
                return raw
            self._recv(deadline)

    def command(self, *args: bytes | str | int, timeout: float | None = None) -> bytes:
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self.send(encode_command(argv))
        return self.read_reply(timeout)

    def read_until_silence(self, silence: float = RAW_SILENCE, limit: float = RAW_MAX) -> tuple[bytes, bool]:
        """Everything received until close or ``silence`` seconds without data.

        Returns (data, closed)."""
        data, self.buf = self.buf, b""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            self.sock.settimeout(silence)
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                return data, False
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                return data, True
            data += chunk
        return data, False

    def read_like(self, reference: bytes, ref_closed: bool, silence: float = RAW_SILENCE,
                  limit: float = RAW_MAX) -> tuple[bytes, bool]:
        """Like :meth:`read_until_silence`, but patient while less than
        ``reference`` (what the other server sent) has arrived, or while
        the other server closed and this one has not yet: a slow server is
        not mistaken for a silent one.  Returns (data, closed)."""
        data, self.buf = self.buf, b""
        end = time.monotonic() + limit
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return data, False
            behind = len(data) < len(reference) or ref_closed
            self.sock.settimeout(min(left, limit if behind else silence))
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                if behind:
                    continue
                return data, False
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                return data, True
            data += chunk

    def pending(self) -> bytes:
        """Bytes already received or arriving without waiting (leftovers)."""
        data, self.buf = self.buf, b""
        self.sock.settimeout(0)
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        except (BlockingIOError, OSError):
            pass
        return data


# -- corpus files -------------------------------------------------------------------


@dataclass
class Line:
    """One executable corpus line."""

    lineno: int
    text: str
    kind: str  # "cmd" | "sleep" | "raw" | "reconnect" | "error"
    mode: str = "exact"  # "exact" | "unordered" | "type"
    args: list[bytes] = field(default_factory=list)
    raw: bytes = b""
    seconds: float = 0.0


def parse_corpus(path: Path) -> list[Line]:
    """Read a corpus file into :class:`Line` items (bad lines become kind "error")."""
    out: list[Line] = []
    for i, rawline in enumerate(path.read_bytes().split(b"\n"), start=1):
        line = rawline.rstrip(b"\r")
        stripped = line.strip()
        if not stripped or stripped.startswith(b"#"):
            continue
        text = line.decode("utf-8", "backslashreplace")
        if stripped.startswith(b"!"):
            word, _, rest = stripped.partition(b" ")
            rest = rest.strip()
            if word == b"!sleep":
                try:
                    out.append(Line(i, text, "sleep", seconds=float(rest)))
                except ValueError:
                    out.append(Line(i, text, "error", raw=b"bad !sleep argument"))
            elif word == b"!raw":
                try:
                    lit = ast.literal_eval(rest.decode("utf-8"))
                except (ValueError, SyntaxError, UnicodeDecodeError):
                    lit = None
                if not isinstance(lit, bytes):
                    out.append(Line(i, text, "error", raw=b"!raw needs a Python bytes literal"))
                else:
                    out.append(Line(i, text, "raw", raw=lit))
            elif word == b"!reconnect":
                out.append(Line(i, text, "reconnect"))
            else:
                out.append(Line(i, text, "error", raw=b"unknown directive " + word))
            continue
        mode = "exact"
        if line.startswith(b"~ "):
            mode, line = "unordered", line[2:]
        elif line.startswith(b"? "):
            mode, line = "type", line[2:]
        args = split_args(line)
        if args is None:
            out.append(Line(i, text, "error", raw=b"unbalanced quotes"))
        elif not args:
            out.append(Line(i, text, "error", raw=b"no command after the prefix"))
        else:
            out.append(Line(i, text, "cmd", mode=mode, args=args))
    return out


# -- running ------------------------------------------------------------------------


def _short(b: bytes, limit: int = 600) -> str:
    r = repr(b)
    return r if len(r) <= limit else r[:limit] + f"... ({len(b)} bytes)"


@dataclass
class Mismatch:
    """One line whose replies differ."""

    file: str
    lineno: int
    text: str
    protocol: str
    redis: bytes
    ambry: bytes
    note: str = ""

    def __str__(self) -> str:
        head = f"{self.file}:{self.lineno} [{self.protocol}] {self.text}"
        if self.note:
            head += f"\n    ({self.note})"
        return f"{head}\n    redis: {_short(self.redis)}\n    ambry: {_short(self.ambry)}"


_SUB = {b"subscribe", b"psubscribe", b"ssubscribe"}
_UNSUB = {b"unsubscribe", b"punsubscribe", b"sunsubscribe"}


class _Side:
    """One server's connection plus the client-side state the runner tracks
    to know how many replies a command produces."""

    def __init__(self, name: str, addr: tuple[str, int], resp3: bool) -> None:
        self.name = name
        self.addr = addr
        self.resp3 = resp3
        self.conn: RespConn | None = None
        self.reply_mode = "on"  # CLIENT REPLY on | off | skip
        self.connect()

    def connect(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = RespConn(*self.addr)
        self.reply_mode = "on"
        if self.resp3:
            self.conn.command(b"HELLO", b"3")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _count_of(tree: Any) -> int | None:
    """The subscription count closing an (un)subscribe reply."""
    t, p = tree
    if t in "*>" and p and p[-1][0] == ":":
        return int(p[-1][1])
    return None


class Runner:
    """Runs corpus files against two servers and collects mismatches."""

    def __init__(self, redis_addr: tuple[str, int], ambry_addr: tuple[str, int]) -> None:
        self.redis_addr = redis_addr
        self.ambry_addr = ambry_addr

    def run_file(self, path: Path, resp3: bool) -> list[Mismatch]:
        proto = "RESP3" if resp3 else "RESP2"
        lines = parse_corpus(path)
        mism: list[Mismatch] = []
        name = path.name
        sides = [_Side("redis", self.redis_addr, resp3), _Side("ambry", self.ambry_addr, resp3)]
        try:
            setup = []
            for s in sides:
                assert s.conn is not None
                setup.append(s.conn.command(b"FLUSHALL"))
            if setup != [b"+OK\r\n", b"+OK\r\n"]:
                mism.append(Mismatch(name, 0, "FLUSHALL (set-up)", proto, setup[0], setup[1], "set-up failed"))
            for ln in lines:
                self._run_line(name, proto, ln, sides, mism)
            for s in sides:
                left = s.conn.pending() if s.conn is not None and not s.conn.closed else b""
                if left:
                    mism.append(Mismatch(name, lines[-1].lineno if lines else 0, "(end of file)", proto,
                                         left if s.name == "redis" else b"", left if s.name == "ambry" else b"",
                                         f"{s.name} sent more replies than the commands asked for"))
        finally:
            for s in sides:
                s.close()
        return mism

    # -- one line -----------------------------------------------------------------

    def _run_line(self, name: str, proto: str, ln: Line, sides: list[_Side], mism: list[Mismatch]) -> None:
        if ln.kind == "error":
            mism.append(Mismatch(name, ln.lineno, ln.text, proto, b"", b"", "corpus error: " + ln.raw.decode()))
            return
        if ln.kind == "sleep":
            time.sleep(ln.seconds)
            return
        if ln.kind == "reconnect":
            for s in sides:
                s.connect()
            return
        if ln.kind == "raw":
            for s in sides:
                assert s.conn is not None
                try:
                    s.conn.send(ln.raw)
                except OSError:
                    pass
            rconn, aconn = sides[0].conn, sides[1].conn
            assert rconn is not None and aconn is not None
            rdata, rclosed = rconn.read_until_silence()
            adata, aclosed = aconn.read_like(rdata, rclosed)
            got = [rdata + (CLOSED_MARK if rclosed else b""), adata + (CLOSED_MARK if aclosed else b"")]
            if got[0] != got[1]:
                mism.append(Mismatch(name, ln.lineno, ln.text, proto, got[0], got[1]))
            for s in sides:
                s.connect()
            return
        self._run_command(name, proto, ln, sides, mism)

    def _run_command(self, name: str, proto: str, ln: Line, sides: list[_Side], mism: list[Mismatch]) -> None:
        req = encode_command(ln.args)
        for s in sides:
            assert s.conn is not None
            if s.conn.closed:
                s.connect()
            try:
                s.conn.send(req)
            except OSError:
                s.conn.closed = True
        results: list[bytes] = []
        resync = False
        for s in sides:
            try:
                results.append(self._read_replies(s, ln.args))
            except ReplyTimeout:
                results.append(b"<no reply within %ds>" % int(REPLY_TIMEOUT))
                resync = True
            except ConnectionClosed:
                results.append(b"<connection closed>")
            except BadReply as e:
                results.append(b"<not RESP: " + (e.args[0] if e.args else b"") + b">")
                resync = True
        rr, ar = results
        if not _equal(rr, ar, ln.mode):
            note = {"unordered": "compared order-insensitively", "type": "compared by reply type"}.get(ln.mode, "")
            mism.append(Mismatch(name, ln.lineno, ln.text, proto, rr, ar, note))
        if resync:
            for s in sides:
                s.connect()

    def _read_replies(self, s: _Side, args: list[bytes]) -> bytes:
        """Read every reply ``args`` produces on this side; "" when none."""
        assert s.conn is not None
        conn = s.conn
        if conn.closed:
            raise ConnectionClosed
        cmd = args[0].lower()
        sub = args[1].lower() if len(args) > 1 else b""
        # CLIENT REPLY OFF/SKIP: replies are suppressed (OFF until ON, SKIP for
        # the next command); CLIENT REPLY ON answers +OK.
        if cmd == b"client" and sub == b"reply" and len(args) == 3:
            mode = args[2].lower()
            if mode in (b"off", b"skip"):
                s.reply_mode = mode.decode()
                return b""
            if mode == b"on" and s.reply_mode != "on":
                s.reply_mode = "on"
                return conn.read_reply()
        if s.reply_mode == "off":
            return b""
        if s.reply_mode == "skip":
            s.reply_mode = "on"
            return b""
        if cmd in _SUB and len(args) > 1:
            return b"".join(conn.read_reply() for _ in args[1:])
        if cmd in _UNSUB:
            if len(args) > 1:
                return b"".join(conn.read_reply() for _ in args[1:])
            out = b""
            for _ in range(100000):
                raw = conn.read_reply()
                out += raw
                try:
                    cnt = _count_of(parse_one(raw))
                except (BadReply, ValueError):
                    break
                if cnt is None or cnt == 0:
                    break
            return out
        raw = conn.read_reply()
        if cmd == b"quit" or (cmd == b"shutdown"):
            conn.close()
        return raw


def _equal(a: bytes, b: bytes, mode: str) -> bool:
    if a == b:
        return True
    if mode == "exact":
        return False
    try:
        if mode == "type":
            return _types(a) == _types(b)
        return _unordered_all(a) == _unordered_all(b)
    except (BadReply, ValueError, IndexError):
        return False


def _split(raw: bytes) -> Iterator[bytes]:
    pos = 0
    while pos < len(raw):
        end = reply_end(raw, pos)
        if end is None:
            raise BadReply(b"incomplete")
        yield raw[pos:end]
        pos = end


def _types(raw: bytes) -> list[str]:
    if raw.startswith(b"<"):
        return [raw.decode("latin-1")]
    return [reply_type(r) for r in _split(raw)]


def _unordered_all(raw: bytes) -> list[Any]:
    if raw.startswith(b"<"):
        return [raw]
    return [unordered(parse_one(r)) for r in _split(raw)]


def format_mismatches(path: Path, proto: str, mism: list[Mismatch]) -> str:
    """The failure message: every mismatch of one file, in line order."""
    head = f"{len(mism)} mismatch(es) in {path.name} ({proto}):"
    return head + "\n\n" + "\n\n".join(str(m) for m in mism)
