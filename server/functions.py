"""Redis Functions (functions.c, function_lua.c): libraries of Lua functions
loaded with FUNCTION LOAD, called with FCALL.

The functions engine has its own interpreter (``LuaVM`` in "function"
mode); a library body runs once at load time with only the restricted
``redis`` table resolvable, and registers callbacks that later run with the
full sandbox.  Runs share the EVAL run context, checks, conversions and
busy-script handling (``Scripting.run``).

Invariants:
* ``srv.function_libraries`` (library name -> code, what the RDB and AOF
  layers read and write) always mirrors the loaded libraries: it is a
  :class:`LibraryCodes`, whose writes from the persistence layer load the
  library and whose ``clear()`` drops them all;
* function names are one case-insensitive namespace; library names are
  case-sensitive; a failed LOAD/RESTORE leaves everything as it was.
"""

from __future__ import annotations

import re
import struct
import time
from typing import TYPE_CHECKING, Any

from ambry.persistence.rdb.encoding import crc64, enc_str, read_len, read_str

from .reply import Err, Map, SetReply, Status
from .scripting import (
    _FLAG_BY_NAME,
    FLAG_NAMES,
    LuaRaise,
    LuaVM,
    Scripting,
    lua_num2str,
)
from .util import string2ll, stringmatchlen

if TYPE_CHECKING:
    from .client import Client

LOAD_TIMEOUT_MS = 500
RDB_VERSION = 10  # the DUMP payload's version bytes (Redis 7.0)
_NAME_OK = re.compile(rb"[A-Za-z0-9_]+\Z")

ERR_NOT_FOUND = Err("ERR Function not found")
ERR_BAD_NUMKEYS = Err("ERR Bad number of keys provided")
_ERR_NAME = "Library names can only contain letters, numbers, or underscores(_) and must be at least one " \
            "character long"


class Function:
    """One registered function: its callback, flags and description."""

    __slots__ = ("name", "callback", "flags", "desc", "library")

    def __init__(self, name: bytes, callback: Any, flags: int, desc: bytes | None, library: Library) -> None:
        self.name = name
        self.callback = callback
        self.flags = flags
        self.desc = desc
        self.library = library


class Library:
    """One library: its code and its functions in registration order."""

    __slots__ = ("name", "code", "functions")

    def __init__(self, name: bytes, code: bytes) -> None:
        self.name = name
        self.code = code
        self.functions: dict[bytes, Function] = {}


class LibraryCodes(dict):  # type: ignore[type-arg]
    """``srv.function_libraries``: what the persistence layer sees.  A write
    (the RDB loader) loads the library through the engine, without the load
    timeout; ``clear()`` (DEBUG RELOAD, AOF reload) unloads everything."""

    def __init__(self, engine: FunctionsEngine, initial: dict[str, bytes] | None = None) -> None:
        super().__init__()
        self.engine = engine
        for code in (initial or {}).values():
            self.engine.create(code, replace=False, timeout=False)

    def __setitem__(self, name: str, code: bytes) -> None:
        from .rdb import LoadError

        try:
            self.engine.create(code, replace=True, timeout=False)
        except Err as e:
            msg = e.msg.decode("utf-8", "replace")
            raise LoadError([f"Failed loading library, {msg[4:] if msg.startswith('ERR ') else msg}"]) from None

    def clear(self) -> None:
        self.engine.flush()

    def _set(self, name: bytes, code: bytes) -> None:
        dict.__setitem__(self, name.decode("utf-8", "surrogateescape"), code)

    def _del(self, name: bytes) -> None:
        dict.pop(self, name.decode("utf-8", "surrogateescape"), None)

    def _clear(self) -> None:
        dict.clear(self)


