"""Tests for ambry.server.config: the directive table, redis.conf and
command-line parsing, CONFIG GET / SET semantics and CONFIG REWRITE.

Unit tests pin Redis 7.0.15's behaviour as observed on the reference server;
the ``interop`` class re-checks it live against a real ``redis-server``.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ambry.server.config import (
    NOTIFY_ALL,
    NOTIFY_EXPIRED,
    NOTIFY_KEYEVENT,
    NOTIFY_KEYSPACE,
    REDIS_VERSION,
    SHUTDOWN_FORCE,
    SHUTDOWN_NOW,
    SHUTDOWN_SAVE,
    Config,
    ConfigError,
    directive_names,
    memtoull,
    sdscatrepr,
    sdssplitargs,
    string2d,
    string2ll,
    stringmatch,
)
from ambry.server.reply import Err

HEADER = f"\n*** FATAL CONFIG FILE ERROR (Redis {REDIS_VERSION}) ***\n"


def fatal(line_number: int, line: str, reason: str) -> str:
    return f"{HEADER}Reading the configuration file, at line {line_number}\n>>> '{line}'\n{reason}\n"


def set_err(cfg: Config, *pairs: str) -> str:
    """Run CONFIG SET expecting an error; return the error text."""
    it = iter(pairs)
    with pytest.raises(Err) as ei:
        cfg.set([(k.encode(), v.encode()) for k, v in zip(it, it, strict=True)])
    return ei.value.msg.decode()


def cset(cfg: Config, *pairs: str) -> None:
    it = iter(pairs)
    cfg.set([(k.encode(), v.encode()) for k, v in zip(it, it, strict=True)])


def cget(cfg: Config, *patterns: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in cfg.get([p.encode() for p in patterns])}


def load_error(text: str) -> str:
    with pytest.raises(ConfigError) as ei:
        Config().load_string(text)
    return str(ei.value)


# =============================================================================
# Parsing helpers ported from Redis
# =============================================================================


class TestHelpers:
    def test_string2ll_is_strict_like_redis(self) -> None:
        assert string2ll("0") == 0
        assert string2ll("-9223372036854775808") == -(1 << 63)
        for bad in ["", "+1", "007", "-0", " 1", "1 ", "9223372036854775808", "1.5", "-"]:
            assert string2ll(bad) is None, bad

    def test_memtoull_units_and_wrapping(self) -> None:
        assert memtoull("1k") == 1000
        assert memtoull("1kb") == 1024
        assert memtoull("1GB") == 1 << 30
        assert memtoull("10B") == 10
        assert memtoull("") == 0
        assert memtoull("05") == 5
        assert memtoull("99999999999999999999999") == (1 << 64) - 1  # strtoull saturates
        assert memtoull("18446744073709551615k") == ((1 << 64) - 1) * 1000 % (1 << 64)
        for bad in ["-1", "+5", " 10", "1.5gb", "0x10", "10xb", "-0"]:
            assert memtoull(bad) is None, bad

    def test_string2d_follows_strtod(self) -> None:
        assert string2d("1e1") == 10.0
        assert string2d("0x10") == 16.0
        assert string2d(" 5") == 5.0
        assert string2d("inf") == float("inf")
        for bad in ["5 ", "nan", "1e-400", "1e400", "", "1_0", "abc", "1e"]:
            assert string2d(bad) is None, bad

    def test_sdssplitargs_quoting(self) -> None:
        assert sdssplitargs('  a "b c" \'d e\'  ') == ["a", "b c", "d e"]
        assert sdssplitargs('"a\\x41\\n\\t\\"q"') == ["aA\n\t\"q"]
        assert sdssplitargs("'it\\'s'") == ["it's"]
        assert sdssplitargs('ab"cd"') == ["abcd"]
        assert sdssplitargs('""') == [""]
        assert sdssplitargs("") == []
        assert sdssplitargs('"abc"def') is None
        assert sdssplitargs('"abc') is None
        assert sdssplitargs("'abc") is None

    def test_sdscatrepr_escapes_non_printable_bytes(self) -> None:
        assert sdscatrepr('a"b\\c\n') == '"a\\"b\\\\c\\n"'
        assert sdscatrepr("\xe9") == '"\\xc3\\xa9"'

    def test_stringmatch_globs(self) -> None:
        assert stringmatch(b"max*", b"maxmemory")
        assert stringmatch(b"MAX*", b"maxmemory", nocase=True)
        assert not stringmatch(b"MAX*", b"maxmemory")
        assert stringmatch(b"h?sh-*", b"hash-max-listpack-value")
        assert stringmatch(b"[a-c]*", b"bind")
        assert not stringmatch(b"[^a-c]*", b"bind")
        assert stringmatch(b"a\\*b", b"a*b")
        assert not stringmatch(b"a\\*b", b"axb")
        assert not stringmatch(b"*", b"")  # Redis quirk: the loop never runs on an empty string


# =============================================================================
# Table and defaults
# =============================================================================


class TestDefaults:
    def test_typed_defaults(self) -> None:
        c = Config()
        assert c.port == 6379
        assert c.bind == ["*", "-::*"]
        assert c.maxmemory == 0
        assert c.appendonly is False
        assert c.save == [(3600, 1), (300, 100), (60, 10000)]
        assert c.notify_keyspace_events == 0
        assert c.client_output_buffer_limit == {
            "normal": (0, 0, 0),
            "replica": (256 << 20, 64 << 20, 60),
            "pubsub": (32 << 20, 8 << 20, 60),
        }
        assert c.busy_reply_threshold == 5000
        assert c.loglevel == "notice"
        assert c.dir == os.getcwd()
        assert c.replicaof is None
        assert c.latency_tracking_info_percentiles == [50.0, 99.0, 99.9]
        assert c.unixsocketperm == 0
        assert c.requirepass == ""
        assert c.shutdown_on_sigint == 0
        assert c.config_file is None

    def test_alias_attributes_read_the_canonical_value(self) -> None:
        c = Config()
        cset(c, "lua-time-limit", "100")
        assert c.busy_reply_threshold == 100
        assert c.lua_time_limit == 100
        assert c.slave_read_only is True

    def test_config_get_star_lists_names_and_aliases(self) -> None:
        got = cget(Config(), "*")
        assert len(got) == 192
        assert got["slaveof"] == got["replicaof"] == ""
        assert got["hash-max-ziplist-entries"] == got["hash-max-listpack-entries"] == "512"
        assert got["save"] == "3600 1 300 100 60 10000"
        assert got["client-output-buffer-limit"] == (
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        )
        assert got["bind"] == "* -::*"
        assert got["latency-tracking-info-percentiles"] == "50 99 99.9"
        assert "use-exit-on-panic" not in got
        assert set(got) == set(directive_names())

    def test_hidden_configs_need_an_exact_name(self) -> None:
        c = Config()
        assert cget(c, "use-exit*") == {}
        assert cget(c, "use-exit-on-panic") == {"use-exit-on-panic": "no"}
        assert cget(c, "loading-process-events-interval-bytes") == {
            "loading-process-events-interval-bytes": "2097152"
        }

    def test_config_get_exact_name_keeps_callers_case_and_dedups(self) -> None:
        c = Config()
        assert c.get([b"MAXMEMORY"]) == [(b"MAXMEMORY", b"0")]
        assert c.get([b"maxmemory", b"MAXMEMORY", b"max*"])[0] == (b"maxmemory", b"0")
        names = [k for k, _ in c.get([b"maxmemory", b"max*"])]
        assert len(names) == len(set(names)) == 6

    def test_config_get_pattern_matches_aliases_case_insensitively(self) -> None:
        assert cget(Config(), "SLAVE-READ-*") == {"slave-read-only": "yes"}
        assert cget(Config(), "nosuch") == {}


# =============================================================================
# CONFIG SET
# =============================================================================


class TestConfigSet:
    def test_error_texts(self) -> None:
        c = Config()
        assert set_err(c, "foo", "bar") == "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
        assert set_err(c, "maxmemory", "abc") == (
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
        )
        assert set_err(c, "DATABASES", "1") == (
            "ERR CONFIG SET failed (possibly related to argument 'DATABASES') - can't set immutable config"
        )
        assert set_err(c, "maxmemory", "1", "MAXMEMORY", "2") == (
            "ERR CONFIG SET failed (possibly related to argument 'MAXMEMORY') - duplicate parameter"
        )
        assert set_err(c, "MaxMemory", "x").endswith("argument 'maxmemory') - argument must be a memory value")
        assert set_err(c, "Slave-Read-Only", "x") == (
            "ERR CONFIG SET failed (possibly related to argument 'slave-read-only') - argument must be 'yes' or 'no'"
        )
        assert set_err(c, "port", "007").endswith("argument couldn't be parsed into an integer")
        assert set_err(c, "maxclients", "-1").endswith("argument must be between 1 and 4294967295 inclusive")
        assert set_err(c, "loglevel", "loud").endswith(
            "argument(s) must be one of the following: debug, verbose, notice, warning"
        )
        assert set_err(c, "dir", "/").endswith("can't set protected config")
        assert set_err(c, "maxmemory-clients", "101%").endswith("percentage argument must be less or equal to 100")

    def test_first_problem_wins(self) -> None:
        c = Config()
        assert "'foo'" in set_err(c, "foo", "1", "maxmemory", "1", "maxmemory", "2")
        assert "'databases'" in set_err(c, "maxmemory", "x", "databases", "1")

    def test_all_or_nothing(self) -> None:
        c = Config()
        assert "'hz'" in set_err(c, "maxmemory", "10mb", "save", "", "hz", "x")
        assert c.maxmemory == 0
        assert c.save == [(3600, 1), (300, 100), (60, 10000)]

    def test_alias_and_name_are_distinct_entries(self) -> None:
        # Redis registers an alias as its own entry: no duplicate error, last wins.
        c = Config()
        cset(c, "replica-read-only", "yes", "slave-read-only", "no")
        assert c.replica_read_only is False

    def test_values_read_back_in_redis_form(self) -> None:
        c = Config()
        cset(c, "maxmemory", "1kb", "hz", "1000", "notify-keyspace-events", "KEA", "oom-score-adj", "relative",
             "maxmemory-clients", "10%", "loglevel", "VERBOSE", "shutdown-on-sigint", "force now save")
        assert cget(c, "maxmemory", "hz", "notify-keyspace-events", "oom-score-adj", "maxmemory-clients",
                    "loglevel", "shutdown-on-sigint") == {
            "maxmemory": "1024", "hz": "500", "notify-keyspace-events": "AKE", "oom-score-adj": "yes",
            "maxmemory-clients": "10%", "loglevel": "verbose", "shutdown-on-sigint": "save now force",
        }
        assert c.maxmemory_clients == -10
        assert c.shutdown_on_sigint == SHUTDOWN_SAVE | SHUTDOWN_NOW | SHUTDOWN_FORCE
        assert c.notify_keyspace_events == NOTIFY_ALL | NOTIFY_KEYSPACE | NOTIFY_KEYEVENT

    def test_notify_keyspace_events_canonical_form(self) -> None:
        c = Config()
        cset(c, "notify-keyspace-events", "AKn")
        assert cget(c, "notify-keyspace-events")["notify-keyspace-events"] == "AK"  # Redis drops n after A
        cset(c, "notify-keyspace-events", "Ex")
        assert c.notify_keyspace_events == NOTIFY_EXPIRED | NOTIFY_KEYEVENT
        assert cget(c, "notify-keyspace-events")["notify-keyspace-events"] == "xE"

    def test_multi_arg_values_split_on_single_spaces(self) -> None:
        c = Config()
        cset(c, "save", "3600 1 300 100")
        assert c.save == [(3600, 1), (300, 100)]
        assert "Invalid save parameters" in set_err(c, "save", "3600  1")
        assert "Invalid save parameters" in set_err(c, "save", "3600 1 ")
        cset(c, "save", "")
        assert c.save == []
        cset(c, "client-output-buffer-limit", "replica 1gb 2k 3 pubsub 1 1 1")
        assert c.client_output_buffer_limit["replica"] == (1 << 30, 2000, 3)
        assert c.client_output_buffer_limit["normal"] == (0, 0, 0)
        cset(c, "bind", "")
        assert c.bind == []
        cset(c, "latency-tracking-info-percentiles", "1e1 0x10")
        assert cget(c, "latency-tracking-info-percentiles") == {"latency-tracking-info-percentiles": "10 16"}

    def test_protected_configs_follow_enable_protected_configs(self, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        c = Config()
        c.load_string("enable-protected-configs local\n")
        assert set_err(c, "dbfilename", "x.rdb").endswith("can't set protected config")
        c.set([(b"dbfilename", b"x.rdb")], local=True)
        assert c.dbfilename == "x.rdb"
        (tmp_path / "sub").mkdir()
        c.set([(b"dir", b"sub")], local=True)
        assert os.getcwd() == str(tmp_path / "sub")
        assert cget(c, "dir") == {"dir": str(tmp_path / "sub")}
        with pytest.raises(Err) as ei:
            c.set([(b"dir", b"/nonexistent/x")], local=True)
        assert ei.value.msg == (b"ERR CONFIG SET failed (possibly related to argument 'dir') - "
                                b"No such file or directory")

    def test_deny_loading_configs(self) -> None:
        with pytest.raises(Err) as ei:
            Config().set([(b"appendonly", b"yes")], loading=True)
        assert ei.value.msg == b"LOADING Redis is loading the dataset in memory"
        Config().set([(b"maxmemory", b"1")], loading=True)

    def test_is_sensitive(self) -> None:
        assert Config.is_sensitive(b"requirepass")
        assert Config.is_sensitive("MASTERAUTH")
        assert not Config.is_sensitive(b"maxmemory")


class TestHooks:
    def test_hook_sees_old_and_new_and_only_on_change(self) -> None:
        c = Config()
        calls: list[tuple[Any, Any]] = []
        c.add_hook("maxmemory", lambda old, new: calls.append((old, new)))
        cset(c, "maxmemory", "1mb")
        cset(c, "maxmemory", "1048576")
        assert calls == [(0, 1048576)]

    def test_hook_registered_by_alias(self) -> None:
        c = Config()
        calls: list[tuple[Any, Any]] = []
        c.add_hook("slave-read-only", lambda old, new: calls.append((old, new)))
        cset(c, "replica-read-only", "no")
        assert calls == [(True, False)]

    def test_failing_hook_rolls_everything_back(self) -> None:
        c = Config()
        seen: list[tuple[Any, Any]] = []
        c.add_hook("maxmemory", lambda old, new: seen.append((old, new)))

        def refuse(old: Any, new: Any) -> None:
            raise Err("ERR Unable to listen on this port. Check server logs.")

        c.add_hook("port", refuse)
        msg = set_err(c, "maxmemory", "5mb", "port", "7000")
        assert msg == ("ERR CONFIG SET failed (possibly related to argument 'port') - "
                       "Unable to listen on this port. Check server logs.")
        assert c.port == 6379 and c.maxmemory == 0
        assert seen == [(0, 5 << 20), (5 << 20, 0)]  # applied, then re-applied back

    def test_add_hook_unknown_name(self) -> None:
        with pytest.raises(KeyError):
            Config().add_hook("nosuch", lambda old, new: None)


# =============================================================================
# Config files
# =============================================================================


class TestConfigFile:
    def test_basic_file(self, tmp_path: Path) -> None:
        p = tmp_path / "r.conf"
        p.write_text('# comment\n\n  PORT 7000  \nbind 127.0.0.1 ::1\nmaxmemory 100mb\n'
                     'requirepass "p\\x41ss word"\nslaveof 10.0.0.1 6380\nhz 0\n')
        c = Config()
        c.load_file(str(p))
        assert c.config_file == str(p)
        assert (c.port, c.bind, c.maxmemory, c.requirepass) == (7000, ["127.0.0.1", "::1"], 100 << 20, "pAss word")
        assert c.replicaof == ("10.0.0.1", 6380)
        assert c.hz == 1  # clamped at the end of loading, like Redis

    def test_save_lines_replace_defaults_then_append(self) -> None:
        c = Config()
        c.load_string("save 900 1\nsave 300 10\n")
        assert c.save == [(900, 1), (300, 10)]
        c2 = Config()
        c2.load_string('save ""\n')
        assert c2.save == []

    def test_include_ends_save_appending(self, tmp_path: Path) -> None:
        # Redis's reading_config_file flag is cleared by the nested load.
        inc = tmp_path / "inc.conf"
        inc.write_text("hz 12\n")
        c = Config()
        c.load_string(f"save 100 1\ninclude {inc}\nsave 200 2\nsave 300 3\n")
        assert c.save == [(300, 3)]
        assert c.hz == 12

    def test_include_glob(self, tmp_path: Path) -> None:
        (tmp_path / "a.conf").write_text("maxmemory 1mb\n")
        (tmp_path / "b.conf").write_text("maxmemory 2mb\n")
        c = Config()
        c.load_string(f"include {tmp_path}/*.conf\ninclude {tmp_path}/none/*.conf\n")
        assert c.maxmemory == 2 << 20

    def test_include_missing_file_is_a_logged_fatal_error(self) -> None:
        with pytest.raises(ConfigError) as ei:
            Config().load_string("include /nonexistent/file.conf\n")
        assert ei.value.fatal_log
        assert str(ei.value) == "Fatal error, can't open config file '/nonexistent/file.conf': No such file or directory"

    def test_error_texts(self) -> None:
        assert load_error("port 7000\nfoo bar\n") == fatal(2, "foo bar", "Bad directive or wrong number of arguments")
        assert load_error("port 7000 7001\n") == fatal(1, "port 7000 7001", "wrong number of arguments")
        assert load_error("\t  port   abc  \t\n") == fatal(1, "port   abc", "argument couldn't be parsed into an integer")
        assert load_error('dbfilename "abc"def\n') == fatal(1, 'dbfilename "abc"def',
                                                             "Unbalanced quotes in configuration line")
        assert load_error("unixsocketperm 999\n") == fatal(1, "unixsocketperm 999",
                                                           "argument couldn't be parsed as an octal number")
        assert load_error("unixsocketperm -1\n") == fatal(1, "unixsocketperm -1",
                                                          "argument must be between 0 and 777 inclusive")
        assert load_error("notify-keyspace-events K E\n") == fatal(1, "notify-keyspace-events K E",
                                                                   "wrong number of arguments")
        assert load_error("replicaof h 65536\n") == fatal(1, "replicaof h 65536", "Invalid master port")
        assert load_error("sentinel monitor a b c d\n") == fatal(1, "sentinel monitor a b c d",
                                                                  "sentinel directive while not in sentinel mode")
        assert load_error("foo.bar\n") == fatal(1, "foo.bar", "Module config specified without value")
        assert load_error("list-max-ziplist-entries 5 6\n") == fatal(1, "list-max-ziplist-entries 5 6",
                                                                      "Bad directive or wrong number of arguments")
        assert load_error("dir /nonexistent/x\n") == fatal(1, "dir /nonexistent/x", "No such file or directory")

    def test_checks_after_the_last_line(self) -> None:
        assert load_error("logfile /nonexistent/dir/x.log\n") == (
            HEADER + "Can't open the log file: No such file or directory\n")
        assert load_error("cluster-enabled yes\nreplicaof 127.0.0.1 6379\n") == (
            HEADER + "replicaof directive not allowed in cluster mode\n")

    def test_file_only_directives_are_recorded(self) -> None:
        c = Config()
        c.load_string('rename-command FLUSHALL ""\nrename-command GET get2\nloadmodule /m.so a b\n'
                      "user bob on >pw ~* +@all\nmod.opt 5\nmod.opt 6\nlua-replicate-commands yes\nsentinel\n")
        assert c.rename_commands == [("FLUSHALL", ""), ("GET", "get2")]
        assert c.loadmodule_queue == [("/m.so", ["a", "b"])]
        assert c.users == [["bob", "on", ">pw", "~*", "+@all"]]
        assert c.module_configs_queue == {"mod.opt": "6"}

    def test_rename_command_validation(self) -> None:
        assert load_error("rename-command NOSUCH foo\n") == fatal(1, "rename-command NOSUCH foo",
                                                                   "No such command in rename-command")
        assert load_error("rename-command GET SET\n") == fatal(1, "rename-command GET SET",
                                                                "Target command name already exists")
        assert load_error("rename-command GET g2\nrename-command GET g3\n") == fatal(
            2, "rename-command GET g3", "No such command in rename-command")

    def test_user_validator_error_names_argv_like_redis(self) -> None:
        c = Config()
        c.validate_user = lambda rules: (0, "Syntax error") if "badrule" in rules else None
        with pytest.raises(ConfigError) as ei:
            c.load_string("user alice badrule\n")
        # Redis indexes argv with the rule's index: the quirk names 'user'.
        assert str(ei.value) == fatal(1, "user alice badrule", "Error in user declaration 'user': Syntax error")


# =============================================================================
# Command line
# =============================================================================


class TestCommandLine:
    def test_options_become_config_lines(self) -> None:
        assert Config.parse_command_line(["--port", "7000", "--save", "", "--loglevel", "verbose"]) == (
            None, 'port "7000" \nsave "" \nloglevel "verbose" ')
        assert Config.parse_command_line(["--save", "900", "1"]) == (None, 'save "900" "1" ')
        assert Config.parse_command_line(["--port 7000"]) == (None, "port 7000 ")

    def test_bare_save_means_empty(self) -> None:
        assert Config.parse_command_line(["--save", "--port", "1"]) == (None, 'save ""\nport "1" ')
        assert Config.parse_command_line(["--port", "1", "--save"]) == (None, 'port "1" \nsave ""')

    def test_config_file_and_stdin(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        assert Config.parse_command_line(["r.conf", "--port", "1"]) == (f"{tmp_path}/r.conf", 'port "1" ')
        assert Config.parse_command_line(["../x.conf"])[0] == f"{tmp_path.parent}/x.conf"
        assert Config.parse_command_line(["-"]) == ("-", "")

    def test_apply_args_line_numbers_count_file_and_stdin(self, tmp_path: Path) -> None:
        p = tmp_path / "r.conf"
        p.write_text("port 0\n")
        c = Config()
        with pytest.raises(ConfigError) as ei:
            c.apply_args([str(p), "--port", "abc", "-"], stdin=io.BytesIO(b"hz 5\n"))
        assert str(ei.value) == fatal(4, 'port "abc"', "argument couldn't be parsed into an integer")
        c = Config()
        c.apply_args([str(p), "--maxmemory", "1mb", "-"], stdin=io.BytesIO(b"hz 5\n"))
        assert (c.port, c.hz, c.maxmemory, c.config_file) == (0, 5, 1 << 20, str(p))

    def test_apply_args_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as ei:
            Config().apply_args([str(tmp_path / "nope.conf")])
        assert ei.value.fatal_log
        assert "can't open config file" in str(ei.value)


# =============================================================================
# CONFIG REWRITE
# =============================================================================


class TestRewrite:
    def test_without_config_file(self) -> None:
        with pytest.raises(Err) as ei:
            Config().rewrite()
        assert ei.value.msg == b"ERR The server is running without a config file"

    def test_rewrite_keeps_layout(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        p = tmp_path / "r.conf"
        p.write_text("# head\n\n\nPORT 7000\nrename-command FLUSHALL \"\"\nlist-max-ziplist-entries 5\n"
                     "Slave-Read-Only yes\nslaveof no one\nmaxmemory 1mb\nmaxmemory 2mb\n  appendfsync   always  \n"
                     "save 900 1\nsave 300 10\nhash-max-ziplist-entries 100\nrequirepass x\n")
        os.chmod(p, 0o600)
        c = Config()
        c.load_file(str(p))
        with open(p, "a") as f:
            f.write("unknown-thing 1\n")  # e.g. the config of a module no longer loaded
        cset(c, "maxmemory", "3gb", "save", "60 5", "notify-keyspace-events", "Kx", "requirepass", "",
             "client-output-buffer-limit", "pubsub 1mb 2mb 3", "hash-max-listpack-entries", "512")
        c.rewrite()
        assert p.read_text() == (
            "# head\n\nport 7000\nrename-command FLUSHALL \"\"\n# ??? list-max-ziplist-entries 5\n"
            "replica-read-only yes\n\nmaxmemory 3gb\n\nappendfsync always\nsave 60 5\n\n"
            "hash-max-listpack-entries 512\n\n# ??? unknown-thing 1\n\n"
            "# Generated by CONFIG REWRITE\n"
            f"dir \"{tmp_path}\"\n"
            "client-output-buffer-limit pubsub 1mb 2mb 3\n"
            "notify-keyspace-events \"xK\"\n"
            "latency-tracking-info-percentiles 50 99 99.9\n"
            "user default on nopass ~* &* +@all\n"
        )
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o644 & ~_umask()
        assert [f for f in os.listdir(tmp_path) if f != "r.conf"] == []

        # As in Redis, a second rewrite is not a fixed point: the one
        # client-output-buffer-limit line is reused by the first class (normal,
        # at its default) and the forced pubsub line is appended again.
        c.rewrite()
        lines = p.read_text().split("\n")
        assert "client-output-buffer-limit normal 0 0 0" in lines
        assert lines[-3:] == ["", "client-output-buffer-limit pubsub 1mb 2mb 3", ""]
        assert lines.count("# Generated by CONFIG REWRITE") == 1

    def test_rewrite_creates_missing_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        c = Config()
        c.config_file = str(tmp_path / "new.conf")
        cset(c, "maxmemory", "100", "save", "")
        c.rewrite()
        text = (tmp_path / "new.conf").read_text()
        assert text.startswith("# Generated by CONFIG REWRITE\n")
        assert "maxmemory 100\n" in text and 'save ""\n' in text

    def test_rewrite_round_trips(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        c = Config()
        c.config_file = str(tmp_path / "r.conf")
        cset(c, "maxmemory-clients", "5%", "latency-tracking-info-percentiles", "",
             "bind", "", "replica-announce-ip", "a\"b\n", "oom-score-adj-values", "1 2 3",
             "shutdown-on-sigterm", "now force", "stream-node-max-bytes", "1k")
        c.rewrite()
        c2 = Config()
        c2.load_file(c.config_file)
        assert cget(c2, "*") == cget(c, "*")


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


# =============================================================================
# Differential tests against the real redis-server
# =============================================================================


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Resp:
    """A minimal RESP2 client so error replies come back verbatim."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.f = self.sock.makefile("rb")

    def call(self, *args: str | bytes) -> Any:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a.encode("utf-8", "surrogateescape") if isinstance(a, str) else a
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self) -> Any:
        line = self.f.readline()
        if not line:
            raise ConnectionError("connection closed")
        line = line[:-2]
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest
        if t == b"-":
            return Err(rest)
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if t == b"*":
            return [self._read() for _ in range(int(rest))]
        raise AssertionError(line)

    def close(self) -> None:
        self.f.close()
        self.sock.close()


