"""DEBUG DIGEST / DEBUG DIGEST-VALUE as Redis 7.0 computes them (``debug.c``).

See ``/work/shared/spec/debug-digest.md``. Summary: digests are 20-byte
SHA-1 states combined with two primitives,

* xor-in:  ``A ^= SHA1(x)``            (order independent),
* mix-in:  ``A = SHA1(A ^ SHA1(x))``   (order dependent),

and a value contributes ``mix-in(be32(type))`` followed by its contents, plus
``xor-in("!!expire!!")`` when the key has a TTL.

Values are plain Python objects:

* strings: ``bytes`` / ``bytearray`` / ``memoryview`` (or ``int`` for an
  integer-encoded string: its decimal text is digested);
* everything else implements ``digest_kind()`` returning one of

  - ``("list", iterable of elements)``                    head to tail
  - ``("set", iterable of members)``                      any order
  - ``("zset", iterable of (member, score), listpack)``   any order;
    ``listpack`` is True/False for the Redis encoding, or None to derive it
    from the zset-max-listpack-* limits (see :class:`DigestConfig`)
  - ``("hash", iterable of (field, value))``              any order
  - ``("stream", iterable of (ms, seq, [(field, value), ...]))`` ascending IDs,
    live entries only
  - ``("module", 20-byte digest or None)``                module callback output

  Elements may be ``bytes``-like or ``int`` (digested as decimal text).

Internally the 160-bit state is kept as a Python ``int``; the public
``mix_digest``/``xor_digest`` work on a ``bytearray`` like the C functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import sha1
from typing import Any

__all__ = [
    "TYPE_STRING",
    "TYPE_LIST",
    "TYPE_SET",
    "TYPE_ZSET",
    "TYPE_HASH",
    "TYPE_MODULE",
    "TYPE_STREAM",
    "ZERO_DIGEST",
    "ZERO_DIGEST_HEX",
    "DigestConfig",
    "mix_digest",
    "xor_digest",
    "score_text",
    "value_digest",
    "digest_value",
    "digest_value_hex",
    "digest_dataset",
]

TYPE_STRING = 0
TYPE_LIST = 1
TYPE_SET = 2
TYPE_ZSET = 3
TYPE_HASH = 4
TYPE_MODULE = 5
TYPE_STREAM = 6

_KIND_CODES = {
    "list": TYPE_LIST,
    "set": TYPE_SET,
    "zset": TYPE_ZSET,
    "hash": TYPE_HASH,
    "module": TYPE_MODULE,
    "stream": TYPE_STREAM,
}

ZERO_DIGEST = bytes(20)
ZERO_DIGEST_HEX = "0" * 40

_from_bytes = int.from_bytes


def _h(data: Any) -> int:
    """SHA1(data) as an int."""
    return _from_bytes(sha1(data).digest(), "big")


def _text(x: Any) -> Any:
    """Element bytes; integers (int-encoded strings, intset members...) as decimal."""
    if type(x) is int:
        return b"%d" % x
    return x


def _mix(acc: int, data: Any) -> int:
    return _from_bytes(sha1((acc ^ _h(data)).to_bytes(20, "big")).digest(), "big")


# Type-code mix-ins happen once per value: precompute SHA1(be32(code)).
_TYPE_H = {code: _h(code.to_bytes(4, "big")) for code in range(7)}
_EXPIRE_H = _h(b"!!expire!!")


def mix_digest(acc: bytearray, data: bytes) -> None:
    """``mixDigest``: ``acc = SHA1(acc XOR SHA1(data))`` in place."""
    v = _from_bytes(acc, "big") ^ _h(data)
    acc[:] = sha1(v.to_bytes(20, "big")).digest()


def xor_digest(acc: bytearray, data: bytes) -> None:
    """``xorDigest``: ``acc ^= SHA1(data)`` in place."""
    v = _from_bytes(acc, "big") ^ _h(data)
    acc[:] = v.to_bytes(20, "big")


def score_text(score: float) -> bytes:
    """Zset score text in 7.0's digest: C ``"%.17g"`` (``inf``, ``-inf``, ``-0``)."""
    return b"%.17g" % score


@dataclass(frozen=True)
class DigestConfig:
    """Limits deciding whether Redis would keep a zset listpack-encoded, used
    when a zset's ``digest_kind()`` does not say (``listpack is None``).
    Defaults are Redis's ``zset-max-listpack-entries/value``."""

    zset_max_listpack_entries: int = 128
    zset_max_listpack_value: int = 64


_DEFAULT_CONFIG = DigestConfig()


