"""The Lua sandbox holds: the known escapes fail with an error, memory and
recursion bombs end in an error (never a crash or a frozen server), no
Python object leaks into a script, and random Lua snippets never crash the
server or break its protocol."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from ambry.server import scripting
from ambry.server.reply import Err, Raw
from conftest import InProcess


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcess]:
    """An in-process server whose Lua heap is capped at 64 MB and whose
    scripts are killed after 0.3 s (as SCRIPT KILL would)."""
    monkeypatch.setattr(scripting, "LUA_MAX_MEMORY", 64 << 20)
    ip = InProcess()
    sc = ip.srv.scripting
    ip.srv.cfg.busy_reply_threshold = 100

    def interrupt() -> bool | None:
        ctx = sc.ctx
        if ctx is not None and time.monotonic() - ctx.start > 0.3:
            ctx.killed = True
            return True
        return None

    monkeypatch.setattr(sc, "interrupt", interrupt)
    yield ip


def run(ip: InProcess, body: str, *args: str) -> Any:
    return ip.call("EVAL", body, str(len(args)), *args)


def error_text(reply: Any) -> bytes:
    assert isinstance(reply, Err), reply
    return reply.msg


def alive(ip: InProcess) -> None:
    assert ip.encode(run(ip, "return redis.call('ping')")) == b"+PONG\r\n"


# -- escapes ----------------------------------------------------------------------------

ESCAPES = [
    "return package.loadlib('libc.so.6', 'system')",
    "return require('os')",
    "return os.execute('id')",
    "return io.popen('id')",
    "return dofile('/etc/passwd')",
    "return loadfile('/etc/passwd')",
    "return debug.getregistry()",
    "return getfenv(0)",
    "setfenv(1, {})",
    "return newproxy(true)",
    "return python.builtins.open('/etc/passwd')",
    "return python.eval('1')",
    "return module('x')",
    "rawset(_G, 'os', {})",
    "setmetatable(_G, {__index = function() return 1 end})",
    "getmetatable(_G).__index = function() return 1 end",
    "getmetatable('').__index = {upper = function() return 'pwned' end}",
    "getmetatable('').__index.upper = function() return 'pwned' end",
    "rawset(getmetatable(''), '__index', {})",
    "string.upper = function() return 'pwned' end",
    "rawset(string, 'upper', 1)",
    "table.insert(_G, 1)",
    "table.insert(string, 'x')",
    "redis.call = function() end",
    "local f = loadstring('os = 1') f()",
    "local f = loadstring(string.dump(function() return 1 end)) return f()",
    "local f = load(function() return nil end) setfenv(f, {})",
    "return redis.call.__globals__",
    "return redis.call.__class__",
    "return getmetatable(redis.call).__index(redis.call, '__globals__')",
    "local mt = getmetatable(redis.call) return mt.__call",
]


@pytest.mark.parametrize("body", ESCAPES)
def test_known_escapes_fail(sandbox: InProcess, body: str) -> None:
    r = run(sandbox, body)
    assert isinstance(r, Err) or (isinstance(r, Raw) and r.data in (b"$-1\r\n",)), r
    # nothing was changed for the next script
    assert sandbox.encode(run(sandbox, "return ('abc'):upper()")) == b"$3\r\nABC\r\n"
    assert sandbox.encode(run(sandbox, "return type(os)")).startswith(b"-ERR user_script:1: Script attempted")
    assert sandbox.encode(run(sandbox, "return #rawget(_G, 'redis') == 0")) == b":1\r\n"
    alive(sandbox)


def test_no_python_object_reaches_a_script(sandbox: InProcess) -> None:
    """Every value reachable from the globals is a plain Lua value; the API
    callables say they are functions and expose nothing."""
    body = """
    local seen, bad = {}, {}
    local function walk(v, path, depth)
      if depth > 6 then return end
      local t = type(v)
      if t == 'table' then
        if seen[v] then return end
        seen[v] = true
        for k, x in pairs(v) do walk(x, path .. '.' .. tostring(k), depth + 1) end
        local mt = getmetatable(v)
        if mt ~= nil then walk(mt, path .. '<mt>', depth + 1) end
      elseif t == 'userdata' and v ~= cjson.null then
        bad[#bad + 1] = path
      end
    end
    walk(_G, '_G', 0)
    walk(getmetatable(''), '<string mt>', 0)
    return bad
    """
    assert sandbox.encode(run(sandbox, body)) == b"*0\r\n"
    for expr in ("tostring(redis.call):sub(1, 10)", "type(redis.call)", "type(cjson.encode)"):
        out = sandbox.encode(run(sandbox, f"return {expr}"))
        assert b"function" in out and b"python" not in out.lower() and b"method" not in out


def test_error_objects_are_never_python_objects(sandbox: InProcess) -> None:
    bodies = [
        "local ok, e = pcall(redis.call, 'nosuch') return type(e)",
        "local ok, e = pcall(cjson.decode, '[') return type(e)",
        "local ok, e = xpcall(function() bit.band() end, function(e) return type(e) end) return e",
        "local ok, e = coroutine.resume(coroutine.create(function() struct.pack('z') end)) return type(e)",
        "local ok, e = pcall(setmetatable, _G, {}) return type(e)",
        "local ok, e = pcall(redis.sha1hex) return type(e)",
    ]
    for body in bodies:
        out = sandbox.encode(run(sandbox, body))
        assert out in (b"$6\r\nstring\r\n", b"$5\r\ntable\r\n"), (body, out)


# -- bombs ------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    "return #string.rep('x', 2^30)",
    "return #string.rep(string.rep('x', 2^20), 2^20)",
    "local s = 'x' for i = 1, 40 do s = s .. s end return #s",
    "local t = {} for i = 1, 1e9 do t[i] = i end return #t",
    "local t = {} for i = 1, 1e9 do t[#t + 1] = tostring(i) .. string.rep('y', 100) end return #t",
    "collectgarbage('stop') local t = {} for i = 1, 1e9 do t[i] = {} end return 1",
    "local parts = {} for i = 1, 1e7 do parts[i] = 'abcdefgh' end return #table.concat(parts)",
    "return cjson.encode(string.rep('x', 2^26))",
])
def test_memory_bombs_end_in_an_error(sandbox: InProcess, body: str) -> None:
    r = run(sandbox, body)
    assert isinstance(r, Err), r
    assert b"not enough memory" in r.msg or b"Script killed" in r.msg or b"too large" in r.msg, r.msg
    alive(sandbox)


@pytest.mark.parametrize("body,expected", [
    ("local function f() return f() + 1 end return f()", b"stack overflow"),
    ("local function f(n) return f(n + 1) end return f(1)", b"Script killed"),
    ("local t = setmetatable({}, {}) getmetatable(t).__index = function(t, k) return t[k] end return t.x",
     b"stack overflow"),
    ("local function f() return pcall(f) end return f()", b""),
    ("local co co = coroutine.wrap(function() co() end) co()", b"cannot resume"),
    ("local s = '' for i = 1, 300 do s = s .. '(' end return loadstring('return ' .. s)", b""),
    ("while true do end", b"Script killed"),
    ("while true do pcall(function() while true do end end) end", b"Script killed"),
    ("local co = coroutine.wrap(function() while true do end end) co()", b"Script killed"),
])
def test_runaway_scripts_end(sandbox: InProcess, body: str, expected: bytes) -> None:
    r = run(sandbox, body)
    if expected:
        assert expected in error_text(r), r
    alive(sandbox)


def test_collectgarbage_misuse_does_not_stick(sandbox: InProcess) -> None:
    for opt in ("stop", "setpause", "setstepmul", "collect", "step", "count", "restart"):
        run(sandbox, f"return collectgarbage('{opt}', 1)")
    run(sandbox, "collectgarbage('stop') return 1")
    for _ in range(60):
        assert isinstance(run(sandbox, "local t = {} for i = 1, 2e4 do t[i] = {} end return 1"), Raw)
    alive(sandbox)


# -- fuzz -------------------------------------------------------------------------------

_FRAGMENTS = [
    "local a = {}", "local b = 'x'", "local n = 3", "a[1] = n", "a.x = b", "n = n + 1", "b = b .. n",
    "return a", "return n", "return b", "return {a, n, b}", "return {err = b}", "return {ok = b}",
    "return {map = a}", "return {set = {b = true}}", "return {double = n / 3}", "return nil", "return true",
    "redis.call('set', KEYS[1] or 'k', b)", "redis.call('incr', 'cnt')", "return redis.call('get', 'k')",
    "return redis.pcall('nosuch')", "redis.pcall('lpush', 'k', 1)", "return redis.call('lrange', 'l', 0, -1)",
    "redis.setresp(3)", "redis.set_repl(redis.REPL_NONE)", "redis.log(redis.LOG_DEBUG, b)",
    "error(b)", "error({err = b})", "error(a)", "error()", "assert(n > 100, b)",
    "pcall(error, a)", "xpcall(function() error(b) end, function(e) return e end)",
    "for k, v in pairs(a) do n = n + 1 end", "for i = 1, 10 do n = n * 2 end", "while n > 1e6 do n = n / 2 end",
    "x = 1", "a = y", "_G.z = 1", "rawset(_G, 'q', 1)", "setmetatable(a, {__index = function() return 1 end})",
    "setmetatable(_G, nil)", "getmetatable('').__index = nil", "local m = getmetatable(a)",
    "b = cjson.encode(a)", "a = cjson.decode('[1, {\"a\": null}]')", "b = cmsgpack.pack(a, n, b)",
    "a = {cmsgpack.unpack(cmsgpack.pack(a))}", "b = struct.pack('>I2s', n % 65536, b)",
    "n = bit.band(n, 0xff)", "b = bit.tohex(n)", "n = math.random(100)", "b = redis.sha1hex(b)",
    "b = string.rep(b, 3)", "b = b:upper()", "b = string.format('%q', b)", "n = tonumber(b) or 0",
    "b = tostring(a)", "a = {unpack({1, 2, 3})}", "local co = coroutine.create(function() return 1 end)",
    "coroutine.resume(coroutine.create(function() error('c') end))", "local f = loadstring('return 1')",
    "local f = loadstring(b)", "return loadstring('return ' .. n)()", "a[a] = a", "a[1] = a",
    "return #a", "local t = {} t[1] = t return t", "return string.byte(b, 1, -1)", "b = b:rep(0)",
    "return select('#', unpack(a))", "n = 0/0", "n = 1/0", "n = -0", "b = '\\0\\1\\255'",
    "return redis.error_reply(b)", "return redis.status_reply(b)", "return {1, {err = 'E x'}, {ok = 'y'}}",
    "return redis.call('eval', 'return 1', 0)", "return redis.call('ping', a)", "return redis.call(n)",
    "return redis.call()", "return redis.acl_check_cmd('get', 'x')", "return table.concat(a, ',')",
    "table.sort(a)", "table.insert(a, b)", "table.remove(a)", "return next(a)", "return ipairs(a)",
    "if n > 5 then return n end", "do local c = 1 end", "return ...", "return select(2, ...)",
    "return KEYS", "return ARGV", "return #ARGV",
]
_JUNK = ["goto", "end", "(", "function", "local", "'", "[[", "--[[", "\0", "return return"]


def _snippet(rng: random.Random) -> str:
    """A few statements; the last ``return`` wins at compile time, so only
    one is kept.  One snippet in ten carries a syntax error."""
    parts = [rng.choice(_FRAGMENTS) for _ in range(rng.randint(1, 8))]
    body = [p for p in parts if not p.startswith("return")]
    body += [p for p in parts if p.startswith("return")][-1:]
    if rng.random() < 0.1:
        body.insert(rng.randrange(len(body) + 1), rng.choice(_JUNK))
    return "\n".join(body)


def test_random_snippets_never_crash_the_server(sandbox: InProcess) -> None:
    rng = random.Random(20240607)
    deadline = time.monotonic() + 20
    count = 0
    while count < 3000 and time.monotonic() < deadline:
        body = _snippet(rng)
        nkeys = rng.randint(0, 2)
        args = [rng.choice(["k", "l", "x", "\xff", ""]) for _ in range(nkeys + rng.randint(0, 2))]
        r = sandbox.call("EVAL", body, str(nkeys), *args)
        # every reply encodes in both protocols, errors are single lines
        for resp3 in (False, True):
            data = sandbox.encode(r, resp3)
            assert data.endswith(b"\r\n")
        if isinstance(r, Err):
            assert b"\n" not in r.msg and b"\r" not in r.msg
            assert b"Traceback" not in r.msg and b"lupa" not in r.msg, (body, r.msg)
        count += 1
        if count % 200 == 0:
            alive(sandbox)
    assert count > 200
    alive(sandbox)


def test_random_function_libraries_never_crash_the_server(sandbox: InProcess) -> None:
    rng = random.Random(7)
    for i in range(300):
        body = _snippet(rng).replace("return ...", "return 1")
        code = f"#!lua name=fz{i}\nredis.register_function('fz{i}', function(keys, args)\n{body}\nend)"
        r = sandbox.call("FUNCTION", "LOAD", "REPLACE", code)
        if not isinstance(r, Err):
            out = sandbox.call("FCALL", f"fz{i}", "1", "k", "a")
            sandbox.encode(out)
    alive(sandbox)