class FunctionsEngine:
    """The libraries and functions of one server (functionsLibCtx)."""

    def __init__(self, sc: Scripting) -> None:
        self.sc = sc
        self.srv = sc.srv
        self.vm = LuaVM(sc, "function")
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, Function] = {}
        self.codes = LibraryCodes(self, getattr(self.srv, "function_libraries", None))
        self.srv.function_libraries = self.codes  # type: ignore[attr-defined]
        # the library whose body is running (redis.register_function)
        self.loading_lib: Library | None = None
        self.load_deadline: float | None = None

    # -- lookup --------------------------------------------------------------------

    def lookup(self, name: bytes) -> Function | None:
        return self.functions.get(name.lower())

    # -- loading ---------------------------------------------------------------------

    @staticmethod
    def parse_metadata(code: bytes) -> tuple[bytes, bytes]:
        """functionExtractLibMetaData: (engine, library name) from the ``#!`` line."""
        from .protocol import split_args

        if not code.startswith(b"#!"):
            raise Err("ERR Missing library metadata")
        ccode = code.split(b"\x00", 1)[0]
        end = ccode.find(b"\n")
        if end < 0:
            raise Err("ERR Invalid library metadata")
        parts = split_args(ccode[:end])
        if not parts:
            raise Err("ERR Invalid library metadata")
        engine = parts[0][2:]
        name: bytes | None = None
        for p in parts[1:]:
            if p[:5].lower() == b"name=":
                if name is not None:
                    raise Err("ERR Invalid metadata value, name argument was given multiple times")
                name = p[5:]
            else:
                raise Err(b"ERR Invalid metadata value given: " + p)
        if name is None:
            raise Err("ERR Library name was not given")
        return engine, name

    def create(self, code: bytes, replace: bool, timeout: bool) -> bytes:
        """functionsCreateWithLibraryCtx: compile and run a library body,
        then attach it; any failure leaves the existing libraries intact."""
        engine, name = self.parse_metadata(code)
        if not _NAME_OK.match(name):
            raise Err("ERR " + _ERR_NAME)
        if engine.upper() != b"LUA":
            raise Err(b"ERR Engine '" + engine + b"' not found")
        old = self.libraries.get(name)
        if old is not None and not replace:
            raise Err(b"ERR Library '" + name + b"' already exists")
        lib = self.compile_library(name, code, timeout)
        self._attach(lib, old)
        return name

    def compile_library(self, name: bytes, code: bytes, timeout: bool) -> Library:
        """Compile and run the body, collecting its functions (not attached yet)."""
        vm = self.vm
        nl = code.split(b"\x00", 1)[0].find(b"\n")
        func, err = vm.compile(code[nl:], b"@user_function")
        if func is None:
            raise Err(b"ERR Error compiling function: " + (err or b""))
        lib = Library(name, code)
        self.loading_lib = lib
        vm.loading = lib
        self.load_deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000 if timeout else None
        try:
            r = vm._run_load(func, True)
        finally:
            self.loading_lib = None
            vm.loading = None
            self.load_deadline = None
        if type(r) is tuple and r[0] is not True:
            raise Err(b"ERR Error registering functions: " + r[1])
        if not lib.functions:
            raise Err("ERR No functions registered")
        return lib

    def _attach(self, lib: Library, old: Library | None) -> None:
        """libraryJoin for one library: collisions with other libraries fail."""
        for fname in lib.functions:
            f = self.functions.get(fname.lower())
            if f is not None and f.library is not old:
                raise Err(b"ERR Function " + fname + b" already exists")
        if old is not None:
            self._detach(old)
        self.libraries[lib.name] = lib
        for fname, f in lib.functions.items():
            self.functions[fname.lower()] = f
        self.codes._set(lib.name, lib.code)

    def _detach(self, lib: Library) -> None:
        for fname in lib.functions:
            self.functions.pop(fname.lower(), None)
        self.libraries.pop(lib.name, None)
        self.codes._del(lib.name)

    def register_function(self, vm: LuaVM, args: tuple[Any, ...]) -> None:
        """redis.register_function (luaRegisterFunction), positional or named."""
        lib = self.loading_lib
        if lib is None:
            raise LuaRaise(b"ERR redis.register_function can only be called on FUNCTION LOAD command", True)
        name: bytes | None = None
        callback: Any = None
        flags = 0
        desc: bytes | None = None
        if len(args) == 1:
            t = args[0]
            if vm.typename(t) != b"table":
                _reg_error(b"calling redis.register_function with a single argument is only applicable to "
                           b"Lua table (representing named arguments).")
            for k, v in list(t.items()):
                if type(k) is int or type(k) is float:
                    k = lua_num2str(k)
                elif type(k) is not bytes:
                    _reg_error(b"named argument key given to redis.register_function is not a string")
                key = k.lower()
                if key == b"function_name":
                    name = _str_arg(v, b"function_name argument given to redis.register_function must be a "
                                       b"string")
                elif key == b"description":
                    desc = _str_arg(v, b"description argument given to redis.register_function must be a string")
                elif key == b"callback":
                    if vm.typename(v) != b"function":
                        _reg_error(b"callback argument given to redis.register_function must be a function")
                    callback = v
                elif key == b"flags":
                    flags = _flags_arg(vm, v)
                else:
                    _reg_error(b"unknown argument given to redis.register_function")
            if name is None:
                _reg_error(b"redis.register_function must get a function name argument")
            if callback is None:
                _reg_error(b"redis.register_function must get a callback argument")
        elif len(args) == 2:
            name = _str_arg(args[0], b"first argument to redis.register_function must be a string")
            if vm.typename(args[1]) != b"function":
                _reg_error(b"second argument to redis.register_function must be a function")
            callback = args[1]
        else:
            _reg_error(b"wrong number of arguments to redis.register_function")
        assert name is not None
        if not _NAME_OK.match(name):
            _reg_error(_ERR_NAME.encode())
        # Redis's own check is case-sensitive, which lets a library register
        # two names that collide in the case-insensitive namespace (and
        # crashes it later): refuse those too.
        if any(n.lower() == name.lower() for n in lib.functions):
            _reg_error(b"Function already exists in the library")
        lib.functions[name] = Function(name, callback, flags, desc, lib)

    # -- delete / flush ------------------------------------------------------------------

    def delete(self, name: bytes) -> None:
        lib = self.libraries.get(name)
        if lib is None:
            raise Err("ERR Library not found")
        self._detach(lib)

    def flush(self) -> None:
        self.libraries = {}
        self.functions = {}
        self.codes._clear()

    # -- dump / restore ------------------------------------------------------------------

    def dump(self) -> bytes:
        """FUNCTION DUMP: one FUNCTION2 record per library, version, CRC-64."""
        compress = bool(self.srv.cfg.rdbcompression)
        parts = [b"\xf5" + enc_str(lib.code, compress) for lib in self.libraries.values()]
        data = b"".join(parts) + struct.pack("<H", RDB_VERSION)
        return data + struct.pack("<Q", crc64(data))

    def restore(self, payload: bytes, policy: bytes) -> None:
        """FUNCTION RESTORE: build every library aside, then merge by policy."""
        if len(payload) < 10:
            raise Err("ERR DUMP payload version or checksum are wrong")
        version = struct.unpack("<H", payload[-10:-8])[0]
        crc = struct.unpack("<Q", payload[-8:])[0]
        if version > RDB_VERSION or crc64(payload[:-8]) != crc:
            raise Err("ERR DUMP payload version or checksum are wrong")
        codes: list[bytes] = []
        pos = 0
        end = len(payload) - 10
        while pos < end:
            t = payload[pos]
            pos += 1
            try:
                if t == 0xF5:
                    code, pos = read_str(payload[:end], pos)
                elif t == 0xF6:
                    # the 7.0 release-candidate record: name engine [desc] code
                    lname, pos = read_str(payload[:end], pos)
                    engine, pos = read_str(payload[:end], pos)
                    has_desc, pos = read_len(payload[:end], pos)
                    if has_desc:
                        _, pos = read_str(payload[:end], pos)
                    body, pos = read_str(payload[:end], pos)
                    code = b"#!" + engine + b" name=" + lname + b"\n" + body
                else:
                    raise Err("ERR given type is not a function")
            except Err:
                raise
            except Exception:
                raise Err("ERR Failed loading library payload") from None
            codes.append(bytes(code))
        # build aside (full LOAD path, no timeout), nothing attached yet
        scratch: dict[bytes, Library] = {}
        for code in codes:
            engine, name = self.parse_metadata(code)
            if not _NAME_OK.match(name):
                raise Err("ERR " + _ERR_NAME)
            if engine.upper() != b"LUA":
                raise Err(b"ERR Engine '" + engine + b"' not found")
            if name in scratch:
                raise Err(b"ERR Library '" + name + b"' already exists")
            scratch[name] = self.compile_library(name, code, timeout=False)
        if policy == b"FLUSH":
            self.flush()
            for lib in scratch.values():
                self._attach(lib, None)
            return
        fnames: dict[bytes, Library] = {}
        for lib in scratch.values():
            old = self.libraries.get(lib.name)
            if old is not None and policy == b"APPEND":
                raise Err(b"ERR Library " + lib.name + b" already exists")
            for fname in lib.functions:
                f = self.functions.get(fname.lower())
                if f is not None and f.library is not old:
                    raise Err(b"ERR Function " + fname + b" already exists")
                other = fnames.get(fname.lower())
                if other is not None and other is not lib:
                    raise Err(b"ERR Function " + fname + b" already exists")
                fnames[fname.lower()] = lib
        for lib in scratch.values():
            self._attach(lib, self.libraries.get(lib.name))

    # -- FCALL --------------------------------------------------------------------------

    def fcall(self, c: Client, argv: list[bytes], ro: bool) -> Any:
        """fcallCommandGeneric."""
        f = self.functions.get(argv[1].lower())
        if f is None:
            raise ERR_NOT_FOUND
        numkeys = string2ll(argv[2])
        if numkeys is None:
            raise ERR_BAD_NUMKEYS
        if numkeys > len(argv) - 3:
            raise Err("ERR Number of keys can't be greater than number of args")
        if numkeys < 0:
            raise Err("ERR Number of keys can't be negative")
        return self.sc.run(c, f.callback, f.flags, f.name, argv, numkeys, ro, False, self.vm)

    # -- introspection ------------------------------------------------------------------

    def list_reply(self, pattern: bytes | None, withcode: bool) -> list[Any]:
        out: list[Any] = []
        for lib in self.libraries.values():
            if pattern is not None and not stringmatchlen(pattern, lib.name, nocase=True):
                continue
            funcs = []
            for f in lib.functions.values():
                flags = SetReply(Status(name) for bit, name in FLAG_NAMES if f.flags & bit)
                funcs.append(Map([(b"name", f.name), (b"description", f.desc), (b"flags", flags)]))
            items: list[tuple[Any, Any]] = [(b"library_name", lib.name), (b"engine", b"LUA"),
                                            (b"functions", funcs)]
            if withcode:
                items.append((b"library_code", lib.code))
            out.append(Map(items))
        return out

    def stats_reply(self) -> Any:
        sc = self.sc
        ctx = sc.ctx
        running: Any = None
        if ctx is not None and not ctx.is_eval:
            running = Map([(b"name", ctx.name), (b"command", list(ctx.argv)),
                           (b"duration_ms", int((time.monotonic() - ctx.start) * 1000))])
        nfuncs = sum(len(lib.functions) for lib in self.libraries.values())
        return Map([(b"running_script", running),
                    (b"engines", Map([(b"LUA", Map([(b"libraries_count", len(self.libraries)),
                                                    (b"functions_count", nfuncs)]))]))])

    def load_timed_out(self) -> bool:
        d = self.load_deadline
        return d is not None and time.monotonic() > d


