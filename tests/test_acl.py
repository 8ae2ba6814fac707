"""ACL behaviour the corpus cannot express (tests/corpus/acl.txt has the rest).

* Several connections at once, against real redis-server and Ambry side by
  side: DELUSER and ACL LOAD disconnecting a user's clients, SETUSER
  revoking channels disconnecting subscribers, CLIENT KILL USER, users
  turned off keeping their connections.
* ACL LOG entries (everything but ``age-seconds`` and the volatile parts of
  ``client-info``), grouping and ``acllog-max-len``.
* ``aclfile``: ACL SAVE / ACL LOAD and their errors; start-up with users in
  the config, with an ACL file, with both, with bad rules; CONFIG REWRITE.
* Rule normalisation: random rule sets described like Redis (categories
  exactly, single commands as a multiset, since Redis prints those in its
  random command-dict order) and re-applied to the same bitmap.
* In process: the fast path stays free of ACL work while every user is
  unrestricted; requirepass is the default user's password; EXEC's and
  scripts' re-check texts; GENPASS.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ambry.server import acl as aclmod
from ambry.server.reply import Err
from conftest import ServerProcess, have_redis
from differential import ConnectionClosed, RespConn, parse_reply

Conn = Callable[[], RespConn]


def _alive(c: RespConn) -> bytes:
    """PING's reply, or ``closed`` when the server has disconnected the client."""
    try:
        return c.command(b"PING")
    except (ConnectionClosed, OSError):
        return b"closed"


def _reset_acl(s: ServerProcess) -> None:
    """Back to the default user only, an empty log and the default log size."""
    c = s.conn()
    try:
        users = parse_reply(c.command("ACL", "USERS"))[0][1]
        names = [u[1] for u in users if u[1] != b"default"]
        if names:
            c.command("ACL", "DELUSER", *names)
        c.command("ACL", "SETUSER", "default", "on", "nopass", "~*", "&*", "+@all")
        c.command("ACL", "LOG", "RESET")
        c.command("CONFIG", "SET", "acllog-max-len", "128")
        c.command("CONFIG", "RESETSTAT")
    finally:
        c.close()


@pytest.fixture
def both(redis: ServerProcess, ambry: ServerProcess) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """The shared redis-server and ambry-server with ACL state reset around the test."""
    for s in (redis, ambry):
        _reset_acl(s)
    yield redis, ambry
    for s in (redis, ambry):
        _reset_acl(s)


def _compare(both: tuple[ServerProcess, ServerProcess], scenario: Callable[[Conn], list[Any]]) -> list[Any]:
    redis, ambry = both
    got = []
    for s in (redis, ambry):
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
    return got[0]


# -- several connections ---------------------------------------------------------------


def test_deluser_disconnects_the_users_clients(both: tuple[ServerProcess, ServerProcess]) -> None:
    def scenario(connect: Conn) -> list[Any]:
        adm, a, b, other = connect(), connect(), connect(), connect()
        out = [adm.command("ACL", "SETUSER", "u", "on", ">p", "+@all", "~*", "&*"),
               adm.command("ACL", "SETUSER", "v", "on", ">p", "+@all", "~*", "&*")]
        out += [a.command("AUTH", "u", "p"), b.command("AUTH", "u", "p"), other.command("AUTH", "v", "p")]
        out.append(adm.command("ACL", "DELUSER", "u", "nosuch"))
        out += [_alive(a), _alive(b), _alive(other), _alive(adm)]
        # a client deleting its own user gets the reply, then is closed
        out.append(other.command("ACL", "DELUSER", "v"))
        out.append(_alive(other))
        out.append(adm.command("ACL", "USERS"))
        return out

    out = _compare(both, scenario)
    assert out[6:10] == [b"closed", b"closed", b"+PONG\r\n", b"+PONG\r\n"]
    assert out[10:12] == [b":1\r\n", b"closed"]


