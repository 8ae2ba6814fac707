"""The effect path's wrapping and SELECT rules, sans server (spec/propagation.md §1-2)."""

from ambry.server.effects import (
    TARGET_AOF,
    TARGET_REPL,
    Propagator,
    RecordingSink,
    encode_command,
)


def _unit(p: Propagator, *entries: tuple[int, list[bytes], int]) -> None:
    p.begin_unit()
    for db, argv, t in entries:
        p.add(db, argv, t)
    p.end_unit()


def test_single_effect_is_not_wrapped_and_select_is_lazy() -> None:
    p = Propagator()
    sink = RecordingSink()
    p.sinks.append(sink)
    _unit(p, (0, [b"SET", b"k", b"v"], 3))
    _unit(p, (0, [b"SET", b"k2", b"v"], 3))
    assert sink.commands == [[b"SELECT", b"0"], [b"SET", b"k", b"v"], [b"SET", b"k2", b"v"]]


def test_two_effects_are_wrapped_with_select_before_multi() -> None:
    p = Propagator()
    sink = RecordingSink()
    p.sinks.append(sink)
    _unit(p, (3, [b"SET", b"x", b"1"], 3), (3, [b"SET", b"y", b"2"], 3))
    assert sink.commands == [
        [b"SELECT", b"3"],
        [b"MULTI"],
        [b"SET", b"x", b"1"],
        [b"SET", b"y", b"2"],
        [b"EXEC"],
    ]


def test_nested_units_emit_once() -> None:
    p = Propagator()
    sink = RecordingSink()
    p.sinks.append(sink)
    p.begin_unit()
    _unit(p, (0, [b"SET", b"a", b"1"], 3))
    _unit(p, (0, [b"SET", b"b", b"1"], 3))
    assert sink.commands == []
    p.end_unit()
    assert sink.commands[1:] == [[b"MULTI"], [b"SET", b"a", b"1"], [b"SET", b"b", b"1"], [b"EXEC"]]
    assert sink.units == 1


def test_no_effect_emits_nothing_and_no_sink_records_nothing() -> None:
    p = Propagator()
    assert not p.enabled
    _unit(p, (0, [b"SET", b"a", b"1"], 3))
    assert p.pending == []
    sink = RecordingSink()
    p.sinks.append(sink)
    _unit(p)
    assert sink.commands == []


def test_targets_split_aof_and_replicas() -> None:
    p = Propagator()
    aof = RecordingSink(TARGET_AOF)
    repl = RecordingSink(TARGET_REPL)
    p.sinks.append(aof)
    p.sinks.append(repl)
    _unit(p, (0, [b"SET", b"q3", b"1"], TARGET_AOF))
    _unit(p, (-1, [b"PUBLISH", b"ch", b"m"], TARGET_REPL))
    _unit(p, (0, [b"SET", b"n", b"1"], 0))  # REPL_NONE: never recorded
    assert aof.commands == [[b"SELECT", b"0"], [b"SET", b"q3", b"1"]]
    assert repl.commands == [[b"PUBLISH", b"ch", b"m"]]


def test_loading_records_nothing() -> None:
    p = Propagator()
    sink = RecordingSink()
    p.sinks.append(sink)
    p.set_loading(True)
    _unit(p, (0, [b"SET", b"a", b"1"], 3))
    p.set_loading(False)
    assert sink.commands == []


def test_encode_command_is_resp_multibulk() -> None:
    assert encode_command([b"SET", b"k", b""]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
