"""Scripts and ACLs: what tests/corpus/scripting_acl.txt cannot express.

* Several connections with different users, against real redis-server and
  Ambry side by side: commands, keys (read vs write access) and channels
  denied to ``redis.call``/``redis.pcall`` with Redis 7.0's texts, the
  error table of ``pcall``, ``redis.acl_check_cmd``, FCALL with a
  restricted user, EVAL/FCALL queued in MULTI.
* ACL LOG entries written for a script's commands (context ``lua``, the
  caller's user and client info), and the error/command statistics
  counting such a denial once.
* CLIENT PAUSE WRITE holding the may-replicate commands (EVAL, EVALSHA,
  FCALL, PUBLISH, SPUBLISH, PFCOUNT) but not EVAL_RO/EVALSHA_RO or
  scripts and functions declared ``no-writes``.
* In process: the may-replicate flag of the command table, the master
  client running anything, SORT's unrestricted-key-access rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ambry.server import acl as aclmod
from ambry.server import registry
from ambry.server.reply import Status
from conftest import ServerProcess
from differential import ReplyTimeout, RespConn, parse_reply

Conn = Callable[[], RespConn]

# Redis 7.0.15's texts (spec/acl-scripting.md §2).
DENIED_CMD = b"ERR The user executing the script can't run this command or subcommand"
DENIED_KEY = (b"ERR The user executing the script can't access at least one of the keys mentioned in the "
              b"command arguments")
DENIED_CHANNEL = b"ERR The user executing the script can't publish to the channel mentioned in the command"
NOPERM_KEY = b"-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"

LIB = (
    "#!lua name=acllib\n"
    "redis.register_function('aget', function(keys, args)\n"
    "  return redis.call('get', args[1])\n"
    "end)\n"
    "redis.register_function('aset', function(keys, args)\n"
    "  return redis.call('set', 'foo', 'x')\n"
    "end)\n"
    "redis.register_function{function_name='rw', callback=function(keys, args) return 1 end}\n"
    "redis.register_function{function_name='nw', callback=function(keys, args) return 1 end,"
    " flags={'no-writes'}}\n"
    "redis.register_function('chk', function(keys, args) return redis.acl_check_cmd(unpack(args)) end)\n"
)


def _err(raw: bytes, text: bytes) -> bool:
    return raw == b"-" + text + b"\r\n"


def _reset(s: ServerProcess) -> None:
    """Only the default user, an empty ACL log, no pause, no scripts."""
    c = s.conn()
    try:
        users = parse_reply(c.command("ACL", "USERS"))[0][1]
        names = [u[1] for u in users if u[1] != b"default"]
        if names:
            c.command("ACL", "DELUSER", *names)
        c.command("ACL", "SETUSER", "default", "on", "nopass", "~*", "&*", "+@all")
        c.command("ACL", "LOG", "RESET")
        c.command("CLIENT", "UNPAUSE")
        c.command("FUNCTION", "FLUSH")
        c.command("SCRIPT", "FLUSH")
        c.command("CONFIG", "RESETSTAT")
    finally:
        c.close()


@pytest.fixture
def both(redis: ServerProcess, ambry: ServerProcess) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """The shared redis-server and ambry-server, ACL state reset around the test."""
    for s in (redis, ambry):
        _reset(s)
    yield redis, ambry
    for s in (redis, ambry):
        _reset(s)


def _compare(both: tuple[ServerProcess, ServerProcess], scenario: Callable[[Conn], list[Any]]) -> list[Any]:
    """Run ``scenario`` on redis-server then Ambry; the results must be equal.
    Returns Ambry's."""
    got = []
    for s in both:
        conns: list[RespConn] = []

        def connect(s: ServerProcess = s, conns: list[RespConn] = conns) -> RespConn:
            c = s.conn()
            conns.append(c)
            return c

        try:
            got.append(scenario(connect))
        finally:
            for c in conns:
                c.close()
    assert got[1] == got[0]
    return got[1]


def _user(adm: RespConn, name: str, *rules: str) -> None:
    assert adm.command("ACL", "SETUSER", name, "reset", "on", ">p", *rules) == b"+OK\r\n"


def _login(c: RespConn, name: str) -> RespConn:
    assert c.command("AUTH", name, "p") == b"+OK\r\n"
    return c


# -- denials seen by the script ---------------------------------------------------------


