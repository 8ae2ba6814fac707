"""Module values in RDB files (spec/rdb-format.md §8.3): the 64-bit module
id, the MODULE_2 self-describing framing, and a registry of module types.

Redis refuses a key whose module type is not loaded ("no matching module
type 'NAME'"); the reader does the same by default.  A program that knows a
module's format registers a :class:`ModuleType`; its ``rdb_load`` reads the
value through a :class:`ModuleLoadIO` with the same calls a module makes
(RedisModule_LoadUnsigned, LoadSigned, LoadString, LoadDouble, LoadFloat,
LoadLongDouble) and ``rdb_save`` writes it through a :class:`ModuleSaveIO`.
For MODULE_2 values the framing is checked before the type is called, so a
load callback always sees a complete value.
"""

from __future__ import annotations

import struct
from typing import Final

from .constants import (
    MODULE_OPCODE_DOUBLE,
    MODULE_OPCODE_FLOAT,
    MODULE_OPCODE_SINT,
    MODULE_OPCODE_STRING,
    MODULE_OPCODE_UINT,
)
from .encoding import NeedMore, enc_len, enc_str, read_len, read_str
from .errors import RDBCorruptError, RDBModuleError

#: The 64 characters a module type name may use, in id order.
MODULE_CHARSET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CHAR_INDEX: Final = {c: i for i, c in enumerate(MODULE_CHARSET)}

_F32: Final = struct.Struct("<f")
_F64: Final = struct.Struct("<d")


def module_id(name: str, encver: int) -> int:
    """The 64-bit id of a module type: 9 name characters of 6 bits each,
    then the 10-bit encoding version (Redis's moduleTypeEncodeId)."""
    if len(name) != 9:
        raise ValueError(f"module type names have 9 characters: {name!r}")
    if not 0 <= encver <= 1023:
        raise ValueError(f"module encoding version out of range: {encver}")
    v = 0
    for c in name:
        try:
            v = (v << 6) | _CHAR_INDEX[c]
        except KeyError:
            raise ValueError(f"invalid character {c!r} in module type name {name!r}") from None
    return (v << 10) | encver


def module_name(mid: int) -> tuple[str, int]:
    """(type name, encoding version) of a module id (moduleTypeNameByID)."""
    encver = mid & 1023
    bits = mid >> 10
    chars = []
    for shift in range(48, -1, -6):
        chars.append(MODULE_CHARSET[(bits >> shift) & 63])
    return "".join(chars), encver


class ModuleLoadIO:
    """Reads a module value like RedisModuleIO does on load.

    With ``framed`` (MODULE_2 and MODULE_AUX) each item carries its
    sub-opcode and a mismatch is a corruption; without it (the pre-GA type 6)
    the values are read bare."""

    def __init__(self, buf: bytes, pos: int, framed: bool) -> None:
        self.buf = buf
        self.pos = pos
        self.framed = framed

    def _opcode(self, want: int) -> None:
        if self.framed:
            got = self._len()
            if got != want:
                raise RDBCorruptError(f"module value: expected sub-opcode {want}, found {got}")

    def _len(self) -> int:
        v, self.pos = read_len(self.buf, self.pos)
        return v

    def load_unsigned(self) -> int:
        self._opcode(MODULE_OPCODE_UINT)
        return self._len()

    def load_signed(self) -> int:
        self._opcode(MODULE_OPCODE_SINT)
        v = self._len()
        return v - (1 << 64) if v >= 1 << 63 else v

    def load_string(self) -> bytes:
        self._opcode(MODULE_OPCODE_STRING)
        s, self.pos = read_str(self.buf, self.pos)
        return s

    def load_double(self) -> float:
        self._opcode(MODULE_OPCODE_DOUBLE)
        p = self.pos
        if p + 8 > len(self.buf):
            raise NeedMore(p + 8)
        self.pos = p + 8
        return float(_F64.unpack_from(self.buf, p)[0])

    def load_float(self) -> float:
        self._opcode(MODULE_OPCODE_FLOAT)
        p = self.pos
        if p + 4 > len(self.buf):
            raise NeedMore(p + 4)
        self.pos = p + 4
        return float(_F32.unpack_from(self.buf, p)[0])

    def load_long_double(self) -> float:
        """Long doubles are saved as hex-float text (``%La``)."""
        s = self.load_string()
        try:
            return float.fromhex(s.decode("ascii").rstrip("\0"))
        except (UnicodeDecodeError, ValueError):
            raise RDBCorruptError(f"module value: bad long double {s!r}") from None


