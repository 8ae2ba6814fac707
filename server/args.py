"""Argument parsing with Redis's exact error replies (object.c getLongLongFromObjectOrReply & co)."""

from __future__ import annotations

from .protocol import string2ll
from .reply import Err

ERR_NOT_INT = Err("ERR value is not an integer or out of range")
ERR_SYNTAX = Err("ERR syntax error")
ERR_NOT_FLOAT = Err("ERR value is not a valid float")
ERR_OUT_OF_RANGE = Err("ERR value is out of range, must be positive")

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)


def get_ll(b: bytes, err: Err = ERR_NOT_INT) -> int:
    v = string2ll(b)
    if v is None:
        raise err
    return v


def get_range_ll(b: bytes, lo: int, hi: int, msg: str | None = None) -> int:
    v = string2ll(b)
    if v is None or v < lo or v > hi:
        if msg is not None:
            raise Err(msg)
        raise ERR_NOT_INT
    return v


def get_positive_ll(b: bytes, msg: str | None = None) -> int:
    v = get_ll(b)
    if v < 0:
        raise Err(msg) if msg else ERR_OUT_OF_RANGE
    return v


def get_int(b: bytes, err: Err = ERR_NOT_INT) -> int:
    """getIntFromObjectOrReply: 32-bit range."""
    v = string2ll(b)
    if v is None or v < -(2**31) or v > 2**31 - 1:
        raise err
    return v


def get_double(b: bytes, err: Err = ERR_NOT_FLOAT) -> float:
    """getDoubleFromObject: strtod of the whole string, no spaces, no NaN."""
    from .util import string2d

    v = string2d(b)
    if v is None:
        raise err
    return v


def get_timeout_ms(b: bytes, now_ms: int, unit_seconds: bool) -> int:
    """getTimeoutFromObjectOrReply for blocking commands: absolute ms, 0 = forever."""
    if unit_seconds:
        from .util import string2d

        d = string2d(b)
        if d is None:
            raise Err("ERR timeout is not a float or out of range")
        tval = int(d * 1000)
        if d * 1000 > LLONG_MAX or d * 1000 < LLONG_MIN:
            raise Err("ERR timeout is out of range")
    else:
        v = string2ll(b)
        if v is None:
            raise Err("ERR timeout is not an integer or out of range")
        tval = v
    if tval < 0:
        raise Err("ERR timeout is negative")
    if tval > 0:
        if tval > LLONG_MAX - now_ms:
            raise Err("ERR timeout is out of range")
        tval += now_ms
    return tval
