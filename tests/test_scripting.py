"""Lua scripting and functions beyond what the differential corpus can say:
effects on the one path, error statistics, busy scripts (BUSY, SCRIPT KILL,
FUNCTION KILL, SHUTDOWN NOSAVE), math.random's generator, deep replies,
FUNCTION DUMP/RESTORE and RDB persistence against a real redis-server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Any

import pytest
from ambry.server.effects import TARGET_AOF, TARGET_REPL
from ambry.server.reply import Err
from conftest import InProcess, ServerProcess
from differential import RespConn, encode_command

# -- effects -----------------------------------------------------------------------------


def _effects(ip: InProcess, *cmd: Any) -> list[list[bytes]]:
    sink = ip.record()
    ip.call(*cmd)
    return [[bytes(a) for a in c] for c in sink.commands]


def test_one_write_is_propagated_bare(inproc: InProcess) -> None:
    got = _effects(inproc, "EVAL", "return redis.call('set', KEYS[1], ARGV[1])", "1", "k", "v")
    assert got == [[b"SELECT", b"0"], [b"set", b"k", b"v"]]


def test_two_writes_are_wrapped_in_multi_exec(inproc: InProcess) -> None:
    got = _effects(inproc, "EVAL", "redis.call('set', 'a', '1') redis.call('incr', 'b') return 1", "0")
    assert got == [[b"SELECT", b"0"], [b"MULTI"], [b"set", b"a", b"1"], [b"incr", b"b"], [b"EXEC"]]


def test_read_only_script_and_failed_write_propagate_nothing(inproc: InProcess) -> None:
    inproc.call("SET", "s", "x")
    sink = inproc.record()
    inproc.call("EVAL", "return redis.call('get', 's')", "0")
    inproc.call("EVAL", "return redis.pcall('lpush', 's', 'x')", "0")
    inproc.call("EVAL", "return redis.call('time')", "0")
    assert sink.commands == []


def test_eval_itself_is_never_propagated(inproc: InProcess) -> None:
    got = _effects(inproc, "EVAL", "redis.call('del', 'nokey') return 1", "0")
    assert got == []
    got = _effects(inproc, "EVALSHA", inproc.call("SCRIPT", "LOAD", "return redis.call('incr', 'c')"), "0")
    assert got == [[b"SELECT", b"0"], [b"incr", b"c"]]


def test_rewritten_effects_inside_scripts(inproc: InProcess) -> None:
    inproc.call("SADD", "s", "only")
    got = _effects(inproc, "EVAL", "redis.call('spop', 's') redis.call('incrbyfloat', 'f', '1.5') "
                               "return redis.call('expire', 'f', 100)", "0")
    got = [[c[0].lower(), *c[1:]] for c in got]
    assert got[:4] == [[b"select", b"0"], [b"multi"], [b"srem", b"s", b"only"], [b"set", b"f", b"1.5", b"KEEPTTL"]]
    assert got[4][0] == b"pexpireat" and got[5] == [b"exec"]


def test_select_inside_a_script_selects_for_its_effects_only(inproc: InProcess) -> None:
    got = _effects(inproc, "EVAL", "redis.call('set', 'x', '0') redis.call('select', 3) "
                               "redis.call('set', 'x', '3') return 1", "0")
    assert got == [[b"SELECT", b"0"], [b"MULTI"], [b"set", b"x", b"0"], [b"SELECT", b"3"], [b"set", b"x", b"3"],
                   [b"EXEC"]]
    assert inproc.call("GET", "x") == b"0"


def test_set_repl_targets(inproc: InProcess) -> None:
    aof = inproc.record(TARGET_AOF)
    repl = inproc.record(TARGET_REPL)
    inproc.call("EVAL", "redis.set_repl(redis.REPL_NONE) redis.call('set', 'hidden', '1') "
                "redis.set_repl(redis.REPL_AOF) redis.call('set', 'aofonly', '1') "
                "redis.set_repl(redis.REPL_REPLICA) redis.call('set', 'replonly', '1') "
                "redis.set_repl(redis.REPL_ALL) redis.call('set', 'shown', '1') return 1", "0")
    assert [c for c in aof.commands if c[0] == b"set"] == [[b"set", b"aofonly", b"1"], [b"set", b"shown", b"1"]]
    assert [c for c in repl.commands if c[0] == b"set"] == [[b"set", b"replonly", b"1"], [b"set", b"shown", b"1"]]
    assert inproc.call("EXISTS", "hidden") == 1


def test_lazy_expiry_inside_repl_none_still_propagates_del(inproc: InProcess) -> None:
    inproc.call("SET", "old", "v", "PX", "1")
    time.sleep(0.01)
    got = _effects(inproc, "EVAL", "redis.set_repl(redis.REPL_NONE) return redis.call('get', 'old')", "0")
    assert got == [[b"SELECT", b"0"], [b"DEL", b"old"]]


def test_scripts_in_a_transaction_make_one_wrapper(inproc: InProcess) -> None:
    sink = inproc.record()
    inproc.call("MULTI")
    inproc.call("EVAL", "redis.call('set', 'm1', '1') return 1", "0")
    inproc.call("EVAL", "redis.call('set', 'm2', '2') return 1", "0")
    inproc.call("EXEC")
    assert sink.commands == [[b"SELECT", b"0"], [b"MULTI"], [b"set", b"m1", b"1"], [b"set", b"m2", b"2"],
                             [b"EXEC"]]


def test_time_becomes_a_literal_in_the_effect(inproc: InProcess) -> None:
    got = _effects(inproc, "EVAL", "local t = redis.call('TIME') return redis.call('set', 'ts', t[1])", "0")
    assert got[1][:2] == [b"set", b"ts"] and abs(int(got[1][2]) - time.time()) < 5


def test_function_writes_propagate_as_effects(inproc: InProcess) -> None:
    lib = "#!lua name=el\nredis.register_function('w2', function(k) redis.call('set', k[1], 'a') " \
          "return redis.call('append', k[1], 'b') end)"
    got = _effects(inproc, "FUNCTION", "LOAD", lib)
    assert got == [[b"SELECT", b"0"], [b"FUNCTION", b"LOAD", lib.encode()]]
    got = _effects(inproc, "FCALL", "w2", "1", "fk")
    assert got == [[b"SELECT", b"0"], [b"MULTI"], [b"set", b"fk", b"a"], [b"append", b"fk", b"b"], [b"EXEC"]]


# -- statistics, blocking, context ------------------------------------------------------


def _errorstats(ip: InProcess) -> dict[str, str]:
    text = ip.call("INFO", "errorstats").text.decode()
    return dict(line.split(":", 1) for line in text.splitlines() if line.startswith("errorstat_"))


def test_script_errors_are_counted_once(inproc: InProcess) -> None:
    """The spec's verified numbers: 3 failing INCR (call, pcall, pcall ignored),
    an unknown command, error(), two returned error tables."""
    inproc.call("SET", "str", "x")
    inproc.call("CONFIG", "RESETSTAT")
    for body in ("return redis.call('incr', 'str')", "return redis.pcall('incr', 'str')",
                 "redis.pcall('incr', 'str') return 1", "return redis.call('nosuch')", "error('x')",
                 "return {err='MYERR a'}", "return redis.error_reply('OTHER b')"):
        inproc.call("EVAL", body, "0")
    assert _errorstats(inproc) == {"errorstat_ERR": "count=5", "errorstat_MYERR": "count=1",
                                   "errorstat_OTHER": "count=1"}
    stats = inproc.call("INFO", "commandstats").text.decode()
    assert "cmdstat_incr:calls=3," in stats and "failed_calls=3" in stats.split("cmdstat_incr:")[1].split("\r\n")[0]
    eval_line = stats.split("cmdstat_eval:")[1].split("\r\n")[0]
    assert eval_line.startswith("calls=7,") and eval_line.endswith("rejected_calls=0,failed_calls=6")


def test_blocking_commands_do_not_block_inside_scripts(inproc: InProcess) -> None:
    t0 = time.monotonic()
    assert inproc.encode(inproc.call("EVAL", "return redis.call('blmpop', '0', '1', 'nolist', 'LEFT')", "0")) \
        == b"$-1\r\n"
    assert inproc.encode(inproc.call("EVAL", "return redis.call('bzmpop', '0', '1', 'nozset', 'MIN')", "0")) \
        == b"$-1\r\n"
    assert time.monotonic() - t0 < 1


def test_key_expiry_uses_the_time_the_script_started(inproc: InProcess) -> None:
    inproc.call("SET", "soon", "v", "PX", "50")
    body = "local a = redis.call('exists', 'soon') local t = redis.call('time') local s = t[1] * 1000000 + t[2] " \
           "repeat t = redis.call('time') until t[1] * 1000000 + t[2] > s + 120000 " \
           "return {a, redis.call('exists', 'soon')}"
    assert inproc.encode(inproc.call("EVAL", body, "0")) == b"*2\r\n:1\r\n:1\r\n"
    assert inproc.encode(inproc.call("EVAL", "return redis.call('exists', 'soon')", "0")) == b":0\r\n"


def test_the_script_client_is_not_listed(inproc: InProcess) -> None:
    out = inproc.call("EVAL", "return redis.pcall('client', 'list')", "0")
    assert inproc.encode(out).startswith(b"-ERR This Redis command is not allowed from script")


def test_script_flush_resets_the_interpreter_but_not_math_random(inproc: InProcess) -> None:
    inproc.call("EVAL", "cjson.encode_number_precision(3) math.randomseed(9) return 1", "0")
    assert inproc.call("EVAL", "return cjson.encode(1/3)", "0").data.endswith(b"0.333\r\n")
    after_seed = inproc.call("EVAL", "return tostring(math.random())", "0").data
    inproc.call("EVAL", "math.randomseed(9) return 1", "0")
    inproc.call("SCRIPT", "FLUSH")
    assert inproc.call("EVAL", "return cjson.encode(1/3)", "0").data.endswith(b"0.33333333333333\r\n")
    assert inproc.call("EVAL", "return tostring(math.random())", "0").data == after_seed


def test_function_names_that_differ_only_in_case_are_refused(inproc: InProcess) -> None:
    """Redis 7.0 accepts them and crashes on FUNCTION DELETE (spec defect)."""
    r = inproc.call("FUNCTION", "LOAD", "#!lua name=dup\nredis.register_function('dupf', function() end)\n"
                                        "redis.register_function('DUPF', function() end)")
    assert isinstance(r, Err) and r.msg == (b"ERR Error registering functions: ERR Function already exists in "
                                            b"the library")
    assert inproc.call("FUNCTION", "LIST") == []


def test_function_load_keeps_old_library_on_failure(inproc: InProcess) -> None:
    ok = "#!lua name=keep\nredis.register_function('kf', function() return 1 end)"
    assert inproc.call("FUNCTION", "LOAD", ok) == b"keep"
    bad = "#!lua name=keep\nredis.register_function('kf2', function() return 2 end) error('late')"
    assert isinstance(inproc.call("FUNCTION", "LOAD", "REPLACE", bad), Err)
    assert inproc.encode(inproc.call("FCALL", "kf", "0")) == b":1\r\n"
    assert isinstance(inproc.call("FCALL", "kf2", "0"), Err)
    assert inproc.srv.function_libraries == {"keep": ok.encode()}


# -- against a real redis-server ---------------------------------------------------------


def _pair(server_factory: Any, *opts: str) -> list[ServerProcess]:
    return [server_factory("redis", *opts), server_factory("ambry", *opts)]


def test_math_random_sequence_of_a_fresh_process(server_factory: Any) -> None:
    for s in _pair(server_factory):
        c = s.conn()
        first = [c.command("EVAL", "return tostring(math.random())", "0"),
                 c.command("EVAL", "return tostring(math.random())", "0"),
                 c.command("EVAL", "return math.random(100)", "0"),
                 c.command("EVAL", "return math.random(5, 10)", "0")]
        assert first == [b"$16\r\n0.39646477363839\r\n", b"$16\r\n0.84048536971234\r\n", b":36\r\n", b":7\r\n"], s.kind
        c.command("EVAL", "math.randomseed(42) return 1", "0")
        assert c.command("EVAL", "return tostring(math.random())", "0") == b"$16\r\n0.74452500033403\r\n"
        assert c.command("EVAL", "return math.random(1000)", "0") == b":343\r\n"
        c.close()


def _raw_reply(port: int, *args: bytes) -> bytes:
    """Everything up to the stack-limit error (the differential parser
    cannot follow 8000 nested arrays)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(encode_command(list(args)))
        data = b""
        s.settimeout(10)
        while not data.endswith(b"limit\r\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        return data


@pytest.mark.parametrize("body", [
    b"local t = {} t[1] = t return t",
    b"local t = {} t[1] = t return {1, {map={a=t}}}",
    b"local t = {} t[1] = t return {set={[t]=true}}",
])
def test_self_referencing_reply_stops_at_redis_depth(server_factory: Any, body: bytes) -> None:
    replies = [_raw_reply(s.port, b"EVAL", body, b"0") for s in _pair(server_factory)]
    assert replies[0] == replies[1]
    assert replies[0].endswith(b"-ERR reached lua stack limit\r\n")


def test_function_dump_restores_across_servers(server_factory: Any) -> None:
    redis, ambry = _pair(server_factory)
    lib = b"#!lua name=xlib\nredis.register_function('xf', function(keys, args) return 'x' .. #keys end)\n" \
          b"redis.register_function{function_name='xg', callback=function() return 1 end, flags={'no-writes'}}"
    for src, dst in ((redis, ambry), (ambry, redis)):
        for s in (src, dst):
            s.command("FUNCTION", "FLUSH")
        assert src.command("FUNCTION", "LOAD", lib) == b"$4\r\nxlib\r\n"
        payload = src.command("FUNCTION", "DUMP")
        body = payload[payload.index(b"\r\n") + 2:-2]
        assert dst.command("FUNCTION", "RESTORE", body) == b"+OK\r\n", (src.kind, dst.kind)
        assert dst.command("FCALL", "xf", "2", "a", "b") == b"$2\r\nx2\r\n"
        assert dst.command("FCALL_RO", "xg", "0") == b":1\r\n"
        assert dst.command("FUNCTION", "RESTORE", body) == b"-ERR Library xlib already exists\r\n"
    for cfg in ("yes", "no"):
        for s in (redis, ambry):
            s.command("CONFIG", "SET", "rdbcompression", cfg)
        assert redis.command("FUNCTION", "DUMP") == ambry.command("FUNCTION", "DUMP")


def test_functions_are_saved_in_the_rdb_and_survive_a_restart(server_factory: Any) -> None:
    redis, ambry = _pair(server_factory, "--save", "", "--dbfilename", "dump.rdb")
    lib = b"#!lua name=plib\nredis.register_function('pf', function() return 'persisted' end)"
    assert redis.command("FUNCTION", "LOAD", lib) == b"$4\r\nplib\r\n"
    redis.command("SET", "k", "v")
    assert redis.command("SAVE") == b"+OK\r\n"
    # Redis's dump, loaded by Ambry
    ambry.stop()
    shutil.copy(redis.workdir / "dump.rdb", ambry.workdir / "dump.rdb")
    ambry.start()
    assert ambry.command("FCALL", "pf", "0") == b"$9\r\npersisted\r\n"
    assert ambry.command("FUNCTION", "LIST", "WITHCODE") == redis.command("FUNCTION", "LIST", "WITHCODE")
    # Ambry's dump, loaded by Redis (FLUSHALL keeps the libraries)
    assert ambry.command("FLUSHALL") == b"+OK\r\n"
    assert ambry.command("FCALL", "pf", "0") == b"$9\r\npersisted\r\n"
    assert ambry.command("SAVE") == b"+OK\r\n"
    redis.stop()
    shutil.copy(ambry.workdir / "dump.rdb", redis.workdir / "dump.rdb")
    redis.start()
    assert redis.command("FCALL", "pf", "0") == b"$9\r\npersisted\r\n"
    assert redis.command("DBSIZE") == b":0\r\n"


def test_oom_rules_for_compat_and_shebang_scripts(server_factory: Any) -> None:
    lines = [
        ("EVAL", "return redis.call('set', 'k', 'v')", "0"),
        ("EVAL", "return redis.call('get', 'k')", "0"),
        ("EVAL", "return redis.call('del', 'k')", "0"),
        ("EVAL", "#!lua\nreturn 1", "0"),
        ("EVAL", "#!lua flags=allow-oom\nreturn redis.call('set', 'k', 'v')", "0"),
        ("EVAL", "#!lua flags=no-writes\nreturn redis.call('get', 'k')", "0"),
        ("EVAL", "redis.call('del', 'nokey') return redis.pcall('set', 'k2', 'v')", "0"),
    ]
    out = []
    for s in _pair(server_factory):
        c = s.conn()
        assert c.command("CONFIG", "SET", "maxmemory", "1") == b"+OK\r\n"
        out.append([c.command(*line) for line in lines])
        c.close()
    assert out[0] == out[1]
    assert out[1][0].startswith(b"-OOM command not allowed when used memory > 'maxmemory'. script: ")
    assert out[1][3] == b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"


# -- busy scripts ------------------------------------------------------------------------


def _wait_busy(s: ServerProcess, text: bytes) -> RespConn:
    """A fresh connection, polling PING until the server answers BUSY."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        c = s.conn()
        r = c.command("PING")
        if r.startswith(b"-BUSY"):
            assert r == b"-BUSY Redis is busy running a script. You can only call " + text + \
                b" or SHUTDOWN NOSAVE.\r\n"
            return c
        c.close()
        time.sleep(0.05)
    raise AssertionError("the server never became busy")


def _busy_scenario(s: ServerProcess) -> list[bytes]:
    out: list[bytes] = []
    a = s.conn(timeout=30)
    a.send(encode_command([b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0"]))
    b = _wait_busy(s, b"SCRIPT KILL")
    out.append(b.command("GET", "x"))
    out.append(b.command("FUNCTION", "STATS"))
    out.append(b.command("FUNCTION", "KILL"))
    out.append(b.command("SHUTDOWN"))
    out.append(b.command("MULTI"))
    out.append(b.command("SET", "x", "1"))
    out.append(b.command("EXEC"))
    out.append(b.command("SCRIPT", "KILL"))
    out.append(a.read_reply(20))
    out.append(b.command("PING"))
    out.append(a.command("PING"))
    # a script that wrote cannot be killed; SHUTDOWN NOSAVE ends it all
    a.send(encode_command([b"EVAL", b"redis.call('set', 'w', '1') while true do end", b"0"]))
    b2 = _wait_busy(s, b"SCRIPT KILL")
    out.append(b2.command("SCRIPT", "KILL"))
    b.close()
    b2.send(encode_command([b"SHUTDOWN", b"NOSAVE"]))
    assert s.proc is not None
    s.proc.wait(20)
    s.stopped = True
    return out


def test_busy_script_is_served_killed_and_shut_down_like_redis(server_factory: Any) -> None:
    results = [_busy_scenario(s) for s in _pair(server_factory, "--busy-reply-threshold", "100")]
    assert results[0] == results[1]
    assert results[1][8].startswith(b"-ERR Script killed by user with SCRIPT KILL... script: ")
    assert results[1][11].startswith(b"-UNKILLABLE Sorry the script already executed write commands")


def _function_busy_scenario(s: ServerProcess) -> list[bytes]:
    out: list[bytes] = []
    c = s.conn()
    c.command("FUNCTION", "LOAD", "#!lua name=busy\nredis.register_function('spin', function() "
                                  "local i = 0 while true do i = i + 1 end end)")
    a = s.conn(timeout=30)
    a.send(encode_command([b"FCALL", b"spin", b"0"]))
    b = _wait_busy(s, b"FUNCTION KILL")
    out.append(b.command("SCRIPT", "KILL"))
    stats = b.command("FUNCTION", "STATS")
    out.append(stats.split(b"duration_ms")[0])
    out.append(b.command("FUNCTION", "KILL"))
    out.append(a.read_reply(20))
    out.append(b.command("FUNCTION", "STATS"))
    return out


def test_busy_function_is_killed_with_function_kill(server_factory: Any) -> None:
    results = [_function_busy_scenario(s) for s in _pair(server_factory, "--busy-reply-threshold", "100")]
    assert results[0] == results[1]
    assert results[1][3] == b"-ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2.\r\n"


def test_connections_accepted_while_busy_stay_open(server_factory: Any) -> None:
    s = server_factory("ambry", "--busy-reply-threshold", "100")
    a = s.conn(timeout=30)
    a.send(encode_command([b"EVAL", b"while true do end", b"0"]))
    b = _wait_busy(s, b"SCRIPT KILL")
    assert b.command("CLIENT", "SETNAME", "late") .startswith(b"-BUSY")
    assert b.command("SCRIPT", "KILL") == b"+OK\r\n"
    assert a.read_reply(20).startswith(b"-ERR Script killed")
    assert b.command("CLIENT", "SETNAME", "late") == b"+OK\r\n"
    assert b.command("CLIENT", "GETNAME") == b"$4\r\nlate\r\n"
    assert b"name=late" in s.command("CLIENT", "LIST")


def test_script_without_threshold_runs_to_the_end(server_factory: Any) -> None:
    s = server_factory("ambry", "--busy-reply-threshold", "0")
    r = s.command("EVAL", "local i = 0 while i < 3000000 do i = i + 1 end return i", "0")
    assert r == b":3000000\r\n"


def test_slow_script_is_logged(server_factory: Any) -> None:
    s = server_factory("ambry", "--busy-reply-threshold", "50")
    r = s.command("EVAL", "local t = redis.call('time') local s = t[1] * 1000000 + t[2] "
                          "repeat t = redis.call('time') until t[1] * 1000000 + t[2] > s + 200000 return 1", "0")
    assert r == b":1\r\n"
    assert "Slow script detected: still in execution after" in s.log_text()
    assert "Script name is: " in s.log_text()


def test_redis_cli_can_kill_a_busy_script(server_factory: Any) -> None:
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli is not installed")
    s = server_factory("ambry", "--busy-reply-threshold", "100")
    a = s.conn(timeout=30)
    a.send(encode_command([b"EVAL", b"while true do end", b"0"]))
    _wait_busy(s, b"SCRIPT KILL").close()
    out = subprocess.run(["redis-cli", "-p", str(s.port), "SCRIPT", "KILL"], capture_output=True, text=True,
                         timeout=20)
    assert out.stdout.strip() == "OK"
    assert a.read_reply(20).startswith(b"-ERR Script killed")



def test_info_memory_reports_the_interpreters_and_their_caches(inproc: InProcess) -> None:
    """used_memory_vm_eval/_functions are the interpreters' heaps; the
    script cache and the libraries are counted as Redis counts them."""

    def mem() -> dict[str, int]:
        text = inproc.call("INFO", "memory").text.decode()
        out = {}
        for line in text.split("\r\n"):
            k, _, v = line.partition(":")
            if k.startswith(("used_memory_vm", "used_memory_scripts_eval", "number_of", "used_memory_functions")) \
                    and not k.endswith("_human"):
                out[k] = int(v)
        return out

    before = mem()
    assert before["used_memory_vm_eval"] > 0 and before["used_memory_vm_functions"] > 0
    assert before["number_of_cached_scripts"] == 0 and before["used_memory_scripts_eval"] == 0
    assert before["used_memory_functions"] == 200  # redis-server 7.0.15 with no library
    inproc.call("SCRIPT", "LOAD", "return 1")
    inproc.call("EVAL", "return 2", 0)
    inproc.call("FUNCTION", "LOAD", "#!lua name=mylib\nredis.register_function('f1', function() return 1 end)")
    after = mem()
    assert after["number_of_cached_scripts"] == 2 and after["number_of_functions"] == 1
    assert 200 <= after["used_memory_scripts_eval"] <= 280  # redis-server: 240
    assert 400 <= after["used_memory_functions"] <= 480  # redis-server: 440
    inproc.call("SCRIPT", "FLUSH")
    assert mem()["number_of_cached_scripts"] == 0