def test_off_resetpass_and_rule_changes_keep_clients(both: tuple[ServerProcess, ServerProcess]) -> None:
    def scenario(connect: Conn) -> list[Any]:
        adm, a = connect(), connect()
        out = [adm.command("ACL", "SETUSER", "u", "on", ">p", "+@all", "~*", "&*"), a.command("AUTH", "u", "p")]
        out.append(adm.command("ACL", "SETUSER", "u", "off", "resetpass", "-get"))
        out += [_alive(a), a.command("GET", "k"), a.command("SET", "k", "v"), a.command("ACL", "WHOAMI")]
        # a new connection cannot authenticate as an "off" user
        out.append(connect().command("AUTH", "u", "p"))
        return out

    out = _compare(both, scenario)
    assert out[3] == b"+PONG\r\n"


def test_setuser_revoking_channels_disconnects_subscribers(both: tuple[ServerProcess, ServerProcess]) -> None:
    def scenario(connect: Conn) -> list[Any]:
        adm = connect()
        out = [adm.command("ACL", "SETUSER", "p", "on", ">p", "+@all", "~*", "resetchannels", "&a*", "&b")]
        s1, s2, s3, s4 = connect(), connect(), connect(), connect()
        for s in (s1, s2, s3, s4):
            out.append(s.command("HELLO", "3", "AUTH", "p", "p")[:2])
        out += [s1.command("SUBSCRIBE", "a1"), s2.command("PSUBSCRIBE", "a*"), s3.command("SUBSCRIBE", "b")]
        # a superset of the old channels: nobody is disconnected
        out.append(adm.command("ACL", "SETUSER", "p", "&c"))
        out += [_alive(s1), _alive(s2), _alive(s3), _alive(s4)]
        # "a*" is now only matched by a literal pattern: s2 goes; s4 never subscribed
        out.append(adm.command("ACL", "SETUSER", "p", "resetchannels", "&a1", "&b"))
        out += [_alive(s1), _alive(s2), _alive(s3), _alive(s4)]
        out.append(adm.command("ACL", "SETUSER", "p", "resetchannels", "&a1"))
        out += [_alive(s1), _alive(s3)]
        return out

    out = _compare(both, scenario)
    assert out[-7:-3] == [b"+PONG\r\n", b"closed", b"+PONG\r\n", b"+PONG\r\n"]
    assert out[-2:] == [b"+PONG\r\n", b"closed"]


def test_client_kill_user(both: tuple[ServerProcess, ServerProcess]) -> None:
    def scenario(connect: Conn) -> list[Any]:
        adm, a, b = connect(), connect(), connect()
        out = [adm.command("ACL", "SETUSER", "u", "on", "nopass", "+@all", "~*")]
        out += [a.command("AUTH", "u", "x"), b.command("AUTH", "u", "y")]
        out.append(adm.command("CLIENT", "KILL", "USER", "nosuch"))
        out.append(adm.command("CLIENT", "KILL", "USER", "u", "SKIPME", "no"))
        out += [_alive(a), _alive(b), _alive(adm)]
        out.append(adm.command("CLIENT", "KILL", "USER", "u"))
        out.append(adm.command("CLIENT", "KILL", "USER", "default", "SKIPME", "yes", "ID", "999999"))
        return out

    out = _compare(both, scenario)
    assert out[4:8] == [b":2\r\n", b"closed", b"closed", b"+PONG\r\n"]


def test_noperm_replies_and_multi(both: tuple[ServerProcess, ServerProcess]) -> None:
    def scenario(connect: Conn) -> list[Any]:
        adm, a = connect(), connect()
        out = [adm.command("ACL", "SETUSER", "r", "on", "nopass", "-@all", "+@read", "+multi", "+exec",
                           "%R~r*", "~own*", "&news")]
        out.append(a.command("AUTH", "r", "x"))
        for cmd in (("GET", "r1"), ("GET", "x"), ("SET", "r1", "v"), ("SET", "own1", "v"), ("PUBLISH", "news", "m"),
                    ("MULTI",), ("GET", "x"), ("GET", "own1"), ("EXEC",), ("SUBSCRIBE", "news"),
                    ("SUBSCRIBE", "other")):
            out.append(a.command(*cmd))
        out.append(sorted(ln for ln in adm.command("INFO", "errorstats").split(b"\r\n") if b":" in ln))
        return out

    _compare(both, scenario)


