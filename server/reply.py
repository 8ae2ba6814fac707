"""Reply values and their RESP2/RESP3 encodings.

Commands return plain Python values; the connection encodes them once for the
client's protocol.  Keeping replies as values (not bytes) lets MULTI/EXEC,
scripts and tests consume them without re-parsing, the way Redis's Lua bridge
has to parse a fake client's output buffer.

Mapping:
    bytes / bytearray / memoryview -> bulk string
    int                            -> integer (bool is not used for replies)
    None                           -> null bulk ($-1 / _)
    NULL_ARRAY                     -> null array (*-1 / _)
    list / tuple                   -> array
    Bulks                          -> array of bulk strings (every element bytes)
    Status                         -> simple string
    Err                            -> error reply
    float                          -> double (RESP3 ``,``; RESP2 bulk %.17g)
    Map                            -> map (RESP2: flat array)
    SetReply                       -> set (RESP2: array)
    Bool                           -> RESP3 boolean (RESP2: integer 1/0)
    Verbatim                       -> RESP3 verbatim string (RESP2: bulk)
    BigNumber                      -> RESP3 big number (RESP2: bulk)
    Push                           -> RESP3 push (RESP2: array)
    Raw                            -> bytes already encoded for both protocols
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


class Status(bytes):
    """A simple-string reply (``+OK``)."""

    __slots__ = ()


class Err(Exception):
    """An error reply.  Raised by commands, also usable as a reply value
    (e.g. one element of an EXEC result)."""

    def __init__(self, msg: str | bytes) -> None:
        if isinstance(msg, str):
            msg = msg.encode()
        # Redis replaces newlines in error texts so the reply stays one line.
        self.msg = msg.replace(b"\r", b" ").replace(b"\n", b" ")
        super().__init__(self.msg)

    def __repr__(self) -> str:
        return f"Err({self.msg!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Err) and other.msg == self.msg

    def __hash__(self) -> int:
        return hash(self.msg)

    @property
    def code(self) -> bytes:
        """The error code Redis counts in INFO errorstats (``ERR``, ``WRONGTYPE``)."""
        return self.msg.split(b" ", 1)[0]


class Map:
    """A map reply; ``items`` is a list of (key, value) pairs."""

    __slots__ = ("items",)

    def __init__(self, items: Iterable[tuple[Any, Any]] | dict[Any, Any]) -> None:
        self.items = list(items.items() if isinstance(items, dict) else items)

    def __repr__(self) -> str:
        return f"Map({self.items!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Map) and other.items == self.items


class SetReply(list):  # type: ignore[type-arg]
    """A set reply (RESP3 ``~``)."""

    __slots__ = ()


class Push(list):  # type: ignore[type-arg]
    """An out-of-band push (RESP3 ``>``; pub/sub messages in RESP2 are arrays)."""

    __slots__ = ()


class Multi(list):  # type: ignore[type-arg]
    """Several top-level replies written back to back (SUBSCRIBE a b answers
    one frame per channel; inside EXEC they follow the array header)."""

    __slots__ = ()


class Bulks(list):  # type: ignore[type-arg]
    """An array whose elements are all ``bytes`` (LRANGE, HKEYS, ...): encoded
    in one join instead of element by element; a list to everything else."""

    __slots__ = ()


class Bool:
    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value


class Verbatim:
    __slots__ = ("fmt", "text")

    def __init__(self, text: bytes, fmt: bytes = b"txt") -> None:
        self.fmt = fmt
        self.text = text


class BigNumber:
    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text


class Double:
    """A double with the text Redis prints for it (addReplyHumanLongDouble:
    GEOPOS coordinates): a RESP3 double, a bulk string in RESP2."""

    __slots__ = ("value", "text")

    def __init__(self, value: float, text: bytes) -> None:
        self.value = value
        self.text = text


class Raw:
    """Bytes already in wire form, identical in RESP2 and RESP3."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class _NullArray:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()
OK = Status(b"OK")
QUEUED = Status(b"QUEUED")
PONG = Status(b"PONG")


def format_double(d: float) -> bytes:
    """Redis 7.0's ``%.17g`` double text (inf, -inf, nan spelled like C)."""
    if math.isinf(d):
        return b"inf" if d > 0 else b"-inf"
    if math.isnan(d):
        return b"nan"
    return b"%.17g" % d