def test_denied_command_key_and_channel_raise_and_return(both: tuple[ServerProcess, ServerProcess]) -> None:
    """redis.call raises (with the script trailer), redis.pcall returns the
    error; the checks run command, then keys, then channels."""

    def scenario(connect: Conn) -> list[Any]:
        adm = connect()
        _user(adm, "u1", "+@all", "-set", "~foo*", "&chan*")
        a = _login(connect(), "u1")
        out = []
        for fn in ("call", "pcall"):
            for args in ("'set','foo','x'", "'get','bar'", "'publish','other','x'", "'set','bar','x'",
                         "'get','foo'", "'publish','chan1','x'"):
                out.append(a.command("EVAL", f"return redis.{fn}({args})", 0))
        return out

    out = _compare(both, scenario)
    assert out[0].startswith(b"-" + DENIED_CMD + b" script: ")
    assert out[0].endswith(b", on @user_script:1.\r\n")
    assert ([_err(r, t) for r, t in zip(out[6:10], (DENIED_CMD, DENIED_KEY, DENIED_CHANNEL, DENIED_CMD), strict=True)]
            == [True] * 4)
    assert out[10:12] == [b"$-1\r\n", b":0\r\n"]


def test_key_read_and_write_access_follow_key_specs(both: tuple[ServerProcess, ServerProcess]) -> None:
    """%R~ / %W~ patterns against the access each key spec asks for, for
    keys a script names without declaring them; declared keys are checked
    before the script runs, RW for EVAL and RO for EVAL_RO."""

    def scenario(connect: Conn) -> list[Any]:
        adm = connect()
        _user(adm, "rw", "+@all", "%R~r*", "%W~w*", "&*")
        adm.command("SET", "r1", "v")
        a = _login(connect(), "rw")
        out = []
        for args in ("'get','r1'", "'set','r1','x'", "'set','w1','x'", "'get','w1'", "'copy','r1','w2'",
                     "'copy','w1','r2'", "'lmove','r1','w3','left','right'", "'exists','r1','w1'",
                     "'append','w1','y'", "'getset','w1','z'"):
            out.append(a.command("EVAL", f"return redis.pcall({args})", 0))
        out.append(a.command("EVAL", "return 1", 1, "r1"))
        out.append(a.command("EVAL_RO", "return redis.call('get', KEYS[1])", 1, "r1"))
        out.append(a.command("EVAL_RO", "return 1", 1, "w1"))
        return out

    out = _compare(both, scenario)
    assert out[0] == b"$1\r\nv\r\n"
    assert _err(out[1], DENIED_KEY) and out[2] == b"+OK\r\n" and _err(out[3], DENIED_KEY)
    assert out[4] == b":1\r\n" and _err(out[5], DENIED_KEY) and _err(out[6], DENIED_KEY)
    assert _err(out[9], DENIED_KEY)
    assert out[10:] == [NOPERM_KEY, b"$1\r\nv\r\n", NOPERM_KEY]


def test_pcall_error_table_and_acl_before_read_only_rule(both: tuple[ServerProcess, ServerProcess]) -> None:
    """pcall gives the table {err=...}; pcall(redis.call) the message; in a
    read-only script the ACL check comes before the write refusal."""

    def scenario(connect: Conn) -> list[Any]:
        adm = connect()
        _user(adm, "u1", "+@all", "-set", "~foo*", "&chan*")
        a = _login(connect(), "u1")
        return [
            a.command("EVAL", "local r = redis.pcall('set','foo','x') return {type(r), r.err}", 0),
            a.command("EVAL", "local ok, e = pcall(redis.call, 'get', 'bar') return {tostring(ok), e}", 0),
            a.command("EVAL_RO", "return redis.pcall('publish', 'other', 'x')", 0),
            a.command("EVAL_RO", "return redis.pcall('publish', 'chan1', 'x')", 0),
            a.command("EVAL_RO", "return redis.pcall('append', 'bar', 'x')", 0),
            a.command("EVAL_RO", "return redis.pcall('append', 'foo', 'x')", 0),
        ]

    out = _compare(both, scenario)
    assert out[0] == b"*2\r\n$5\r\ntable\r\n$%d\r\n%s\r\n" % (len(DENIED_CMD), DENIED_CMD)
    assert out[1] == b"*2\r\n$5\r\nfalse\r\n$%d\r\n%s\r\n" % (len(DENIED_KEY), DENIED_KEY)
    assert _err(out[2], DENIED_CHANNEL) and _err(out[4], DENIED_KEY)
    assert _err(out[3], b"ERR Write commands are not allowed from read-only scripts.")