# -- the ACL log -------------------------------------------------------------------------------


def _log_entries(raw: bytes) -> list[dict[bytes, Any]]:
    """ACL LOG without age-seconds and with the stable fields of client-info."""
    tree = parse_reply(raw)[0]
    out = []
    for entry in tree[1]:
        if entry[0] == "%":  # RESP3: (key, value) pairs
            pairs = [(k[1], v[1]) for k, v in entry[1]]
        else:
            flat = entry[1]
            pairs = [(flat[i][1], flat[i + 1][1]) for i in range(0, len(flat), 2)]
        d: dict[bytes, Any] = {}
        for key, val in pairs:
            if key == b"age-seconds":
                d[key] = float(val) < 5
            elif key == b"client-info":
                fields = dict(f.split(b"=", 1) for f in val.split(b" "))
                d[key] = {k: fields[k] for k in (b"name", b"flags", b"db", b"multi", b"cmd", b"user", b"resp")}
            else:
                d[key] = val
        out.append(d)
    return out


@pytest.mark.parametrize("resp", [2, 3])
def test_acl_log_entries(both: tuple[ServerProcess, ServerProcess], resp: int) -> None:
    def scenario(connect: Conn) -> list[Any]:
        adm, a = connect(), connect()
        if resp == 3:
            adm.command("HELLO", "3")
        adm.command("ACL", "SETUSER", "d", "on", "nopass", "~k*", "&c*", "+get", "+set", "+publish", "+multi",
                    "+exec", "+client|setname")
        a.command("CLIENT", "SETNAME", "logged")
        a.command("AUTH", "d", "x")
        for cmd in (("GET", "x"), ("GET", "x"), ("HGET", "h", "f"), ("PUBLISH", "x", "m"), ("MULTI",),
                    ("GET", "y"), ("EXEC",), ("AUTH", "nouser", "pw"), ("Auth", "d2", "pw"),
                    ("HELLO", "2", "AUTH", "d3", "pw"), ("SELECT", "3")):
            a.command(*cmd)
        return [_log_entries(adm.command("ACL", "LOG")), _log_entries(adm.command("ACL", "LOG", "2")),
                adm.command("ACL", "LOG", "RESET"), adm.command("ACL", "LOG")]

    out = _compare(both, scenario)
    entries = out[0]
    assert [e[b"reason"] for e in entries] == [b"command", b"auth", b"auth", b"auth", b"key", b"channel",
                                               b"command", b"key"]
    assert [e[b"object"] for e in entries[1:4]] == [b"HELLO", b"Auth", b"AUTH"]
    assert entries[-1][b"count"] == b"2"
    assert entries[-1][b"client-info"][b"cmd"] == b"get"


def test_acl_log_grouping_and_max_len(both: tuple[ServerProcess, ServerProcess]) -> None:
    def scenario(connect: Conn) -> list[Any]:
        adm, a = connect(), connect()
        adm.command("ACL", "SETUSER", "d", "on", "nopass", "~k*", "+get", "+acl|log")
        adm.command("CONFIG", "SET", "acllog-max-len", "3")
        a.command("AUTH", "d", "x")
        for key in ("a", "b", "a", "c", "d", "b"):
            a.command("GET", key)
        first = _log_entries(a.command("ACL", "LOG"))
        adm.command("CONFIG", "SET", "acllog-max-len", "1")
        kept = _log_entries(adm.command("ACL", "LOG"))  # trimmed on the next entry only
        a.command("GET", "e")
        return [first, kept, _log_entries(adm.command("ACL", "LOG"))]

    out = _compare(both, scenario)
    assert [e[b"object"] for e in out[0]] == [b"b", b"d", b"c"]
    assert [e[b"object"] for e in out[2]] == [b"e"]


