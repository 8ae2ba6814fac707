"""A sans-IO streaming RDB reader: bytes in, events out.

Feed it bytes as they come (from a file, a socket, a RESTORE payload) and it
yields :mod:`~.model` events -- header, aux fields, select db, resize db,
function libraries, module aux data, keys with their expiry/LRU/LFU, and the
end with its checksum.  It reads RDB versions 1-12 and every encoding Redis
ever wrote (spec/rdb-format.md), and on request Valkey 9's files (``VALKEY``
magic, RDB 80-81, its hash with field expiry and slot-import records).
``check_only`` walks a dump as redis-check-rdb does, checking every record
without building values (what ``rdb-inspect verify`` uses).

How it stays fast and bounded:

* Parsing works on whole *records* (one opcode with its payload, or one key
  with its value) over an immutable ``bytes`` buffer, with ``struct`` and
  slicing.  When a record is incomplete the reader rolls back to its start
  and waits until the buffered input has at least doubled (or reached the
  size the record is known to need) before trying again, so a huge key costs
  amortised linear time and at most about twice its own size in memory.
* Consumed bytes are dropped after every :meth:`RDBReader.feed`; the reader
  never holds more than the current incomplete record.
* Loading a whole dump (``batch_keys=True`` with a :mod:`~.builder`) costs
  a few list appends per key: runs of plain string records are read in a
  tight loop, containers go from their decoded lists straight to the
  caller's types, and listpacks of a shape seen before are taken apart in
  one struct call (see :mod:`.containers`).

Errors: a corrupt record raises :class:`~.errors.RDBCorruptError` (or a
subclass) naming the offset and the key; input that ends early raises
:class:`~.errors.RDBTruncatedError` from :meth:`RDBReader.close`.  Nothing
already decoded is lost: the events before the bad record are yielded first
and the error is raised where iteration reaches it.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import IO, Any, Final, Literal

from . import constants as C
from .builder import MODEL, ValueBuilder
from .containers import intset_decode, lp_decode, ziplist_decode, zipmap_decode
from .encoding import Corrupt, NeedMore, crc64, read_blob, read_len, read_str, string_encoding
from .errors import (
    RDBChecksumError,
    RDBCorruptError,
    RDBError,
    RDBModuleError,
    RDBSignatureError,
    RDBTruncatedError,
    RDBVersionError,
)
from .model import (
    STREAM_ID_MAX,
    STREAM_ID_ZERO,
    Aux,
    End,
    Event,
    FunctionLibrary,
    Header,
    Key,
    KeyBatch,
    ModuleAux,
    ModuleValue,
    ResizeDB,
    SelectDB,
    SlotImport,
    SlotInfo,
    Stream,
    StreamConsumer,
    StreamEntry,
    StreamGroup,
    StreamID,
    StreamNACK,
)
from .modules import ModuleLoadIO, ModuleRegistry, module_name

__all__ = [
    "RDBReader",
    "DumpValue",
    "iter_events",
    "read_file",
    "read_bytes",
    "load_dump_payload",
]

_I64: Final = struct.Struct("<q")
_I32: Final = struct.Struct("<i")
_U64: Final = struct.Struct("<Q")
_F64: Final = struct.Struct("<d")
_F32: Final = struct.Struct("<f")
_ID128: Final = struct.Struct(">QQ")
_MASK64: Final = (1 << 64) - 1

_HEADER, _BODY, _CHECKSUM, _DONE = range(4)

#: The float of each integral zset score a listpack stores in 7 or 13 bits
#: (shared objects: a load makes no float for them).
_SMALL_SCORES: Final = {i: float(i) for i in range(-4096, 4096)}

_KIND = C.KIND_OF_TYPE
_ENC = C.ENCODING_OF_TYPE

UnknownModules = Literal["error", "raw"]

#: Exceptions that mean "the bytes are not what the format says" when they
#: escape a record parser (every read past the *buffer* end is checked
#: explicitly and becomes NeedMore, so these can only come from bad data).
_DATA_ERRORS: Final = (IndexError, struct.error, ValueError, OverflowError, UnicodeDecodeError, KeyError)


class RDBReader:
    """Push parser for RDB files.

    ``feed(data)`` returns an iterator over the events completed by ``data``;
    ``close()`` signals the end of input (and raises
    :class:`RDBTruncatedError` if the dump was incomplete).  Options:

    * ``verify_checksum`` -- compute the CRC-64 and compare it with the
      trailer (a stored 0 means "not computed" and is accepted, as in Redis).
    * ``modules`` / ``unknown_modules`` -- registered module types; a module
      value of an unregistered type is an :class:`RDBModuleError` (Redis's
      behaviour) unless ``unknown_modules="raw"``, which returns it as a
      :class:`ModuleValue` with its raw items (MODULE_2 only).
    * ``max_version`` -- refuse newer files (Redis 7.0 would pass 10).
    * ``deep_sanitize`` -- the extra checks of ``sanitize-dump-payload yes``
      (listpack back-lengths, duplicates, intset order, stream consistency).
    * ``total_size`` -- the input's size when known (a file): a record that
      claims to need more bytes than are left is reported at once instead of
      buffering the rest of the input first.
    * ``builder`` -- what decoded values become (:mod:`.builder`; default:
      the neutral model).
    * ``batch_keys`` -- deliver key records as :class:`KeyBatch` events
      (runs of keys as parallel lists) instead of one :class:`Key` each:
      the fast path for loading a whole dump.
    * ``types`` -- the RDB type ids to accept (default: every one this
      reader knows); any other is refused with Redis's "Unknown RDB
      encoding type" (Redis 7.0 would pass the ids below 20 but 8).
    * ``valkey`` -- also read Valkey 9+ files (``VALKEY080`` magic, RDB
      80-81; see constants): type 22 is then Valkey's hash with field
      expiry and opcode 243 its slot-import record.  Off by default: Redis
      refuses them ("Wrong signature").
    * ``check_only`` -- check every record without building values, the
      way Redis's loader checks a dump with ``sanitize-dump-payload no``
      (what redis-check-rdb does): lengths, string encodings and LZF data,
      listpack and intset headers and terminators, quicklist nodes,
      duplicates where Redis's loader finds them (plain sets, hashes and
      zsets, ziplists, which it converts), NaN scores; ziplists, zipmaps
      and streams are walked.  A value is given as its element count (a
      string's length, pairs for hashes, entries for streams, 0 for a module
      value; 0 for an empty collection, never skipped), and a
      :class:`KeyBatch` also lists each record's size and the encodings of
      its int / LZF strings.  With ``deep_sanitize`` every container is
      decoded and deep-checked as usual, still without building values.
    * ``skim`` -- ``check_only`` for counting and sizing alone: plain sets,
      hashes and zsets are stepped over without looking for duplicates or
      NaN scores (what ``rdb-inspect summary`` needs).
    """

    def __init__(
        self,
        *,
        verify_checksum: bool = True,
        modules: ModuleRegistry | None = None,
        unknown_modules: UnknownModules = "error",
        max_version: int = C.RDB_VERSION_MAX,
        deep_sanitize: bool = False,
        total_size: int | None = None,
        builder: ValueBuilder | None = None,
        batch_keys: bool = False,
        types: Collection[int] | None = None,
        valkey: bool = False,
        check_only: bool = False,
        skim: bool = False,
    ) -> None:
        self.verify_checksum = verify_checksum
        self.builder = MODEL if builder is None else builder
        check_only = check_only or skim
        self.check_only = check_only
        if check_only:
            self.builder = _CHECKED
        self.batch_keys = batch_keys
        self.total_size = total_size
        self.modules = modules or ModuleRegistry()
        self.unknown_modules = unknown_modules
        self.max_version = max_version
        self.deep = deep_sanitize
        self.version = 0
        #: "REDIS", or "VALKEY" for a Valkey 9+ file (set by the header).
        self.magic = "REDIS"
        self.valkey = valkey
        self.db = 0
        self._buf = b""
        self._pos = 0
        self._base = 0
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._need = 9
        self._state = _HEADER
        self._expire: int | None = None
        self._lru: int | None = None
        self._lfu: int | None = None
        self._crc = 0
        self._crc_pos = 0
        self._error: RDBError | None = None
        self._rec_start = 0
        self._cur_key: bytes | None = None
        self._end_offset: int | None = None
        self._unused: list[bytes] = []
        # Side results of a value parser beyond (value, pos).
        self._v_nodes: int | None = None
        self._v_fexp: dict[bytes, int] | None = None
        self._parsers: dict[int, Callable[[int, bytes, int], tuple[Any, int]]] = {
            C.TYPE_LIST: self._v_list,
            C.TYPE_SET: self._v_set,
            C.TYPE_ZSET: self._v_zset_text,
            C.TYPE_HASH: self._v_hash,
            C.TYPE_ZSET_2: self._v_zset_binary,
            C.TYPE_MODULE_PRE_GA: self._v_module_pre_ga,
            C.TYPE_MODULE_2: self._v_module2,
            C.TYPE_HASH_ZIPMAP: self._v_zipmap,
            C.TYPE_LIST_ZIPLIST: self._v_list_ziplist,
            C.TYPE_SET_INTSET: self._v_intset,
            C.TYPE_ZSET_ZIPLIST: self._v_zset_ziplist,
            C.TYPE_HASH_ZIPLIST: self._v_hash_ziplist,
            C.TYPE_LIST_QUICKLIST: self._v_quicklist,
            C.TYPE_STREAM_LISTPACKS: self._v_stream,
            C.TYPE_HASH_LISTPACK: self._v_hash_listpack,
            C.TYPE_ZSET_LISTPACK: self._v_zset_listpack,
            C.TYPE_LIST_QUICKLIST_2: self._v_quicklist2,
            C.TYPE_STREAM_LISTPACKS_2: self._v_stream,
            C.TYPE_SET_LISTPACK: self._v_set_listpack,
            C.TYPE_STREAM_LISTPACKS_3: self._v_stream,
            C.TYPE_HASH_METADATA_PRE_GA: self._v_hash_metadata,
            C.TYPE_HASH_LISTPACK_EX_PRE_GA: self._v_hash_listpack_ex,
            C.TYPE_HASH_METADATA: self._v_hash_metadata,
            C.TYPE_HASH_LISTPACK_EX: self._v_hash_listpack_ex,
        }
        if check_only and not deep_sanitize:
            self._parsers.update({
                C.TYPE_LIST: self._c_list,
                C.TYPE_SET: self._c_set,
                C.TYPE_HASH: self._c_hash,
                C.TYPE_ZSET_2: self._c_zset_binary,
                C.TYPE_HASH_LISTPACK: self._c_pairs_listpack,
                C.TYPE_ZSET_LISTPACK: self._c_pairs_listpack,
                C.TYPE_SET_LISTPACK: self._c_set_listpack,
                C.TYPE_LIST_QUICKLIST_2: self._c_quicklist2,
            })
            if skim:
                self._parsers.update({
                    C.TYPE_SET: self._c_list,
                    C.TYPE_HASH: self._s_hash,
                    C.TYPE_ZSET_2: self._s_zset_binary,
                })
        self._types = types
        if types is not None:
            # Strings (type 0) are read by _body itself: always accepted.
            self._parsers = {t: f for t, f in self._parsers.items() if t in types}

    # -- public interface -------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once EOF and the checksum have been read."""
        return self._state == _DONE

    @property
    def offset(self) -> int:
        """Bytes consumed so far (the absolute offset of the next record)."""
        return self._base + self._pos

    @property
    def end_offset(self) -> int | None:
        """Offset just past the checksum (the size of the RDB part of the
        input); bytes after it are not RDB (e.g. an old AOF's RESP tail)."""
        return self._end_offset

    @property
    def unused_data(self) -> bytes:
        """Bytes fed after the end of the RDB data."""
        return b"".join(self._unused)

    @property
    def error(self) -> RDBError | None:
        """The error that stopped the reader, if any."""
        return self._error

    def feed(self, data: bytes | bytearray | memoryview) -> Iterator[Event]:
        """Add input; the returned iterator yields every event it completed,
        then raises the error if the input turned out to be bad.  Parsing
        happens here, eagerly: the reader's state does not depend on how far
        the caller iterates."""
        self._check_failed()
        if self._state == _DONE:
            if data:
                self._unused.append(bytes(data))
            return iter(())
        if data:
            chunk = data if type(data) is bytes else bytes(data)
            self._pending.append(chunk)
            self._pending_len += len(chunk)
        if len(self._buf) - self._pos + self._pending_len < self._need:
            return iter(())
        return self._deliver(self._run(final=False))

    def close(self) -> Iterator[Event]:
        """Signal the end of input: yields the remaining events, then raises
        :class:`RDBTruncatedError` if the dump was not complete."""
        self._check_failed()
        if self._state == _DONE:
            return iter(())
        return self._deliver(self._run(final=True))

    # -- driving ---------------------------------------------------------------------

    def _check_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _deliver(self, events: list[Event]) -> Iterator[Event]:
        err = self._error
        if err is None:
            return iter(events)
        if not events:
            raise err
        return self._then_raise(events, err)

    @staticmethod
    def _then_raise(events: list[Event], err: RDBError) -> Iterator[Event]:
        yield from events
        raise err

    def _join(self) -> None:
        """Append the pending chunks to the unconsumed part of the buffer."""
        if not self._pending:
            return
        pos = self._pos
        if pos == len(self._buf):
            parts = self._pending
        else:
            parts = [self._buf[pos:], *self._pending]
        self._buf = parts[0] if len(parts) == 1 else b"".join(parts)
        self._base += pos
        self._pos = 0
        self._crc_pos = 0
        self._pending = []
        self._pending_len = 0

    def _run(self, final: bool) -> list[Event]:
        self._join()
        events: list[Event] = []
        buf = self._buf
        try:
            while True:
                state = self._state
                if state == _BODY:
                    if not self._body(buf, events, final):
                        break
                elif state == _HEADER:
                    if not self._header(buf, events, final):
                        break
                elif state == _CHECKSUM:
                    if not self._checksum(buf, events, final):
                        break
                else:
                    break
        except RDBError as e:
            if e.offset is None:
                e.offset = self._base + self._rec_start
            self._error = e
        finally:
            if self._state == _BODY and self.verify_checksum and self._pos > self._crc_pos:
                self._crc = crc64(memoryview(buf)[self._crc_pos:self._pos], self._crc)
                self._crc_pos = self._pos
        return events

    def _wait(self, start: int, need: int, buf: bytes, final: bool) -> None:
        """The record at ``start`` is incomplete: wait for more input (or, at
        the end of input, report the truncation)."""
        total = self.total_size
        beyond = total is not None and self._base + need > total
        if final or beyond:
            where = f"a record at offset {self._base + start}"
            if self._cur_key is not None:
                where = f"key {self._cur_key!r} (record at offset {self._base + start})"
            if final:
                end = self._base + len(buf)
                have = f"{len(buf) - start} available"
            else:
                assert total is not None
                end = total
                have = f"only {total - self._base - start} left in the input"
            raise RDBTruncatedError(
                f"unexpected end of input: {where} needs at least {need - start} bytes, {have}",
                offset=end, key=self._cur_key,
            )
        want = max(need - start, 2 * (len(buf) - start), 1)
        if total is not None:
            want = min(want, total - (self._base + start))
        self._need = want

    # -- header / checksum --------------------------------------------------------------

    def _header(self, buf: bytes, events: list[Event], final: bool) -> bool:
        valkey = self.valkey
        if len(buf) < 9:
            # Wrong magic is reported as soon as it is visible.
            if not (b"REDIS".startswith(buf[:5]) or valkey and b"VALKEY".startswith(buf[:6])):
                raise RDBSignatureError("Wrong signature trying to load DB from file", offset=0)
            self._wait(0, 9, buf, final)
            return False
        if buf[:5] == b"REDIS":
            digits = buf[5:9]
            lowest, highest = 1, self.max_version
        elif valkey and buf[:6] == b"VALKEY":
            # Valkey 9+: three digits, and only its own versions (it keeps
            # 12-79 for formats it does not read, as this reader does).
            digits = buf[6:9]
            lowest, highest = C.VALKEY_VERSION_MIN, C.VALKEY_VERSION_MAX
            self.magic = "VALKEY"
        else:
            raise RDBSignatureError("Wrong signature trying to load DB from file", offset=0)
        at = 9 - len(digits)
        if not digits.isdigit():
            raise RDBSignatureError(f"Bad RDB version {digits!r}", offset=at)
        version = int(digits)
        if version < lowest or version > highest:
            raise RDBVersionError(f"Can't handle RDB format version {version}", offset=at)
        self.version = version
        if self.magic == "VALKEY":
            self._valkey_types()
        events.append(Header(version, 0, self.magic))
        self._pos = 9
        self._state = _BODY
        self._need = 1
        return True

    def _checksum(self, buf: bytes, events: list[Event], final: bool) -> bool:
        pos = self._pos
        eof_offset = self._base + pos - 1
        if self.version < 5:
            self._finish(buf, pos, End(None, None, eof_offset), events)
            return False
        if pos + 8 > len(buf):
            self._rec_start = pos
            self._cur_key = None
            self._wait(pos, pos + 8, buf, final)
            return False
        stored = _U64.unpack_from(buf, pos)[0]
        computed = self._crc if self.verify_checksum else None
        if computed is not None and stored != 0 and stored != computed:
            raise RDBChecksumError(
                f"Wrong RDB checksum expected: ({stored:#018x}) got: ({computed:#018x})",
                offset=self._base + pos,
            )
        self._finish(buf, pos + 8, End(stored, computed, eof_offset), events)
        return False

    def _finish(self, buf: bytes, pos: int, end: End, events: list[Event]) -> None:
        events.append(end)
        self._pos = pos
        self._state = _DONE
        self._end_offset = self._base + pos
        if pos < len(buf):
            self._unused.append(buf[pos:])
        self._buf = b""
        self._base += pos
        self._pos = 0

    # -- records ----------------------------------------------------------------------

    def _body(self, buf: bytes, events: list[Event], final: bool) -> bool:
        """Parse records until the buffer runs out (False) or EOF (True).

        The per-key prefix state (expire, LRU, LFU) lives in locals and is
        written back whenever the loop is left, since an incomplete key
        record is parsed again later with the same prefix.  In batch mode
        key records are appended to the current :class:`KeyBatch` (opened
        by the first key after any other event) instead of becoming
        :class:`Key` events; a record is added only once complete, so a
        record parsed again after more input never appears twice."""
        pos = self._pos
        n = len(buf)
        append = events.append
        parsers = self._parsers
        base = self._base
        db = self.db
        expire = self._expire
        lru = self._lru
        lfu = self._lfu
        prefixed = expire is not None or lru is not None or lfu is not None
        batching = self.batch_keys
        batch: KeyBatch | None = None
        # The batch's list appends, bound when a batch opens.
        keys_add: Callable[[Any], None] = append
        values_add: Callable[[Any], None] = append
        types_add: Callable[[Any], None] = append
        meta_add: Callable[[Any], None] = append
        skipped_add: Callable[[Any], None] = append
        # check_only: record sizes and the encodings of int/LZF strings too.
        check = self.check_only
        sizes_add: Callable[[Any], None] = append
        encs_add: Callable[[Any], None] = append
        start = pos
        key: bytes | None = None
        op = 0
        try:
            while True:
                start = pos
                key = None
                if pos >= n:
                    raise NeedMore(pos + 1)
                op = buf[pos]
                if op < 244:
                    if op == 0 and batching and not prefixed:
                        # A run of string records with short (6-bit length)
                        # keys and values and no prefix: most of a typical
                        # dump, taken in a tight loop.  It stops before any
                        # record it cannot take whole, which the general path
                        # below then reads (or waits for).
                        if batch is None:
                            batch, keys_add, values_add, types_add, meta_add, skipped_add = _open_batch(
                                db, base + start, append)
                            sizes_add = batch.sizes.append
                            encs_add = batch.encodings.append
                        types = batch.types
                        taken = len(types)
                        try:
                            while check:  # the same loop, giving lengths and record sizes
                                b = buf[pos + 1]
                                if b >= 0x40:
                                    break
                                q = pos + 2 + b
                                c = buf[q]
                                if c >= 0x40:
                                    break
                                e = q + 1 + c
                                if e > n:
                                    break
                                keys_add(buf[pos + 2:q])
                                values_add(c)
                                types_add(0)  # runs are short in a real dump: no extend below
                                sizes_add(e - pos)
                                pos = e
                                if buf[e]:
                                    break
                            while not check:  # buf[pos] is 0 (a string record) here
                                b = buf[pos + 1]  # the key's length, IndexError past the buffer
                                if b >= 0x40:
                                    break
                                q = pos + 2 + b  # the value's length byte
                                c = buf[q]
                                if c >= 0x40:
                                    break
                                e = q + 1 + c
                                if e > n:
                                    break
                                keys_add(buf[pos + 2:q])
                                values_add(buf[q + 1:e])
                                pos = e
                                if buf[e]:
                                    break
                        except IndexError:
                            pass  # the buffer ends after a whole record, or inside one not taken
                        run = len(batch.keys) - taken
                        if run:
                            if not check:
                                types.extend(repeat(0, run))
                            continue
                    # A key record: type, key, value.
                    p = pos + 1
                    if p >= n:
                        raise NeedMore(p + 1)
                    b = buf[p]
                    if b < 0x40:
                        q = p + 1 + b
                        if q > n:
                            raise NeedMore(q)
                        key = buf[p + 1:q]
                        p = q
                    else:
                        key, p = read_str(buf, p)
                    if op == 0:
                        if p >= n:
                            raise NeedMore(p + 1)
                        b = buf[p]
                        if b < 0x40:
                            q = p + 1 + b
                            if q > n:
                                raise NeedMore(q)
                            value: Any = buf[p + 1:q]
                            p = q
                            enc = "raw"
                        else:
                            enc = "raw" if b < 0xC0 else "lzf" if b == 0xC3 else "int"
                            value, p = read_str(buf, p)
                        if check:
                            value = len(value)
                        if not batching:
                            append(Key(db, key, "string", value, expire, lru, lfu, None, 0, enc, None,
                                       base + start, p - start))
                    else:
                        parser = parsers.get(op)
                        if parser is None:
                            if op == C.OP_SLOT_IMPORT and self.magic == "VALKEY":
                                # Not a key record: opcode 243 of a Valkey file.
                                batch = None
                                key = None
                                pos = self._slot_import(buf, pos + 1, start, append)
                                continue
                            raise Corrupt(f"Unknown RDB encoding type {op}{_type_note(self, op)}", pos)
                        # Errors raised inside get the key from the handlers below.
                        if not batching:
                            self._v_nodes = None
                            self._v_fexp = None
                        value, p = parser(op, buf, p)
                        if not batching:
                            append(Key(db, key, _KIND[op], value, expire, lru, lfu, self._v_fexp, op, _ENC[op],
                                       self._v_nodes, base + start, p - start))
                    if batching:
                        if batch is None:
                            batch, keys_add, values_add, types_add, meta_add, skipped_add = _open_batch(
                                db, base + start, append)
                            sizes_add = batch.sizes.append
                            encs_add = batch.encodings.append
                        if value is None:
                            skipped_add(key)
                        else:
                            if prefixed:
                                meta_add((len(batch.keys), expire, lru, lfu))
                            if check:
                                sizes_add(p - start)
                                if op == 0 and enc != "raw":
                                    encs_add((len(batch.keys), enc))
                            keys_add(key)
                            values_add(value)
                            types_add(op)
                    if prefixed:
                        expire = lru = lfu = None
                        prefixed = False
                    pos = p
                    continue
                # Prefixes of the next key record; they do not end a batch.
                if op == C.OP_EXPIRETIME_MS:
                    if pos + 9 > n:
                        raise NeedMore(pos + 9)
                    expire = _I64.unpack_from(buf, pos + 1)[0]
                    prefixed = True
                    pos += 9
                    continue
                if op == C.OP_IDLE:
                    lru, pos = read_len(buf, pos + 1)
                    prefixed = True
                    continue
                if op == C.OP_FREQ:
                    if pos + 2 > n:
                        raise NeedMore(pos + 2)
                    lfu = buf[pos + 1]
                    prefixed = True
                    pos += 2
                    continue
                if op == C.OP_EXPIRETIME:
                    if pos + 5 > n:
                        raise NeedMore(pos + 5)
                    expire = _I32.unpack_from(buf, pos + 1)[0] * 1000
                    prefixed = True
                    pos += 5
                    continue
                batch = None
                if op == C.OP_SELECTDB:
                    db, pos = read_len(buf, pos + 1)
                    self.db = db
                    append(SelectDB(db, base + start))
                elif op == C.OP_RESIZEDB:
                    size, p = read_len(buf, pos + 1)
                    esize, pos = read_len(buf, p)
                    append(ResizeDB(size, esize, base + start))
                elif op == C.OP_AUX:
                    k, p = read_str(buf, pos + 1)
                    v, pos = read_str(buf, p)
                    append(Aux(k, v, base + start))
                elif op == C.OP_EOF:
                    pos += 1
                    if self.verify_checksum:
                        self._crc = crc64(memoryview(buf)[self._crc_pos:pos], self._crc)
                    self._crc_pos = pos
                    self._state = _CHECKSUM
                    return True
                elif op == C.OP_FUNCTION2:
                    code, pos = read_str(buf, pos + 1)
                    engine, name = _shebang(code)
                    append(FunctionLibrary(code, engine, name, False, base + start))
                elif op == C.OP_FUNCTION_PRE_GA:
                    pos = self._function_pre_ga(buf, pos + 1, start, append)
                elif op == C.OP_MODULE_AUX:
                    pos = self._module_aux(buf, pos + 1, start, append)
                else:  # OP_SLOT_INFO: every value 244..255 is handled
                    slot, p = read_len(buf, pos + 1)
                    size, p = read_len(buf, p)
                    esize, pos = read_len(buf, p)
                    append(SlotInfo(slot, size, esize, base + start))
        except NeedMore as e:
            self._cur_key = key
            self._wait(start, e.need, buf, final)
            return False
        except Corrupt as e:
            raise RDBCorruptError(e.message, offset=base + e.pos, key=key) from None
        except RDBError as e:
            if e.key is None and key is not None:
                e.key = key
            if e.offset is None:
                e.offset = base + start
            raise
        except _DATA_ERRORS as e:
            raise RDBCorruptError(
                f"invalid data in {'key' if op < 244 else C.OPCODE_NAMES.get(op, 'record')} "
                f"record ({type(e).__name__}: {e})", offset=base + start, key=key,
            ) from None
        except Exception as e:
            if self.builder is MODEL:
                raise
            # A custom builder's types refused the value.
            raise RDBCorruptError(f"cannot build the {_KIND.get(op, 'value')} value ({type(e).__name__}: {e})",
                                  offset=base + start, key=key) from None
        finally:
            self._pos = start if self._state == _BODY else pos
            self._rec_start = start
            self._expire = expire
            self._lru = lru
            self._lfu = lfu

    def _valkey_types(self) -> None:
        """A Valkey file: its type 22 replaces Redis 7.4's, 23-25 are not
        Redis's (23 is Valkey's path hash, which this reader does not read)."""
        parsers = self._parsers
        for t in (C.TYPE_HASH_METADATA_PRE_GA, C.TYPE_HASH_LISTPACK_EX_PRE_GA, C.TYPE_HASH_METADATA,
                  C.TYPE_HASH_LISTPACK_EX):
            parsers.pop(t, None)
        if self._types is None or C.TYPE_VALKEY_HASH_2 in self._types:
            parsers[C.TYPE_VALKEY_HASH_2] = self._v_valkey_hash2

    def _slot_import(self, buf: bytes, p: int, start: int, append: Callable[[Event], None]) -> int:
        """SLOT_IMPORT (Valkey): STR job name, LEN n, n x (LEN start, LEN end)."""
        name, p = read_str(buf, p)
        count, p = read_len(buf, p)
        ranges: list[tuple[int, int]] = []
        for _ in range(count):
            first, p = read_len(buf, p)
            last, p = read_len(buf, p)
            ranges.append((first, last))
        append(SlotImport(name, ranges, self._base + start))
        return p

    def _function_pre_ga(self, buf: bytes, p: int, start: int, append: Callable[[Event], None]) -> int:
        """7.0-rc FUNCTION record, converted to library source like Redis 7.0."""
        name, p = read_str(buf, p)
        engine, p = read_str(buf, p)
        has_desc, p = read_len(buf, p)
        if has_desc:
            _desc, p = read_str(buf, p)
        body, p = read_str(buf, p)
        code = b"#!" + engine + b" name=" + name + b"\n" + body
        eng, nm = _shebang(code)
        append(FunctionLibrary(code, eng, nm, True, self._base + start))
        return p

    def _module_aux(self, buf: bytes, p: int, start: int, append: Callable[[Event], None]) -> int:
        mid, p = read_len(buf, p)
        name, encver = module_name(mid)
        wpos = p
        when_op, p = read_len(buf, p)
        if when_op != C.MODULE_OPCODE_UINT:
            raise Corrupt("bad when opcode in module aux data", wpos)
        when, p = read_len(buf, p)
        data_start = p
        items, p = _scan_module_items(buf, p)
        mt = self.modules.get(name)
        mv = ModuleValue(mid, name, encver, items, None)
        if mt is None:
            if self.unknown_modules != "raw":
                raise RDBModuleError(
                    f"The RDB file contains AUX module data I can't load: no matching module '{name}' "
                    f"(module id {mid:#x}, encoding version {encver})",
                    module_id=mid, module_name=name, offset=self._base + start,
                )
        else:
            io = ModuleLoadIO(buf, data_start, framed=True)
            mv.parsed = _call_module(lambda: mt.aux_load(io, encver, when), name, mid)
            if io.pos != p - 1:
                raise RDBModuleError(
                    f"The RDB file contains module AUX data for the module '{name}' that is not "
                    "terminated by the proper module value EOF marker",
                    module_id=mid, module_name=name, offset=self._base + start,
                )
        append(ModuleAux(mv, when, self._base + start))
        return p

    # -- values -------------------------------------------------------------------------

    def _blob(self, buf: bytes, p: int) -> tuple[bytes, int, int]:
        """An RDB string holding a container: (blob, start, end)."""
        blob, q = read_blob(buf, p)
        return blob, p, q

    def _decode(self, fn: Callable[..., Any], blob: bytes, at: int, *args: Any) -> Any:
        """Run a container decoder; its errors get the blob's offset."""
        try:
            return fn(blob, *args)
        except RDBCorruptError as e:
            raise RDBCorruptError(e.message, offset=self._base + at) from None

    def _lp(self, buf: bytes, p: int) -> tuple[list[bytes], int]:
        """A listpack blob at ``p`` decoded with integers as text: (elements,
        end).  (The hash and zset parsers, the hot ones, have it inline.)"""
        blob, q = read_blob(buf, p)
        try:
            return lp_decode(blob, True, self.deep), q
        except RDBCorruptError as e:
            raise RDBCorruptError(e.message, offset=self._base + p) from None

    def _strings(self, buf: bytes, p: int, count: int) -> tuple[list[bytes], int]:
        """``count`` RDB strings from ``p``.  Short ones are sliced without
        a bounds check each: one that runs past the buffer leaves ``p``
        beyond its end, which the next index (IndexError) or the final
        check turns into NeedMore."""
        out: list[bytes] = []
        append = out.append
        try:
            for _ in range(count):
                b = buf[p]
                if b < 0x40:
                    q = p + 1 + b
                    append(buf[p + 1:q])
                    p = q
                else:
                    s, p = read_str(buf, p)
                    append(s)
        except IndexError:
            raise NeedMore(p + 1) from None
        if p > len(buf):
            raise NeedMore(p)
        return out, p

    def _v_list(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        """RDB_TYPE_LIST: a count, then the elements."""
        count, p = read_len(buf, p)
        out, p = self._strings(buf, p, count)
        return self.builder.list_value(t, [out], None), p

    def _v_set(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        """RDB_TYPE_SET: a count, then the members."""
        count, p = read_len(buf, p)
        out, p = self._strings(buf, p, count)
        if self.deep:
            _check_unique(out, p, "Duplicate set members detected")
        return self.builder.set_value(t, out), p

    def _v_hash(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        count, p = read_len(buf, p)
        if count > (len(buf) - p) // 2 + 1:
            # Cannot be complete yet: each pair takes at least two bytes.
            raise NeedMore(p + 2 * count)
        flat, p = self._strings(buf, p, 2 * count)
        if self.deep:
            _check_unique(flat[0::2], p)
        return self.builder.hash_value(t, flat), p

    def _v_zset_text(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        count, p = read_len(buf, p)
        members: list[bytes] = []
        scores: list[float] = []
        n = len(buf)
        for _ in range(count):
            member, p = read_str(buf, p)
            if p >= n:
                raise NeedMore(p + 1)
            ln = buf[p]
            if ln == 253:
                raise Corrupt("Zset with NAN score detected", p)
            if ln == 254:
                score = float("inf")
                p += 1
            elif ln == 255:
                score = float("-inf")
                p += 1
            else:
                q = p + 1 + ln
                if q > n:
                    raise NeedMore(q)
                score = _parse_score(buf[p + 1:q], p)
                p = q
            members.append(member)
            scores.append(score)
        return self.builder.zset_value(t, members, scores), p

    def _v_zset_binary(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        count, p = read_len(buf, p)
        members: list[bytes] = []
        scores: list[float] = []
        m_add = members.append
        s_add = scores.append
        n = len(buf)
        unpack = _F64.unpack_from
        for _ in range(count):
            b = buf[p] if p < n else 0xFF
            if b < 0x40:  # a short member: most of them
                q = p + 1 + b
                member = buf[p + 1:q]
                p = q
            else:
                member, p = read_str(buf, p)
            if p + 8 > n:
                raise NeedMore(p + 8)
            score = unpack(buf, p)[0]
            if score != score:
                raise Corrupt("Zset with NAN score detected", p)
            m_add(member)
            s_add(score)
            p += 8
        if self.deep:
            _check_unique(members, p)
        return self.builder.zset_value(t, members, scores), p

    def _v_module2(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        mid, p = read_len(buf, p)
        name, encver = module_name(mid)
        data_start = p
        items, p = _scan_module_items(buf, p)
        mv = ModuleValue(mid, name, encver, items, None)
        mt = self.modules.get(name)
        if mt is None:
            if self.unknown_modules == "raw":
                return self.builder.module_value(t, mv), p
            raise RDBModuleError(
                f"The RDB file contains module data I can't load: no matching module type '{name}' "
                f"(module id {mid:#x}, encoding version {encver})",
                module_id=mid, module_name=name,
            )
        io = ModuleLoadIO(buf, data_start, framed=True)
        mv.parsed = _call_module(lambda: mt.rdb_load(io, encver), name, mid)
        if io.pos != p - 1:
            raise RDBModuleError(
                f"The RDB file contains module data for the module type '{name}', that the "
                "responsible module is not able to load. Check for modules log above for additional "
                "clues.", module_id=mid, module_name=name,
            )
        return self.builder.module_value(t, mv), p

    def _v_module_pre_ga(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        mid, p = read_len(buf, p)
        name, encver = module_name(mid)
        mt = self.modules.get(name)
        if mt is None:
            raise RDBModuleError(
                f"The RDB file contains module data I can't load: no matching module type '{name}' "
                f"(module id {mid:#x}; pre-GA module values cannot be skipped)", module_id=mid, module_name=name,
            )
        io = ModuleLoadIO(buf, p, framed=False)
        parsed = _call_module(lambda: mt.rdb_load(io, encver), name, mid)
        return self.builder.module_value(t, ModuleValue(mid, name, encver, [], parsed)), io.pos

    def _v_zipmap(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        blob, at, p = self._blob(buf, p)
        pairs = self._decode(zipmap_decode, blob, at)
        return self.builder.hash_value(t, [x for fv in pairs for x in fv]), p

    def _v_list_ziplist(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        blob, at, p = self._blob(buf, p)
        return self.builder.list_value(t, [self._decode(ziplist_decode, blob, at)], None), p

    def _v_intset(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        blob, at, p = self._blob(buf, p)
        ints = self._decode(intset_decode, blob, at, False, self.deep)
        # A valid blob's width (a little-endian u32 of 2, 4 or 8) is its first byte.
        return self.builder.intset_value(t, ints, blob[0]), p

    def _v_zset_ziplist(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        blob, at, p = self._blob(buf, p)
        flat = self._decode(ziplist_decode, blob, at, False)
        members, scores = _zset_columns(flat, at)
        _check_unique(members, at)
        return self.builder.zset_value(t, members, scores), p

    def _v_hash_ziplist(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        blob, at, p = self._blob(buf, p)
        flat = self._decode(ziplist_decode, blob, at)
        if len(flat) & 1:
            raise Corrupt("hash container with an odd number of elements", at)
        _check_unique(flat[0::2], at)
        return self.builder.hash_value(t, flat), p

    def _v_hash_listpack(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        blob, q = read_blob(buf, p)
        try:
            flat = lp_decode(blob, True, self.deep)
        except RDBCorruptError as e:
            raise RDBCorruptError(e.message, offset=self._base + p) from None
        if len(flat) & 1:
            raise Corrupt("hash container with an odd number of elements", p)
        if self.deep:
            _check_unique(flat[0::2], p)
        return self.builder.hash_value(t, flat), q

    def _v_zset_listpack(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        blob, q = read_blob(buf, p)
        try:
            flat = lp_decode(blob, False, self.deep)
        except RDBCorruptError as e:
            raise RDBCorruptError(e.message, offset=self._base + p) from None
        members, scores = _zset_columns(flat, p)
        if self.deep:
            _check_unique(members, p)
        return self.builder.zset_value(t, members, scores), q

    def _v_set_listpack(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        out, q = self._lp(buf, p)
        if self.deep:
            _check_unique(out, p, "Set listpack with duplicate members")
        return self.builder.set_value(t, out), q

    def _v_quicklist(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        """Quicklist v1: a node count, then one ziplist per node."""
        count, p = read_len(buf, p)
        nodes: list[list[bytes]] = []
        for _ in range(count):
            blob, at, p = self._blob(buf, p)
            nodes.append(self._decode(ziplist_decode, blob, at))
        self._v_nodes = count
        return self.builder.list_value(t, nodes, None), p

    def _v_quicklist2(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        """Quicklist v2: a node count, then per node its container (PACKED
        listpack or PLAIN element) and the blob."""
        count, p = read_len(buf, p)
        n = len(buf)
        if count == 1 and p + 1 < n and buf[p] == C.QUICKLIST_NODE_PACKED:
            # One PACKED node: most lists of a dataset (8 KB of elements).
            at = p + 1
            blob, p = read_blob(buf, at)
            if not blob:
                raise Corrupt("empty quicklist node", at)
            try:
                els = lp_decode(blob, True, self.deep)
            except RDBCorruptError as e:
                raise RDBCorruptError(e.message, offset=self._base + at) from None
            self._v_nodes = 1
            return self.builder.list_value(t, [els], [len(blob)]), p
        nodes: list[list[bytes]] = []
        sizes: list[int] = []
        add_node = nodes.append
        add_size = sizes.append
        deep = self.deep
        for _ in range(count):
            cpos = p
            if p >= n:
                raise NeedMore(p + 1)
            container = buf[p]
            if container < 0x40:
                p += 1
            else:
                container, p = read_len(buf, p)
            at = p
            blob, p = read_blob(buf, p)
            if not blob:
                raise Corrupt("empty quicklist node", at)
            if container == C.QUICKLIST_NODE_PACKED:
                try:
                    add_node(lp_decode(blob, True, deep))
                except RDBCorruptError as e:
                    raise RDBCorruptError(e.message, offset=self._base + at) from None
                add_size(len(blob))
            elif container == C.QUICKLIST_NODE_PLAIN:
                add_node([blob])
                add_size(-1)
            else:
                raise Corrupt(f"Quicklist integrity check failed: unknown node container {container}", cpos)
        self._v_nodes = count
        return self.builder.list_value(t, nodes, sizes), p

    def _v_hash_metadata(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        """Hash with field TTLs in hashtable form (types 22 and 24)."""
        min_expire = 0
        if t == C.TYPE_HASH_METADATA:
            if p + 8 > len(buf):
                raise NeedMore(p + 8)
            min_expire = _I64.unpack_from(buf, p)[0]
            p += 8
        count, p = read_len(buf, p)
        flat: list[bytes] = []
        fexp: dict[bytes, int] = {}
        for _ in range(count):
            ttl, p = read_len(buf, p)
            f, p = read_str(buf, p)
            v, p = read_str(buf, p)
            flat.append(f)
            flat.append(v)
            if ttl:
                fexp[f] = ttl + min_expire - 1 if t == C.TYPE_HASH_METADATA else ttl
        if self.deep:
            _check_unique(flat[0::2], p)
        self._v_fexp = fexp
        return self.builder.hash_value(t, flat), p

    def _v_hash_listpack_ex(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        """Hash with field TTLs as a listpack of (field, value, ttl) triples
        (types 23 and 25)."""
        if t == C.TYPE_HASH_LISTPACK_EX:
            if p + 8 > len(buf):
                raise NeedMore(p + 8)
            p += 8  # the minimum expire time: derivable, not needed
        blob, at, p = self._blob(buf, p)
        triples = self._decode(lp_decode, blob, at, False, self.deep)
        if len(triples) % 3:
            raise Corrupt("hash listpack-ex with a number of elements not multiple of 3", at)
        flat: list[bytes] = []
        fexp: dict[bytes, int] = {}
        for i in range(0, len(triples), 3):
            f, v, ttl = triples[i], triples[i + 1], triples[i + 2]
            if type(f) is int:
                f = b"%d" % f
            if type(v) is int:
                v = b"%d" % v
            if type(ttl) is not int:
                raise Corrupt("hash listpack-ex TTL is not an integer", at)
            flat.append(f)
            flat.append(v)
            if ttl:
                fexp[f] = ttl
        if self.deep:
            _check_unique(flat[0::2], at)
        self._v_fexp = fexp
        return self.builder.hash_value(t, flat), p

    def _v_valkey_hash2(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        """Valkey's hash with field expiry (its type 22): a count, then per
        field its name, value and absolute expire time in ms (i64le, -1 =
        none)."""
        count, p = read_len(buf, p)
        n = len(buf)
        flat: list[bytes] = []
        fexp: dict[bytes, int] = {}
        for _ in range(count):
            f, p = read_str(buf, p)
            v, p = read_str(buf, p)
            if p + 8 > n:
                raise NeedMore(p + 8)
            when = _I64.unpack_from(buf, p)[0]
            if when < -1:
                raise Corrupt(f"invalid hash field expire time {when}", p)
            p += 8
            flat.append(f)
            flat.append(v)
            if when != -1:
                fexp[f] = when
        if self.deep:
            _check_unique(flat[0::2], p)
        self._v_fexp = fexp
        return self.builder.hash_value(t, flat), p

    # -- check-only parsers (check_only without deep_sanitize) -----------------------------
    #
    # What Redis's rdbLoadObject checks with deep sanitization off, without
    # decoding elements: a listpack's header (total bytes, terminator, element
    # count) and never its entries; duplicates where the loader adds members
    # one by one to a dict.  They return the element count.

    def _c_list(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        count, p = read_len(buf, p)
        return count, _skip_strings(buf, p, count)

    def _c_set(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        count, p = read_len(buf, p)
        members, p = self._strings(buf, p, count)
        _check_unique(members, p, "Duplicate set members detected")
        return count, p

    def _c_hash(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        count, p = read_len(buf, p)
        if count > (len(buf) - p) // 2 + 1:
            raise NeedMore(p + 2 * count)
        fields: list[bytes] = []
        add = fields.append
        try:
            for _ in range(count):
                b = buf[p]
                if b < 0x40:
                    q = p + 1 + b
                    add(buf[p + 1:q])
                    p = q
                else:
                    f, p = read_str(buf, p)
                    add(f)
                b = buf[p]  # the value: only its length matters here
                if b < 0x40:
                    p += 1 + b
                else:
                    _, p = read_str(buf, p)
        except IndexError:
            raise NeedMore(p + 1) from None
        if p > len(buf):
            raise NeedMore(p)
        _check_unique(fields, p, "Duplicate hash fields detected")
        return count, p

    def _s_hash(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        count, p = read_len(buf, p)
        return count, _skip_strings(buf, p, 2 * count)

    def _s_zset_binary(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        count, p = read_len(buf, p)
        n = len(buf)
        try:
            for _ in range(count):
                b = buf[p]
                if b < 0x40:
                    p += 9 + b  # the member and its 8-byte score
                else:
                    _, p = read_str(buf, p)
                    p += 8
        except IndexError:
            raise NeedMore(p + 1) from None
        if p > n:
            raise NeedMore(p)
        return count, p

    def _c_zset_binary(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        count, p = read_len(buf, p)
        n = len(buf)
        members: list[bytes] = []
        add = members.append
        unpack = _F64.unpack_from
        for _ in range(count):
            b = buf[p] if p < n else 0xFF
            if b < 0x40:
                q = p + 1 + b
                m = buf[p + 1:q]
                p = q
            else:
                m, p = read_str(buf, p)
            if p + 8 > n:
                raise NeedMore(p + 8)
            score = unpack(buf, p)[0]
            if score != score:
                raise Corrupt("Zset with NAN score detected", p)
            add(m)
            p += 8
        _check_unique(members, p, "Duplicate zset fields detected")
        return count, p

    def _c_pairs_listpack(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        """HASH_LISTPACK / ZSET_LISTPACK: the header, an even count."""
        blob, q = read_blob(buf, p)
        count = _lp_count(blob, p)
        if count & 1:
            raise Corrupt(f"{_KIND[t]} listpack with an odd number of elements", p)
        return count >> 1, q

    def _c_set_listpack(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        blob, q = read_blob(buf, p)
        return _lp_count(blob, p), q

    def _c_quicklist2(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        """Quicklist v2: every node's container and listpack header (empty
        listpack nodes are dropped by the loader; a list of only those is
        empty)."""
        count, p = read_len(buf, p)
        elements = 0
        for _ in range(count):
            cpos = p
            container, p = read_len(buf, p)
            at = p
            blob, p = read_blob(buf, p)
            if not blob:
                raise Corrupt("empty quicklist node", at)
            if container == C.QUICKLIST_NODE_PACKED:
                elements += _lp_count(blob, at)
            elif container == C.QUICKLIST_NODE_PLAIN:
                elements += 1
            else:
                raise Corrupt(f"Quicklist integrity check failed: unknown node container {container}", cpos)
        self._v_nodes = count
        return elements, p

    # -- streams ------------------------------------------------------------------------

    def _v_stream(self, t: int, buf: bytes, p: int) -> tuple[Any, int]:
        n = len(buf)
        nodes, p = read_len(buf, p)
        entries: list[StreamEntry] = []
        listpacks: list[tuple[bytes, bytes]] = []
        for _ in range(nodes):
            kpos = p
            nodekey, p = read_str(buf, p)
            if len(nodekey) != 16:
                raise Corrupt("Stream node key entry is not the size of a stream ID", kpos)
            blob, at, p = self._blob(buf, p)
            flat = self._decode(lp_decode, blob, at, True, self.deep)
            if not flat:
                raise Corrupt("Empty listpack inside stream", at)
            self._stream_node(nodekey, flat, at, entries)
            listpacks.append((nodekey, blob))
        length, p = read_len(buf, p)
        ms, p = read_len(buf, p)
        seq, p = read_len(buf, p)
        last_id = StreamID(ms, seq)
        if t >= C.TYPE_STREAM_LISTPACKS_2:
            ms, p = read_len(buf, p)
            seq, p = read_len(buf, p)
            first_id = StreamID(ms, seq)
            ms, p = read_len(buf, p)
            seq, p = read_len(buf, p)
            max_deleted = StreamID(ms, seq)
            entries_added, p = read_len(buf, p)
        else:
            # Type 15 predates these fields: derive them as Redis 7 does.
            first_id = entries[0].id if entries else STREAM_ID_MAX
            max_deleted = STREAM_ID_ZERO
            entries_added = length
        if length and not nodes:
            raise Corrupt("Stream length inconsistent with its (empty) listpack tree", p)
        s = Stream(entries, length, last_id, first_id, max_deleted, entries_added, [], nodes, listpacks)
        ngroups, p = read_len(buf, p)
        names: set[bytes] = set()
        for _ in range(ngroups):
            gpos = p
            gname, p = read_str(buf, p)
            if gname in names:
                raise Corrupt(f"Duplicated consumer group name {gname!r}", gpos)
            names.add(gname)
            ms, p = read_len(buf, p)
            seq, p = read_len(buf, p)
            glast = StreamID(ms, seq)
            if t >= C.TYPE_STREAM_LISTPACKS_2:
                er, p = read_len(buf, p)
                entries_read = er - (1 << 64) if er >= 1 << 63 else er
            else:
                entries_read = _estimate_entries_read(s, glast)
            npel, p = read_len(buf, p)
            if npel > (n - p) // 17 + 1:
                raise NeedMore(p + 17 * npel)
            pel: list[StreamNACK] = []
            owner: dict[StreamID, bytes | None] = {}
            for _ in range(npel):
                if p + 24 > n:
                    raise NeedMore(p + 24)
                nid = StreamID(*_ID128.unpack_from(buf, p))
                dtime = _I64.unpack_from(buf, p + 16)[0]
                dcount, p = read_len(buf, p + 24)
                if nid in owner:
                    raise Corrupt("Duplicated global PEL entry loading stream consumer group", p)
                owner[nid] = None
                pel.append(StreamNACK(nid, dtime, dcount))
            ncons, p = read_len(buf, p)
            consumers: list[StreamConsumer] = []
            cnames: set[bytes] = set()
            for _ in range(ncons):
                cpos = p
                cname, p = read_str(buf, p)
                if cname in cnames:
                    raise Corrupt(f"Duplicate stream consumer detected {cname!r}", cpos)
                cnames.add(cname)
                if p + 8 > n:
                    raise NeedMore(p + 8)
                seen = _I64.unpack_from(buf, p)[0]
                p += 8
                if t >= C.TYPE_STREAM_LISTPACKS_3:
                    if p + 8 > n:
                        raise NeedMore(p + 8)
                    active = _I64.unpack_from(buf, p)[0]
                    p += 8
                else:
                    active = seen
                cn, p = read_len(buf, p)
                if cn > (n - p) // 16 + 1:
                    raise NeedMore(p + 16 * cn)
                ids: list[StreamID] = []
                for _ in range(cn):
                    if p + 16 > n:
                        raise NeedMore(p + 16)
                    cid = StreamID(*_ID128.unpack_from(buf, p))
                    if cid not in owner:
                        raise Corrupt("Consumer entry not found in group global PEL", p)
                    if owner[cid] is not None:
                        raise Corrupt("Duplicated consumer PEL entry loading a stream consumer group", p)
                    owner[cid] = cname
                    ids.append(cid)
                    p += 16
                consumers.append(StreamConsumer(cname, seen, active, ids))
            if self.deep and any(v is None for v in owner.values()):
                raise Corrupt("Stream PEL entry without a consumer", p)
            s.groups.append(StreamGroup(gname, glast, entries_read, pel, consumers))
        self._v_nodes = nodes
        return self.builder.stream_value(t, s), p

    def _stream_node(self, nodekey: bytes, flat: list[bytes], at: int, entries: list[StreamEntry]) -> None:
        """Walk one stream listpack (spec §9.5), appending its live entries."""
        base_ms, base_seq = _ID128.unpack(nodekey)
        try:
            count = int(flat[0])
            deleted = int(flat[1])
            nfields = int(flat[2])
            master = flat[3:3 + nfields]
            i = 3 + nfields
            if len(master) != nfields or int(flat[i]) != 0:
                raise Corrupt("Stream listpack master entry is malformed", at)
            i += 1
            total = len(flat)
            live = dead = 0
            append = entries.append
            while i < total:
                flags = int(flat[i])
                msd = int(flat[i + 1])
                seqd = int(flat[i + 2])
                i += 3
                if flags & 2:
                    vals = flat[i:i + nfields]
                    if len(vals) != nfields:
                        raise Corrupt("Stream listpack entry is truncated", at)
                    fields = list(zip(master, vals, strict=True))
                    i += nfields
                    expect = nfields + 3
                else:
                    nf = int(flat[i])
                    i += 1
                    kv = flat[i:i + 2 * nf]
                    if len(kv) != 2 * nf:
                        raise Corrupt("Stream listpack entry is truncated", at)
                    it = iter(kv)
                    fields = list(zip(it, it, strict=True))
                    i += 2 * nf
                    expect = 2 * nf + 4
                if int(flat[i]) != expect:
                    raise Corrupt("Stream listpack entry has a wrong lp-count", at)
                i += 1
                if flags & 1:
                    dead += 1
                    continue
                live += 1
                append(StreamEntry(StreamID((base_ms + msd) & _MASK64, (base_seq + seqd) & _MASK64), fields))
        except (IndexError, ValueError):
            raise Corrupt("Stream listpack is malformed", at) from None
        if self.deep and (live != count or dead != deleted):
            raise Corrupt("Stream listpack master entry counts do not match its entries", at)


# -- helpers ----------------------------------------------------------------------------


_Add = Callable[[Any], None]


class _CheckValues(ValueBuilder):
    """The builder of ``check_only``: a value's element count."""

    __slots__ = ()

    def list_value(self, rdb_type: int, nodes: list[list[bytes]], sizes: list[int] | None) -> Any:
        return sum(map(len, nodes))

    def set_value(self, rdb_type: int, members: list[bytes]) -> Any:
        return len(members)

    def intset_value(self, rdb_type: int, ints: list[int], width: int) -> Any:
        return len(ints)

    def hash_value(self, rdb_type: int, flat: list[bytes]) -> Any:
        return len(flat) >> 1

    def zset_value(self, rdb_type: int, members: list[bytes], scores: list[float]) -> Any:
        return len(members)

    def stream_value(self, rdb_type: int, stream: Stream) -> Any:
        return stream.length

    def module_value(self, rdb_type: int, value: ModuleValue) -> Any:
        return 0


_CHECKED: Final = _CheckValues()
_LP_HDR: Final = struct.Struct("<IH")


def _skip_strings(buf: bytes, p: int, count: int) -> int:
    """The position after ``count`` RDB strings from ``p`` (LZF ones are
    decompressed: that is their check)."""
    try:
        for _ in range(count):
            b = buf[p]
            if b < 0x40:
                p += 1 + b
            else:
                _, p = read_str(buf, p)
    except IndexError:
        raise NeedMore(p + 1) from None
    if p > len(buf):
        raise NeedMore(p)
    return p


def _lp_count(blob: bytes, at: int) -> int:
    """A listpack's element count after Redis's shallow integrity check
    (lpValidateIntegrity with deep off: header size, total bytes,
    terminator); a count of 65535 ("too many to say") is found by walking."""
    n = len(blob)
    if n < 7:
        raise Corrupt("listpack shorter than its header", at)
    total, count = _LP_HDR.unpack_from(blob, 0)
    if total != n:
        raise Corrupt(f"listpack header says {total} bytes, blob has {n}", at)
    if blob[n - 1] != 0xFF:
        raise Corrupt("listpack does not end with 0xFF", at)
    if count == 65535:
        try:
            count = len(lp_decode(blob, True))
        except RDBCorruptError as e:
            raise Corrupt(e.message, at) from None
    return count


def _type_note(reader: RDBReader, t: int) -> str:
    """What an unknown type id is known to be, for the error message."""
    if reader.magic == "VALKEY" and t in C.VALKEY_TYPE_NAMES:
        return f" (Valkey {C.VALKEY_TYPE_NAMES[t]}, which this reader does not read)"
    return ""


def _open_batch(db: int, offset: int, append: Callable[[Event], None]
                ) -> tuple[KeyBatch, _Add, _Add, _Add, _Add, _Add]:
    """A new :class:`KeyBatch` appended to the events, with the appends of
    its keys, values, types, meta and skipped lists."""
    batch = KeyBatch(db, [], [], [], [], [], offset)
    append(batch)
    return (batch, batch.keys.append, batch.values.append, batch.types.append, batch.meta.append,
            batch.skipped.append)


def _parse_score(text: bytes, at: int) -> float:
    """A score stored as text (strtod semantics; what %.17g produced)."""
    try:
        if b"_" in text:
            raise ValueError
        v = float(text)
    except ValueError:
        raise Corrupt(f"invalid score {text!r}", at) from None
    if v != v:
        raise Corrupt("Zset with NAN score detected", at)
    return v


def _zset_columns(flat: list[Any], at: int) -> tuple[list[bytes], list[float]]:
    """Members and scores of a listpack/ziplist zset decoded with integers
    as ``int`` (member, score, member, score ...).  Integral scores are
    integer entries: small ones map straight to shared floats."""
    if len(flat) & 1:
        raise Corrupt("zset container with an odd number of elements", at)
    members = flat[0::2]
    raw = flat[1::2]
    try:
        scores = list(map(_SMALL_SCORES.__getitem__, raw))
    except KeyError:
        scores = [float(x) if type(x) is int else _parse_score(x, at) for x in raw]
    if int in map(type, members):  # a member that reads as an integer
        members = [b"%d" % m if type(m) is int else m for m in members]
    return members, scores


def _check_unique(items: list[bytes], at: int, message: str = "Duplicate fields/members detected") -> None:
    if len(set(items)) != len(items):
        raise Corrupt(message, at)


def _scan_module_items(buf: bytes, p: int) -> tuple[list[tuple[int, object]], int]:
    """Walk MODULE_2 framing up to and including the EOF sub-opcode."""
    items: list[tuple[int, object]] = []
    n = len(buf)
    while True:
        opos = p
        op, p = read_len(buf, p)
        if op == C.MODULE_OPCODE_EOF:
            return items, p
        if op == C.MODULE_OPCODE_SINT:
            v, p = read_len(buf, p)
            items.append((op, v - (1 << 64) if v >= 1 << 63 else v))
        elif op == C.MODULE_OPCODE_UINT:
            v, p = read_len(buf, p)
            items.append((op, v))
        elif op == C.MODULE_OPCODE_FLOAT:
            if p + 4 > n:
                raise NeedMore(p + 4)
            items.append((op, _F32.unpack_from(buf, p)[0]))
            p += 4
        elif op == C.MODULE_OPCODE_DOUBLE:
            if p + 8 > n:
                raise NeedMore(p + 8)
            items.append((op, _F64.unpack_from(buf, p)[0]))
            p += 8
        elif op == C.MODULE_OPCODE_STRING:
            s, p = read_str(buf, p)
            items.append((op, s))
        else:
            raise Corrupt(f"Unknown module opcode {op} in module value", opos)


def _call_module(fn: Callable[[], object], name: str, mid: int) -> object:
    """Run a module type's load callback; its own failures become
    RDBModuleError (NeedMore, Corrupt and RDBError pass through)."""
    try:
        return fn()
    except (NeedMore, Corrupt, RDBError):
        raise
    except Exception as e:  # noqa: BLE001 - a plug-in's failure must not escape unnamed
        raise RDBModuleError(
            f"module type '{name}' failed to load its data: {type(e).__name__}: {e}",
            module_id=mid, module_name=name,
        ) from e


def _shebang(code: bytes) -> tuple[str | None, str | None]:
    """(engine, library name) from ``#!<engine> name=<name> ...``."""
    if not code.startswith(b"#!"):
        return None, None
    line = code[2:].split(b"\n", 1)[0]
    parts = line.split()
    if not parts:
        return None, None
    engine = parts[0].decode("utf-8", "replace")
    name = None
    for part in parts[1:]:
        if part.startswith(b"name="):
            name = part[5:].decode("utf-8", "replace")
    return engine, name


def _estimate_entries_read(s: Stream, gid: StreamID) -> int:
    """A type-15 group's entries-read, estimated as Redis 7's
    streamEstimateDistanceFromFirstEverEntry does (-1 = unknown)."""
    if not s.entries_added:
        return 0
    if not s.length and gid <= s.last_id:
        return s.entries_added
    if gid == s.last_id:
        return s.entries_added
    if gid > s.last_id:
        return -1
    if s.max_deleted_id == STREAM_ID_ZERO or s.max_deleted_id < s.first_id:
        if gid < s.first_id:
            return s.entries_added - s.length
        if gid == s.first_id:
            return s.entries_added - s.length + 1
    return -1


# -- conveniences -------------------------------------------------------------------------


def iter_events(fileobj: IO[bytes], chunk_size: int = 1 << 20, **options: Any) -> Iterator[Event]:
    """Stream the events of an RDB held in a binary file object, reading
    ``chunk_size`` bytes at a time; stops reading once the dump ends."""
    if "total_size" not in options:
        options["total_size"] = _remaining_size(fileobj)
    reader = RDBReader(**options)
    read = fileobj.read
    while True:
        chunk = read(chunk_size)
        if not chunk:
            yield from reader.close()
            return
        yield from reader.feed(chunk)
        if reader.done:
            return


def _remaining_size(fileobj: IO[bytes]) -> int | None:
    """Bytes left in a regular file from its current position, else None."""
    try:
        st = os.fstat(fileobj.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        return st.st_size - fileobj.tell()
    except (OSError, AttributeError, ValueError):
        return None


def read_file(path: str | bytes | os.PathLike[str], chunk_size: int = 1 << 20, **options: Any) -> Iterator[Event]:
    """Stream the events of the RDB file at ``path``."""
    with open(path, "rb") as f:
        yield from iter_events(f, chunk_size, **options)


def read_bytes(data: bytes, **options: Any) -> list[Event]:
    """All events of an RDB held in memory (raises on truncation/corruption)."""
    reader = RDBReader(**options)
    events = list(reader.feed(data))
    events.extend(reader.close())
    return events


@dataclass(slots=True)
class DumpValue:
    """A value decoded from a DUMP payload (what RESTORE receives)."""

    type: str
    value: object
    rdb_type: int
    encoding: str
    rdb_version: int
    field_expires: dict[bytes, int] | None = None
    nodes: int | None = None


def load_dump_payload(
    payload: bytes,
    *,
    max_version: int = C.RDB_VERSION_MAX,
    verify_checksum: bool = True,
    modules: ModuleRegistry | None = None,
    unknown_modules: UnknownModules = "error",
    deep_sanitize: bool = False,
    builder: ValueBuilder | None = None,
    types: Collection[int] | None = None,
) -> DumpValue:
    """Decode a DUMP payload: ``type, value, u16 RDB version, u64 CRC-64``.

    Raises :class:`RDBVersionError` when the payload's version is newer than
    ``max_version``, :class:`RDBChecksumError` on a CRC mismatch (Redis 7.0
    answers both with "DUMP payload version or checksum are wrong") and
    :class:`RDBCorruptError` when the value does not decode ("Bad data
    format").  ``builder`` and ``types`` are :class:`RDBReader`'s."""
    payload = bytes(payload)
    if len(payload) < 10:
        raise RDBCorruptError("DUMP payload too short", offset=0)
    version = int.from_bytes(payload[-10:-8], "little")
    if version > max_version:
        raise RDBVersionError(f"DUMP payload RDB version {version} is newer than {max_version}",
                              offset=len(payload) - 10)
    if verify_checksum:
        crc = crc64(payload[:-8])
        if crc != int.from_bytes(payload[-8:], "little"):
            raise RDBChecksumError("DUMP payload checksum mismatch", offset=len(payload) - 8)
    body = payload[:-10]
    reader = RDBReader(verify_checksum=False, modules=modules, unknown_modules=unknown_modules,
                       deep_sanitize=deep_sanitize, builder=builder, types=types)
    reader.version = version
    t = body[0] if body else -1
    try:
        if t == 0:
            enc = string_encoding(body[1]) if len(body) > 1 else "raw"
            value: object
            value, _ = read_str(body, 1)
        else:
            parser = reader._parsers.get(t)
            if parser is None:
                raise Corrupt(f"Unknown RDB encoding type {t}", 0)
            enc = C.ENCODING_OF_TYPE[t]
            value, _ = parser(t, body, 1)
    except NeedMore:
        raise RDBCorruptError("DUMP payload value is truncated", offset=len(body)) from None
    except Corrupt as e:
        raise RDBCorruptError(e.message, offset=e.pos) from None
    except RDBError as e:
        if e.offset is None:
            e.offset = 0
        raise
    except _DATA_ERRORS as e:
        raise RDBCorruptError(f"invalid DUMP payload ({type(e).__name__}: {e})", offset=0) from None
    except Exception as e:
        if reader.builder is MODEL:
            raise
        raise RDBCorruptError(f"cannot build the {C.KIND_OF_TYPE.get(t, 'value')} value "
                              f"({type(e).__name__}: {e})", offset=0) from None
    return DumpValue(C.KIND_OF_TYPE[t], value, t, enc, version, reader._v_fexp, reader._v_nodes)


def events_of(chunks: Iterable[bytes], **options: Any) -> Iterator[Event]:
    """Events of an RDB given as an iterable of byte chunks."""
    reader = RDBReader(**options)
    for chunk in chunks:
        yield from reader.feed(chunk)
        if reader.done:
            return
    yield from reader.close()
