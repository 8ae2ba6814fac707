"""RDB opcodes, object type ids and their names (spec/rdb-format.md §5, §7).

Names follow Redis's ``RDB_TYPE_*`` / ``RDB_OPCODE_*`` constants without the
prefix so a Redis engineer recognises them in tool output.
"""

from __future__ import annotations

from typing import Final, Literal

# -- object types (the byte before a key) ----------------------------------------

TYPE_STRING: Final = 0
TYPE_LIST: Final = 1
TYPE_SET: Final = 2
TYPE_ZSET: Final = 3
TYPE_HASH: Final = 4
TYPE_ZSET_2: Final = 5
TYPE_MODULE_PRE_GA: Final = 6
TYPE_MODULE_2: Final = 7
TYPE_HASH_ZIPMAP: Final = 9
TYPE_LIST_ZIPLIST: Final = 10
TYPE_SET_INTSET: Final = 11
TYPE_ZSET_ZIPLIST: Final = 12
TYPE_HASH_ZIPLIST: Final = 13
TYPE_LIST_QUICKLIST: Final = 14
TYPE_STREAM_LISTPACKS: Final = 15
TYPE_HASH_LISTPACK: Final = 16
TYPE_ZSET_LISTPACK: Final = 17
TYPE_LIST_QUICKLIST_2: Final = 18
TYPE_STREAM_LISTPACKS_2: Final = 19
TYPE_SET_LISTPACK: Final = 20
TYPE_STREAM_LISTPACKS_3: Final = 21
TYPE_HASH_METADATA_PRE_GA: Final = 22
TYPE_HASH_LISTPACK_EX_PRE_GA: Final = 23
TYPE_HASH_METADATA: Final = 24
TYPE_HASH_LISTPACK_EX: Final = 25

# -- opcodes ----------------------------------------------------------------------

OP_SLOT_IMPORT: Final = 243  # Valkey 9+ files only
OP_SLOT_INFO: Final = 244
OP_FUNCTION2: Final = 245
OP_FUNCTION_PRE_GA: Final = 246
OP_MODULE_AUX: Final = 247
OP_IDLE: Final = 248
OP_FREQ: Final = 249
OP_AUX: Final = 250
OP_RESIZEDB: Final = 251
OP_EXPIRETIME_MS: Final = 252
OP_EXPIRETIME: Final = 253
OP_SELECTDB: Final = 254
OP_EOF: Final = 255

# -- module value framing (MODULE_2 sub-opcodes) ---------------------------------

MODULE_OPCODE_EOF: Final = 0
MODULE_OPCODE_SINT: Final = 1
MODULE_OPCODE_UINT: Final = 2
MODULE_OPCODE_FLOAT: Final = 3
MODULE_OPCODE_DOUBLE: Final = 4
MODULE_OPCODE_STRING: Final = 5

# -- quicklist v2 node containers -------------------------------------------------

QUICKLIST_NODE_PLAIN: Final = 1
QUICKLIST_NODE_PACKED: Final = 2

# -- Valkey 9+ files (``VALKEY`` + three digits) -----------------------------------
#
# Valkey 9 left Redis's numbering: its files say ``VALKEY080`` (RDB 80; 12-79
# are reserved for formats it does not read), and type ids from 22 on mean
# Valkey's own types, not Redis 7.4's.

#: Valkey's hash with per-field expiry: ``LEN n``, then n x (STR field, STR
#: value, i64le expire ms, -1 = none).
TYPE_VALKEY_HASH_2: Final = 22
#: Valkey 9.2's path hash (RDB 81): recognised by id, its layout is not read.
TYPE_VALKEY_PATH_HASH: Final = 23
#: The Valkey RDB versions this codec reads (Valkey 9.0 writes 80, 9.2 81).
VALKEY_VERSION_MIN: Final = 80
VALKEY_VERSION_MAX: Final = 81
#: Valkey's name of its own type ids (``RDB_TYPE_<name>``).
VALKEY_TYPE_NAMES: Final[dict[int, str]] = {22: "HASH_2", 23: "PATH_HASH"}

