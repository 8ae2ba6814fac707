"""Reply encoding: the one-join encoder of arrays of bulk strings agrees with
the element-by-element one, in both protocols, for any sizes."""

from ambry.server.reply import Bulks, to_bytes
from hypothesis import given
from hypothesis import strategies as st

_SIZES = st.one_of(st.integers(0, 20), st.sampled_from([9999, 10000, 10001, 70000]))


@given(st.lists(_SIZES.map(lambda n: b"v" * n), max_size=30), st.booleans())
def test_bulks_encode_like_a_list_of_bytes(elements: list[bytes], resp3: bool) -> None:
    wire = to_bytes(Bulks(elements), resp3)
    assert wire == to_bytes(list(elements), resp3)
    assert wire == b"*%d\r\n" % len(elements) + b"".join(b"$%d\r\n%s\r\n" % (len(e), e) for e in elements)


def test_bulks_nested_in_a_reply() -> None:
    assert to_bytes([Bulks([b"a", b""]), 1]) == b"*2\r\n*2\r\n$1\r\na\r\n$0\r\n\r\n:1\r\n"
    assert to_bytes(Bulks([b"x"] * 2000)) == b"*2000\r\n" + b"$1\r\nx\r\n" * 2000