class _RealServer:
    def __init__(self, args: list[str], cwd: Path, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(["redis-server", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client = _Resp(port)
                if self.client.call("PING") == b"PONG":
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        try:
            self.client.call("SHUTDOWN", "NOSAVE")
        except OSError:
            pass
        self.client.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _pairs(reply: list[bytes]) -> dict[str, str]:
    return {reply[i].decode(): reply[i + 1].decode("utf-8", "surrogateescape") for i in range(0, len(reply), 2)}


# CONFIG SET inputs applied in order to both servers.  Settings that would
# change the reference process itself (port, bind, dir, requirepass,
# appendonly yes) are left out.
SET_CASES: list[list[str]] = [
    ["foo", "bar"], ["maxmemory", "abc"], ["maxmemory", "-1"], ["maxmemory", "1gb"], ["maxmemory", "1.5gb"],
    ["maxmemory", "10KB"], ["maxmemory", "10B"], ["maxmemory", " 10"], ["maxmemory", "18446744073709551616"],
    ["maxmemory", ""], ["maxmemory", "0x10"], ["maxmemory", "1k"], ["maxmemory", "+5"], ["maxmemory", "05"],
    ["databases", "1"], ["DATABASES", "1"], ["maxmemory", "1", "maxmemory", "2"], ["maxmemory", "1", "MAXMEMORY", "2"],
    ["MaxMemory", "x"], ["hz", "abc"], ["hz", "-1"], ["hz", "1000"], ["hz", "0"], ["hz", "10"], ["port", "70000"],
    ["port", "1.5"], ["port", ""], ["port", "+1"], ["port", "007"], ["port", "-0"], ["appendonly", "maybe"],
    ["appendonly", "NO"], ["loglevel", "loud"], ["loglevel", "VERBOSE"], ["maxmemory-policy", "lru"],
    ["maxmemory-policy", "allkeys-lfu"], ["save", "abc"], ["save", "1"], ["save", "0 1"], ["save", "1 -1"],
    ["save", "3600 1 300 100"], ["save", ""], ["save", "3600  1"], ["save", " 3600 1"], ["save", "3600 1 "],
    ["save", "1 2147483648"], ["save", "1 +5 2 -0 3 007"], ["save", "3600 1 300  "],
    ["client-output-buffer-limit", "normal 1 2"], ["client-output-buffer-limit", "master 1 2 3"],
    ["client-output-buffer-limit", "foo 1 2 3"], ["client-output-buffer-limit", "normal x 2 3"],
    ["client-output-buffer-limit", "normal 1 2 -3"], ["client-output-buffer-limit", "slave 1mb 2mb 3"],
    ["client-output-buffer-limit", "replica 1gb 2k 3 pubsub 1 1 1"], ["client-output-buffer-limit", ""],
    ["client-output-buffer-limit", "NORMAL 0 0 0 pubsub 32mb 8mb 60"],
    ["client-output-buffer-limit", "normal 0 0 4294967296"], ["client-output-buffer-limit", "normal 0 0 2147483648"],
    ["notify-keyspace-events", "KEA"], ["notify-keyspace-events", "Q"], ["notify-keyspace-events", "AKn"],
    ["notify-keyspace-events", "nmdtexzhsl$gKE"], ["notify-keyspace-events", "g$lshzxetd"],
    ["notify-keyspace-events", "Exn"], ["notify-keyspace-events", ""],
    ["oom-score-adj-values", "1 2"], ["oom-score-adj-values", "1 2 x"], ["oom-score-adj-values", "1 2 3000"],
    ["oom-score-adj-values", "0 200 800"], ["oom-score-adj", "relative"], ["oom-score-adj", "bad"],
    ["oom-score-adj", "no"], ["unixsocketperm", "777"], ["latency-tracking-info-percentiles", "50 abc"],
    ["latency-tracking-info-percentiles", "101"], ["latency-tracking-info-percentiles", "1.5 99.99 100"],
    ["latency-tracking-info-percentiles", ""], ["latency-tracking-info-percentiles", "1e1 0x10"],
    ["latency-tracking-info-percentiles", "5 "], ["latency-tracking-info-percentiles", "nan"],
    ["latency-tracking-info-percentiles", "inf"], ["latency-tracking-info-percentiles", "50.000000001"],
    ["latency-tracking-info-percentiles", "50 99 99.9"],
    ["maxmemory-clients", "10%"], ["maxmemory-clients", "101%"], ["maxmemory-clients", "abc"],
    ["maxmemory-clients", "-5"], ["maxmemory-clients", "100%"], ["maxmemory-clients", "1mb"],
    ["maxmemory-clients", "0%"], ["dbfilename", "a/b"], ["appendfilename", "a/b"], ["dir", "/nonexistent"],
    ["repl-backlog-size", "0"], ["proto-max-bulk-len", "1"], ["proto-max-bulk-len", "18446744073709551615"],
    ["slowlog-max-len", "-1"], ["active-defrag-max-scan-fields", "0"], ["maxclients", "0"], ["maxclients", "-1"],
    ["maxclients", "4294967296"], ["list-max-listpack-size", "-5"], ["list-max-ziplist-size", "5"],
    ["slowlog-log-slower-than", "-2"], ["lua-time-limit", "abc"], ["busy-reply-threshold", "-1"],
    ["lua-time-limit", "100"], ["cluster-announce-hostname", "a_b"], ["cluster-announce-hostname", "abc.def-1"],
    ["cluster-announce-hostname", "a" * 256], ["proc-title-template", "{foo}"], ["proc-title-template", "{title}"],
    ["proc-title-template", "x {{ }"], ["proc-title-template", "{title} {listen-addr} {server-mode}"],
    ["activedefrag", "yes"], ["activedefrag", "no"], ["shutdown-on-sigint", "save nosave"],
    ["shutdown-on-sigint", "foo"], ["shutdown-on-sigint", "force now save"], ["shutdown-on-sigint", "now default"],
    ["shutdown-on-sigterm", "NOW"], ["shutdown-on-sigint", ""], ["shutdown-on-sigint", "now  save"],
    ["shutdown-on-sigint", "default"], ["shutdown-on-sigterm", "default"],
    ["propagation-error-behavior", "panic"], ["propagation-error-behavior", "x"],
    ["cluster-preferred-endpoint-type", "x"], ["repl-diskless-load", "x"], ["repl-diskless-load", "swapdb"],
    ["appendfsync", "x"], ["supervised", "x"], ["acl-pubsub-default", "x"], ["acl-pubsub-default", "allchannels"],
    ["sanitize-dump-payload", "x"], ["tls-auth-clients", "x"], ["syslog-facility", "x"],
    ["masterauth", "x", "databases", "1"], ["databases", "1", "foo", "1"], ["maxmemory", "x", "databases", "1"],
    ["maxmemory", "1", "maxmemory", "x"], ["foo", "1", "maxmemory", "1", "maxmemory", "2"],
    ["maxmemory", "7", "slave-read-only", "x"], ["Slave-Read-Only", "x"],
    ["replica-read-only", "yes", "slave-read-only", "no"], ["slave-read-only", "yes"], ["masterauth", "foo"],
    ["masterauth", ""], ["masteruser", "bob"], ["io-threads", "2"], ["tcp-keepalive", "99999999999"],
    ["tcp-keepalive", "9223372036854775808"], ["maxmemory", "-0"], ["cluster-node-timeout", "9223372036854775807"],
    ["repl-backlog-ttl", "-1"], ["hash-max-listpack-value", "-1"], ["hash-max-ziplist-value", "1k"],
    ["hash-max-listpack-entries", "1k"], ["stream-node-max-bytes", "1k"], ["set-max-intset-entries", "-1"],
    ["active-defrag-ignore-bytes", "0"], ["client-query-buffer-limit", "1"], ["auto-aof-rewrite-min-size", "-1"],
    ["lfu-log-factor", "1 2"], ["appendonly", "yes no"], ["maxmemory", "1 2"], ["use-exit-on-panic", "yes"],
    ["lua-enable-deprecated-api", "yes"], ["loading-process-events-interval-bytes", "1"], ["socket-mark-id", "1"],
    ["replicaof", "no one"], ["slaveof", "127.0.0.1 1"], ["bind-source-addr", "127.0.0.1"],
    ["replica-announce-ip", "10.0.0.1"], ["ignore-warnings", "ARM64-COW-BUG"], ["tls-port", "99999"],
    ["maxmemory", "0"],
]

BAD_FILES: dict[str, str] = {
    "baddirective": "port 7000\nfoo bar\n",
    "wrongargs": "port 7000 7001\n",
    "badint": "port abc\n",
    "badbool": "appendonly maybe\n",
    "badmem": "maxmemory 10xb\n",
    "unbalanced": 'dbfilename "abc\n',
    "unbalanced2": "dbfilename 'abc\n",
    "closingquote": 'dbfilename "abc"def\n',
    "badenum": "loglevel loud\n",
    "enumtwo": "loglevel notice verbose\n",
    "badsave": "save 0 1\n",
    "badsave2": "save empty\n",
    "save_after_empty": 'save ""\nsave 1 2 3\n',
    "badcobl": "client-output-buffer-limit normal 1 2\n",
    "cobl_secs": "client-output-buffer-limit normal 1 2 2147483648\n",
    "badnotify": "notify-keyspace-events Q\n",
    "notifyargs": "notify-keyspace-events K E\n",
    "badoom": "oom-score-adj-values 1 2\n",
    "badperm": "unixsocketperm 999\n",
    "badperm2": "unixsocketperm -1\n",
    "badperm3": "unixsocketperm 1000\n",
    "socketmark": "socket-mark-id -1\n",
    "badreplicaof": "replicaof localhost abc\n",
    "replicaof_port": "replicaof localhost 65536\n",
    "replicaof1": "replicaof localhost\n",
    "renamebad": "rename-command NOSUCH foo\n",
    "renameexists": "rename-command GET SET\n",
    "renametwice": "rename-command GET g2\nrename-command GET g3\n",
    "renameargs": "rename-command GET\n",
    "sentinel": "sentinel monitor a b c d\n",
    "modcfg": "foo.bar\n",
    "include_glob_missing": "include /nonexistent/*.conf\nport abc\n",
    "include_args": "include\n",
    "logfile": "logfile /nonexistent/dir/x.log\n",
    "clusterreplica": "cluster-enabled yes\nreplicaof 127.0.0.1 6379\n",
    "tabs": "\t  port   abc  \t\n",
    "crlf": "port 7000\r\nport abc\r\n",
    "escapes": 'dbfilename "a\\x41\\n\\tb"x\n',
    "binding": "bind " + " ".join(["127.0.0.1"] * 17) + "\n",
    "percentiles": "latency-tracking-info-percentiles 50 abc\n",
    "percentiles_range": "latency-tracking-info-percentiles inf\n",
    "hostname": "cluster-announce-hostname a_b\n",
    "hostname_long": f"cluster-announce-hostname {'a' * 256}\n",
    "dbfilename": "dbfilename a/b\n",
    "appendfilename": 'appendfilename ""\n',
    "appenddirname": "appenddirname a/b\n",
    "activedefrag": "activedefrag yes\n",
    "dirbad": "dir /nonexistent/x\n",
    "shutdown": "shutdown-on-sigint save nosave\n",
    "shutdown_empty": 'shutdown-on-sigint ""\n',
    "maxmemclients": "maxmemory-clients 200%\n",
    "emptyline_then_bad": "# comment\n\n   \nport 1 2\n",
    "deprecated_ok": "list-max-ziplist-entries 5\nlua-replicate-commands yes\nport abc\n",
    "deprecated_bad": "list-max-ziplist-entries 5 6\n",
    "upper": "PORT abc\n",
    "emptyquotes": '""\nport abc\n',
    "quotedname": '"port" abc\n',
    "nonprint": "foo \x01bar\n",
    "hz_then_bad": "hz 0\nport abc\n",
    "maxclients": "maxclients 0\n",
    "bool_empty": 'appendonly ""\n',
    "int_space": 'port " 7000"\n',
    "io_threads": "io-threads 200\n",
    "databases": "databases 0\n",
    "template": 'proc-title-template "{title}"\n',
    "hidden_bool": "lua-enable-deprecated-api maybe\n",
}

BAD_ARGS: list[list[str]] = [
    ["--port", "abc"], ["--foo", "bar", "baz"], ["--save", "--port", "abc"], ["--port"], ["--port", "7000", "7001"],
    ["--port 7000 7001"], ["--dbfilename", 'a b\x01"', "--foo"], ["--loglevel", "verbose", "x", "--port", "x"],
    ["--port", "--save", "x"], ["--save", "1", "--save", "x"], ["--port", "0", "extra"],
    ["--port", "0", "-", "--foo"], ["--Port", "x"], ["-x", "--port", "y"], ["--", "x"], ['--"port"', "x"],
    ["--port", "x y", "z"], ["--save", "--save", "1", "--port", "x"], ["--dbfilename", "\xe9\n\t\\\"", "--port", "x"],
]


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
class TestAgainstRedis:
    @pytest.fixture
    def real(self, tmp_path: Path) -> Iterator[_RealServer]:
        port = _free_port()
        server = _RealServer(["--port", str(port), "--daemonize", "no"], tmp_path, port)
        try:
            yield server
        finally:
            server.stop()

    def test_config_get_star_names_and_defaults(self, real: _RealServer, tmp_path: Path) -> None:
        theirs = _pairs(real.client.call("CONFIG", "GET", "*"))
        c = Config()
        cset(c, "port", str(real.port))
        ours = cget(c, "*")
        assert theirs.pop("dir") == str(tmp_path)  # host specific: the server's cwd
        ours.pop("dir")
        assert ours == theirs

    def test_config_get_patterns(self, real: _RealServer) -> None:
        c = Config()
        cset(c, "port", str(real.port))
        for pats in (["max*"], ["*-entries"], ["slave-*"], ["[ab]*"], ["MAXMEMORY"], ["use-exit-on-panic"],
                     ["use-exit*"], ["hash-max-z?plist-*"], ["*\\-read*"], ["maxmemory", "MAXMEMORY", "max*"],
                     ["[^a-r]*"], ["*[z-a]*"], ["nosuch"], ["key-load-delay", "watchdog-period"], ["*"]):
            theirs = real.client.call("CONFIG", "GET", *pats)
            ours = [x for kv in c.get([p.encode() for p in pats]) for x in kv]
            t = dict(zip(theirs[::2], theirs[1::2], strict=True))
            o = dict(zip(ours[::2], ours[1::2], strict=True))
            assert len(o) * 2 == len(ours) and len(t) * 2 == len(theirs), pats
            assert (t.pop(b"dir", None) is None) == (o.pop(b"dir", None) is None), pats
            assert o == t, pats

    def test_config_set_errors_and_values(self, real: _RealServer) -> None:
        c = Config()
        cset(c, "port", str(real.port))
        for case in SET_CASES:
            theirs = real.client.call("CONFIG", "SET", *case)
            try:
                c.set([(case[i].encode(), case[i + 1].encode()) for i in range(0, len(case), 2)])
                ours: Any = b"OK"
            except Err as e:
                ours = e
            if isinstance(theirs, Err):
                assert isinstance(ours, Err) and ours.msg == theirs.msg, case
            else:
                assert ours == theirs, case
            names = [n for n in case[::2] if n != "dir"]
            if names:
                assert _pairs(real.client.call("CONFIG", "GET", *names)) == cget(c, *names), case

    def test_bad_config_files(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        for name, text in BAD_FILES.items():
            path = tmp_path / f"{name}.conf"
            path.write_bytes(text.encode("utf-8", "surrogateescape"))
            self._compare_startup([str(path), "--port", "0"], tmp_path)

    def test_bad_command_lines(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        for args in BAD_ARGS:
            self._compare_startup(args, tmp_path)
        self._compare_startup(["missing.conf", "--port", "0"], tmp_path)
        (tmp_path / "one.conf").write_text("port 0\n")
        self._compare_startup(["-"], tmp_path, b"port 0\nfoo bar\n")
        self._compare_startup(["-", "--port", "abc"], tmp_path, b"port 0\nloglevel verbose\n")
        self._compare_startup(["one.conf", "-", "--port", "x"], tmp_path, b"hz 5\n")

    @staticmethod
    def _compare_startup(args: list[str], cwd: Path, stdin: bytes = b"") -> None:
        proc = subprocess.run(["redis-server", *args], cwd=cwd, capture_output=True, input=stdin, timeout=10)
        with pytest.raises(ConfigError) as ei:
            Config().apply_args(args, stdin=io.BytesIO(stdin))
        os.chdir(cwd)
        text = str(ei.value).encode("utf-8", "surrogateescape")
        assert proc.returncode == 1, args
        if ei.value.fatal_log:
            assert proc.stderr == b"" and text in proc.stdout, args
        else:
            assert proc.stderr == text, args

    def test_config_rewrite_matches(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        port = _free_port()
        base = ("# head\n\n\nPORT {port}\nrename-command FLUSHALL \"\"\nlist-max-ziplist-entries 5\n"
                "Slave-Read-Only yes\nslaveof no one\nmaxmemory 1mb\nmaxmemory 2mb\n  appendfsync   always  \n"
                "lua-replicate-commands yes\nsave 900 1\nsave 300 10\nhash-max-ziplist-entries 100\n"
                "bind 127.0.0.1\nclient-output-buffer-limit normal 0 0 0\n")
        (tmp_path / "real").mkdir()
        (tmp_path / "ours").mkdir()
        (tmp_path / "real" / "r.conf").write_text(base.format(port=port))
        (tmp_path / "ours" / "r.conf").write_text(base.format(port=port))
        sets = [["maxmemory", "3gb"], ["save", "60 5"], ["notify-keyspace-events", "Kx"],
                ["client-output-buffer-limit", "pubsub 1mb 2mb 3 replica 1 2 3"],
                ["hash-max-listpack-entries", "512"], ["latency-tracking-info-percentiles", "1 2.5"],
                ["maxmemory-clients", "5%"], ["replica-announce-ip", 'a"b'], ["requirepass", "s3cr\"et"]]
        real = _RealServer(["r.conf"], tmp_path / "real", port)
        try:
            for s in sets:
                assert real.client.call("CONFIG", "SET", *s) == b"OK"
            real.client.call("AUTH", "s3cr\"et")
            assert real.client.call("CONFIG", "REWRITE") == b"OK"
        finally:
            real.stop()
        monkeypatch.chdir(tmp_path / "ours")
        c = Config()
        c.apply_args(["r.conf"])
        for s in sets:
            cset(c, *s)
        c.rewrite()
        theirs = (tmp_path / "real" / "r.conf").read_text().replace(str(tmp_path / "real"), "DIR")
        ours = (tmp_path / "ours" / "r.conf").read_text().replace(str(tmp_path / "ours"), "DIR")
        # Lines Redis appends come out in its dict's order: compare them as a set.
        t_head, _, t_tail = theirs.partition("# Generated by CONFIG REWRITE\n")
        o_head, _, o_tail = ours.partition("# Generated by CONFIG REWRITE\n")
        assert o_head == t_head
        assert sorted(o_tail.splitlines()) == sorted(t_tail.splitlines())


def test_one_argument_to_a_multi_argument_directive_is_split_like_redis() -> None:
    cfg = Config()
    cfg.apply_args(["--save", "900 1 300 10", "--bind", "127.0.0.1 ::1"])
    assert cfg.save == [(900, 1), (300, 10)]
    assert list(cfg.bind) == ["127.0.0.1", "::1"]
    cfg = Config()
    cfg.apply_args(["--save", ""])
    assert cfg.save == []
