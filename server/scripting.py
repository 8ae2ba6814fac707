"""Lua scripting: the EVAL engine (eval.c, script.c, script_lua.c).

One ``lupa.lua51`` runtime per engine, binary safe (``encoding=None``),
sandboxed as Redis 7.0 sandboxes its interpreter (the Lua half is in
``scripting_lua.py``).  ``redis.call`` enters the server through
``Server.call`` with a dedicated internal client (``is_script``), after the
checks of Redis's scriptCall in its order; the commands' effects collect in
the EVAL's execution unit, which the one path for effects emits bare (one
write) or wrapped in MULTI/EXEC (two or more); EVAL itself never propagates.

Invariants:
* runs never overlap: ``Scripting.ctx`` is the one running script (EVAL or
  FCALL), None otherwise;
* no Python exception ever crosses into Lua except :class:`LuaRaise` (and
  then only as an error value that every Lua catch point translates back);
  no Python object but the API callables is reachable from a script, and
  attribute access on those is refused;
* the rand48 state of ``math.random`` is process-global, as in Redis 7.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import TYPE_CHECKING, Any

import lupa.lua51 as lupa

from . import registry, scripting_libs
from .client import Client
from .reply import NULL_ARRAY, BigNumber, Bool, Err, Map, Raw, SetReply, Status, Verbatim, format_double
from .scripting_lua import ERR_HANDLER_DEF, INTERNAL_CHUNK, PRELUDE
from .util import string2ll

if TYPE_CHECKING:
    from .core import Server

VERSION = b"7.0.15"
VERSION_NUM = 0x0007000F

# Lua's own allocations are capped so that a memory bomb (string.rep,
# runaway tables) ends in "not enough memory" instead of the OOM killer.
# Allocations made from Python (tables and strings handed to a script) are
# not protected calls in lupa: one failing would unwind through Python
# frames, so every such allocation is checked against the cap first
# (LuaVM.room) and the script gets the "not enough memory" error instead.
LUA_MAX_MEMORY = 1 << 30
_ROOM_SLACK = 1 << 20

ERR_NOSCRIPT = Err("NOSCRIPT No matching script. Please use EVAL.")
ERR_NOT_INT = Err("ERR value is not an integer or out of range")
ERR_KEYS_GT = Err("ERR Number of keys can't be greater than number of args")
ERR_KEYS_NEG = Err("ERR Number of keys can't be negative")
ERR_RO_WRITE_FLAG = Err("ERR Can not execute a script with write flag using *_ro command.")
ERR_BUSY_EVAL = Err("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
ERR_BUSY_FUNCTION = Err("BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.")
ERR_NOTBUSY = Err("NOTBUSY No scripts in execution right now.")
ERR_UNKILLABLE_MASTER = Err("UNKILLABLE The busy script was sent by a master instance in the context of "
                            "replication and cannot be killed.")
ERR_UNKILLABLE_DIRTY = Err("UNKILLABLE Sorry the script already executed write commands against the dataset. "
                           "You can either wait the script termination or kill the server in a hard way using "
                           "the SHUTDOWN NOSAVE command.")
ERR_OOM = b"OOM command not allowed when used memory > 'maxmemory'."
ERR_READONLY = b"READONLY You can't write against a read only replica."

# script flags (script.h)
FLAG_NO_WRITES = 1 << 0
FLAG_ALLOW_OOM = 1 << 1
FLAG_ALLOW_STALE = 1 << 2
FLAG_NO_CLUSTER = 1 << 3
FLAG_EVAL_COMPAT_MODE = 1 << 4
FLAG_ALLOW_CROSS_SLOT = 1 << 5
FLAG_NAMES = [(FLAG_NO_WRITES, b"no-writes"), (FLAG_ALLOW_OOM, b"allow-oom"), (FLAG_ALLOW_STALE, b"allow-stale"),
              (FLAG_NO_CLUSTER, b"no-cluster"), (FLAG_ALLOW_CROSS_SLOT, b"allow-cross-slot-keys")]
_FLAG_BY_NAME = {name: bit for bit, name in FLAG_NAMES}

# redis.set_repl targets (PROPAGATE_AOF / PROPAGATE_REPL)
REPL_ALL = 3

_CALL_ERR_NO_ARGS = b"ERR Please specify at least one argument for this redis lib call"
_CALL_ERR_ARG_TYPE = b"ERR Lua redis lib command arguments must be strings or integers"


class NoStatsErr(Err):
    """An error reply already counted in the error statistics (a command
    error re-raised by the script): ERR_REPLY_FLAG_NO_STATS_UPDATE.  Being a
    subclass, ``call()`` leaves it alone; the script's command counts it as
    failed itself."""


class LuaRaise(Exception):
    """A Lua error raised from a Python callable: ``msg`` raised as a string,
    or as the error table ``{err=msg}`` (with Redis's marker that the error
    was already counted when ``ignore``)."""

    def __init__(self, msg: bytes, table: bool = False, ignore: bool = False) -> None:
        super().__init__(msg)
        self.msg = msg
        self.table = table
        self.ignore = ignore


class PyFn:
    """A Python callable handed to Lua.  To Lua it is a C function (the
    caller's frame survives a tail call); ``tostring`` shows it like one."""

    __slots__ = ("fn",)

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def __str__(self) -> str:
        return "function: 0x%012x" % (id(self) & 0xFFFFFFFFFFFF)


class Trampoline(PyFn):
    """A base function that must know the proxies, implemented in Lua (see
    scripting_lua.py) and called through Python so that it is a C function
    to the script: the implementation answers (true, results...) or
    (false, message), and the message is raised from here."""

    __slots__ = ("impl",)

    def __init__(self) -> None:
        super().__init__(None)
        self.impl: Any = None

    def __call__(self, *args: Any) -> Any:
        r = self.impl(*args)
        if type(r) is tuple:
            if r[0] is True:
                return r[1] if len(r) == 2 else r[1:]
            raise LuaRaise(r[1])
        if r is True:
            return None
        raise LuaRaise(b"internal error")


class RedisCall(PyFn):
    """redis.call, the hot path of every script: LuaVM._call without the
    extra Python frame of a plain PyFn."""

    __slots__ = ("vm",)

    def __init__(self, vm: LuaVM) -> None:
        super().__init__(vm._call)
        self.vm = vm

    def __call__(self, *args: Any) -> Any:
        vm = self.vm
        sc = vm.sc
        ctx = sc.ctx
        if ctx is None or not args:
            return vm._call(*args)
        for a in args:
            if type(a) is not bytes:
                return vm._call(*args)
        reply = sc.script_call(ctx, list(args))
        t = type(reply)
        if t is int or (t is bytes and len(reply) <= 65536):
            return reply
        return vm._call_reply(ctx, reply)


def _deny_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    """lupa's attribute filter: scripts never reach Python attributes."""
    raise AttributeError("access denied")


# -- math.random: Redis's rand48 (rand.c), process-global ------------------------------

_RAND48 = [0x1234ABCD330E]
_MASK48 = (1 << 48) - 1


def lrand48() -> int:
    """redisLrand48: x <- (0x5DEECE66D * x + 0xB) mod 2^48, 31 high bits out."""
    x = (0x5DEECE66D * _RAND48[0] + 0xB) & _MASK48
    _RAND48[0] = x
    return x >> 17


def srand48(seed: int) -> None:
    """redisSrand48: the high 32 bits are the seed, the low 16 bits 0x330E."""
    _RAND48[0] = ((seed & 0xFFFFFFFF) << 16) | 0x330E


# -- number formatting -----------------------------------------------------------------


def fmt17(v: float | int) -> bytes:
    """A Lua number as a command argument: C's ``%.17g`` (7.0)."""
    if type(v) is int and -100000000000000000 < v < 100000000000000000:
        return b"%d" % v
    v = float(v)
    if v != v:
        return b"-nan" if math.copysign(1.0, v) < 0 else b"nan"
    if v in (math.inf, -math.inf):
        return b"inf" if v > 0 else b"-inf"
    return b"%.17g" % v


def lua_num2str(v: float | int) -> bytes:
    """Lua 5.1's number to string (``%.14g``), as lua_tolstring converts."""
    if type(v) is int and -100000000000000 < v < 100000000000000:
        return b"%d" % v
    v = float(v)
    if v != v:
        return b"-nan" if math.copysign(1.0, v) < 0 else b"nan"
    if v in (math.inf, -math.inf):
        return b"inf" if v > 0 else b"-inf"
    return b"%.14g" % v


def lua_toint(v: float | int) -> int:
    """luaL_checkint's conversion: a C cast to a 64-bit integer (NaN and out
    of range give INT64_MIN on x86-64), then to a 32-bit int."""
    if type(v) is not int:
        if v != v or not -9.223372036854775808e18 <= v < 9.223372036854775808e18:
            return 0
        v = int(v)
    elif not -(1 << 63) <= v < (1 << 63):
        return 0
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _err_code(msg: bytes) -> bytes:
    """afterErrorReply's error code: up to the first space within 32 bytes
    of ``-msg``, else ERR."""
    i = msg.find(b" ", 0, 31)
    return msg[:i] if i >= 0 else b"ERR"


# -- shebang ---------------------------------------------------------------------------


def parse_shebang(body: bytes) -> tuple[int, int]:
    """evalExtractShebangFlags: (script flags, length of the shebang line);
    compat mode when the body has no ``#!``.  Raises Redis's errors."""
    from .protocol import split_args

    if body[:2] != b"#!":
        return FLAG_EVAL_COMPAT_MODE, 0
    cbody = body.split(b"\x00", 1)[0]  # strchr() stops at a NUL
    end = cbody.find(b"\n")
    if end < 0:
        raise Err("ERR Invalid script shebang")
    parts = split_args(cbody[:end])
    if not parts:
        raise Err("ERR Invalid engine in script shebang")
    if parts[0] != b"#!lua":
        raise Err(b"ERR Unexpected engine in script shebang: " + parts[0].split(b"\x00", 1)[0])
    flags = 0
    for p in parts[1:]:
        if not p.startswith(b"flags="):
            raise Err(b"ERR Unknown lua shebang option: " + p.split(b"\x00", 1)[0])
        value = p[6:]
        if value:
            for f in value.split(b","):
                bit = _FLAG_BY_NAME.get(f)
                if bit is None:
                    raise Err(b"ERR Unexpected flag in script shebang: " + f.split(b"\x00", 1)[0])
                flags |= bit
    return flags, end


class Script:
    """One cached EVAL script: body, shebang flags and the compiled chunk."""

    __slots__ = ("sha", "body", "flags", "func")

    def __init__(self, sha: bytes, body: bytes, flags: int, func: Any) -> None:
        self.sha = sha
        self.body = body
        self.flags = flags
        self.func = func


class RunCtx:
    """scriptRunCtx: the state of the one running script."""

    __slots__ = ("caller", "fake", "name", "is_eval", "read_only", "allow_oom", "write_dirty", "repl_flags",
                 "start", "timedout", "killed", "oom", "obey", "argv", "vm")

    def __init__(self, caller: Client, fake: Client, name: bytes, is_eval: bool, vm: LuaVM) -> None:
        self.caller = caller
        self.fake = fake
        self.name = name
        self.is_eval = is_eval
        self.read_only = False
        self.allow_oom = False
        self.write_dirty = False
        self.repl_flags = REPL_ALL
        self.start = time.monotonic()
        self.timedout = False
        self.killed = False
        self.oom = False
        self.obey = False
        self.argv: list[bytes] = []
        self.vm = vm

    def busy_error(self) -> Err:
        return ERR_BUSY_EVAL if self.is_eval else ERR_BUSY_FUNCTION


class CmdFlagsView:
    """The command flags processCommand checks for an EVAL/FCALL whose script
    declared flags (scriptFlagsToCmdFlags): write unless no-writes, deny-oom
    unless no-writes/allow-oom, stale only with allow-stale, never
    may-replicate."""

    __slots__ = ("fullname", "is_write", "denyoom", "stale_ok", "may_replicate")

    def __init__(self, cmd: registry.Command, flags: int) -> None:
        self.fullname = cmd.fullname
        self.is_write = not flags & FLAG_NO_WRITES
        self.denyoom = not flags & (FLAG_NO_WRITES | FLAG_ALLOW_OOM)
        self.stale_ok = bool(flags & FLAG_ALLOW_STALE)
        self.may_replicate = False


# -- the interpreter -------------------------------------------------------------------


class LuaVM:
    """One sandboxed interpreter (EVAL's, or the functions engine's) and
    the Python side of the ``redis`` API."""

    def __init__(self, sc: Scripting, mode: str) -> None:
        self.sc = sc
        self.srv = sc.srv
        self.mode = mode
        lua = lupa.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=_deny_attributes,
            max_memory=LUA_MAX_MEMORY,
        )
        self.lua = lua
        self.max_memory = LUA_MAX_MEMORY
        self.libs = scripting_libs.Libs(self)
        py: dict[bytes, Any] = {
            b"errval": self._errval,
            b"hook": self._hook,
            b"call": RedisCall(self),
            b"pcall": self._pcall,
            b"sha1hex": PyFn(self._sha1hex),
            b"log": PyFn(self._log),
            b"setresp": PyFn(self._setresp),
            b"set_repl": PyFn(self._set_repl),
            b"acl_check_cmd": PyFn(self._acl_check_cmd),
            b"register_function": PyFn(self._register_function),
            b"rep": PyFn(self._rep),
            b"random": PyFn(self._random),
            b"randomseed": PyFn(self._randomseed),
            b"type": PyFn(self._type),
            b"version": VERSION,
            b"version_num": VERSION_NUM,
            b"err_handler_def": ERR_HANDLER_DEF,
        }
        for name, fn in self.libs.functions().items():
            py[name] = PyFn(fn)
        tramps = {name: Trampoline() for name in (b"rawset", b"setmetatable", b"tinsert", b"rawget", b"next",
                                                   b"pairs", b"getmetatable", b"load", b"loadstring",
                                                   b"protected_table_error", b"dump", b"cowrap")}
        py.update(tramps)
        loader = lua.eval(b"loadstring")
        setup = loader(PRELUDE, INTERNAL_CHUNK)
        api = setup(mode.encode(), lua.table_from(py))
        self.api = api
        self.null = api[b"null"]
        self._run_eval = api[b"run_eval"]
        self._run_function = api[b"run_function"]
        self._run_load = api[b"run_load"]
        self._compile = api[b"compile"]
        self._ok_table_fn = lua.eval(b"function(s) return {ok = s} end")
        self._api_setresp = api[b"setresp"]
        self._where = api[b"where"]
        self._argmsg = api[b"argmsg"]
        self.lua_tonumber = api[b"tonumber"]
        self.rawget = api[b"rawget"]
        impl = api[b"impl"]
        for name, tramp in tramps.items():
            tramp.impl = impl[name]
        self.table_from = lua.table_from
        self.is_null = api[b"is_null"]
        self._gc = api[b"gc"]
        # Functions engine: the library being loaded collects its functions here.
        self.loading: Any = None

    # -- memory ----------------------------------------------------------------------

    def room(self, need: int) -> None:
        """Refuse (as Lua would, "not enough memory") an allocation from
        Python that could exceed the cap."""
        if self.lua.get_memory_used() + need + _ROOM_SLACK > self.max_memory:
            raise LuaRaise(b"not enough memory")

    def has_room(self, need: int) -> bool:
        """Before a run: true when ``need`` more bytes fit, after a full
        collection if needed (a failed run can leave garbage, or a stopped
        collector)."""
        lua = self.lua
        if lua.get_memory_used() + need + _ROOM_SLACK <= self.max_memory:
            return True
        self._gc()
        return lua.get_memory_used() + need + _ROOM_SLACK <= self.max_memory

    # -- errors ----------------------------------------------------------------------

    def _errval(self, e: Any) -> Any:
        """Translate an error value raised by a Python callable (see LuaRaise)."""
        if isinstance(e, LuaRaise):
            if e.table:
                return (2, e.msg, True if e.ignore else None)
            return (1, e.msg)
        if isinstance(e, BaseException):
            # Not one of ours (lupa refusing an attribute, a bug): never let
            # the Python object reach the script.
            if isinstance(e, AttributeError):
                return (1, b"attempt to index a function value")
            self.srv.log.warning(f"Lua scripting: unexpected Python error: {e!r}")
            return (1, b"internal error: " + repr(e).encode("utf-8", "replace")[:200])
        return None

    def where(self) -> bytes:
        """luaL_where(L, 1) for the Python callable running now."""
        return self._where()  # type: ignore[no-any-return]

    def lib_error(self, msg: bytes) -> LuaRaise:
        """luaL_error from a library function: the caller's position first."""
        return LuaRaise(self._where() + msg)

    def arg_error(self, narg: int, extramsg: bytes) -> LuaRaise:
        """luaL_argerror from a library function."""
        return LuaRaise(self._argmsg(narg, extramsg))

    def type_error(self, narg: int, expected: bytes, args: tuple[Any, ...]) -> LuaRaise:
        """luaL_typerror: ``<expected> expected, got <type>``."""
        got = self.typename(args[narg - 1]) if len(args) >= narg else b"no value"
        return self.arg_error(narg, expected + b" expected, got " + got)

    def typename(self, v: Any) -> bytes:
        t = type(v)
        if t is PyFn or t is Trampoline or t is RedisCall:
            return b"function"
        if t is bytes:
            return b"string"
        if t is int or t is float:
            return b"number"
        if v is None:
            return b"nil"
        if t is bool:
            return b"boolean"
        lt = lupa.lua_type(v)
        if lt == "function" and type(v).__name__ == "_LuaCoroutineFunction":
            return b"thread"  # lupa hands Lua threads over as coroutine functions
        return lt.encode() if lt is not None else b"userdata"

    # -- argument helpers for library functions ---------------------------------------

    def check_number(self, narg: int, args: tuple[Any, ...]) -> float | int:
        """luaL_checknumber: numbers, and strings Lua converts."""
        v: Any = args[narg - 1] if len(args) >= narg else None
        t = type(v)
        if t is int or t is float:
            return v  # type: ignore[no-any-return]
        if t is bytes:
            n = self.lua_tonumber(v)
            if n is not None:
                return n  # type: ignore[no-any-return]
        raise self.type_error(narg, b"number", args)

    def check_int(self, narg: int, args: tuple[Any, ...]) -> int:
        return lua_toint(self.check_number(narg, args))

    def check_string(self, narg: int, args: tuple[Any, ...]) -> bytes:
        """luaL_checklstring: strings, and numbers converted with %.14g."""
        v: Any = args[narg - 1] if len(args) >= narg else None
        t = type(v)
        if t is bytes:
            return v  # type: ignore[no-any-return]
        if t is int or t is float:
            return lua_num2str(v)
        raise self.type_error(narg, b"string", args)

    def _type(self, *args: Any) -> bytes:
        """type(): our Python callables are functions to scripts."""
        if not args:
            raise self.arg_error(1, b"value expected")
        return self.typename(args[0])

    # -- compile / run -----------------------------------------------------------------

    def compile(self, code: bytes, chunkname: bytes) -> tuple[Any, bytes | None]:
        """luaL_loadbuffer: (function, None) or (None, the compiler's message)."""
        if not self.has_room(8 * len(code) + 65536):
            return None, b"not enough memory"
        r = self._compile(code, chunkname)
        if type(r) is tuple:
            if r[0] is None:
                return None, r[1]
            return r[0], None
        return r, None

    # -- redis.* -----------------------------------------------------------------------

    def _script_argv(self, args: tuple[Any, ...]) -> list[bytes]:
        """luaArgsToRedisArgv: strings as they are, numbers as %.17g."""
        if not args:
            raise LuaRaise(_CALL_ERR_NO_ARGS, True)
        argv = []
        for a in args:
            t = type(a)
            if t is bytes:
                argv.append(a)
            elif t is int or t is float:
                argv.append(fmt17(a))
            else:
                raise LuaRaise(_CALL_ERR_ARG_TYPE, True)
        return argv

    def _call(self, *args: Any) -> Any:
        """redis.call: the reply as a Lua value; an error reply is raised."""
        ctx = self.sc.ctx
        if ctx is None:
            raise LuaRaise(b"ERR redis.call/pcall can only be called inside a script invocation", True)
        argv = list(args)
        for a in args:
            if type(a) is not bytes:
                argv = self._script_argv(args)
                break
        if not argv:
            raise LuaRaise(_CALL_ERR_NO_ARGS, True)
        return self._call_reply(ctx, self.sc.script_call(ctx, argv))

    def _call_reply(self, ctx: RunCtx, reply: Any) -> Any:
        """redis.call's reply as a Lua value (an error reply raised)."""
        t = type(reply)
        if t is int:
            return reply
        if t is bytes:
            if len(reply) > 65536:
                self.room(len(reply))
            return reply
        if t is Status:
            return self._ok_table_fn(bytes(reply))
        if isinstance(reply, Err):
            raise LuaRaise(_lua_err_text(reply.msg), True, True)
        return self.to_lua(reply, ctx.fake.resp3)

    def _pcall(self, *args: Any) -> Any:
        """redis.pcall: errors come back as (text, tag) for the Lua wrapper
        to turn into error tables (tag 2: already counted)."""
        ctx = self.sc.ctx
        if ctx is None:
            return (b"ERR redis.call/pcall can only be called inside a script invocation", 3)
        try:
            reply = self.sc.script_call(ctx, self._script_argv(args))
        except LuaRaise as e:
            return (e.msg, 2 if e.ignore else 3)
        t = type(reply)
        if t is int:
            return reply
        if t is bytes:
            if len(reply) > 65536:
                self.room(len(reply))
            return reply
        if t is Status:
            return (bytes(reply), 1)
        if isinstance(reply, Err):
            return (_lua_err_text(reply.msg), 2)
        return self.to_lua(reply, ctx.fake.resp3)

    def to_lua(self, reply: Any, resp3: bool) -> Any:
        """A command's reply as the Lua value Redis's RESP parser builds
        (redisProtocolToLuaType), for the script client's protocol."""
        v = _lua_value(reply, resp3)
        if type(v) is list or type(v) is dict:
            self.room(_size(v))
            return self.table_from(v, recursive=True)
        if type(v) is bytes and len(v) > 65536:
            self.room(len(v))
        return v

    def _sha1hex(self, *args: Any) -> bytes:
        if len(args) != 1:
            raise LuaRaise(b"ERR wrong number of arguments", True)
        v = args[0]
        t = type(v)
        if t is bytes:
            data = v
        elif t is int or t is float:
            data = lua_num2str(v)
        else:
            data = b""
        return hashlib.sha1(data).hexdigest().encode()

    def _log(self, *args: Any) -> None:
        if len(args) < 2:
            raise LuaRaise(b"ERR redis.log() requires two arguments or more.", True)
        lv = args[0]
        if type(lv) is bytes:
            lv = self.lua_tonumber(lv)
        if type(lv) not in (int, float):
            raise LuaRaise(b"ERR First argument must be a number (log level).", True)
        level = lua_toint(lv)
        if level < 0 or level > 3:
            raise LuaRaise(b"ERR Invalid debug level.", True)
        srv = self.srv
        if level < srv.log.level:
            return None
        parts: list[bytes] = []
        for j, a in enumerate(args[1:], 1):
            t = type(a)
            if t is bytes:
                s = a
            elif t is int or t is float:
                s = lua_num2str(a)
            else:
                continue
            if j != 1:
                parts.append(b" ")
            parts.append(s)
        srv.log.log(level, b"".join(parts).decode("utf-8", "backslashreplace"))
        return None

    def _setresp(self, *args: Any) -> None:
        if len(args) != 1:
            raise LuaRaise(b"ERR redis.setresp() requires one argument.", True)
        v = args[0]
        if type(v) is bytes:
            v = self.lua_tonumber(v)
        if v not in (2, 3) or type(v) is bool:
            raise LuaRaise(b"ERR RESP version must be 2 or 3.", True)
        ctx = self.sc.ctx
        if ctx is not None:
            ctx.fake.resp3 = v == 3
        self._api_setresp(int(v))
        return None

    def _set_repl(self, *args: Any) -> None:
        if len(args) != 1:
            raise LuaRaise(b"ERR redis.set_repl() requires two arguments.", True)
        v = args[0]
        if type(v) is bytes:
            v = self.lua_tonumber(v)
        flags = lua_toint(v) if type(v) in (int, float) else 0
        if flags & ~REPL_ALL:
            raise LuaRaise(b"ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                           True)
        ctx = self.sc.ctx
        if ctx is not None:
            ctx.repl_flags = flags
        return None

    def _acl_check_cmd(self, *args: Any) -> bool:
        """redis.acl_check_cmd(cmd, ...): whether the calling user may run
        the command with these arguments (luaRedisAclCheckCmdPermissionsCommand)."""
        ctx = self.sc.ctx
        if ctx is None:
            raise LuaRaise(b"ERR redis.acl_check_cmd can only be called inside a script invocation", True)
        argv = self._script_argv(args)
        cmd = registry.lookup(argv)
        if cmd is None:
            raise LuaRaise(b"ERR Invalid command passed to redis.acl_check_cmd()", True)
        acl = self.srv.acl
        return True if acl is None else bool(acl.script_allowed(ctx.caller, cmd, argv))

    def _register_function(self, *args: Any) -> None:
        fe = self.sc.functions
        if fe is None or self.loading is None:
            raise LuaRaise(b"ERR redis.register_function can only be called on FUNCTION LOAD command", True)
        fe.register_function(self, args)
        return None

    # -- string.rep / math.random ------------------------------------------------------

    def _rep(self, *args: Any) -> bytes:
        s = self.check_string(1, args)
        n = self.check_int(2, args)
        if n <= 0 or not s:
            return b""
        self.room(len(s) * n)
        return s * n

    def _random(self, *args: Any) -> float | int:
        r = (lrand48() % 2147483647) / 2147483647.0
        n = len(args)
        if n == 0:
            return r
        if n == 1:
            u = self.check_int(1, args)
            if u < 1:
                raise self.arg_error(1, b"interval is empty")
            return math.floor(r * u) + 1
        if n == 2:
            lo = self.check_int(1, args)
            u = self.check_int(2, args)
            if lo > u:
                raise self.arg_error(2, b"interval is empty")
            width = (u - lo + 1) & 0xFFFFFFFF
            if width >= 1 << 31:
                width -= 1 << 32
            return math.floor(r * width) + lo
        raise self.lib_error(b"wrong number of arguments")

    def _randomseed(self, *args: Any) -> None:
        srand48(self.check_int(1, args))
        return None

    # -- the busy hook ---------------------------------------------------------------

    def _hook(self) -> bool | bytes | None:
        """Every 100k instructions (luaMaskCountHook -> scriptInterrupt).
        Serving other clients from here must never fail the script."""
        try:
            return self.sc.interrupt()
        except Exception as e:  # logged; the script goes on
            self.srv.log.warning(f"Lua scripting: error while serving clients from a busy script: {e!r}")
            return None

    def heap_bytes(self) -> int:
        """lua_gc(LUA_GCCOUNT) * 1024 + LUA_GCCOUNTB: the interpreter's heap
        (what lupa's allocator holds for it)."""
        return int(self.lua.get_memory_used())


def _lua_err_text(msg: bytes) -> bytes:
    """luaPushErrorBuff's normalisation of an error reply: a text without a
    space gets the ERR code; trailing CR/LF trimmed."""
    if b" " not in msg:
        msg = b"ERR " + msg
    return msg.strip(b"\r\n")


def _lua_value(r: Any, resp3: bool) -> Any:
    """A reply as plain Python values table_from(recursive=True) maps to Lua."""
    t = type(r)
    if t is bytes or t is int:
        return r
    if t is list or t is tuple:
        return [_lua_value(x, resp3) for x in r]
    if t is Status:
        return {b"ok": bytes(r)}
    if r is None or r is NULL_ARRAY:
        return None if resp3 else False
    if t is bytearray or t is memoryview:
        return bytes(r)
    if isinstance(r, Err):
        return {b"err": _lua_err_text(r.msg)}
    if t is float:
        return {b"double": r} if resp3 else format_double(r)
    if t is Map:
        if resp3:
            return {b"map": {_key(_lua_value(k, resp3)): _lua_value(v, resp3) for k, v in r.items}}
        out: list[Any] = []
        for k, v in r.items:
            out.append(_lua_value(k, resp3))
            out.append(_lua_value(v, resp3))
        return out
    if t is SetReply:
        if resp3:
            return {b"set": {_key(_lua_value(x, resp3)): True for x in r}}
        return [_lua_value(x, resp3) for x in r]
    if t is Bool:
        return r.value if resp3 else int(r.value)
    if t is Verbatim:
        return {b"verbatim_string": {b"format": r.fmt, b"string": r.text}} if resp3 else r.text
    if t is BigNumber:
        return {b"big_number": r.text} if resp3 else r.text
    if t is bool:
        return int(r)
    if t is Raw:
        return _lua_value(_parse_raw(r.data, resp3), resp3)
    if isinstance(r, list):  # Push, Multi
        return [_lua_value(x, resp3) for x in r]
    if isinstance(r, bytes):
        return bytes(r)
    if isinstance(r, int):
        return int(r)
    return None if resp3 else False


def _size(v: Any) -> int:
    """An upper bound of the Lua memory a converted reply takes."""
    t = type(v)
    if t is bytes:
        return len(v) + 32
    if t is list:
        return 64 + sum(_size(x) for x in v) + 16 * len(v)
    if t is dict:
        return 64 + sum(_size(k) + _size(x) + 40 for k, x in v.items())
    return 16


def _key(v: Any) -> Any:
    """A map/set key Python can hash (nested aggregates as keys are not
    produced by any 7.0 command)."""
    if type(v) is list or type(v) is dict:
        return repr(v).encode()
    return v


def _parse_raw(data: bytes, resp3: bool) -> Any:
    """Pre-encoded replies (a RESP3 double, a bare error): back to values."""
    t = data[:1]
    line = data[1 : data.find(b"\r\n")]
    if t == b",":
        return float(line)
    if t == b"-":
        return Err(line)
    if t == b":":
        return int(line)
    if t == b"+":
        return Status(line)
    if t == b"_":
        return None
    if t == b"$":
        n = int(line)
        if n < 0:
            return None
        start = data.find(b"\r\n") + 2
        return data[start : start + n]
    return None



# -- the per-server state ------------------------------------------------------------------


class Scripting:
    """The EVAL engine of one server: interpreter, script cache, the running
    script and the busy-script machinery."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.cache: dict[bytes, Script] = {}
        self.ctx: RunCtx | None = None
        self.fake = self._new_fake_client()
        self.vm = LuaVM(self, "eval")
        # the functions engine (server/functions.py) when installed
        self.functions: Any = None
        self.poller: Any = None

    def _new_fake_client(self) -> Client:
        c = Client(self.srv, fake=True)
        c.is_script = True  # type: ignore[attr-defined]
        c.addr = "lua"
        return c

    # -- cache -------------------------------------------------------------------

    def create(self, body: bytes) -> Script:
        """luaCreateFunction: the cached script for this body, compiled on first use."""
        sha = hashlib.sha1(body).hexdigest().encode()
        s = self.cache.get(sha)
        if s is not None:
            return s
        flags, shebang_len = parse_shebang(body)
        func, err = self.vm.compile(body[shebang_len:], b"@user_script")
        if func is None:
            raise Err(b"ERR Error compiling script (new function): " + (err or b""))
        s = Script(sha, body, flags, func)
        self.cache[sha] = s
        return s

    def flush(self) -> None:
        """SCRIPT FLUSH: a fresh interpreter, an empty cache (math.random's
        state is process-global and survives)."""
        self.cache = {}
        self.vm = LuaVM(self, "eval")

    def cmd_flags_for(self, c: Client, cmd: registry.Command, argv: list[bytes]) -> Any:
        """evalGetCommandFlags: the flags the dispatcher checks for this EVAL."""
        name = cmd.name
        if name in ("fcall", "fcall_ro"):
            fe = self.functions
            if fe is None or len(argv) < 2:
                return cmd
            f = fe.lookup(argv[1])
            return CmdFlagsView(cmd, f.flags) if f is not None else cmd
        if len(argv) < 2:
            return cmd
        evalsha = name in ("evalsha", "evalsha_ro")
        if evalsha:
            if len(argv[1]) != 40:
                return cmd
            s = self.cache.get(argv[1].lower())
            if s is None:
                return cmd
            flags = s.flags
        else:
            s = self.cache.get(hashlib.sha1(argv[1]).hexdigest().encode())
            if s is not None:
                flags = s.flags
            else:
                try:
                    flags, _ = parse_shebang(argv[1])
                except Err:
                    return cmd
        if flags & FLAG_EVAL_COMPAT_MODE:
            return cmd
        return CmdFlagsView(cmd, flags)

    # -- EVAL ----------------------------------------------------------------------

    def eval_command(self, c: Client, argv: list[bytes], evalsha: bool, ro: bool) -> Any:
        """evalGenericCommand (with evalShaCommand's early checks)."""
        srv = self.srv
        if srv.monitors:
            # fed before the script runs, so its commands show after it
            srv.feed_monitors(c, argv)
        c.prevent_prop = True  # EVAL itself never propagates: its effects do
        if evalsha and len(argv[1]) != 40:
            raise ERR_NOSCRIPT
        numkeys = _parse_numkeys(argv, ERR_NOT_INT)
        if evalsha:
            script = self.cache.get(argv[1].lower())
            if script is None:
                raise ERR_NOSCRIPT
        else:
            script = self.create(argv[1])
        return self.run(c, script.func, script.flags, script.sha, argv, numkeys, ro, True)

    def prepare(self, c: Client, flags: int, ro: bool, name: bytes, is_eval: bool, vm: LuaVM) -> RunCtx:
        """scriptPrepareForRun: the flag checks in Redis's order, then a fresh run context."""
        srv = self.srv
        obey = c.is_primary_link or srv.executing_primary_stream or srv.loading
        if not flags & FLAG_EVAL_COMPAT_MODE:
            if not flags & FLAG_NO_WRITES:
                if srv.is_replica and srv.cfg.replica_read_only and not obey:
                    # processCommand refuses it first, with its own text
                    raise Err(ERR_READONLY)
                if srv.misconf is not None and not obey:
                    raise Err("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to "
                              "persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only "
                              "scripts.")
                if ro:
                    raise ERR_RO_WRITE_FLAG
            if (srv.cfg.maxmemory and not flags & (FLAG_ALLOW_OOM | FLAG_NO_WRITES) and not obey
                    and getattr(srv, "pre_command_oom_state", False)):
                raise Err("OOM allow-oom flag is not set on the script, can not run it when used memory > "
                          "'maxmemory'")
        fake = self.fake
        fake.db = c.db
        fake.resp3 = False
        fake.user = c.user
        fake.authenticated = True
        fake.in_exec = c.in_exec or c.mstate is not None
        ctx = RunCtx(c, fake, name, is_eval, vm)
        ctx.obey = bool(obey)
        if ro or (not flags & FLAG_EVAL_COMPAT_MODE and flags & FLAG_NO_WRITES):
            ctx.read_only = True
        if not flags & FLAG_EVAL_COMPAT_MODE and flags & FLAG_ALLOW_OOM:
            ctx.allow_oom = True
        ctx.oom = bool(srv.cfg.maxmemory) and bool(getattr(srv, "pre_command_oom_state", False))
        return ctx

    def run(self, c: Client, func: Any, flags: int, name: bytes, argv: list[bytes], numkeys: int, ro: bool,
            is_eval: bool, vm: LuaVM | None = None) -> Any:
        """Run one script or function (``argv`` is the EVAL/FCALL command)
        and turn its outcome into the reply."""
        vm = vm or self.vm
        ctx = self.prepare(c, flags, ro, name, is_eval, vm)
        ctx.argv = argv
        if not vm.has_room(sum(map(len, argv)) + 65536):
            return Err(b"ERR Error running script " + name + b", not enough memory\n")
        srv = self.srv
        c.prevent_prop = True
        self.ctx = ctx
        hook = srv.cfg.busy_reply_threshold > 0
        try:
            runner = vm._run_eval if is_eval else vm._run_function
            res = runner(func, numkeys, c.resp3, hook, *argv[3:])
        except lupa.LuaMemoryError:
            res = (2, b"not enough memory")
        except lupa.LuaError as e:
            res = (2, str(e).encode("utf-8", "replace"))
        finally:
            self.ctx = None
            if ctx.timedout:
                self.end_busy(ctx)
        return self._outcome(c, ctx, res)

    def _outcome(self, c: Client, ctx: RunCtx, res: Any) -> Any:
        srv = self.srv
        kind = res[0]
        if kind == 0:
            if len(res) == 2:
                return Raw(res[1])
                # error replies nested in the reply are counted like Redis's
                # addReplyErrorFormat does for each
                for m in res[2:]:
                    srv.stat_total_error_replies += 1
                    srv.count_error(_err_code(m))
                if c.cmd is not None:
                    c.cmd.failed_calls += 1
            return Raw(res[1])
        if kind == 1:
            msg = res[1]
            source, line, ign = res[2], res[3], res[4]
            if source is not None and line is not None:
                msg = msg + b" script: " + ctx.name + b", on " + source + b":" + line + b"."
            return self._error(c, msg, ign)
        if kind == 3:
            return self._error(c, res[1], res[2])
        return Err(b"ERR Error running script " + ctx.name + b", " + res[1][:100] + b"\n")

    @staticmethod
    def _error(c: Client, msg: bytes, already_counted: bool) -> Err:
        if already_counted:
            if c.cmd is not None:
                c.cmd.failed_calls += 1
            return NoStatsErr(msg)
        return Err(msg)

    # -- redis.call ------------------------------------------------------------------

    def script_call(self, ctx: RunCtx, argv: list[bytes]) -> Any:
        """scriptCall: the checks in Redis's order, then Server.call with the
        script client.  Check failures are error replies (LuaRaise), counted
        like a rejected command."""
        srv = self.srv
        name = argv[0]
        cmd = registry.BY_NAME.get(name)
        if cmd is None:
            cmd = registry.COMMANDS.get(name.lower())
        if cmd is not None and cmd.subcommands and len(argv) > 1:
            cmd = cmd.subcommands.get(argv[1].lower())
        if cmd is None:
            return self._rejected(None, b"ERR Unknown Redis command called from script")
        arity = cmd.arity
        n = len(argv)
        if (arity > 0 and n != arity) or n < -arity or cmd.handler is None:
            return self._rejected(cmd, b"ERR Wrong number of args calling Redis command from script")
        if cmd.noscript:
            return self._rejected(cmd, b"ERR This Redis command is not allowed from script")
        fake = ctx.fake
        if srv.acl_restricted:
            err = srv.acl.script_check(fake, ctx.caller, cmd, argv)
            if err is not None:
                return self._rejected(cmd, err.msg)
        is_write = cmd.is_write
        if ctx.read_only and (is_write or cmd.may_replicate):
            return self._rejected(cmd, b"ERR Write commands are not allowed from read-only scripts.")
        if is_write and not ctx.write_dirty:
            if srv.is_replica and srv.cfg.replica_read_only and not ctx.obey:
                return self._rejected(cmd, ERR_READONLY)
            if srv.misconf is not None:
                return self._rejected(cmd, srv.misconf.msg)
        if (cmd.denyoom and ctx.oom and not ctx.allow_oom and not ctx.obey and not ctx.write_dirty
                and srv.cfg.maxmemory):
            return self._rejected(cmd, ERR_OOM)
        if is_write:
            ctx.write_dirty = True
        prop = srv.propagator
        pending = prop.pending
        before = len(pending)
        reply = srv.call(fake, cmd, argv)
        if ctx.repl_flags != REPL_ALL and len(pending) > before:
            # redis.set_repl: only the command's own effect is redirected
            # (lazy-expiry DELs and the like keep their targets).
            own = fake.prop_argv if fake.prop_argv is not None else argv
            last = pending[-1]
            if last[1] is own:
                targets = last[2] & ctx.repl_flags
                if targets:
                    pending[-1] = (last[0], last[1], targets)
                else:
                    pending.pop()
        return reply

    def _rejected(self, cmd: registry.Command | None, msg: bytes) -> Any:
        """scriptCall's error path: afterErrorReply + rejected_calls."""
        srv = self.srv
        if cmd is not None:
            cmd.rejected_calls += 1
        if not msg.startswith((b"ERR ", b"READONLY ", b"MISCONF ", b"OOM ", b"NOPERM ")):
            msg = b"ERR " + msg
        srv.stat_total_error_replies += 1
        srv.count_error(_err_code(msg))
        raise LuaRaise(msg, True, True)

    # -- busy scripts ---------------------------------------------------------------

    def interrupt(self) -> bool | bytes | None:
        """scriptInterrupt, from the count hook: past busy-reply-threshold
        the server serves other clients from here (-BUSY for most commands);
        True asks the hook to raise the kill error.  During FUNCTION LOAD
        it is luaEngineLoadHook: the error text once the body ran too long."""
        ctx = self.ctx
        if ctx is None:
            fe = self.functions
            if fe is not None and fe.load_timed_out():
                return b"ERR FUNCTION LOAD timeout"
            return None
        if not ctx.timedout:
            thr = self.srv.cfg.busy_reply_threshold
            if thr <= 0:
                return None
            elapsed = (time.monotonic() - ctx.start) * 1000
            if elapsed < thr:
                return None
            self.srv.log.warning(
                f"Slow script detected: still in execution after {int(elapsed)} milliseconds. "
                f"You can try killing the script using the {'SCRIPT KILL' if ctx.is_eval else 'FUNCTION KILL'} "
                f"command. Script name is: {ctx.name.decode('utf-8', 'replace')}."
            )
            self.start_busy(ctx)
        poller = self.poller
        if poller is not None:
            poller.poll()
        return True if ctx.killed else None

    def start_busy(self, ctx: RunCtx) -> None:
        from .scripting_busy import BusyPoller

        ctx.timedout = True
        srv = self.srv
        srv.busy_script = ctx
        srv.update_gate()
        self.poller = BusyPoller(srv, ctx.caller)

    def end_busy(self, ctx: RunCtx) -> None:
        srv = self.srv
        srv.busy_script = None
        srv.update_gate()
        poller = self.poller
        self.poller = None
        if poller is not None:
            poller.finish()

    def kill(self, is_eval: bool) -> Any:
        """scriptKill (SCRIPT KILL / FUNCTION KILL)."""
        ctx = self.ctx
        if ctx is None:
            raise ERR_NOTBUSY
        if ctx.obey:
            raise ERR_UNKILLABLE_MASTER
        if ctx.write_dirty:
            raise ERR_UNKILLABLE_DIRTY
        if is_eval and not ctx.is_eval:
            raise ERR_BUSY_FUNCTION
        if not is_eval and ctx.is_eval:
            raise ERR_BUSY_EVAL
        ctx.killed = True
        return Status(b"OK")


def _parse_numkeys(argv: list[bytes], not_int: Err) -> int:
    """numkeys of EVAL/FCALL: a canonical integer, at most the arguments left, not negative."""
    n = string2ll(argv[2])
    if n is None:
        raise not_int
    if n > len(argv) - 3:
        raise ERR_KEYS_GT
    if n < 0:
        raise ERR_KEYS_NEG
    return n



# Memory model of the script cache (INFO memory's used_memory_scripts_eval):
# per script the SHA's sds, the body's sds and the cache entry, as Redis 7.0
# counts them (checked: 120 bytes for "return 1").
_SCRIPT_ENTRY = 56


def script_cache_bytes(sc: Scripting) -> int:
    from .commands.introspection import sds_alloc

    return sum(sds_alloc(40) + sds_alloc(len(s.body)) - 8 + _SCRIPT_ENTRY for s in sc.cache.values())


def scripting_of(srv: Server) -> Scripting:
    """The server's scripting state, created on first use."""
    sc: Scripting | None = getattr(srv, "scripting", None)
    if sc is None:
        sc = Scripting(srv)
        srv.scripting = sc  # type: ignore[attr-defined]
    return sc
