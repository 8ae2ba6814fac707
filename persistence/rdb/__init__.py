"""The RDB codec: a streaming sans-IO reader and a writer for Redis dump
files (RDB versions 1-12 read, 9-12 written; spec/rdb-format.md).  The
reader also takes Valkey 9's ``VALKEY080`` files when asked (``valkey=True``)
and can check a dump without building its values (``check_only=True``).

Reading::

    from ambry.persistence.rdb import read_file, Key
    for ev in read_file("dump.rdb"):
        if isinstance(ev, Key):
            print(ev.db, ev.key, ev.type, ev.encoding, ev.expire_ms)

or push bytes yourself (a socket, a RESTORE payload)::

    reader = RDBReader()
    for chunk in chunks:
        for ev in reader.feed(chunk):
            ...
    for ev in reader.close():   # raises RDBTruncatedError if incomplete
        ...

Writing::

    w = RDBWriter(version=10, options=EncodingOptions(hash_max_listpack_entries=128))
    out.write(w.header() + w.standard_aux(used_mem=n))
    out.write(w.select_db(0) + w.resize_db(len(keys), len(expires)))
    out.write(w.key(b"k", "string", b"v", expire_ms=None))
    out.write(w.eof())

The value model shared by both sides is described in :mod:`.model`.  A
loader with its own value types passes a :class:`ValueBuilder` (see
:mod:`.builder`) and, to load a whole dump fast, ``batch_keys=True``
(runs of keys come as :class:`KeyBatch` events)::

    reader = RDBReader(builder=MyValues(), batch_keys=True)
"""

from .builder import MODEL, ValueBuilder
from .constants import RDB_VERSION_DEFAULT, RDB_VERSION_MAX
from .errors import (
    RDBChecksumError,
    RDBCorruptError,
    RDBError,
    RDBModuleError,
    RDBSignatureError,
    RDBTruncatedError,
    RDBVersionError,
    RDBWriteError,
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
from .modules import ModuleLoadIO, ModuleRegistry, ModuleSaveIO, ModuleType, module_id, module_name
from .reader import DumpValue, RDBReader, events_of, iter_events, load_dump_payload, read_bytes, read_file
from .writer import EncodingOptions, RDBWriter, dump_payload, write_events, write_file

__all__ = [
    "RDB_VERSION_DEFAULT", "RDB_VERSION_MAX",
    "RDBError", "RDBCorruptError", "RDBTruncatedError", "RDBSignatureError", "RDBVersionError",
    "RDBChecksumError", "RDBModuleError", "RDBWriteError",
    "Event", "Header", "Aux", "SelectDB", "ResizeDB", "SlotInfo", "SlotImport", "FunctionLibrary", "ModuleAux",
    "Key", "KeyBatch", "End", "ValueBuilder", "MODEL",
    "Stream", "StreamEntry", "StreamGroup", "StreamConsumer", "StreamNACK", "StreamID",
    "STREAM_ID_ZERO", "STREAM_ID_MAX", "ModuleValue",
    "ModuleType", "ModuleRegistry", "ModuleLoadIO", "ModuleSaveIO", "module_id", "module_name",
    "RDBReader", "DumpValue", "read_file", "iter_events", "read_bytes", "events_of", "load_dump_payload",
    "RDBWriter", "EncodingOptions", "dump_payload", "write_events", "write_file",
]