# -- ACL files --------------------------------------------------------------------------------


class _Pair:
    """A redis-server and an ambry-server of the test's own, each with
    ``--aclfile users.acl`` relative to its work directory (so error texts,
    which name the file, are the same)."""

    def __init__(self, content: bytes, *extra: str) -> None:
        self.servers: list[ServerProcess] = []
        for kind in ("redis", "ambry"):
            s = ServerProcess(kind, ["--aclfile", "users.acl", *extra])
            (s.workdir / "users.acl").write_bytes(content)
            self.servers.append(s)
        for s in self.servers:
            s.start()

    def write(self, content: bytes) -> None:
        for s in self.servers:
            (s.workdir / "users.acl").write_bytes(content)

    def read(self) -> list[bytes]:
        return [(s.workdir / "users.acl").read_bytes() for s in self.servers]

    def close(self) -> None:
        for s in self.servers:
            s.stop()
            s.cleanup()


@pytest.fixture
def aclfile_pair() -> Iterator[Callable[..., _Pair]]:
    if not have_redis():
        pytest.skip("redis-server is not installed")
    made: list[_Pair] = []

    def make(content: bytes = b"", *extra: str) -> _Pair:
        p = _Pair(content, *extra)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def _run_pair(pair: _Pair, steps: list[tuple[bytes | None, tuple[str, ...]]]) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    for s in pair.servers:
        c = s.conn()
        got = []
        for content, cmd in steps:
            if content is not None:
                (s.workdir / "users.acl").write_bytes(content)
            try:
                got.append(c.command(*cmd))
            except (ConnectionClosed, OSError):
                got.append(b"closed")
                c = s.conn()
        c.close()
        out.append(got)
    return out


def test_acl_save_and_load(aclfile_pair: Callable[..., _Pair]) -> None:
    pair = aclfile_pair(b"user a on #" + b"ab" * 32 + b" ~x +get\n")
    steps: list[tuple[bytes | None, tuple[str, ...]]] = [
        (None, ("ACL", "LIST")),
        (None, ("ACL", "SETUSER", "b", "on", ">p", "~y", "+set", "(+get ~z)", "&ch")),
        (None, ("ACL", "SAVE")),
    ]
    r, a = _run_pair(pair, steps)
    assert a == r
    saved = pair.read()
    assert saved[1] == saved[0]
    assert saved[0].startswith(b"user a on #abab")
    steps = [
        (b"user b on nopass +@all ~*\n\nuser a off\n   user   c   on  \n", ("ACL", "LOAD")),
        (None, ("ACL", "LIST")),
        (b"user b bogus\nfoo\nuser\nuser d +nosuch +nosuch2 bad bad2\nuser b\nuser e (~x\nuser \"f g\" on\n"
         b"user i #xyz !abc %X~a\n# comment\n", ("ACL", "LOAD")),
        (b"user b on nopass +@all ~* &*\nuser default on >pw ~* &* +@all\nuser c on nopass -@all +acl (+get ~k)\n",
         ("ACL", "LOAD")),
        (None, ("ACL", "LIST")),
        (None, ("AUTH", "pw")),
        (None, ("ACL", "LIST")),
        (None, ("AUTH", "c", "x")),
        (None, ("ACL", "SETUSER", "default", "nopass")),
        # loading disconnects every client of a user other than default,
        # the client running ACL LOAD after its reply
        (b"user c on nopass +@all ~k &*\n", ("ACL", "LOAD")),
        (None, ("ACL", "WHOAMI")),
        (None, ("ACL", "LIST")),
        (b"", ("ACL", "LOAD")),
        (None, ("ACL", "LIST")),
        (b"user default off\n", ("ACL", "LOAD")),
        (None, ("PING",)),
    ]
    r, a = _run_pair(pair, steps)
    assert a == r
    assert r[9] == b"+OK\r\n" and r[10] == b"closed"