def test_acl_check_cmd(both: tuple[ServerProcess, ServerProcess]) -> None:
    """redis.acl_check_cmd: the caller's permissions as a boolean (null in
    RESP2, #f/#t after setresp(3)); unknown commands and no arguments raise."""

    def scenario(connect: Conn) -> list[Any]:
        adm = connect()
        _user(adm, "u1", "+@all", "-set", "-object|encoding", "~foo*", "resetchannels", "&chan*")
        _user(adm, "u2", "-@all", "+eval", "+get", "+select|0", "~*", "resetchannels", "(~sel*", "+lpush",
              "&s*)")
        a = _login(connect(), "u1")
        b = _login(connect(), "u2")
        out = []
        for args in ("'set','foo','x'", "'get','bar'", "'get','foo'", "'get'", "'publish','other','x'",
                     "'publish','chan9','x'", "'subscribe','chan1','other'", "'psubscribe','chan*'",
                     "'psubscribe','chan1*'", "'object','encoding','foo'", "'object'", "'auth','a','b'",
                     "'nosuch'", "'config','nosuch'", "", "'get', {}"):
            out.append(a.command("EVAL", f"return redis.acl_check_cmd({args})", 0))
        out.append(a.command("EVAL", "return {pcall(redis.acl_check_cmd, 'nosuch')}", 0))
        out.append(a.command("EVAL", "redis.setresp(3) return redis.acl_check_cmd('set','foo','x')", 0))
        for args in ("'select','0'", "'select','1'", "'lpush','x','1'", "'lpush','selx','1'", "'ping'"):
            out.append(b.command("EVAL", f"return redis.acl_check_cmd({args})", 0))
        return out

    out = _compare(both, scenario)
    t, f = b":1\r\n", b"$-1\r\n"
    assert out[:12] == [f, f, t, t, f, t, f, t, f, f, t, t]
    assert out[12].startswith(b"-ERR Invalid command passed to redis.acl_check_cmd() script: ")
    assert out[13].startswith(b"-ERR Invalid command passed to redis.acl_check_cmd() script: ")
    assert out[14].startswith(b"-ERR Please specify at least one argument for this redis lib call script: ")
    assert out[15].startswith(b"-ERR Lua redis lib command arguments must be strings or integers script: ")
    assert out[16] == b"*2\r\n$-1\r\n$51\r\nERR Invalid command passed to redis.acl_check_cmd()\r\n"
    assert out[17] == b":0\r\n"
    assert out[18:] == [t, f, f, t, f]


def test_fcall_with_a_restricted_user(both: tuple[ServerProcess, ServerProcess]) -> None:
    """Functions run with the caller's permissions; FCALL's declared keys
    are checked before the function is looked up."""

    def scenario(connect: Conn) -> list[Any]:
        adm = connect()
        assert adm.command("FUNCTION", "LOAD", LIB) == b"$6\r\nacllib\r\n"
        _user(adm, "u1", "+@all", "-set", "-fcall_ro", "~foo*", "&*")
        adm.command("SET", "foo1", "v")
        a = _login(connect(), "u1")
        return [
            a.command("FCALL", "aget", 0, "foo1"),
            a.command("FCALL", "aget", 0, "bar"),
            a.command("FCALL", "aset", 0),
            a.command("FCALL", "nosuch", 1, "bar"),
            a.command("FCALL", "nosuch", 1, "foo"),
            a.command("FCALL", "chk", 0, "set", "foo", "x"),
            a.command("FCALL", "chk", 0, "get", "foo"),
            a.command("FCALL_RO", "nw", 0),
        ]

    out = _compare(both, scenario)
    assert out[0] == b"$1\r\nv\r\n"
    assert out[1] == b"-" + DENIED_KEY + b" script: aget, on @user_function:3.\r\n"
    assert out[2] == b"-" + DENIED_CMD + b" script: aset, on @user_function:6.\r\n"
    assert out[3:5] == [NOPERM_KEY, b"-ERR Function not found\r\n"]
    assert out[5:7] == [b"$-1\r\n", b":1\r\n"]
    assert out[7] == b"-NOPERM this user has no permissions to run the 'fcall_ro' command\r\n"


