"""Replay ``aof/redis-7.0/effects`` (what Redis 7.0.15 wrote to its AOF for
each input command) against an in-process Ambry and compare the recorded
effects with the fixture's ``aof_raw`` rows.

The rows run in order on one server (state carries from row to row, as it
did when the fixture was made), with a RecordingSink on the one path for
effects.  Comparison is structural:

* command names compare case-insensitively (Redis logs GEOADD as ``zadd``);
* values derived from the clock are compared as offsets from *our* clock:
  the fixture marks them ``<abs> ‹now+100000ms›`` in ``aof``; unmarked ones
  (stream ids from ``*``, seconds from TIME) are recognised by being within
  minutes of the row's ``now_ms``; a value first seen as time-derived maps
  the fixture's value to ours for later rows (``XDEL x <that id>``);
* for commands whose output is random (``nondeterministic_output`` in the
  command table, e.g. SPOP), the fixture's reply values are mapped to ours.

Rows whose commands Ambry does not implement yet are skipped with a reason
naming the missing command (looked up in the registry), and so are later
rows that touch a key such a skipped row wrote.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import InProcess
from differential import parse_reply, render


def shared_fixtures() -> Path:
    env = os.environ.get("AMBRY_SHARED_FIXTURES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


EFFECTS_DIR = shared_fixtures() / "aof" / "redis-7.0" / "effects"
EFFECTS = EFFECTS_DIR / "effects.json"
INCR = EFFECTS_DIR / "appendonlydir" / "appendonly.aof.1.incr.aof"

pytestmark = pytest.mark.skipif(not EFFECTS.exists(), reason=f"shared fixtures not found at {EFFECTS_DIR}")

MARK = re.compile(r"(\d+)(?:-\d+)? \u2039now\+(\d+)ms\u203a")
WAIT = re.compile(r"wait (\d+) ms")
SECOND_CLIENT = "(client 2"


def _b(v: Any) -> bytes:
    """The fixtures' binary-safe JSON: str is UTF-8, else {"base64": ...}."""
    if isinstance(v, dict):
        return base64.b64decode(v["base64"])
    return str(v).encode()


def _parse_incr(data: bytes) -> list[list[bytes]]:
    """The INCR file's commands (RESP multibulk), annotations skipped."""
    out: list[list[bytes]] = []
    pos = 0
    while pos < len(data):
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        tree, pos = parse_reply(data, pos)
        out.append([x[1] for x in tree[1]])
    return out


@dataclass
class Row:
    index: int
    group: str
    inputs: list[list[bytes]]
    expected: list[list[bytes]]
    now_ms: int
    note: str
    replies: list[str]
    # arg positions (command index, arg index) -> offset in ms from now, from the ‹now+Nms› marks
    marked: dict[tuple[int, int], int] = field(default_factory=dict)
    setup: list[list[bytes]] = field(default_factory=list)


def load_rows() -> list[Row]:
    raw = json.loads(EFFECTS.read_text())
    rows = []
    for i, r in enumerate(raw):
        row = Row(
            index=i,
            group=r["group"],
            inputs=[[_b(a) for a in cmd] for cmd in r["input_raw"]],
            expected=[[_b(a) for a in cmd] for cmd in r["aof_raw"]],
            now_ms=int(r["now_ms"]),
            note=r.get("note", ""),
            replies=list(r.get("replies", [])),
        )
        for ci, line in enumerate(r["aof"]):
            for m in MARK.finditer(line):
                value, offset = m.group(1).encode(), int(m.group(2))
                for ai, arg in enumerate(row.expected[ci]):
                    if arg.split(b"-")[0] == value:
                        row.marked[(ci, ai)] = offset
        rows.append(row)
    _attach_setup(rows)
    return rows


def _attach_setup(rows: list[Row]) -> None:
    """Commands in the INCR file that no row lists were the generator's
    unrecorded set-up (``RPUSH lst ...`` before ``SORT lst``): run them
    before the row they precede and expect their effects there too."""
    if not INCR.exists():
        return
    aof = _parse_incr(INCR.read_bytes())
    k = 0
    for row in rows:
        extra: list[list[bytes]] = []
        for cmd in row.expected:
            while k < len(aof) and aof[k] != cmd:
                extra.append(aof[k])
                k += 1
            k += 1
        row.setup = [c for c in extra if c[0].upper() not in (b"SELECT", b"MULTI", b"EXEC")]
        row.expected = row.setup + row.expected
        row.marked = {(ci + len(row.setup), ai): off for (ci, ai), off in row.marked.items()}


ROWS = load_rows() if EFFECTS.exists() else []


# -- registry look-ups --------------------------------------------------------------


def _registry() -> Any:
    import ambry.server.commands  # noqa: F401  (registers every command)
    from ambry.server import registry

    return registry


def command_name(argv: list[bytes]) -> str:
    """``get`` or ``xgroup|create``: the name the registry and table use."""
    reg = _registry()
    name = argv[0].lower().decode()
    if len(argv) > 1 and any(k.startswith(name + "|") for k in reg._TABLE):
        sub = f"{name}|{argv[1].lower().decode()}"
        if sub in reg._TABLE:
            return sub
    return name


