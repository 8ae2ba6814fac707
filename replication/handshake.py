"""The replica side of the replication link, from the first PING to streaming.

A sans-IO state machine (no sockets, no clocks): the caller connects, calls
:meth:`ReplicaHandshake.start`, writes every :class:`Send` it gets, and feeds
whatever the primary sends to :meth:`ReplicaHandshake.feed`, which returns
events.  ``repl-timeout`` and reconnecting are the caller's business
(replication.md §8).

The sequence follows ``syncWithMaster`` / ``slaveTryPartialResynchronization``
/ ``readSyncBulkPayload`` of Redis 7.0 (replication.md §2, §3, §4):

1. ``PING``; any ``+`` reply is fine, and so are errors starting with
   ``-NOAUTH``, ``-NOPERM`` or ``-ERR operation not permitted`` (the AUTH
   that follows fixes them); any other reply ends the attempt.
2. ``AUTH [<masteruser>] <masterauth>`` (only with ``masterauth``),
   ``REPLCONF listening-port <port>``, ``REPLCONF ip-address <ip>`` (only
   with an announce ip) and ``REPLCONF capa eof capa psync2``, written at
   once; then one reply per command, in order.  An AUTH error ends the
   attempt; REPLCONF errors are ignored.
3. ``PSYNC <replid> <offset> [FAILOVER]`` (``PSYNC ? -1`` without a cached
   primary), written only after the last REPLCONF reply: a primary refuses
   PSYNC while replies to earlier commands of the connection are still
   unsent (``SYNC and PSYNC are invalid with pending output``, §3 item 5), so
   it cannot be pipelined behind the REPLCONFs.
4. The PSYNC reply (§2, §3): ``+FULLRESYNC <replid> <offset>`` -> the RDB
   follows; ``+CONTINUE [<replid>]`` -> the stream follows at once;
   ``-NOMASTERLINK`` / ``-LOADING`` -> try again later; anything else -> the
   primary predates PSYNC: send the inline ``SYNC\\r\\n`` and expect the ``$``
   line directly (a "legacy" link: no ACKs are sent on it, §7).  During a
   coordinated failover (§15) anything but FULLRESYNC/CONTINUE aborts.
5. The RDB header line and payload (§4.1, §4.2): ``$<n>`` then exactly ``n``
   bytes with no CRLF after them, or ``$EOF:<40-char mark>`` then the payload
   ending with the mark.  The mark is found wherever the input is split: up
   to 39 bytes are held back so no :class:`RdbChunk` carries any mark bytes.
6. Everything after the payload (or after the ``+CONTINUE`` line) is
   :class:`StreamData` for the command-stream applier (replication.stream).

Empty lines (``\\n`` or ``\\r\\n``) are the primary's keepalives (§4.3): they
are skipped, reported as :class:`Keepalive`, wherever a reply line or the
``$`` line is awaited.  Lines longer than 64 KiB end the attempt.  Input may
be split anywhere: feeding one byte at a time gives the same events, apart
from how the RDB and stream bytes are cut into chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINE = 64 * 1024
EOF_MARK_LEN = 40  # CONFIG_RUN_ID_SIZE


@dataclass
class HandshakeConfig:
    """What the replica announces and asks for on one connection attempt."""

    listening_port: int
    announce_ip: str | None = None
    masteruser: str | None = None
    masterauth: str | None = None
    psync_replid: str | None = None  # None -> "PSYNC ? -1"
    psync_offset: int = -1  # offset to request (processed offset + 1)
    failover: bool = False  # adds the 4th PSYNC argument FAILOVER


@dataclass(frozen=True)
class Send:
    """Bytes to write to the primary, in order."""

    data: bytes


@dataclass(frozen=True)
class Keepalive:
    """A bare newline from the primary: liveness only, not stream data."""


@dataclass(frozen=True)
class FullResync:
    """``+FULLRESYNC <replid> <offset>``: an RDB snapshot at that offset follows."""

    replid: str
    offset: int


@dataclass(frozen=True)
class Continue:
    """``+CONTINUE [<replid>]``: partial resync accepted, the stream follows."""

    replid: str | None


@dataclass(frozen=True)
class RdbBegin:
    """The ``$`` line: the payload size, or None for an EOF-mark transfer."""

    size: int | None


@dataclass(frozen=True)
class RdbChunk:
    """RDB payload bytes, in order, never including the EOF mark."""

    data: bytes


@dataclass(frozen=True)
class RdbEnd:
    """The RDB payload is complete."""


@dataclass(frozen=True)
class StreamData:
    """Command-stream bytes (after the RDB, or after ``+CONTINUE``)."""

    data: bytes


@dataclass(frozen=True)
class Failed:
    """This attempt is over; the caller drops the link and retries later.

    ``retry_later`` is True when the primary said it cannot serve a sync
    *now* (``-NOMASTERLINK``, ``-LOADING``) rather than reporting an error."""

    reason: str
    retry_later: bool


@dataclass(frozen=True)
class Legacy:
    """The primary refused PSYNC, so SYNC was sent (no ACKs on this link)."""


Event = Send | Keepalive | FullResync | Continue | RdbBegin | RdbChunk | RdbEnd | StreamData | Failed | Legacy


def _resp(*args: str) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _text(line: bytes) -> str:
    """A reply line for a log message."""
    return line.decode("utf-8", "replace")


# Internal phases (``state`` is the coarser ROLE name).
_IDLE = "idle"
_PING = "ping"  # waiting for the PING reply
_REPLIES = "replies"  # waiting for AUTH / REPLCONF replies
_PSYNC = "psync"  # waiting for the PSYNC reply
_HEADER = "header"  # waiting for the "$" line
_SIZED = "sized"  # reading a "$<n>" payload
_MARKED = "marked"  # reading an "$EOF:<mark>" payload
_STREAM = "stream"  # everything is stream data
_FAILED = "failed"


class ReplicaHandshake:
    """Drives one connection attempt to a primary: handshake, sync, stream."""

    def __init__(self, cfg: HandshakeConfig) -> None:
        self.cfg = cfg
        self.state = "connecting"  # as ROLE prints it: connecting, handshake, sync, connected
        self.legacy = False  # SYNC was used instead of PSYNC
        self.transfer_size = -1  # -1 until the "$" line, 0 for an EOF-mark transfer
        self.transfer_read = 0  # payload bytes received so far (EOF mark included)
        self._phase = _IDLE
        self._line = bytearray()  # partial line
        self._expect: list[str] = []  # pending replies: "auth", "port", "ip", "capa"
        self._remaining = 0  # "$<n>" payload bytes still to come
        self._mark = b""
        self._tail = b""  # held-back payload bytes that may begin the EOF mark

    @property
    def failed(self) -> bool:
        """True once a Failed event was emitted (further input is ignored)."""
        return self._phase == _FAILED

    def start(self) -> list[Event]:
        """The TCP connection is up: send PING."""
        if self._phase != _IDLE:
            raise RuntimeError("start() called twice")
        self.state = "handshake"
        self._phase = _PING
        return [Send(_resp("PING"))]

    def feed(self, data: bytes) -> list[Event]:
        """Process bytes from the primary; returns the resulting events in order."""
        phase = self._phase
        if phase == _STREAM:
            return [StreamData(bytes(data))] if data else []
        if phase == _FAILED or not data:
            return []
        if phase == _IDLE:
            raise RuntimeError("feed() called before start()")
        data = bytes(data)
        events: list[Event] = []
        i, n = 0, len(data)
        while i < n:
            phase = self._phase
            if phase == _SIZED:
                i = self._read_sized(data, i, events)
            elif phase == _MARKED:
                i = self._read_marked(data, i, events)
            elif phase == _STREAM:
                events.append(StreamData(data[i:] if i else data))
                break
            elif phase == _FAILED:
                break
            else:
                nl = data.find(b"\n", i)
                if nl < 0:
                    self._line += data[i:]
                    if len(self._line) > MAX_LINE:
                        self._fail(events, "Protocol error from MASTER: reply line too long")
                    break
                if self._line:
                    self._line += data[i:nl]
                    line = bytes(self._line)
                    self._line.clear()
                else:
                    line = data[i:nl]
                i = nl + 1
                if len(line) > MAX_LINE:
                    self._fail(events, "Protocol error from MASTER: reply line too long")
                    break
                if line.endswith(b"\r"):
                    line = line[:-1]
                if not line:
                    events.append(Keepalive())
                    continue
                self._on_line(line, events)
        return events

    # -- replies ---------------------------------------------------------

    def _fail(self, events: list[Event], reason: str, retry_later: bool = False) -> None:
        self._phase = _FAILED
        self._line.clear()
        events.append(Failed(reason, retry_later))

    def _on_line(self, line: bytes, events: list[Event]) -> None:
        """One non-empty reply line, according to the current phase."""
        phase = self._phase
        if phase == _PING:
            if not (
                line.startswith(b"+")
                or line.startswith(b"-NOAUTH")
                or line.startswith(b"-NOPERM")
                or line.startswith(b"-ERR operation not permitted")
            ):
                self._fail(events, f"Error reply to PING from master: '{_text(line)}'")
                return
            self._send_handshake(events)
        elif phase == _REPLIES:
            what = self._expect.pop(0)
            if what == "auth" and line.startswith(b"-"):
                self._fail(events, f"Unable to AUTH to MASTER: {_text(line)}")
                return
            # REPLCONF errors are not critical: older primaries lack some options.
            if not self._expect:
                self._send_psync(events)
        elif phase == _PSYNC:
            self._on_psync_reply(line, events)
        elif phase == _HEADER:
            self._on_bulk_header(line, events)

    def _send_handshake(self, events: list[Event]) -> None:
        """AUTH and the REPLCONFs, written at once after the PING reply."""
        cfg = self.cfg
        out: list[bytes] = []
        self._expect = []
        if cfg.masterauth is not None:
            if cfg.masteruser is not None:
                out.append(_resp("AUTH", cfg.masteruser, cfg.masterauth))
            else:
                out.append(_resp("AUTH", cfg.masterauth))
            self._expect.append("auth")
        out.append(_resp("REPLCONF", "listening-port", str(cfg.listening_port)))
        self._expect.append("port")
        if cfg.announce_ip is not None:
            out.append(_resp("REPLCONF", "ip-address", cfg.announce_ip))
            self._expect.append("ip")
        out.append(_resp("REPLCONF", "capa", "eof", "capa", "psync2"))
        self._expect.append("capa")
        self._phase = _REPLIES
        events.append(Send(b"".join(out)))

    def _send_psync(self, events: list[Event]) -> None:
        """PSYNC with the cached primary's id and offset, or ``? -1``."""
        cfg = self.cfg
        if cfg.psync_replid is not None:
            args = ["PSYNC", cfg.psync_replid, str(cfg.psync_offset)]
        else:
            args = ["PSYNC", "?", "-1"]
        if cfg.failover:
            args.append("FAILOVER")
        self._phase = _PSYNC
        events.append(Send(_resp(*args)))

    def _on_psync_reply(self, line: bytes, events: list[Event]) -> None:
        if line.startswith(b"+FULLRESYNC"):
            parts = line.split(b" ")
            offset = _parse_offset(parts[2]) if len(parts) >= 3 else None
            if len(parts) < 3 or len(parts[1]) != EOF_MARK_LEN or offset is None:
                self._fail(events, "Master replied with wrong +FULLRESYNC syntax.")
                return
            self.state = "sync"
            self._phase = _HEADER
            events.append(FullResync(_text(parts[1]), offset))
            return
        if line.startswith(b"+CONTINUE"):
            # Redis accepts a new id only when exactly 40 characters follow.
            rest = line[9:].lstrip(b" \r\n")
            replid = _text(rest) if len(rest) == EOF_MARK_LEN else None
            self.state = "connected"
            self._phase = _STREAM
            events.append(Continue(replid))
            return
        if self.cfg.failover:
            self._fail(events, f"Failover target rejected psync request (reply: {_text(line)})")
            return
        if line.startswith(b"-NOMASTERLINK") or line.startswith(b"-LOADING"):
            self._fail(
                events,
                f"Master is currently unable to PSYNC but should be in the future: {_text(line)}",
                retry_later=True,
            )
            return
        # Not understood (an error, or an unexpected reply): fall back to SYNC.
        self.legacy = True
        self.state = "sync"
        self._phase = _HEADER
        events.append(Send(b"SYNC\r\n"))
        events.append(Legacy())

    def _on_bulk_header(self, line: bytes, events: list[Event]) -> None:
        """The ``$`` line that announces the RDB payload (§4.4 step 1)."""
        if line.startswith(b"-"):
            self._fail(events, f"MASTER aborted replication with an error: {_text(line[1:])}")
            return
        if not line.startswith(b"$"):
            self._fail(
                events,
                "Bad protocol from MASTER, the first byte is not '$' "
                f"(we received '{_text(line)}'), are you sure the host and port are right?",
            )
            return
        if line.startswith(b"$EOF:"):
            if len(line) - 5 < EOF_MARK_LEN:
                self._fail(events, f"Bad protocol from MASTER, EOF mark too short: '{_text(line)}'")
                return
            self._mark = line[5 : 5 + EOF_MARK_LEN]
            self._tail = b""
            self.transfer_size = 0
            self._phase = _MARKED
            events.append(RdbBegin(None))
            return
        size = _parse_offset(line[1:])
        if size is None or size < 0:
            self._fail(events, f"Bad protocol from MASTER, invalid bulk length: '{_text(line)}'")
            return
        self.transfer_size = size
        self._remaining = size
        events.append(RdbBegin(size))
        if size == 0:
            self._finish(events)
        else:
            self._phase = _SIZED

    # -- payload ---------------------------------------------------------

    def _finish(self, events: list[Event]) -> None:
        self._phase = _STREAM
        self.state = "connected"
        self._tail = b""
        events.append(RdbEnd())

    def _read_sized(self, data: bytes, i: int, events: list[Event]) -> int:
        """Take up to the announced number of payload bytes from ``data[i:]``."""
        take = min(self._remaining, len(data) - i)
        events.append(RdbChunk(data if i == 0 and take == len(data) else data[i : i + take]))
        self._remaining -= take
        self.transfer_read += take
        if self._remaining == 0:
            self._finish(events)
        return i + take

    def _read_marked(self, data: bytes, i: int, events: list[Event]) -> int:
        """Payload bytes up to the first occurrence of the EOF mark.

        The end is where the last 40 bytes received equal the mark, checked as
        if after every byte, so any split of the input finds the same end."""
        seg = data[i:] if i else data
        window = self._tail + seg if self._tail else seg
        mark = self._mark
        at = window.find(mark)
        if at >= 0:
            end = at + EOF_MARK_LEN  # end of the mark in window
            used = end - len(self._tail)  # bytes of seg consumed
            self.transfer_read += used
            if at:
                events.append(RdbChunk(window[:at]))
            self._finish(events)
            return i + used
        self.transfer_read += len(seg)
        keep = min(EOF_MARK_LEN - 1, len(window))
        cut = len(window) - keep
        if cut:
            events.append(RdbChunk(window[:cut]))
        self._tail = window[cut:]
        return len(data)


def _parse_offset(s: bytes) -> int | None:
    """A decimal integer as Redis prints it (optional '-'), else None."""
    body = s[1:] if s.startswith(b"-") else s
    if not body or not body.isdigit() or len(body) > 19:
        return None
    return int(s)
