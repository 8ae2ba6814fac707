"""Request framing, sans-IO: the parser is fed bytes and yields argv lists."""

import pytest
from ambry.server.protocol import ProtocolError, RequestParser, split_args, string2ll
from hypothesis import given, settings
from hypothesis import strategies as st


def _feed_all(chunks: list[bytes], auth: bool = False) -> list[list[bytes]]:
    p = RequestParser()
    out: list[list[bytes]] = []
    for ch in chunks:
        p.feed(ch, auth, out)
    return [a for a in out if a]


def _mb(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def test_multibulk_and_inline_mixed() -> None:
    data = _mb(b"SET", b"k", b"v") + b"PING\r\n" + _mb(b"GET", b"k") + b'ECHO "a b"\n'
    assert _feed_all([data]) == [[b"SET", b"k", b"v"], [b"PING"], [b"GET", b"k"], [b"ECHO", b"a b"]]


@given(st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=5), min_size=1, max_size=8), st.data())
def test_any_split_gives_the_same_requests(reqs: list[list[bytes]], data: st.DataObject) -> None:
    stream = b"".join(_mb(*r) for r in reqs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert _feed_all([c for c in chunks if c]) == reqs


def test_byte_by_byte() -> None:
    stream = _mb(b"SET", b"key", b"x" * 100) * 3
    assert _feed_all([stream[i : i + 1] for i in range(len(stream))]) == [[b"SET", b"key", b"x" * 100]] * 3


def test_large_value_in_chunks() -> None:
    value = bytes(range(256)) * 4096
    stream = _mb(b"SET", b"k", value)
    chunks = [stream[i : i + 7000] for i in range(0, len(stream), 7000)]
    assert _feed_all(chunks) == [[b"SET", b"k", value]]


@pytest.mark.parametrize(
    "data,msg",
    [
        (b"*x\r\n", "Protocol error: invalid multibulk length"),
        (b"*1\r\n:5\r\n", "Protocol error: expected '$', got ':'"),
        (b"*1\r\n+PING\r\n", "Protocol error: expected '$', got '+'"),
        (b"*1\r\n$4\r\nPING\r\n*1\r\n+PING\r\n", "Protocol error: expected '$', got '+'"),
        (b"*1\r\n=8\r\ntxt:PING\r\n", "Protocol error: expected '$', got '='"),
        (b"*1\r\n$-3\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$536870913\r\n", "Protocol error: invalid bulk length"),
        (b'SET "k v\r\n', "Protocol error: unbalanced quotes in request"),
        (b"A" * (64 * 1024 + 10), "Protocol error: too big inline request"),
    ],
)
def test_protocol_errors(data: bytes, msg: str) -> None:
    p = RequestParser()
    with pytest.raises(ProtocolError) as ei:
        p.feed(data, False, [])
    assert ei.value.reply == msg


def test_requests_before_an_error_are_kept() -> None:
    p = RequestParser()
    out: list[list[bytes]] = []
    with pytest.raises(ProtocolError):
        p.feed(_mb(b"PING") + b"*1\r\n$x\r\n", False, out)
    assert out == [[b"PING"]]


def test_unauthenticated_limits() -> None:
    with pytest.raises(ProtocolError) as ei:
        RequestParser().feed(b"*11\r\n", True, [])
    assert ei.value.reply == "Protocol error: unauthenticated multibulk length"
    with pytest.raises(ProtocolError) as ei:
        RequestParser().feed(b"*1\r\n$16385\r\n", True, [])
    assert ei.value.reply == "Protocol error: unauthenticated bulk length"


def test_split_args_quoting() -> None:
    assert split_args(b'set "a\\x41\\n" \'it\\\'s\'') == [b"set", b"aA\n", b"it's"]
    assert split_args(b'"foo"bar') is None
    assert split_args(b"   ") == []


def test_string2ll_is_strict() -> None:
    assert string2ll(b"123") == 123
    assert string2ll(b"-9223372036854775808") == -(2**63)
    for bad in (b"", b"+1", b" 1", b"01", b"-0", b"9223372036854775808", b"1.0"):
        assert string2ll(bad) is None


_FRAMING = st.sampled_from([b"", b"a", b"*1\r\n", b"$0\r\n\r\n", b"\r\n", b"$4\r\n", b"\x00" * 3])


@given(st.lists(st.lists(_FRAMING, min_size=1, max_size=5), min_size=1, max_size=8), st.data())
def test_payloads_that_look_like_framing_split_anywhere(reqs: list[list[bytes]], data: st.DataObject) -> None:
    """Values holding RESP fragments (cached protocol, say) must never confuse
    the boundary detection, wherever the reads split them."""
    stream = b"".join(_mb(*r) for r in reqs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert _feed_all([c for c in chunks if c]) == reqs


@pytest.mark.parametrize("args", [
    [b"XRANGE", b"s", b"-", b"+"],
    [b"XADD", b"s", b"MAXLEN", b"~", b"10", b"*", b"f", b"v"],
    [b"XREADGROUP", b"GROUP", b"g", b"c", b"STREAMS", b"s", b">"],
    [b"SET", b"k", b"=x"],
])
def test_arguments_that_look_like_resp3_types_stay_on_the_fast_path(args: list[bytes]) -> None:
    p = RequestParser()
    out: list[list[bytes]] = []
    p.feed(_mb(*args) * 3, False, out)
    assert out == [args] * 3
    assert not p.slow


def test_a_request_split_after_a_lookalike_argument_is_reassembled_exactly() -> None:
    stream = _mb(b"XRANGE", b"s", b"-", b"+") + _mb(b"ECHO", b"+x")
    for cut in range(1, len(stream)):
        p = RequestParser()
        out: list[list[bytes]] = []
        p.feed(stream[:cut], False, out)
        p.feed(stream[cut:], False, out)
        assert out == [[b"XRANGE", b"s", b"-", b"+"], [b"ECHO", b"+x"]]


def test_simple_strings_hidden_by_a_partial_request_of_the_same_length_are_refused() -> None:
    """Seven "+x" arguments make the request 21 bytes shorter than its
    canonical framing, and a partial request of exactly 21 bytes follows
    (ending like the last argument): only re-encoding shows the request is
    not what Redis would read."""
    data = b"*9\r\n$4\r\nECHO\r\n" + b"+x\r\n" * 7 + b"$10\r\nabcdefghij\r\n" + b"*2\r\n$10\r\nabcdefghij\r\n"
    p = RequestParser()
    with pytest.raises(ProtocolError) as ei:
        p.feed(data, False, [])
    assert ei.value.reply == "Protocol error: expected '$', got '+'"


def _outcome(data: bytes, exact: bool) -> tuple[list[list[bytes]], str | None]:
    """Requests parsed from one read, and the protocol error if any."""
    p = RequestParser()
    out: list[list[bytes]] = []
    try:
        if exact:
            p._enter_slow(data, False, out)
        else:
            p.feed(data, False, out)
    except ProtocolError as e:
        return out, e.reply
    return out, None


_ELEMENT = st.one_of(
    st.binary(max_size=12).map(lambda b: b"$%d\r\n%s\r\n" % (len(b), b)),
    st.sampled_from([
        b"+x\r\n", b"+OK\r\n", b"=7\r\ntxt:abc\r\n", b"(12\r\n", b":5\r\n", b",1.5\r\n", b"#t\r\n",
        b"_\r\n", b"-ERR x\r\n", b"*1\r\n$1\r\na\r\n", b"~1\r\n$1\r\na\r\n", b">1\r\n$1\r\na\r\n",
        b"|1\r\n+a\r\n+b\r\n$1\r\na\r\n", b"%1\r\n$1\r\na\r\n$1\r\nb\r\n", b"$-1\r\n",
    ]),
)


@settings(max_examples=1000)
@given(st.lists(st.lists(_ELEMENT, min_size=1, max_size=5), min_size=1, max_size=3))
def test_one_read_with_resp3_elements_parses_as_the_exact_path_does(reqs: list[list[bytes]]) -> None:
    """Whatever non-bulk element hides in a read -- one short request (the
    re-encoding check) or several -- the fast path gives what the exact
    parser (Redis's rules) gives: the same requests, the same error."""
    data = b"".join(b"*%d\r\n" % len(r) + b"".join(r) for r in reqs)
    assert _outcome(data, exact=False) == _outcome(data, exact=True)


def test_a_big_number_after_a_complete_request_is_refused_as_redis_does() -> None:
    """hiredis reads a RESP3 big number as the bytes of its digits."""
    data = b"*1\r\n$0\r\n\r\n*1\r\n(12\r\n"
    assert _outcome(data, exact=False) == ([[b""]], "Protocol error: expected '$', got '('")