def test_scripts_queued_in_multi(both: tuple[ServerProcess, ServerProcess]) -> None:
    """EVAL queued in MULTI: declared keys refuse the queueing (context
    multi), a denial inside the script is an ordinary error in EXEC's reply."""

    def scenario(connect: Conn) -> list[Any]:
        adm = connect()
        _user(adm, "u1", "+@all", "-set", "~foo*", "&*")
        a = _login(connect(), "u1")
        out = [a.command("MULTI"), a.command("EVAL", "return redis.pcall('set', 'foo', 'x')", 0),
               a.command("EVAL", "return redis.call('get', 'bar')", 0), a.command("EXEC")]
        out += [a.command("MULTI"), a.command("EVAL", "return 1", 1, "bar"), a.command("EXEC")]
        return out

    out = _compare(both, scenario)
    assert out[3].startswith(b"*2\r\n-" + DENIED_CMD + b"\r\n-" + DENIED_KEY + b" script: ")
    assert out[5] == NOPERM_KEY


# -- ACL LOG and statistics -------------------------------------------------------------


def _log_entries(raw: bytes) -> list[dict[bytes, Any]]:
    """ACL LOG without age-seconds and with the stable fields of client-info."""
    out = []
    for entry in parse_reply(raw)[0][1]:
        if entry[0] == "%":
            pairs = [(k[1], v[1]) for k, v in entry[1]]
        else:
            flat = entry[1]
            pairs = [(flat[i][1], flat[i + 1][1]) for i in range(0, len(flat), 2)]
        d: dict[bytes, Any] = {}
        for key, val in pairs:
            if key == b"age-seconds":
                continue
            if key == b"client-info":
                fields = dict(f.split(b"=", 1) for f in val.split(b" "))
                d[key] = {k: fields[k] for k in (b"name", b"flags", b"db", b"multi", b"cmd", b"user", b"resp")}
            else:
                d[key] = val
        out.append(d)
    return out


@pytest.mark.parametrize("resp", [2, 3])
def test_acl_log_entries_for_script_commands(both: tuple[ServerProcess, ServerProcess], resp: int) -> None:
    """Context ``lua`` for EVAL and FCALL alike; object = the inner command,
    key or channel; the caller's user and client info; repeated denials
    grouped."""

    def scenario(connect: Conn) -> list[Any]:
        adm = connect()
        adm.command("FUNCTION", "LOAD", LIB)
        _user(adm, "u1", "+@all", "-set", "~foo*", "resetchannels", "&chan*")
        a = connect()
        if resp == 3:
            a.command("HELLO", "3")
        a.command("CLIENT", "SETNAME", "scripter")
        _login(a, "u1")
        a.command("EVAL", "return redis.pcall('set', 'foo', 'x')", 0)
        a.command("EVAL", "return redis.pcall('get', 'bar')", 0)
        a.command("EVAL", "return redis.pcall('get', 'bar')", 0)
        a.command("EVAL", "return redis.pcall('publish', 'other', 'x')", 0)
        a.command("FCALL", "aset", 0)
        a.command("EVAL", "return redis.acl_check_cmd('get', 'nolog')", 0)  # no entry
        a.command("GET", "top")  # context toplevel
        return [_log_entries(adm.command("ACL", "LOG"))]

    entries = _compare(both, scenario)[0]
    assert [(e[b"context"], e[b"reason"], e[b"object"], e[b"count"]) for e in entries] == [
        (b"toplevel", b"key", b"top", b"1"),
        (b"lua", b"command", b"set", b"2"),
        (b"lua", b"channel", b"other", b"1"),
        (b"lua", b"key", b"bar", b"2"),
    ]
    assert all(e[b"username"] == b"u1" and e[b"client-info"][b"name"] == b"scripter" for e in entries)
    assert [e[b"client-info"][b"cmd"] for e in entries] == [b"get", b"fcall", b"eval", b"eval"]
    assert all(e[b"client-info"][b"resp"] == str(resp).encode() for e in entries)