# Small integers and common bulk lengths are formatted once.
_INT_CACHE = [b":%d\r\n" % i for i in range(10000)]
_BULK_HDR = [b"$%d\r\n" % i for i in range(10000)]
_ARR_HDR = [b"*%d\r\n" % i for i in range(1024)]
_BULK_LEN = [b"$%d" % i for i in range(10000)]
_bulk_len = _BULK_LEN.__getitem__


def encode_bulks(v: list[bytes]) -> bytes:
    """The array of bulk strings ``v`` (all ``bytes``) in wire form: the
    ``$len`` headers and the elements interleaved and joined by CRLF once."""
    n = len(v)
    head = _ARR_HDR[n] if n < 1024 else b"*%d\r\n" % n
    if not n:
        return head
    parts: list[bytes] = [b""] * (2 * n)
    try:
        parts[0::2] = map(_bulk_len, map(len, v))
    except IndexError:  # an element of 10000 bytes or more
        parts[0::2] = [b"$%d" % len(x) for x in v]
    parts[1::2] = v
    return head + b"\r\n".join(parts) + b"\r\n"


def encode(v: Any, resp3: bool, out: list[bytes]) -> None:
    """Append the wire form of ``v`` to ``out``."""
    t = type(v)
    if t is bytes or t is bytearray:
        n = len(v)
        out.append(_BULK_HDR[n] if n < 10000 else b"$%d\r\n" % n)
        out.append(v)
        out.append(b"\r\n")
    elif t is Status:
        out.append(b"+" + v + b"\r\n")
    elif t is int:
        out.append(_INT_CACHE[v] if 0 <= v < 10000 else b":%d\r\n" % v)
    elif v is None:
        out.append(b"_\r\n" if resp3 else b"$-1\r\n")
    elif t is Bulks:
        out.append(encode_bulks(v))
    elif t is list or t is tuple:
        n = len(v)
        append = out.append
        append(_ARR_HDR[n] if n < 1024 else b"*%d\r\n" % n)
        for x in v:
            # elements are mostly bulk strings (LRANGE, MGET, SMEMBERS...)
            if type(x) is bytes:
                n = len(x)
                append(_BULK_HDR[n] if n < 10000 else b"$%d\r\n" % n)
                append(x)
                append(b"\r\n")
            else:
                encode(x, resp3, out)
    elif t is Err:
        out.append(b"-" + v.msg + b"\r\n")
    elif t is Raw:
        out.append(v.data)
    elif t is float:
        s = format_double(v)
        if resp3:
            out.append(b"," + s + b"\r\n")
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(s), s))
    elif t is Map:
        if resp3:
            out.append(b"%%%d\r\n" % len(v.items))
        else:
            out.append(b"*%d\r\n" % (2 * len(v.items)))
        for k, x in v.items:
            encode(k, resp3, out)
            encode(x, resp3, out)
    elif t is SetReply:
        out.append((b"~%d\r\n" if resp3 else b"*%d\r\n") % len(v))
        for x in v:
            encode(x, resp3, out)
    elif t is Push:
        out.append((b">%d\r\n" if resp3 else b"*%d\r\n") % len(v))
        for x in v:
            encode(x, resp3, out)
    elif t is Multi:
        for x in v:
            encode(x, resp3, out)
    elif v is NULL_ARRAY:
        out.append(b"_\r\n" if resp3 else b"*-1\r\n")
    elif t is Bool:
        if resp3:
            out.append(b"#t\r\n" if v.value else b"#f\r\n")
        else:
            out.append(b":1\r\n" if v.value else b":0\r\n")
    elif t is Verbatim:
        if resp3:
            body = v.fmt + b":" + v.text
            out.append(b"=%d\r\n%s\r\n" % (len(body), body))
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(v.text), v.text))
    elif t is Double:
        if resp3:
            out.append(b"," + v.text + b"\r\n")
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(v.text), v.text))
    elif t is BigNumber:
        if resp3:
            out.append(b"(" + v.text + b"\r\n")
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(v.text), v.text))
    elif t is memoryview:
        encode(bytes(v), resp3, out)
    elif t is bool:
        out.append(b":1\r\n" if v else b":0\r\n")
    elif isinstance(v, Err):
        out.append(b"-" + v.msg + b"\r\n")
    elif isinstance(v, bytes):
        encode(bytes(v), resp3, out)
    elif isinstance(v, int):
        out.append(b":%d\r\n" % v)
    else:
        raise TypeError(f"cannot encode reply of type {t.__name__}")


def to_bytes(v: Any, resp3: bool = False) -> bytes:
    out: list[bytes] = []
    encode(v, resp3, out)
    return b"".join(out)