def _reg_error(text: bytes) -> None:
    raise LuaRaise(b"ERR " + text, True)


def _str_arg(v: Any, err: bytes) -> bytes:
    """A string, or a number converted as lua_tostring does."""
    if type(v) is bytes:
        return v
    if type(v) in (int, float) and type(v) is not bool:
        return lua_num2str(v)
    _reg_error(err)
    return b""


def _flags_arg(vm: LuaVM, v: Any) -> int:
    if vm.typename(v) != b"table":
        _reg_error(b"flags argument to redis.register_function must be a table representing function flags")
    flags = 0
    i = 1
    while True:
        x = vm.rawget(v, i)
        if x is None:
            break
        bit = _FLAG_BY_NAME.get(x.lower()) if type(x) is bytes else None
        if bit is None:
            _reg_error(b"unknown flag given")
        flags |= bit  # type: ignore[operator]
        i += 1
    return flags


def functions_of(srv: Any) -> FunctionsEngine:
    """The server's functions engine, created on first use."""
    sc = getattr(srv, "scripting", None)
    fe: FunctionsEngine | None = sc.functions if sc is not None else None
    if fe is not None:
        return fe
    from .scripting import scripting_of

    sc = scripting_of(srv)
    fe = sc.functions
    if fe is None:
        fe = FunctionsEngine(sc)
        sc.functions = fe
    return fe
