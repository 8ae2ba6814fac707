"""The neutral value model and the events of the RDB codec.

The reader turns a dump into these events and the writer turns them back
into bytes, so a dump can be read, filtered and rewritten without either side
knowing about the server's in-memory classes.

Values (``Key.value``) by ``Key.type``, as the reader's default value
builder gives them (a program may pass its own, see :mod:`.builder`):

* ``"string"``  -- ``bytes``.  Integer-encoded strings (RDB INT8/16/32) are the
  bytes of their decimal text; ``Key.encoding == "int"`` records that they
  were stored as integers (``"lzf"`` for LZF-compressed, ``"raw"`` otherwise).
* ``"list"``    -- ``list[bytes]``, head to tail.
* ``"set"``     -- ``list[bytes]`` (file order; members are unique in a valid
  dump).
* ``"zset"``    -- ``list[tuple[bytes, float]]`` as (member, score), in file
  order: ascending for listpack/ziplist encodings, descending for the
  skiplist (ZSET_2) form Redis writes.  Do not rely on either.
* ``"hash"``    -- ``list[tuple[bytes, bytes]]`` as (field, value).  For the
  7.4 hash-field-expiration types (22-25) ``Key.field_expires`` maps each
  field that has a TTL to its absolute unix time in milliseconds.
* ``"stream"``  -- a :class:`Stream`.
* ``"module"``  -- a :class:`ModuleValue`.

Integer elements of listpacks, ziplists and intsets are always given as the
bytes of their decimal text, the same way Redis answers them.

Every event carries ``offset``, the position of its first byte in the input,
so tools can point at a record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .constants import ENCODING_OF_TYPE, KIND_OF_TYPE


class StreamID(NamedTuple):
    """A stream entry ID; orders like Redis's streamCompareID."""

    ms: int
    seq: int

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"

    @classmethod
    def parse(cls, text: str | bytes) -> StreamID:
        """``"1000-1"`` -> StreamID(1000, 1) (a missing sequence means 0)."""
        s = text.decode() if isinstance(text, bytes) else text
        ms, _, seq = s.partition("-")
        return cls(int(ms), int(seq or 0))


STREAM_ID_ZERO = StreamID(0, 0)
STREAM_ID_MAX = StreamID(2**64 - 1, 2**64 - 1)


@dataclass(slots=True)
class StreamEntry:
    """One live stream entry: its ID and (field, value) pairs in order."""

    id: StreamID
    fields: list[tuple[bytes, bytes]]


@dataclass(slots=True)
class StreamNACK:
    """An entry of a consumer group's pending entries list (PEL)."""

    id: StreamID
    delivery_time: int  # unix ms of the last delivery
    delivery_count: int


@dataclass(slots=True)
class StreamConsumer:
    """A consumer of a group; ``pel`` lists the IDs it owns (each must be in
    the group PEL).  ``active_time`` is stored from RDB type 21 on; older types
    load it as ``seen_time`` (what Redis does)."""

    name: bytes
    seen_time: int
    active_time: int
    pel: list[StreamID] = field(default_factory=list)


@dataclass(slots=True)
class StreamGroup:
    """A consumer group.  ``entries_read`` is -1 when unknown (stored as
    2**64-1; estimated from the last-delivered ID for type-15 streams)."""

    name: bytes
    last_id: StreamID
    entries_read: int
    pel: list[StreamNACK] = field(default_factory=list)
    consumers: list[StreamConsumer] = field(default_factory=list)


@dataclass(slots=True)
class Stream:
    """A stream's live entries and metadata, as RDB types 15/19/21 hold them.

    ``nodes`` is the number of listpacks the stream was stored in (0 for a
    stream built by hand).  ``listpacks`` keeps those nodes as the file had
    them, (16-byte big-endian master ID, listpack bytes) pairs with their
    XDEL/XTRIM tombstones, for a loader that holds streams the way Redis
    does (None for a stream built by hand; not part of equality).  The
    writer always re-packs ``entries`` itself."""

    entries: list[StreamEntry] = field(default_factory=list)
    length: int = 0
    last_id: StreamID = STREAM_ID_ZERO
    first_id: StreamID = STREAM_ID_ZERO
    max_deleted_id: StreamID = STREAM_ID_ZERO
    entries_added: int = 0
    groups: list[StreamGroup] = field(default_factory=list)
    nodes: int = 0
    listpacks: list[tuple[bytes, bytes]] | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class ModuleValue:
    """A module value (type 6/7) or module aux payload.

    ``module_id`` packs the 9-character type name and the 10-bit encoding
    version.  ``items`` is the self-describing MODULE_2 framing as
    (sub-opcode, value) pairs -- 1 signed int, 2 unsigned int, 3 float,
    4 double, 5 bytes -- which is enough to write the value back verbatim.
    ``parsed`` is what a registered :class:`~.modules.ModuleType` returned
    (None when the type was not registered and the reader kept it raw)."""

    module_id: int
    name: str
    encver: int
    items: list[tuple[int, object]] = field(default_factory=list)
    parsed: object = None


# -- events -------------------------------------------------------------------------