#: The newest RDB version this codec reads (Redis 7.4).
RDB_VERSION_MAX: Final = 12
#: What the writer emits unless told otherwise: Redis 7.0 loads it.
RDB_VERSION_DEFAULT: Final = 10

# -- logical kinds of values ------------------------------------------------------

Kind = Literal["string", "list", "set", "zset", "hash", "stream", "module"]

STRING: Final = "string"
LIST: Final = "list"
SET: Final = "set"
ZSET: Final = "zset"
HASH: Final = "hash"
STREAM: Final = "stream"
MODULE: Final = "module"

#: Redis's name of each type id (``RDB_TYPE_<name>``).
TYPE_NAMES: Final[dict[int, str]] = {
    0: "STRING", 1: "LIST", 2: "SET", 3: "ZSET", 4: "HASH", 5: "ZSET_2",
    6: "MODULE_PRE_GA", 7: "MODULE_2", 9: "HASH_ZIPMAP", 10: "LIST_ZIPLIST",
    11: "SET_INTSET", 12: "ZSET_ZIPLIST", 13: "HASH_ZIPLIST", 14: "LIST_QUICKLIST",
    15: "STREAM_LISTPACKS", 16: "HASH_LISTPACK", 17: "ZSET_LISTPACK",
    18: "LIST_QUICKLIST_2", 19: "STREAM_LISTPACKS_2", 20: "SET_LISTPACK",
    21: "STREAM_LISTPACKS_3", 22: "HASH_METADATA_PRE_GA", 23: "HASH_LISTPACK_EX_PRE_GA",
    24: "HASH_METADATA", 25: "HASH_LISTPACK_EX",
}

#: Redis's name of each opcode (``RDB_OPCODE_<name>``).
OPCODE_NAMES: Final[dict[int, str]] = {
    244: "SLOT_INFO", 245: "FUNCTION2", 246: "FUNCTION_PRE_GA", 247: "MODULE_AUX",
    248: "IDLE", 249: "FREQ", 250: "AUX", 251: "RESIZEDB", 252: "EXPIRETIME_MS",
    253: "EXPIRETIME", 254: "SELECTDB", 255: "EOF",
}

#: The logical kind (what ``TYPE`` answers) of each type id.
KIND_OF_TYPE: Final[dict[int, str]] = {
    0: STRING, 1: LIST, 2: SET, 3: ZSET, 4: HASH, 5: ZSET, 6: MODULE, 7: MODULE,
    9: HASH, 10: LIST, 11: SET, 12: ZSET, 13: HASH, 14: LIST, 15: STREAM, 16: HASH,
    17: ZSET, 18: LIST, 19: STREAM, 20: SET, 21: STREAM, 22: HASH, 23: HASH, 24: HASH, 25: HASH,
}

#: The serialized encoding of each type id, in OBJECT ENCODING vocabulary
#: (strings are refined to int / raw / lzf by the reader).
ENCODING_OF_TYPE: Final[dict[int, str]] = {
    0: "raw", 1: "linkedlist", 2: "hashtable", 3: "skiplist", 4: "hashtable", 5: "skiplist",
    6: "module", 7: "module", 9: "zipmap", 10: "ziplist", 11: "intset", 12: "ziplist",
    13: "ziplist", 14: "quicklist", 15: "stream", 16: "listpack", 17: "listpack",
    18: "quicklist", 19: "stream", 20: "listpack", 21: "stream", 22: "hashtable",
    23: "listpackex", 24: "hashtable", 25: "listpackex",
}

#: The first RDB version in which each type id exists.
MIN_VERSION_OF_TYPE: Final[dict[int, int]] = {
    0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 8, 6: 8, 7: 8, 9: 2, 10: 2, 11: 2, 12: 2, 13: 4,
    14: 7, 15: 9, 16: 10, 17: 10, 18: 10, 19: 10, 20: 11, 21: 11, 22: 12, 23: 12, 24: 12, 25: 12,
}
