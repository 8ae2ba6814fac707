"""The AOF codec: Redis 7.0's multi-part append-only file, sans-IO
(spec/aof-format.md).

* :mod:`.manifest` -- the manifest grammar (:func:`parse_manifest`,
  :meth:`Manifest.to_bytes`), file naming (``<appendfilename>.<seq>.base.rdb|aof``,
  ``.<seq>.incr.aof``) and Redis's manifest edits (new base, new incr,
  rewritten incr files to history).
* :mod:`.parser` -- a streaming parser of the command stream
  (:class:`AOFParser`: RESP multibulk records, ``#`` annotations, format
  errors vs a truncated tail with the offset of the last complete record)
  and ``redis-check-aof``'s analysis (:func:`check_aof`).
* :mod:`.writer` -- commands as Redis writes them (:func:`encode_command`,
  :class:`AOFWriter` with SELECT and ``#TS`` framing) and the commands of a
  RESP-form rewrite (:class:`RewriteEmitter`).
* :mod:`.rdb_commands` -- an RDB's contents as the commands that rebuild
  them (:func:`key_commands`, :class:`RDBCommandStream`).
* :mod:`.source` -- what a tool's argument names (a directory, a manifest,
  one file: :func:`open_source`) and one file as a record stream, RDB part
  included (:class:`RecordReader`).
* :mod:`.check` -- redis-check-aof's verdict on a whole AOF, with the
  offsets a repair needs (:func:`check_path`).
* :mod:`.follow` -- following a live directory across rewrites
  (:class:`ManifestTracker`).

A base file that starts with ``REDIS`` is an RDB (:func:`is_rdb`): read it
with :class:`ambry.persistence.rdb.RDBReader`; for an old-style single-file
AOF the reader's ``unused_data`` (after its ``end_offset``) is the RESP tail
to feed to :class:`AOFParser` (with ``base_offset=end_offset``).

Reading a directory::

    am = parse_manifest(open("appendonlydir/appendonly.aof.manifest", "rb").read())
    for info in am.files():          # the base, then the incr files in order
        p = AOFParser()
        for ev in p.feed(open(f"appendonlydir/{info.name}", "rb").read()):
            if type(ev) is Command:
                print(ev.argv)
        p.close()
"""

from .check import Problem, Report, check_path, check_source
from .errors import AOFError, AOFFormatError, AOFTruncatedError, ManifestError
from .follow import FollowGap, ManifestTracker
from .manifest import (
    TYPE_BASE,
    TYPE_HIST,
    TYPE_INCR,
    AOFInfo,
    Manifest,
    base_name,
    incr_name,
    is_base_name,
    manifest_name,
    parse_manifest,
    temp_incr_name,
    temp_manifest_name,
)
from .parser import Annotation, AOFParser, CheckResult, Command, Event, check_aof
from .rdb_commands import RDBCommandStream, key_commands
from .source import AOFFile, AOFSource, AOFSourceError, RecordReader, open_source
from .writer import (
    ITEMS_PER_CMD,
    AOFWriter,
    RewriteEmitter,
    encode_command,
    select_command,
    timestamp_annotation,
)

#: The first bytes of an RDB (a preamble or an RDB-form base file).
RDB_MAGIC = b"REDIS"


def is_rdb(head: bytes) -> bool:
    """Whether a file starting with ``head`` is an RDB: Redis decides by its
    first five bytes, not by the file's extension."""
    return head[:5] == RDB_MAGIC


__all__ = [
    "AOFError", "AOFFormatError", "AOFTruncatedError", "ManifestError",
    "TYPE_BASE", "TYPE_HIST", "TYPE_INCR", "AOFInfo", "Manifest", "base_name", "incr_name", "is_base_name",
    "manifest_name", "parse_manifest", "temp_incr_name", "temp_manifest_name",
    "Annotation", "AOFParser", "CheckResult", "Command", "Event", "check_aof",
    "ITEMS_PER_CMD", "AOFWriter", "RewriteEmitter", "encode_command", "select_command", "timestamp_annotation",
    "RDB_MAGIC", "is_rdb",
    "RDBCommandStream", "key_commands", "AOFFile", "AOFSource", "AOFSourceError", "RecordReader", "open_source",
    "Problem", "Report", "check_path", "check_source", "FollowGap", "ManifestTracker",
]