class ModuleSaveIO:
    """Writes a module value like RedisModuleIO does on save (always framed:
    Redis only writes MODULE_2)."""

    def __init__(self, compress: bool = True) -> None:
        self.parts: list[bytes] = []
        self.compress = compress

    def save_unsigned(self, v: int) -> None:
        self.parts.append(enc_len(MODULE_OPCODE_UINT) + enc_len(v & 0xFFFFFFFFFFFFFFFF))

    def save_signed(self, v: int) -> None:
        self.parts.append(enc_len(MODULE_OPCODE_SINT) + enc_len(v & 0xFFFFFFFFFFFFFFFF))

    def save_string(self, s: bytes) -> None:
        self.parts.append(enc_len(MODULE_OPCODE_STRING) + enc_str(bytes(s), self.compress))

    def save_double(self, v: float) -> None:
        self.parts.append(enc_len(MODULE_OPCODE_DOUBLE) + _F64.pack(v))

    def save_float(self, v: float) -> None:
        self.parts.append(enc_len(MODULE_OPCODE_FLOAT) + _F32.pack(v))

    def save_long_double(self, v: float) -> None:
        self.save_string(float(v).hex().encode())

    def save_items(self, items: list[tuple[int, object]]) -> None:
        """Write raw (sub-opcode, value) items as a reader returned them."""
        for op, val in items:
            if op == MODULE_OPCODE_SINT:
                self.save_signed(int(val))  # type: ignore[call-overload]
            elif op == MODULE_OPCODE_UINT:
                self.save_unsigned(int(val))  # type: ignore[call-overload]
            elif op == MODULE_OPCODE_FLOAT:
                self.save_float(float(val))  # type: ignore[arg-type]
            elif op == MODULE_OPCODE_DOUBLE:
                self.save_double(float(val))  # type: ignore[arg-type]
            elif op == MODULE_OPCODE_STRING:
                self.save_string(val)  # type: ignore[arg-type]
            else:
                raise ValueError(f"invalid module sub-opcode {op}")

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


class ModuleType:
    """A module data type the codec knows how to (de)serialize.

    Subclass and set ``name`` (9 characters) and ``encver``; override
    ``rdb_load``/``rdb_save`` for values and ``aux_load``/``aux_save`` for
    MODULE_AUX data.  Loads must only read through the IO object (they may
    be called again on the same bytes for the pre-GA type 6, whose values are
    not framed)."""

    name: str = ""
    encver: int = 0

    # A type registered for only some records refuses the others the way
    # Redis refuses module data no loaded module handles.

    def _refuse(self, what: str) -> RDBModuleError:
        return RDBModuleError(
            f"The RDB file contains {what} I can't handle: module type '{self.name}' has no callback for it",
            module_id=module_id(self.name, self.encver), module_name=self.name,
        )

    def rdb_load(self, io: ModuleLoadIO, encver: int) -> object:
        raise self._refuse("module data")

    def rdb_save(self, io: ModuleSaveIO, value: object) -> None:
        raise self._refuse("module data to save")

    def aux_load(self, io: ModuleLoadIO, encver: int, when: int) -> object:
        raise self._refuse("AUX module data")

    def aux_save(self, io: ModuleSaveIO, value: object, when: int) -> None:
        raise self._refuse("AUX module data to save")


class ModuleRegistry:
    """Module types by name (the id's version part is handed to the loader)."""

    def __init__(self, types: list[ModuleType] | None = None) -> None:
        self._types: dict[str, ModuleType] = {}
        for t in types or ():
            self.register(t)

    def register(self, mt: ModuleType) -> None:
        module_id(mt.name, mt.encver)  # validates the name
        self._types[mt.name] = mt

    def get(self, name: str) -> ModuleType | None:
        return self._types.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._types