@dataclass(slots=True)
class Header:
    """The first event of every dump: ``REDIS`` + four digits, or, in a
    Valkey 9+ file (read only when the reader is asked to), ``VALKEY`` +
    three digits (``VALKEY080``); ``magic`` says which."""

    version: int
    offset: int = 0
    magic: str = "REDIS"


@dataclass(slots=True)
class Aux:
    """An AUX field (opcode 250), e.g. ``redis-ver`` / ``7.0.15``."""

    key: bytes
    value: bytes
    offset: int = 0


@dataclass(slots=True)
class SelectDB:
    """SELECTDB (254): the following keys belong to database ``db``."""

    db: int
    offset: int = 0


@dataclass(slots=True)
class ResizeDB:
    """RESIZEDB (251): size hints for the current database."""

    db_size: int
    expires_size: int
    offset: int = 0


@dataclass(slots=True)
class SlotInfo:
    """SLOT_INFO (244, RDB 12 cluster mode): size hints for a hash slot."""

    slot: int
    slot_size: int
    expires_slot_size: int
    offset: int = 0


@dataclass(slots=True)
class SlotImport:
    """SLOT_IMPORT (243, Valkey 9+ files only): an atomic slot migration
    that was importing ``ranges`` (inclusive (start, end) slot pairs) under
    the job ``job_name`` when the snapshot was taken."""

    job_name: bytes
    ranges: list[tuple[int, int]]
    offset: int = 0


@dataclass(slots=True)
class FunctionLibrary:
    """A function library: FUNCTION2 (245) holds the source code; the 7.0
    release-candidate opcode (246) is converted to the same source form
    (``#!<engine> name=<name>\\n<body>``), as Redis 7.0 does.  ``engine`` and
    ``name`` are parsed from the shebang line when it is well formed."""

    code: bytes
    engine: str | None = None
    name: str | None = None
    pre_ga: bool = False
    offset: int = 0


@dataclass(slots=True)
class ModuleAux:
    """MODULE_AUX (247): global data of a module; ``when`` is 1 (written
    before the keyspace) or 2 (after)."""

    value: ModuleValue
    when: int
    offset: int = 0


@dataclass(slots=True)
class Key:
    """A key record: the key, its value (see the module docstring), its
    expiry (absolute unix ms or None), LRU idle seconds / LFU counter when the
    file had them, and how it was stored: ``rdb_type`` (the type byte) and
    ``encoding`` (OBJECT ENCODING vocabulary of the *serialized* form, e.g.
    ``ziplist`` for a type-10 list).  ``nodes`` is the quicklist node / stream
    listpack count for those types.  ``offset`` is the type byte's position and
    ``size`` the bytes from it to the end of the value."""

    db: int
    key: bytes
    type: str
    value: object
    expire_ms: int | None = None
    lru_idle: int | None = None
    lfu_freq: int | None = None
    field_expires: dict[bytes, int] | None = None
    rdb_type: int = -1
    encoding: str = ""
    nodes: int | None = None
    offset: int = 0
    size: int = 0


@dataclass(slots=True)
class KeyBatch:
    """Consecutive key records of database ``db``, as the reader delivers
    them with ``batch_keys=True`` (one batch per run of keys between other
    events, at most one per :meth:`~.reader.RDBReader.feed`).

    ``keys``, ``values`` and ``types`` (the RDB type ids) are parallel lists.
    Expiry, LRU and LFU are rare enough to be kept apart: ``meta`` lists
    ``(index, expire_ms, lru_idle, lfu_freq)`` for the keys that had any.
    ``skipped`` are the keys whose builder returned None (see
    :mod:`.builder`); they are in no other list.  ``offset`` is the
    position of the first record.  Loading a dump this way costs a list
    append per key instead of an event object.

    Read with ``check_only`` (values are element counts), ``sizes`` gives
    each key's record size (Key.size) and ``encodings`` the (index,
    encoding) of the strings not stored ``raw`` (``int``, ``lzf``); both
    stay empty otherwise."""

    db: int
    keys: list[bytes]
    values: list[object]
    types: list[int]
    meta: list[tuple[int, int | None, int | None, int | None]] = field(default_factory=list)
    skipped: list[bytes] = field(default_factory=list)
    offset: int = 0
    sizes: list[int] = field(default_factory=list)
    encodings: list[tuple[int, str]] = field(default_factory=list)


@dataclass(slots=True)
class End:
    """EOF (255) and the checksum: ``checksum`` is the stored CRC-64 (None for
    RDB < 5; 0 means the writer disabled it), ``computed`` is the CRC the
    reader computed over the data (None when verification is off)."""

    checksum: int | None
    computed: int | None = None
    offset: int = 0


Event = (Header | Aux | SelectDB | ResizeDB | SlotInfo | SlotImport | FunctionLibrary | ModuleAux | Key | KeyBatch
         | End)


def kind_of_type(rdb_type: int) -> str:
    """The logical kind (``"hash"`` ...) of an RDB type id."""
    return KIND_OF_TYPE[rdb_type]


def encoding_of_type(rdb_type: int) -> str:
    """The OBJECT-ENCODING-style name of an RDB type id's serialized form."""
    return ENCODING_OF_TYPE[rdb_type]