def test_acl_log_entry_of_a_script_run_by_exec(both: tuple[ServerProcess, ServerProcess]) -> None:
    """A script queued in MULTI: the entry (context lua) carries the client
    info Redis prints while EXEC runs: flags=x, multi=<queued>, cmd=exec."""

    def scenario(connect: Conn) -> list[Any]:
        adm = connect()
        _user(adm, "u1", "+@all", "~foo*", "&*")
        a = _login(connect(), "u1")
        a.command("MULTI")
        a.command("EVAL", "return redis.pcall('get', 'baz')", 0)
        a.command("EXEC")
        return _log_entries(adm.command("ACL", "LOG"))

    entry = _compare(both, scenario)[0]
    assert (entry[b"context"], entry[b"object"]) == (b"lua", b"baz")
    assert entry[b"client-info"][b"cmd"] == b"exec" and entry[b"client-info"][b"flags"] == b"x"


def _counters(info: bytes) -> dict[bytes, dict[bytes, bytes]]:
    """INFO errorstats/commandstats lines as name -> counters, without timings."""
    out: dict[bytes, dict[bytes, bytes]] = {}
    for ln in info.split(b"\r\n"):
        if ln.startswith((b"errorstat_", b"cmdstat_")):
            name, _, fields = ln.partition(b":")
            pairs = (f.split(b"=", 1) for f in fields.split(b","))
            out[name] = {k: v for k, v in pairs if not k.startswith(b"usec")}
    return out


def test_a_denial_counts_once_in_errorstats_and_commandstats(both: tuple[ServerProcess, ServerProcess]) -> None:
    """The inner command is rejected (rejected_calls), the script fails
    (failed_calls), one ERR is counted per denial."""

    def scenario(connect: Conn) -> list[Any]:
        adm = connect()
        _user(adm, "u1", "+@all", "-set", "~foo*", "&*")
        a = _login(connect(), "u1")
        adm.command("CONFIG", "RESETSTAT")
        a.command("EVAL", "return redis.call('set', 'foo', 'x')", 0)
        a.command("EVAL", "return redis.pcall('get', 'bar')", 0)
        stats = _counters(adm.command("INFO", "errorstats") + adm.command("INFO", "commandstats"))
        return [stats.get(n) for n in (b"errorstat_ERR", b"cmdstat_set", b"cmdstat_get", b"cmdstat_eval")]

    out = _compare(both, scenario)
    assert out[0] == {b"count": b"2"}
    assert out[1] == {b"calls": b"0", b"rejected_calls": b"1", b"failed_calls": b"0"}
    assert out[2] == {b"calls": b"0", b"rejected_calls": b"1", b"failed_calls": b"0"}
    assert out[3] == {b"calls": b"2", b"rejected_calls": b"0", b"failed_calls": b"2"}


# -- CLIENT PAUSE WRITE --------------------------------------------------------------


PAUSED = b"<paused>"
# A command held by the pause cannot answer before CLIENT UNPAUSE; one that
# is not held answers at once.  The window only decides how long an
# unexpected hold is waited for, never whether a correct run passes.
PAUSE_WINDOW = 0.3


def _under_write_pause(adm: RespConn, c: RespConn, *cmd: str | int) -> bytes:
    """``cmd``'s reply under CLIENT PAUSE WRITE, or PAUSED + the reply it
    gave once the pause was lifted."""
    assert adm.command("CLIENT", "PAUSE", 60000, "WRITE") == b"+OK\r\n"
    try:
        try:
            return c.command(*cmd, timeout=PAUSE_WINDOW)
        except ReplyTimeout:
            pass
        assert adm.command("CLIENT", "UNPAUSE") == b"+OK\r\n"
        return PAUSED + c.read_reply()
    finally:
        adm.command("CLIENT", "UNPAUSE")


def test_client_pause_write_holds_may_replicate_commands(both: tuple[ServerProcess, ServerProcess]) -> None:
    """EVAL/EVALSHA/FCALL, PUBLISH, SPUBLISH and PFCOUNT are held like
    writes; EVAL_RO/EVALSHA_RO, no-writes scripts and functions are not,
    and a read-only script refuses may-replicate commands at once."""
    sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"  # return 1

    def scenario(connect: Conn) -> list[Any]:
        adm, c = connect(), connect()
        adm.command("FUNCTION", "LOAD", LIB)
        adm.command("SCRIPT", "LOAD", "return 1")
        cmds: list[tuple[str | int, ...]] = [
            ("EVAL", "return 1", 0), ("EVALSHA", sha, 0), ("FCALL", "rw", 0), ("FCALL_RO", "rw", 0),
            ("PUBLISH", "ch", "m"), ("SPUBLISH", "ch", "m"), ("PFCOUNT", "hll"), ("SET", "k", "v"),
            ("EVAL_RO", "return 1", 0), ("EVALSHA_RO", sha, 0), ("EVAL", "#!lua flags=no-writes\nreturn 1", 0),
            ("EVAL", "#!lua\nreturn 1", 0), ("FCALL", "nw", 0), ("FCALL_RO", "nw", 0), ("GET", "k"),
            ("EVAL_RO", "return redis.pcall('publish', 'ch', 'm')", 0),
            ("EVAL_RO", "return redis.pcall('pfcount', 'hll')", 0),
        ]
        return [_under_write_pause(adm, c, *cmd) for cmd in cmds]

    out = _compare(both, scenario)
    held = [r.startswith(PAUSED) for r in out]
    assert held == [True] * 8 + [False, False, False, True, False, False, False, False, False]
    assert out[3] == PAUSED + b"-ERR Can not execute a script with write flag using *_ro command.\r\n"
    assert out[15] == out[16] == b"-ERR Write commands are not allowed from read-only scripts.\r\n"