def _zset_part(acc: int, pairs: Iterable[tuple[Any, float]], listpack: bool | None, cfg: DigestConfig) -> int:
    pairs = list(pairs)
    if listpack is None:
        limit = cfg.zset_max_listpack_value
        listpack = len(pairs) <= cfg.zset_max_listpack_entries and all(
            len(_text(m)) <= limit for m, _ in pairs
        )
    for member, score in pairs:
        if listpack and score == 0.0:
            # Integral scores are stored as listpack integers: -0.0 reads back as 0.
            score = 0.0
        e = _mix(_mix(0, _text(member)), b"%.17g" % score)
        acc ^= _h(e.to_bytes(20, "big"))
    return acc


def _value_acc(acc: int, value: Any, has_expire: bool, cfg: DigestConfig) -> int:
    """Apply V(value) to the accumulator ``acc`` (spec section 2)."""
    t = type(value)
    if t is bytes or t is bytearray or t is memoryview or t is int:
        acc = _from_bytes(sha1((acc ^ _TYPE_H[TYPE_STRING]).to_bytes(20, "big")).digest(), "big")
        acc = _mix(acc, _text(value))
    else:
        kind = value.digest_kind()
        name = kind[0]
        code = _KIND_CODES[name]
        acc = _from_bytes(sha1((acc ^ _TYPE_H[code]).to_bytes(20, "big")).digest(), "big")
        if name == "list":
            for el in kind[1]:
                acc = _mix(acc, _text(el))
        elif name == "set":
            for el in kind[1]:
                acc ^= _h(_text(el))
        elif name == "zset":
            acc = _zset_part(acc, kind[1], kind[2] if len(kind) > 2 else None, cfg)
        elif name == "hash":
            for field, val in kind[1]:
                e = _mix(_mix(0, _text(field)), _text(val))
                acc ^= _h(e.to_bytes(20, "big"))
        elif name == "stream":
            for ms, seq, fields in kind[1]:
                acc = _mix(acc, b"%d.%d" % (ms, seq))
                for field, val in fields:
                    acc = _mix(acc, _text(field))
                    acc = _mix(acc, _text(val))
        else:  # module: the type's digest callback output, if any
            if kind[1] is not None:
                acc ^= _h(bytes(kind[1]))
    if has_expire:
        acc ^= _EXPIRE_H
    return acc


def value_digest(
    type_code: int, elements: Iterable[Any], has_expire: bool = False, listpack: bool | None = None
) -> bytes:
    """DEBUG DIGEST-VALUE from a type code and raw elements, shaped as in
    ``digest_kind()`` (a single bytes for strings; pairs for zset/hash; entry
    triples for streams; the 20-byte callback digest or None for modules)."""
    if type_code == TYPE_STRING:
        return digest_value(elements, has_expire)
    name = {v: k for k, v in _KIND_CODES.items()}[type_code]
    kind: tuple[Any, ...] = (name, elements, listpack) if name == "zset" else (name, elements)
    return digest_value(_Kind(kind), has_expire)


class _Kind:
    __slots__ = ("kind",)

    def __init__(self, kind: tuple[Any, ...]) -> None:
        self.kind = kind

    def digest_kind(self) -> tuple[Any, ...]:
        return self.kind


def digest_value(value: Any, has_expire: bool = False, typeinfo: DigestConfig | None = None) -> bytes:
    """DEBUG DIGEST-VALUE of one existing key: V(value) from a zero state,
    without the key name (spec section 4). Returns 20 bytes; ``.hex()`` it
    for the reply. A missing key replies :data:`ZERO_DIGEST_HEX`."""
    acc = _value_acc(0, value, has_expire, typeinfo or _DEFAULT_CONFIG)
    return acc.to_bytes(20, "big")


def digest_value_hex(value: Any, has_expire: bool = False, typeinfo: DigestConfig | None = None) -> str:
    """:func:`digest_value` as the 40 lowercase hex digits DEBUG DIGEST-VALUE replies."""
    return digest_value(value, has_expire, typeinfo).hex()


def digest_dataset(
    dbs: Iterable[tuple[int, Iterable[tuple[bytes, Any, bool]]]],
    typeinfo: DigestConfig | None = None,
) -> str:
    """DEBUG DIGEST: ``dbs`` yields ``(db_index, keys)`` with ``keys`` yielding
    ``(name, value, has_expire)``. Databases are folded in ascending index
    order, empty ones contribute nothing; an empty dataset gives 40 zeros."""
    cfg = typeinfo or _DEFAULT_CONFIG
    final = 0
    for dbid, keys in sorted(dbs, key=lambda d: d[0]):
        keys_x = 0
        any_key = False
        for name, value, has_expire in keys:
            any_key = True
            k = _value_acc(_mix(0, name), value, has_expire, cfg)
            keys_x ^= _h(k.to_bytes(20, "big"))
        if any_key:
            # mix-in(F, be32(db)) happens before the keys are xored in; xor
            # commutes, so folding the keys' sum in afterwards is the same.
            final = _mix(final, dbid.to_bytes(4, "big")) ^ keys_x
    return final.to_bytes(20, "big").hex()
