"""A sans-IO RDB writer: the neutral model (see :mod:`.model`) in, bytes out.

Every method returns the bytes of one record and folds them into the running
CRC-64, so the caller writes the returned chunks in order -- to a file, a
socket (full sync), or a buffer -- and finishes with :meth:`RDBWriter.eof`.

Encodings are chosen the way Redis 7.0 chooses its in-memory encodings, from
thresholds the server passes in (:class:`EncodingOptions` mirrors the config
directives): listpack hashes and zsets while they are small, intsets for
small all-integer sets, quicklist v2 lists of PACKED listpack nodes cut like
Redis cuts them (``list-max-listpack-size``, PLAIN nodes for elements over
the packed threshold, LZF-compressed inner nodes with
``list-compress-depth``), hashtable / skiplist forms beyond the thresholds,
integer-encoded strings and LZF for strings over 20 bytes with
``rdbcompression yes``.  The files therefore have about the size Redis's
have, and many values are byte-identical to Redis's DUMP.

RDB versions:

* 10 (default) -- what Redis 7.0 writes and loads (types <= 19).
* 11 -- adds the 7.2 types: listpack sets (20) and streams v3 (21).
* 12 -- adds 7.4's hash field expiration types (24/25).
* 9 -- only what Redis 5/6 (and older tools) load: plain lists, sets,
  hashes and binary-score zsets, intsets, and type-15 streams; no function
  libraries.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, Final

import lzf

from . import constants as C
from .containers import intset_encode, lp_build, lp_entry, lp_entry_size, lp_int_entry, lp_str_entry
from .encoding import canonical_int, crc64, enc_int_value, enc_len, enc_str, lzf_blob
from .errors import RDBWriteError
from .model import (
    Aux,
    End,
    Event,
    FunctionLibrary,
    Header,
    Key,
    ModuleAux,
    ModuleValue,
    ResizeDB,
    SelectDB,
    SlotImport,
    SlotInfo,
    Stream,
    StreamID,
)
from .modules import ModuleRegistry, ModuleSaveIO, module_name

__all__ = ["EncodingOptions", "RDBWriter", "dump_payload", "write_events", "write_file"]

_I64: Final = struct.Struct("<q")
_F64: Final = struct.Struct("<d")
_ID128: Final = struct.Struct(">QQ")

#: Node size limits for negative list-max-listpack-size values (-1 .. -5).
_OPTIMIZATION_LEVEL: Final = (4096, 8192, 16384, 32768, 65536)
_SIZE_SAFETY_LIMIT: Final = 8192
_SIZE_ESTIMATE_OVERHEAD: Final = 8
_FILL_MAX: Final = 1 << 15
_MIN_COMPRESS_BYTES: Final = 48
_MIN_COMPRESS_IMPROVE: Final = 8
_STREAM_LISTPACK_MAX_SIZE: Final = 1 << 30
_DOUBLE2LL_LIMIT: Final = float((2**63 - 1) // 2)
_INT64_WRAP: Final = 1 << 64


@dataclass(slots=True)
class EncodingOptions:
    """The encoding thresholds, named after Redis's config directives
    (``hash-max-listpack-entries`` -> ``hash_max_listpack_entries``).
    ``set_max_listpack_*`` only matter for RDB >= 11 (Redis 7.2 sets);
    ``list_packed_threshold`` is ``DEBUG QUICKLIST-PACKED-THRESHOLD`` (1 GiB)."""

    hash_max_listpack_entries: int = 512
    hash_max_listpack_value: int = 64
    set_max_intset_entries: int = 512
    set_max_listpack_entries: int = 128
    set_max_listpack_value: int = 64
    zset_max_listpack_entries: int = 128
    zset_max_listpack_value: int = 64
    list_max_listpack_size: int = -2
    list_compress_depth: int = 0
    list_packed_threshold: int = 1 << 30
    stream_node_max_bytes: int = 4096
    stream_node_max_entries: int = 100


def _b(x: Any) -> bytes:
    """A bytes-like element as bytes (server values may be bytearray)."""
    return x if type(x) is bytes else bytes(x)


class RDBWriter:
    """Encodes records; keeps the running checksum.

    ``compression`` is ``rdbcompression``, ``checksum`` is ``rdbchecksum``
    (8 zero bytes are written when off), ``options`` the encoding thresholds,
    ``modules`` the registered module types (to save parsed module values)."""

    def __init__(
        self,
        version: int = C.RDB_VERSION_DEFAULT,
        *,
        compression: bool = True,
        checksum: bool = True,
        options: EncodingOptions | None = None,
        modules: ModuleRegistry | None = None,
    ) -> None:
        if not 9 <= version <= C.RDB_VERSION_MAX:
            raise RDBWriteError(f"the writer produces RDB versions 9 to {C.RDB_VERSION_MAX}, not {version}")
        self.version = version
        self.compression = compression
        self.checksum = checksum
        self.options = options or EncodingOptions()
        self.modules = modules or ModuleRegistry()
        self._crc = 0
        self.bytes_written = 0

    # -- framing ----------------------------------------------------------------------

    def _out(self, data: bytes) -> bytes:
        if self.checksum:
            self._crc = crc64(data, self._crc)
        self.bytes_written += len(data)
        return data

    def header(self) -> bytes:
        """``REDIS`` and the version, e.g. ``REDIS0010``."""
        return self._out(b"REDIS%04d" % self.version)

    def aux(self, key: bytes | str, value: bytes | str | int) -> bytes:
        """An AUX field; integer-looking values get the integer encodings
        (as Redis's rdbSaveAuxField does through rdbSaveRawString)."""
        k = key.encode() if isinstance(key, str) else bytes(key)
        if isinstance(value, int):
            v = b"%d" % value
        elif isinstance(value, str):
            v = value.encode()
        else:
            v = bytes(value)
        return self._out(b"\xfa" + enc_str(k, self.compression) + enc_str(v, self.compression))

    def standard_aux(
        self,
        *,
        redis_ver: str = "7.0.15",
        redis_bits: int = 64,
        ctime: int | None = None,
        used_mem: int = 0,
        repl_stream_db: int | None = None,
        repl_id: bytes | str | None = None,
        repl_offset: int | None = None,
        aof_base: bool = False,
    ) -> bytes:
        """The AUX fields Redis 7 writes, in its order: redis-ver, redis-bits,
        ctime, used-mem, [repl-stream-db, repl-id, repl-offset], aof-base.
        The three replication fields are written when ``repl_id`` is given."""
        parts = [
            self.aux(b"redis-ver", redis_ver),
            self.aux(b"redis-bits", redis_bits),
            self.aux(b"ctime", int(time.time()) if ctime is None else ctime),
            self.aux(b"used-mem", used_mem),
        ]
        if repl_id is not None:
            parts.append(self.aux(b"repl-stream-db", 0 if repl_stream_db is None else repl_stream_db))
            parts.append(self.aux(b"repl-id", repl_id))
            parts.append(self.aux(b"repl-offset", 0 if repl_offset is None else repl_offset))
        parts.append(self.aux(b"aof-base", 1 if aof_base else 0))
        return b"".join(parts)

    def function(self, code: bytes | str) -> bytes:
        """A function library (FUNCTION2, opcode 245) holding its source."""
        if self.version < 10:
            raise RDBWriteError("function libraries need RDB version 10 (Redis 7.0); this file is version "
                                f"{self.version}")
        c = code.encode() if isinstance(code, str) else bytes(code)
        return self._out(b"\xf5" + enc_str(c, self.compression))

    def module_aux(self, value: ModuleValue, when: int = 2) -> bytes:
        """MODULE_AUX (247) for a module's global data; ``when`` 1 = before
        the keyspace, 2 = after."""
        body = self._module_body(value, aux_when=when)
        return self._out(b"\xf7" + enc_len(value.module_id) + enc_len(C.MODULE_OPCODE_UINT) + enc_len(when) + body)

    def select_db(self, db: int) -> bytes:
        """SELECTDB (254)."""
        return self._out(b"\xfe" + enc_len(db))

    def resize_db(self, db_size: int, expires_size: int) -> bytes:
        """RESIZEDB (251): the key count and keys-with-expiry count of the db."""
        return self._out(b"\xfb" + enc_len(db_size) + enc_len(expires_size))

    def slot_info(self, slot: int, slot_size: int, expires_slot_size: int) -> bytes:
        """SLOT_INFO (244, RDB 12 only)."""
        if self.version < 12:
            raise RDBWriteError("SLOT_INFO needs RDB version 12")
        return self._out(b"\xf4" + enc_len(slot) + enc_len(slot_size) + enc_len(expires_slot_size))

    def eof(self) -> bytes:
        """EOF (255) and the CRC-64 trailer (zeros when checksums are off)."""
        head = self._out(b"\xff")
        return head + struct.pack("<Q", self._crc if self.checksum else 0)

    def key(
        self,
        key: bytes,
        type: str,
        value: Any,
        *,
        expire_ms: int | None = None,
        lru_idle: int | None = None,
        lfu_freq: int | None = None,
        field_expires: Mapping[bytes, int] | None = None,
        encoding: str | None = None,
    ) -> bytes:
        """One key record: [EXPIRETIME_MS] [IDLE | FREQ] type key value.

        ``encoding`` optionally asks for an in-memory encoding the value has
        in the server ("hashtable" for a hash that once grew, say), as Redis
        writes by the current encoding; it is ignored when the RDB version or
        the value cannot express it."""
        parts = []
        if expire_ms is not None:
            parts.append(b"\xfc" + _I64.pack(expire_ms))
        if lru_idle is not None:
            parts.append(b"\xf8" + enc_len(lru_idle))
        if lfu_freq is not None:
            parts.append(b"\xf9" + bytes((lfu_freq & 0xFF,)))
        t, body = self.encode_value(type, value, field_expires=field_expires, encoding=encoding)
        parts.append(bytes((t,)))
        parts.append(enc_str(_b(key), self.compression))
        parts.append(body)
        return self._out(b"".join(parts))

    def write_key(self, ev: Key) -> bytes:
        """A key record from a :class:`Key` event (its own rdb_type is not
        reused: the writer encodes for its version and thresholds)."""
        return self.key(ev.key, ev.type, ev.value, expire_ms=ev.expire_ms, lru_idle=ev.lru_idle,
                        lfu_freq=ev.lfu_freq, field_expires=ev.field_expires)

    def event(self, ev: Event) -> bytes:
        """Any reader event back to bytes (header, aux, db, keys, functions,
        module aux, end)."""
        if isinstance(ev, Key):
            return self.write_key(ev)
        if isinstance(ev, Aux):
            return self.aux(ev.key, ev.value)
        if isinstance(ev, SelectDB):
            return self.select_db(ev.db)
        if isinstance(ev, ResizeDB):
            return self.resize_db(ev.db_size, ev.expires_size)
        if isinstance(ev, FunctionLibrary):
            return self.function(ev.code)
        if isinstance(ev, ModuleAux):
            return self.module_aux(ev.value, ev.when)
        if isinstance(ev, Header):
            return self.header()
        if isinstance(ev, End):
            return self.eof()
        if isinstance(ev, SlotInfo):
            return self.slot_info(ev.slot, ev.slot_size, ev.expires_slot_size)
        if isinstance(ev, SlotImport):
            raise RDBWriteError("a Valkey slot-import record has no form in a Redis RDB file")
        raise TypeError(f"not an RDB event: {ev!r}")

    # -- values -----------------------------------------------------------------------

    def encode_value(
        self, type: str, value: Any, *, field_expires: Mapping[bytes, int] | None = None,
        encoding: str | None = None,
    ) -> tuple[int, bytes]:
        """(RDB type id, serialized value) for a value of the neutral model.
        Does not touch the checksum (also used for DUMP payloads)."""
        if type == C.STRING:
            return C.TYPE_STRING, self._string(value)
        if type == C.LIST:
            return self._list(value)
        if type == C.SET:
            return self._set(value, encoding)
        if type == C.HASH:
            if field_expires:
                return self._hash_with_ttls(value, field_expires)
            return self._hash(value, encoding)
        if type == C.ZSET:
            return self._zset(value, encoding)
        if type == C.STREAM:
            return self._stream(value)
        if type == C.MODULE:
            if not isinstance(value, ModuleValue):
                raise RDBWriteError("a module value must be a ModuleValue")
            return C.TYPE_MODULE_2, enc_len(value.module_id) + self._module_body(value)
        raise RDBWriteError(f"unknown value type {type!r}")

    def _str(self, s: Any) -> bytes:
        return enc_str(_b(s), self.compression)

    def _string(self, value: Any) -> bytes:
        if isinstance(value, int):
            return enc_int_value(value)
        return enc_str(_b(value), self.compression)

    def _list(self, value: Iterable[Any]) -> tuple[int, bytes]:
        items = [_b(x) for x in value]
        if self.version < 10:
            return C.TYPE_LIST, enc_len(len(items)) + b"".join([self._str(x) for x in items])
        nodes = quicklist_nodes(items, self.options)
        parts = [enc_len(len(nodes))]
        for container, data, compressed in nodes:
            parts.append(enc_len(container))
            if compressed is not None:
                parts.append(lzf_blob(compressed, len(data)))
            else:
                parts.append(enc_str(data, self.compression))
        return C.TYPE_LIST_QUICKLIST_2, b"".join(parts)

    def _set(self, value: Iterable[Any], encoding: str | None) -> tuple[int, bytes]:
        members = [_b(x) for x in value]
        opts = self.options
        n = len(members)
        if encoding != "hashtable" and encoding != "listpack" and n <= opts.set_max_intset_entries and n:
            ints = []
            for m in members:
                v = canonical_int(m)
                if v is None:
                    break
                ints.append(v)
            else:
                return C.TYPE_SET_INTSET, enc_str(intset_encode(ints), self.compression)
        if (
            self.version >= 11 and encoding != "hashtable" and n
            and n <= opts.set_max_listpack_entries
            and all(len(m) <= opts.set_max_listpack_value for m in members)
        ):
            return C.TYPE_SET_LISTPACK, enc_str(lp_build([lp_entry(m) for m in members]), self.compression)
        return C.TYPE_SET, enc_len(n) + b"".join([self._str(m) for m in members])

    def _pairs(self, value: Any) -> list[tuple[bytes, bytes]]:
        it = value.items() if isinstance(value, Mapping) else value
        return [(_b(f), _b(v)) for f, v in it]

    def _hash(self, value: Any, encoding: str | None) -> tuple[int, bytes]:
        pairs = self._pairs(value)
        opts = self.options
        if self.version >= 10 and encoding != "hashtable" and _small(pairs, opts.hash_max_listpack_entries,
                                                                    opts.hash_max_listpack_value):
            entries = []
            for f, v in pairs:
                entries.append(lp_entry(f))
                entries.append(lp_entry(v))
            return C.TYPE_HASH_LISTPACK, enc_str(lp_build(entries), self.compression)
        parts = [enc_len(len(pairs))]
        s = self._str
        for f, v in pairs:
            parts.append(s(f))
            parts.append(s(v))
        return C.TYPE_HASH, b"".join(parts)

    def _hash_with_ttls(self, value: Any, field_expires: Mapping[bytes, int]) -> tuple[int, bytes]:
        """Types 25 (listpack of field, value, ttl) / 24 (hashtable with TTL
        deltas), Redis 7.4."""
        if self.version < 12:
            raise RDBWriteError(f"hash field TTLs need RDB version 12 (Redis 7.4); this file is "
                                f"version {self.version}")
        pairs = self._pairs(value)
        ttls = {_b(f): int(t) for f, t in field_expires.items() if t}
        min_expire = min(ttls.values()) if ttls else 0
        opts = self.options
        if _small(pairs, opts.hash_max_listpack_entries, opts.hash_max_listpack_value):
            # 7.4 keeps listpack-ex fields ordered by TTL, fields without one last.
            order = sorted(pairs, key=lambda fv: (fv[0] not in ttls, ttls.get(fv[0], 0)))
            entries = []
            for f, v in order:
                entries.append(lp_entry(f))
                entries.append(lp_entry(v))
                entries.append(lp_int_entry(ttls.get(f, 0)))
            return C.TYPE_HASH_LISTPACK_EX, _I64.pack(min_expire) + enc_str(lp_build(entries), self.compression)
        parts = [_I64.pack(min_expire), enc_len(len(pairs))]
        for f, v in pairs:
            t = ttls.get(f)
            parts.append(enc_len(t - min_expire + 1 if t else 0))
            parts.append(self._str(f))
            parts.append(self._str(v))
        return C.TYPE_HASH_METADATA, b"".join(parts)

    def _zset(self, value: Any, encoding: str | None) -> tuple[int, bytes]:
        it = value.items() if isinstance(value, Mapping) else value
        items = [(_b(m), float(s)) for m, s in it]
        for _, s in items:
            if s != s:
                raise RDBWriteError("a sorted set score cannot be NaN")
        opts = self.options
        if (
            self.version >= 10 and encoding != "skiplist" and items
            and len(items) <= opts.zset_max_listpack_entries
            and all(len(m) <= opts.zset_max_listpack_value for m, _ in items)
        ):
            items.sort(key=lambda ms: (ms[1], ms[0]))
            entries = []
            for m, s in items:
                entries.append(lp_entry(m))
                entries.append(_score_entry(s))
            return C.TYPE_ZSET_LISTPACK, enc_str(lp_build(entries), self.compression)
        # The skiplist form, from the highest score down as Redis writes it.
        items.sort(key=lambda ms: (ms[1], ms[0]), reverse=True)
        parts = [enc_len(len(items))]
        pack = _F64.pack
        for m, s in items:
            parts.append(self._str(m))
            parts.append(pack(s))
        return C.TYPE_ZSET_2, b"".join(parts)

    def _stream(self, s: Stream) -> tuple[int, bytes]:
        if not isinstance(s, Stream):
            raise RDBWriteError("a stream value must be a Stream")
        v = self.version
        t = C.TYPE_STREAM_LISTPACKS if v < 10 else C.TYPE_STREAM_LISTPACKS_2 if v < 11 else C.TYPE_STREAM_LISTPACKS_3
        nodes = stream_nodes(s.entries, self.options)
        parts = [enc_len(len(nodes))]
        for nodekey, lp in nodes:
            parts.append(enc_str(nodekey, self.compression))
            parts.append(enc_str(lp, self.compression))
        parts.append(enc_len(s.length))
        parts.append(enc_len(s.last_id.ms) + enc_len(s.last_id.seq))
        if t != C.TYPE_STREAM_LISTPACKS:
            parts.append(enc_len(s.first_id.ms) + enc_len(s.first_id.seq))
            parts.append(enc_len(s.max_deleted_id.ms) + enc_len(s.max_deleted_id.seq))
            parts.append(enc_len(s.entries_added))
        groups = sorted(s.groups, key=lambda g: g.name)
        parts.append(enc_len(len(groups)))
        for g in groups:
            parts.append(enc_str(_b(g.name), self.compression))
            parts.append(enc_len(g.last_id.ms) + enc_len(g.last_id.seq))
            if t != C.TYPE_STREAM_LISTPACKS:
                parts.append(enc_len(g.entries_read & 0xFFFFFFFFFFFFFFFF))
            pel = sorted(g.pel, key=lambda nack: nack.id)
            parts.append(enc_len(len(pel)))
            for nack in pel:
                parts.append(_ID128.pack(*nack.id) + _I64.pack(nack.delivery_time) + enc_len(nack.delivery_count))
            consumers = sorted(g.consumers, key=lambda c: c.name)
            parts.append(enc_len(len(consumers)))
            for c in consumers:
                parts.append(enc_str(_b(c.name), self.compression))
                parts.append(_I64.pack(c.seen_time))
                if t == C.TYPE_STREAM_LISTPACKS_3:
                    parts.append(_I64.pack(c.active_time))
                ids = sorted(c.pel)
                parts.append(enc_len(len(ids)))
                parts.extend(_ID128.pack(*i) for i in ids)
        return t, b"".join(parts)

    def _module_body(self, value: ModuleValue, aux_when: int | None = None) -> bytes:
        """The framed module data and its EOF sub-opcode."""
        io = ModuleSaveIO(self.compression)
        name, _ = module_name(value.module_id)
        mt = self.modules.get(name)
        if value.parsed is not None and mt is not None:
            if aux_when is None:
                mt.rdb_save(io, value.parsed)
            else:
                mt.aux_save(io, value.parsed, aux_when)
        elif value.items or value.parsed is None:
            io.save_items(value.items)
        else:
            raise RDBWriteError(f"cannot save a value of module type '{name}': the type is not registered")
        return io.getvalue() + enc_len(C.MODULE_OPCODE_EOF)


# -- encoding choices ---------------------------------------------------------------------


def _small(pairs: list[tuple[bytes, bytes]], max_entries: int, max_value: int) -> bool:
    """Within hash-max-listpack-entries / -value (both field and value)."""
    if not pairs or len(pairs) > max_entries:
        return False
    for f, v in pairs:
        if len(f) > max_value or len(v) > max_value:
            return False
    return True


def _score_entry(score: float) -> bytes:
    """A zset score as Redis 7.0's zzlInsertAt stores it: an integer entry
    when the double is integral within +-2^62 (double2ll), else the %.17g
    text (d2string)."""
    if -_DOUBLE2LL_LIMIT <= score <= _DOUBLE2LL_LIMIT:
        i = int(score)
        if i == score:
            return lp_int_entry(i)
    if score == float("inf"):
        return lp_str_entry(b"inf")
    if score == float("-inf"):
        return lp_str_entry(b"-inf")
    return lp_str_entry(b"%.17g" % score)


def _clamp_fill(fill: int) -> int:
    if fill > _FILL_MAX:
        return _FILL_MAX
    if fill < -5:
        return -5
    return fill


def quicklist_nodes(items: list[bytes], options: EncodingOptions) -> list[tuple[int, bytes, bytes | None]]:
    """Cut a list into quicklist v2 nodes as Redis 7.0's quicklistPushTail
    would when the elements are pushed in order: (container, data,
    LZF-compressed data or None)."""
    fill = _clamp_fill(options.list_max_listpack_size)
    threshold = options.list_packed_threshold
    size_limit = _OPTIMIZATION_LEVEL[-fill - 1] if fill < 0 else 0
    nodes: list[tuple[int, bytes, bytes | None]] = []
    cur: list[bytes] = []
    cur_sz = 0  # listpack bytes of the node being filled (0 = no node)

    def flush() -> None:
        if cur:
            nodes.append((C.QUICKLIST_NODE_PACKED, lp_build(cur), None))

    for e in items:
        sz = len(e)
        if sz >= threshold:
            flush()
            cur = []
            cur_sz = 0
            nodes.append((C.QUICKLIST_NODE_PLAIN, e, None))
            continue
        if cur_sz:
            new_sz = cur_sz + sz + _SIZE_ESTIMATE_OVERHEAD
            if size_limit:
                allow = new_sz <= size_limit
            else:
                allow = new_sz <= _SIZE_SAFETY_LIMIT and len(cur) < fill
            if allow:
                ent = lp_entry(e)
                cur.append(ent)
                cur_sz += len(ent)
                continue
            flush()
        ent = lp_entry(e)
        cur = [ent]
        cur_sz = 7 + len(ent)
    flush()
    depth = options.list_compress_depth
    if depth > 0 and len(nodes) > 2 * depth:
        for i in range(depth, len(nodes) - depth):
            container, data, _ = nodes[i]
            if len(data) < _MIN_COMPRESS_BYTES:
                continue
            c = lzf.compress(data, len(data))
            if c is not None and len(c) + _MIN_COMPRESS_IMPROVE < len(data):
                nodes[i] = (container, data, c)
    return nodes


def _wrap64(v: int) -> int:
    """Two's-complement view of a 64-bit difference (lpAppendInteger(int64))."""
    v &= _INT64_WRAP - 1
    return v - _INT64_WRAP if v >= 1 << 63 else v


def stream_nodes(entries: Iterable[Any], options: EncodingOptions) -> list[tuple[bytes, bytes]]:
    """Pack stream entries into (node key, listpack) pairs as Redis 7.0's
    streamAppendItem does when they are added in order (a new node when the
    tail one reaches stream-node-max-bytes or -entries)."""
    max_bytes = options.stream_node_max_bytes
    if max_bytes == 0 or max_bytes > _STREAM_LISTPACK_MAX_SIZE:
        max_bytes = _STREAM_LISTPACK_MAX_SIZE
    max_entries = options.stream_node_max_entries
    nodes: list[tuple[bytes, bytes]] = []
    master_id: StreamID | None = None
    master_fields: list[bytes] = []
    body: list[bytes] = []  # entries after the master entry's count
    body_sz = 0
    count = 0

    def flush() -> None:
        if master_id is not None:
            nodes.append((_ID128.pack(*master_id), lp_build([lp_int_entry(count), *body])))

    for e in entries:
        fields = [(_b(f), _b(v)) for f, v in e.fields]
        eid = StreamID(*e.id)
        if master_id is not None:
            tot = 0
            for f, v in fields:
                tot += len(f) + len(v)
            lp_bytes = 7 + lp_entry_size(count) + body_sz
            if lp_bytes + tot >= max_bytes or (max_entries and count >= max_entries):
                flush()
                master_id = None
        if master_id is None:
            master_id = eid
            master_fields = [f for f, _ in fields]
            body = [lp_int_entry(0), lp_int_entry(len(fields))]
            body.extend(lp_entry(f) for f in master_fields)
            body.append(lp_int_entry(0))
            body_sz = sum(len(x) for x in body)
            count = 0
        same = len(fields) == len(master_fields) and all(
            f == mf for (f, _), mf in zip(fields, master_fields, strict=True))
        ent = [lp_int_entry(2 if same else 0),
               lp_int_entry(_wrap64(eid.ms - master_id.ms)),
               lp_int_entry(_wrap64(eid.seq - master_id.seq))]
        if same:
            ent.extend(lp_entry(v) for _, v in fields)
            ent.append(lp_int_entry(len(fields) + 3))
        else:
            ent.append(lp_int_entry(len(fields)))
            for f, v in fields:
                ent.append(lp_entry(f))
                ent.append(lp_entry(v))
            ent.append(lp_int_entry(2 * len(fields) + 4))
        body.extend(ent)
        body_sz += sum(len(x) for x in ent)
        count += 1
    flush()
    return nodes


# -- conveniences ---------------------------------------------------------------------------


def dump_payload(
    type: str,
    value: Any,
    *,
    version: int = C.RDB_VERSION_DEFAULT,
    compression: bool = True,
    options: EncodingOptions | None = None,
    field_expires: Mapping[bytes, int] | None = None,
    modules: ModuleRegistry | None = None,
) -> bytes:
    """A DUMP payload: type byte, value, u16 RDB version, u64 CRC-64."""
    w = RDBWriter(version, compression=compression, options=options, modules=modules)
    t, body = w.encode_value(type, value, field_expires=field_expires)
    data = bytes((t,)) + body + struct.pack("<H", version)
    return data + struct.pack("<Q", crc64(data))


def write_events(events: Iterable[Event], writer: RDBWriter | None = None) -> Iterator[bytes]:
    """Re-encode a stream of reader events (a filter or a converter sits in
    between).  A header is written first even when the events lack one, and
    EOF last when they lack an End."""
    w = writer or RDBWriter()
    started = ended = False
    for ev in events:
        if isinstance(ev, Header):
            if started:
                continue
            started = True
            yield w.header()
            continue
        if not started:
            started = True
            yield w.header()
        if isinstance(ev, End):
            ended = True
            yield w.eof()
            break
        yield w.event(ev)
    if not started:
        yield w.header()
    if not ended:
        yield w.eof()


def write_file(path: str, events: Iterable[Event], writer: RDBWriter | None = None) -> int:
    """Write events to ``path``; returns the file size."""
    n = 0
    with open(path, "wb") as f:
        n = _write_to(f, events, writer)
    return n


def _write_to(f: IO[bytes], events: Iterable[Event], writer: RDBWriter | None) -> int:
    n = 0
    for chunk in write_events(events, writer):
        f.write(chunk)
        n += len(chunk)
    return n