# -- in process ----------------------------------------------------------------------


def test_may_replicate_flag_of_the_command_table() -> None:
    """The commands Redis 7.0 flags CMD_MAY_REPLICATE carry the flag here
    although COMMAND INFO (as in 7.0) does not print it."""
    import ambry.server.commands  # noqa: F401  (registers every command)

    flagged = sorted(c.fullname for c in registry.all_commands() if c.may_replicate)
    assert flagged == ["eval", "evalsha", "fcall", "pfcount", "publish", "spublish"]
    info = registry.lookup([b"eval"]).info_reply()  # type: ignore[union-attr]
    assert b"may_replicate" not in [bytes(f) for f in info[2]]


def test_script_commands_of_the_master_client_are_not_checked(inproc: Any) -> None:
    """The master client has no user (Redis runs anything it sends), even
    when the default user is restricted; acl_check_cmd answers true for it."""
    inproc.call("ACL", "SETUSER", "default", "resetkeys", "~foo*", "-set")
    primary = inproc.new_client()
    primary.is_primary_link = True

    def run(c: Any, script: str) -> bytes:
        return bytes(inproc.encode(inproc.call("EVAL", script, 0, client=c)))

    assert run(primary, "return redis.call('set', 'bar', 'x')") == b"+OK\r\n"
    assert run(primary, "return redis.acl_check_cmd('set', 'bar', 'x')") == b":1\r\n"
    assert inproc.srv.acl.log == []
    plain = inproc.new_client()
    assert run(plain, "return redis.acl_check_cmd('set', 'bar', 'x')") == b"$-1\r\n"
    assert run(plain, "return redis.pcall('set', 'bar', 'x')") == b"-" + DENIED_CMD + b"\r\n"
    assert [(e.context, e.object) for e in inproc.srv.acl.log] == [(aclmod.CTX_LUA, b"set")]


@pytest.mark.parametrize(
    ("rules", "name", "full"),
    [
        # observed on 7.0.15 with SORT/SORT_RO l1 GET # (l1 readable by every user)
        (("~l*",), "sort", False),
        (("%R~*",), "sort", True),
        (("~l*", "%R~*"), "sort", True),
        (("~l*", "%W~*"), "sort", False),
        (("~l*", "~**"), "sort", False),
        (("~l*", "~?"), "sort", False),
        (("~l*", "~[*]"), "sort", False),
        (("~l*", "(~*", "+@all)"), "sort", True),
        (("~l*", "(~?", "+@all)"), "sort", False),
        (("~l*", "(~l*", "~?", "+@all)"), "sort", False),
        (("-sort", "~l*", "(~*", "-@all", "+sort_ro)"), "sort_ro", True),
    ],
)
def test_unrestricted_key_access_like_sort_asks(inproc: Any, rules: tuple[str, ...], name: str, full: bool) -> None:
    """ACLUserCheckCmdWithUnrestrictedKeyAccess: one selector must allow the
    command and every key (allkeys or a literal ``*`` pattern with read)."""
    inproc.call("ACL", "SETUSER", "s", "on", "nopass", "+@all", *rules)
    c = inproc.new_client()
    assert inproc.call("AUTH", "s", "x", client=c) == Status(b"OK")
    cmd = registry.lookup([name.encode()])
    assert cmd is not None
    assert inproc.srv.acl.unrestricted_key_access(c, cmd, [cmd.bname, b"l1", b"get", b"#"]) is full