def test_acl_save_error_and_missing_file(aclfile_pair: Callable[..., _Pair], tmp_path: Path) -> None:
    pair = aclfile_pair(b"")
    for s in pair.servers:
        (s.workdir / "users.acl").unlink()
    r, a = _run_pair(pair, [(None, ("ACL", "LOAD")), (None, ("ACL", "LIST"))])
    assert a == r
    assert r[0].startswith(b"-ERR Error loading ACLs, opening file 'users.acl': No such file or directory")
    # a temp file that cannot be created: the reply points to the log
    for s in pair.servers:
        (s.workdir / "users.acl").mkdir()
    r, a = _run_pair(pair, [(None, ("ACL", "SAVE"))])
    assert a == r == [b"-ERR There was an error trying to save the ACLs. Please check the server logs for more "
                      b"information\r\n"]
    for s in pair.servers:
        assert "ACL file for ACL SAVE:" in s.log_text()


def _start_failure(kind: str, workdir: Path, args: list[str]) -> tuple[int, str]:
    base = ["redis-server"] if kind == "redis" else [sys.executable, "-m", "ambry.server.main"]
    proc = subprocess.run(base + args, cwd=workdir, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace")


def _last_log_messages(text: str, n: int) -> list[str]:
    """The last ``n`` log lines without pid, role, time and level."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return [re.sub(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ . ", "", ln) for ln in lines[-n:]]


@pytest.mark.parametrize(
    ("name", "acl", "args", "n"),
    [
        ("users-and-aclfile", b"user b on\n", ["--aclfile", "users.acl", "--user", "x on"], 1),
        ("missing-aclfile", None, ["--aclfile", "nonexist.acl"], 1),
        ("bad-aclfile", b"user b bogus\nuser c +nosuch\n", ["--aclfile", "users.acl"], 1),
        ("spaces-in-username", None, ["--user", "x on"], 2),
        ("unknown-command", None, ["--user", "x", "--user", "y", "+nosuch", "~*"], 2),
    ],
)
def test_startup_acl_errors(tmp_path: Path, name: str, acl: bytes | None, args: list[str], n: int) -> None:
    """ACLLoadUsersAtStartup: the same exit code and messages as redis-server."""
    if not have_redis():
        pytest.skip("redis-server is not installed")
    from conftest import free_port

    results = []
    for kind in ("redis", "ambry"):
        d = tmp_path / kind
        d.mkdir()
        if acl is not None:
            (d / "users.acl").write_bytes(acl)
        rc, out = _start_failure(kind, d, ["--port", str(free_port()), "--save", "", *args])
        results.append((rc, _last_log_messages(out, n)))
    assert results[1] == results[0]
    assert results[0][0] == 1


class _ConfServer(ServerProcess):
    """A server started from ``r.conf`` in its work directory (a config file
    must come first on the command line)."""

    def argv(self) -> list[str]:
        base = ["redis-server"] if self.kind == "redis" else [sys.executable, "-m", "ambry.server.main"]
        return base + [str(self.workdir / "r.conf"), "--port", str(self.port), "--bind", self.host, "--save", ""]


def test_config_user_directives_and_rewrite(tmp_path: Path) -> None:
    """``user`` lines (after requirepass, which they override for default)
    and what CONFIG REWRITE writes for the users."""
    if not have_redis():
        pytest.skip("redis-server is not installed")
    conf = ("requirepass foo\nuser default on nopass ~* &* +@all\n"
            "user x on >pw ~k* resetchannels &c +get (+set ~s*)\nuser y off\n")
    servers: list[ServerProcess] = []
    try:
        for kind in ("redis", "ambry"):
            s = _ConfServer(kind)
            (s.workdir / "r.conf").write_text(conf)
            servers.append(s)
        for s in servers:
            s.start()
        lists = [s.command("ACL", "LIST") for s in servers]
        assert lists[1] == lists[0]
        for s in servers:
            s.command("ACL", "SETUSER", "z", "on", "nopass", "+@all", "-@admin", "~*")
            assert s.command("CONFIG", "REWRITE") == b"+OK\r\n"
        users = [[ln for ln in (s.workdir / "r.conf").read_text().splitlines() if ln.startswith("user ")]
                 for s in servers]
        assert users[1] == users[0]
        assert len(users[0]) == 4
    finally:
        for s in servers:
            s.stop()
            s.cleanup()


# -- rule normalisation ----------------------------------------------------------------------------

_RULE_POOL = [
    "+@all", "-@all", "allcommands", "nocommands", "+get", "-get", "+set", "-set", "+config|get", "-config|set",
    "+client", "-client|kill", "+client|id", "+select|0", "+select|1", "-select", "+debug|object",
    "+object|encoding", "-object", "+acl", "-acl|setuser", "+memory|usage", "+xinfo|stream",
] + [f"{sign}@{cat}" for cat in aclmod.CATEGORIES for sign in "+-"]


def _split_rules(rules: bytes) -> tuple[list[bytes], list[bytes]]:
    """(the leading +@all/-@all and category rules, the single-command rules)."""
    toks = rules.split()
    i = 0
    while i < len(toks) and toks[i][1:2] == b"@":
        i += 1
    return toks[:i], toks[i:]


def test_random_rules_describe_like_redis(both: tuple[ServerProcess, ServerProcess]) -> None:
    """Categories chosen exactly as Redis does; the single-command rules are
    the same set (Redis's order depends on its per-process hash seed)."""
    redis, ambry = both
    rng = random.Random(7)
    rc, ac = redis.conn(), ambry.conn()
    try:
        for _ in range(60):
            rules = rng.sample(_RULE_POOL, rng.randint(1, 8))
            got = []
            for c in (rc, ac):
                c.command("ACL", "SETUSER", "rnd", "reset", *rules)
                tree = parse_reply(c.command("ACL", "GETUSER", "rnd"))[0]
                got.append(tree[1][5][1])
            (rcats, rsingle), (acats, asingle) = _split_rules(got[0]), _split_rules(got[1])
            assert acats == rcats, rules
            assert sorted(asingle) == sorted(rsingle), rules
    finally:
        rc.close()
        ac.close()


def test_described_rules_rebuild_the_same_bitmap() -> None:
    """What ACL LIST prints, applied to a fresh user, gives the same command
    bits and first-args (Redis aborts on a mismatch; here it is a test)."""
    rng = random.Random(11)
    for _ in range(300):
        u = aclmod.User(b"u", 0)
        for op in rng.sample(_RULE_POOL, rng.randint(1, 12)):
            u.apply(op.encode(), 0)
        v = aclmod.User(b"v", 0)
        for op in u.root.describe_commands().split():
            v.apply(op, 0)
        assert v.root.bits == u.root.bits
        # first-args only matter (and are only described) for a denied command
        assert {k: sorted(x) for k, x in v.root.firstargs.items() if x} == {
            k: sorted(x) for k, x in u.root.firstargs.items() if x and not (u.root.bits >> k) & 1
        }


def test_category_rules_cover_container_subcommands() -> None:
    """+@slow allows the CONFIG container, hence all its subcommands (ACLChangeSelectorPerm)."""
    u = aclmod.User(b"u", 0)
    u.apply(b"+@slow", 0)
    cfg_get = aclmod.lookup_command(b"config|get")
    assert cfg_get is not None and (u.root.bits >> cfg_get.id) & 1
    u.apply(b"-config", 0)
    assert not (u.root.bits >> cfg_get.id) & 1


# -- in process ------------------------------------------------------------------------------------


def test_fast_path_free_of_acl_work_while_unrestricted(inproc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = inproc.srv
    assert srv.acl_restricted is False and srv.gate is False

    def boom(*a: Any) -> None:
        raise AssertionError("ACL check on the fast path")

    monkeypatch.setattr(srv.acl, "check_command", boom)
    assert inproc.call("SET", "k", "v") == b"OK"
    # a user with all permissions restricts nothing
    inproc.call("ACL", "SETUSER", "full", "on", "nopass", "+@all", "~*", "&*")
    assert srv.acl_restricted is False
    monkeypatch.undo()
    inproc.call("ACL", "SETUSER", "ro", "on", "nopass", "+@read", "~*")
    assert srv.acl_restricted is True and srv.gate is True
    inproc.call("ACL", "DELUSER", "ro")
    assert srv.acl_restricted is False and srv.gate is False
    inproc.call("ACL", "SETUSER", "default", "-flushall")
    assert srv.acl_restricted is True
    err = inproc.call("FLUSHALL")
    assert isinstance(err, Err) and err.msg == b"NOPERM this user has no permissions to run the 'flushall' command"
    inproc.call("ACL", "SETUSER", "default", "+flushall")
    assert srv.acl_restricted is False


def test_requirepass_is_the_default_users_password(inproc: Any) -> None:
    srv = inproc.srv
    assert not srv.auth_required()
    inproc.call("CONFIG", "SET", "requirepass", "secret")
    assert srv.auth_required()
    assert srv.acl.default.passwords == [aclmod.hash_password(b"secret")]
    c = inproc.new_client()
    assert c.authenticated is False
    assert isinstance(inproc.call("GET", "k", client=c), Err)
    assert inproc.call("AUTH", "secret", client=c) == b"OK"
    inproc.call("CONFIG", "SET", "requirepass", "")
    assert not srv.auth_required()
    assert inproc.call("ACL", "LIST") == [b"user default on nopass ~* &* +@all"]


def test_exec_recheck_texts(inproc: Any) -> None:
    """Acl.exec_check: what EXEC answers for a queued command the rules no longer allow."""
    from ambry.server import registry

    acl = inproc.srv.acl
    c = inproc.client
    inproc.call("ACL", "SETUSER", "u", "on", "nopass", "+get", "~k", "+publish")
    inproc.call("AUTH", "u", "x")
    get = registry.lookup([b"get"])
    pub = registry.lookup([b"publish"])
    hget = registry.lookup([b"hget"])
    assert get is not None and pub is not None and hget is not None
    assert acl.exec_check(c, get, [b"get", b"k"]) is None
    head = (b"NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. "
            b"This command is no longer allowed for the following reason: ")
    e1 = acl.exec_check(c, get, [b"get", b"x"])
    e2 = acl.exec_check(c, hget, [b"hget", b"k", b"f"])
    e3 = acl.exec_check(c, pub, [b"publish", b"ch", b"m"])
    assert e1 is not None and e1.msg == head + b"no permission to touch the specified keys"
    assert e2 is not None and e2.msg == head + b"no permission to execute the command or subcommand"
    assert e3 is not None and e3.msg == head + b"no permission to access one of the channels used as arguments"
    assert [(le.reason, le.context) for le in acl.log[:3]] == [
        (aclmod.ACL_DENIED_CHANNEL, aclmod.CTX_MULTI), (aclmod.ACL_DENIED_CMD, aclmod.CTX_MULTI),
        (aclmod.ACL_DENIED_KEY, aclmod.CTX_MULTI),
    ]


def test_script_check_texts(inproc: Any) -> None:
    """Acl.script_check: the errors redis.call raises for the calling user (7.0 texts)."""
    from ambry.server import registry

    acl = inproc.srv.acl
    inproc.call("ACL", "SETUSER", "u", "on", "nopass", "+@all", "-set", "~foo*", "resetchannels", "&chan*")
    caller = inproc.new_client()
    inproc.call("AUTH", "u", "x", client=caller)
    script = inproc.new_client()
    cmds = {n: registry.lookup([n]) for n in (b"set", b"get", b"publish")}
    assert acl.script_check(script, caller, cmds[b"get"], [b"get", b"foo"]) is None
    texts = [
        acl.script_check(script, caller, cmds[b"set"], [b"set", b"foo", b"x"]),
        acl.script_check(script, caller, cmds[b"get"], [b"get", b"bar"]),
        acl.script_check(script, caller, cmds[b"publish"], [b"publish", b"other", b"x"]),
    ]
    assert [e.msg if e is not None else None for e in texts] == [
        b"ERR The user executing the script can't run this command or subcommand",
        b"ERR The user executing the script can't access at least one of the keys mentioned in the command "
        b"arguments",
        b"ERR The user executing the script can't publish to the channel mentioned in the command",
    ]
    assert acl.log[0].context == aclmod.CTX_LUA and acl.log[0].username == b"u"


def test_genpass_lengths_and_randomness(inproc: Any) -> None:
    for bits, chars in ((1, 1), (4, 1), (5, 2), (255, 64), (256, 64), (4096, 1024)):
        p = inproc.call("ACL", "GENPASS", str(bits))
        assert len(p) == chars and re.fullmatch(rb"[0-9a-f]+", p)
    assert len(inproc.call("ACL", "GENPASS")) == 64
    assert len({inproc.call("ACL", "GENPASS") for _ in range(20)}) == 20


def test_user_directive_validation_like_redis() -> None:
    """validate_user_directive, wired as Config.validate_user: Redis's
    config-time errors (including the index quirk that names the wrong word)."""
    from ambry.server.config import Config, ConfigError

    cases = {
        "user a on\nuser a off\n": "Error in user declaration 'a': Duplicate user found. A user can only be "
                                   "defined once in config files",
        "user x on bogus\n": "Error in user declaration 'x': Syntax error",
        "user x on ~a %X~b\n": "Error in user declaration 'on': Syntax error",
        "user x (~a ~b) (+get\n": "Error in user declaration '(~a': Unknown command or category name in ACL",
        "user x on #abc\n": "Error in user declaration 'x': The password hash must be exactly 64 characters "
                            "and contain only lowercase hexadecimal characters",
    }
    for text, msg in cases.items():
        cfg = Config()
        cfg.validate_user = lambda argv, cfg=cfg: aclmod.validate_user_directive(argv, cfg.users)
        with pytest.raises(ConfigError) as ei:
            cfg.load_string(text)
        assert msg in str(ei.value)
    cfg = Config()
    cfg.validate_user = lambda argv: aclmod.validate_user_directive(argv, cfg.users)
    cfg.load_string("user x on +nosuch\nuser y (~a +get)\n")
    assert cfg.users == [["x", "on", "+nosuch"], ["y", "(~a", "+get)"]]


def test_acl_commands_outside_redis_table_get_their_own_bit() -> None:
    """A registered command unknown to Redis's table is only allowed by
    +@all or by name, never by a category."""
    from ambry.server.registry import Command

    fake = Command("ambry-test-cmd", None, {"info": ["ambry-test-cmd", 1, {"set": []}, 0, 0, 0, {"set": []},
                                                      {"set": []}, {"set": []}]})
    cid = aclmod.command_id(fake)
    u = aclmod.User(b"u", 0)
    u.apply(b"+@all", 0)
    assert (u.root.bits >> cid) & 1
    u.apply(b"-@all", 0)
    for cat in aclmod.CATEGORIES:
        u.apply(b"+@" + cat.encode(), 0)
    assert not (u.root.bits >> cid) & 1
    assert aclmod.check_user(u, fake, [b"ambry-test-cmd"])[0] == aclmod.ACL_DENIED_CMD