def missing_command(argv: list[bytes]) -> str | None:
    """The command's name when Ambry does not implement it yet."""
    reg = _registry()
    cmd = reg.lookup(argv)
    if cmd is None or cmd.handler is None:
        return command_name(argv).replace("|", " ").upper()
    return None


def written_keys(argv: list[bytes]) -> set[bytes]:
    """Keys a command names (from the command table's key specs)."""
    reg = _registry()
    cmd = reg.lookup(argv)
    if cmd is None:
        spec = reg._TABLE.get(command_name(argv))
        if spec is None or spec.get("info") is None:
            return set(argv[1:])
        cmd = reg.Command(command_name(argv), None, spec)
    return {argv[i] for i in cmd.key_positions(argv)}


def nondeterministic(argv: list[bytes]) -> bool:
    reg = _registry()
    spec = reg._TABLE.get(command_name(argv))
    if spec is None or spec.get("info") is None:
        return False
    info = reg._plain(spec["info"])
    return "nondeterministic_output" in info[7]


# -- the replay -----------------------------------------------------------------------


@dataclass
class Outcome:
    skip: str | None = None
    recorded: list[list[bytes]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    t0: int = 0
    t1: int = 0


def _split_reply_values(text: str) -> list[str]:
    """Leaf values of a fixture reply such as ``[c, a]`` or ``d``."""
    return [t for t in re.split(r"[\[\], ]+", text) if t]


class Replay:
    """Runs every row once (module scope) and keeps what each produced."""

    def __init__(self) -> None:
        self.inproc = InProcess()
        from ambry.server.effects import TARGET_AOF

        self.sink = self.inproc.record(TARGET_AOF)  # the fixture is an AOF
        self.other = self.inproc.new_client()
        self.tainted: dict[bytes, str] = {}
        self.value_map: dict[bytes, bytes] = {}
        # The db Redis's AOF stream was in before each row: a skipped row
        # must not leave our sink's SELECT tracking somewhere else.
        self.aof_db: list[int] = []
        db = -1
        for row in ROWS:
            self.aof_db.append(db)
            for c in row.expected:
                if c[0].upper() == b"SELECT":
                    db = int(c[1])
        self.outcomes: list[Outcome] = [self.run(row) for row in ROWS]

    def _skip_reason(self, row: Row) -> str | None:
        for argv in row.setup + row.inputs:
            missing = missing_command(argv)
            if missing is not None:
                return f"{missing} is not implemented yet"
        for argv in row.setup + row.inputs:
            for key in written_keys(argv):
                if key in self.tainted:
                    return f"uses key {key.decode(errors='replace')!r} from a skipped row ({self.tainted[key]})"
        return None

    def run(self, row: Row) -> Outcome:
        reason = self._skip_reason(row)
        if reason is not None:
            for argv in row.setup + row.inputs:
                for key in written_keys(argv):
                    self.tainted.setdefault(key, reason)
            return Outcome(skip=reason)
        ip = self.inproc
        # The row's effects start with "SELECT n" when its client was in db n
        # without an input SELECT (the generator's own, unrecorded SELECT).
        if row.expected and row.expected[0][0].upper() == b"SELECT" and not any(
            a[0].upper() == b"SELECT" for a in row.inputs
        ):
            ip.call(b"SELECT", row.expected[0][1])
        self.sink.tracker.db = self.aof_db[row.index]
        start = len(self.sink.commands)
        out = Outcome(t0=int(time.time() * 1000))
        for argv in row.setup:
            ip.call(*argv)
        for argv in row.inputs:
            argv = [self.value_map.get(a, a) for a in argv]
            if argv[-1].startswith(SECOND_CLIENT.encode()):
                ip.call(*argv[:-1], client=self.other)
                out.replies.append("<blocked>")
                continue
            reply = ip.call(*argv)
            try:
                out.replies.append(render(parse_reply(ip.encode(reply), 0)[0]))
            except TypeError:  # NOREPLY and the like
                out.replies.append(repr(reply))
            k = len(out.replies) - 1
            if k < len(row.replies):
                # An id Redis generated from its clock (XADD *): later
                # inputs of this and following rows name it, so they must
                # name ours.
                theirs, ours = row.replies[k].encode(), out.replies[k].encode()
                if theirs != ours and _ID.fullmatch(theirs) and _ID.fullmatch(ours):
                    self.value_map[theirs] = ours
        out.t1 = int(time.time() * 1000)
        out.recorded = [list(c) for c in self.sink.commands[start:]]
        m = WAIT.search(row.note)
        if m:
            time.sleep(int(m.group(1)) / 1000)  # let the key's TTL pass (active expiry is not running)
        return out


@pytest.fixture(scope="module")
def replay() -> Replay:
    return Replay()


def _time_offset(row: Row, ci: int, ai: int, arg: bytes) -> tuple[str, int] | None:
    """("ms"|"s", offset) when the fixture's argument was derived from its clock."""
    if (ci, ai) in row.marked:
        return "ms", row.marked[(ci, ai)]
    head = arg.split(b"-")[0]
    if not head.isdigit():
        return None
    v = int(head)
    if row.now_ms - 60_000 <= v <= row.now_ms + 10_000_000:
        return "ms", v - row.now_ms
    now_s = row.now_ms // 1000
    if now_s - 60 <= v <= now_s + 10_000:
        return "s", v - now_s
    return None


_ID = re.compile(rb"\d+-\d+")
_SCRIPT_CALL = re.compile(rb"redis\.p?call\(\s*['\"](\w+)['\"]")


def _random_output(argv: list[bytes]) -> bool:
    """The command (or a command a script body calls) has random output."""
    if nondeterministic(argv):
        return True
    return any(nondeterministic([name]) for a in argv[1:] for name in _SCRIPT_CALL.findall(a))


def compare(row: Row, out: Outcome, value_map: dict[bytes, bytes]) -> list[str]:
    """Differences between the recorded effects and the fixture's row.

    ``value_map`` carries fixture ids (``<ms>-<seq>``) to ours across rows."""
    problems: list[str] = []
    rec, exp = out.recorded, row.expected
    if len(rec) != len(exp):
        return [f"{len(rec)} effect(s) recorded, {len(exp)} expected"]
    random_map: dict[bytes, bytes] = {}
    if any(_random_output(a) for a in row.inputs):
        for theirs, ours in zip(row.replies, out.replies, strict=False):
            t, o = _split_reply_values(theirs), _split_reply_values(ours)
            if len(t) == len(o):
                random_map.update({a.encode(): b.encode() for a, b in zip(t, o, strict=True)})

    def learn(theirs: bytes, ours: bytes) -> None:
        if _ID.fullmatch(theirs):
            value_map[theirs] = ours  # later rows name this id

    for ci, (r, e) in enumerate(zip(rec, exp, strict=True)):
        if len(r) != len(e):
            problems.append(f"effect {ci}: {len(r)} args, expected {len(e)}")
            continue
        if r[0].upper() != e[0].upper():
            problems.append(f"effect {ci}: command {r[0]!r}, expected {e[0]!r}")
        for ai in range(1, len(e)):
            ra, ea = bytes(r[ai]), e[ai]
            if ra == ea:
                continue
            if ea in value_map:
                if value_map[ea] != ra:
                    problems.append(f"effect {ci} arg {ai}: {ra!r}, expected {value_map[ea]!r} (Redis: {ea!r})")
                continue
            if random_map.get(ea) == ra:
                learn(ea, ra)
                continue
            tinfo = _time_offset(row, ci, ai, ea)
            if tinfo is not None:
                unit, off = tinfo
                rhead, _, rtail = ra.partition(b"-")
                if rhead.isdigit() and rtail == ea.partition(b"-")[2]:
                    v = int(rhead)
                    base = out.t0 if unit == "ms" else out.t0 // 1000
                    slack = 5 if unit == "ms" else 1
                    span = out.t1 - out.t0 if unit == "ms" else out.t1 // 1000 - out.t0 // 1000
                    if base + off - slack <= v <= base + span + off + slack:
                        learn(ea, ra)
                        continue
                    problems.append(f"effect {ci} arg {ai}: {ra!r} is now{v - base:+d}{unit}, "
                                    f"expected now{off:+d}{unit}")
                    continue
            problems.append(f"effect {ci} arg {ai}: {ra!r}, expected {ea!r}")
    return problems


def _show(cmds: list[list[bytes]]) -> str:
    return "\n".join("    " + " ".join(repr(a)[2:-1] for a in c) for c in cmds) or "    (nothing)"


@pytest.mark.parametrize("index", range(len(ROWS)), ids=[f"{r.index:03d}-{r.group}" for r in ROWS])
def test_effects_match_redis_aof(replay: Replay, index: int) -> None:
    row = ROWS[index]
    out = replay.outcomes[index]
    if out.skip is not None:
        pytest.skip(out.skip)
    problems = compare(row, out, replay.value_map)
    if problems:
        pytest.fail(
            f"row {index} ({row.group}) inputs:\n{_show(row.setup + row.inputs)}\n"
            f"Redis 7.0.15 wrote:\n{_show(row.expected)}\nAmbry recorded:\n{_show(out.recorded)}\n"
            f"replies: {out.replies} (Redis: {row.replies})\nproblems:\n  " + "\n  ".join(problems),
            pytrace=False,
        )


def test_fixture_rows_cover_the_incr_file() -> None:
    """Every command of the INCR file belongs to a row (or a row's set-up)."""
    if not INCR.exists():
        pytest.skip("no INCR file next to effects.json")
    aof = _parse_incr(INCR.read_bytes())
    listed = [c for r in ROWS for c in r.expected]
    assert len(aof) == len(listed)
