"""processEventsWhileBlocked for a script past busy-reply-threshold.

Redis re-enters its event loop from the Lua count hook.  An asyncio (uvloop)
loop cannot be re-entered from inside one of its own callbacks, so the hook
does the loop's work for the sockets itself:

* every client connection except the script's caller (protected, as Redis
  protects it) and the primary link is polled with a selector; readable
  data is read with ``os.read`` straight from the descriptor and fed to
  ``Client.data_received`` (libuv, reading later, simply finds nothing);
  replies go out through the client's transport as usual;
* the listening sockets are polled too: a connection accepted here is
  served through a small blocking-free transport until the script ends,
  then handed to the event loop (``connect_accepted_socket``) with its
  ``Client`` and any buffered input intact.

While ``Server.busy_script`` is set, ``Server.process`` answers -BUSY to
everything but allow-busy commands (SCRIPT KILL, FUNCTION KILL/STATS,
SHUTDOWN NOSAVE, AUTH, HELLO, MULTI...).  A SHUTDOWN NOSAVE served here
ends the process at once, as Redis exits from inside the hook.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys
from typing import TYPE_CHECKING, Any

from .client import Client

if TYPE_CHECKING:
    from .core import Server


class HookTransport:
    """A minimal transport for a connection accepted while a script is busy."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.closing = False
        self._extra = {
            "peername": _safe(sock.getpeername),
            "sockname": _safe(sock.getsockname),
            "socket": sock,
        }

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def write(self, data: bytes) -> None:
        if self.closing:
            return
        view = memoryview(data)
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_WRITE)
        try:
            while view:
                try:
                    n = self.sock.send(view)
                    view = view[n:]
                except BlockingIOError:
                    if not sel.select(1.0):
                        break
                except OSError:
                    break
        finally:
            sel.close()

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            try:
                self.sock.close()
            except OSError:
                pass

    def abort(self) -> None:
        self.close()


def _already_made(transport: Any) -> None:
    """The event loop's own, late connection_made for an adopted connection."""


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except OSError:
        return None


class BusyPoller:
    """Serve the other clients from inside a busy script's hook."""

    def __init__(self, srv: Server, caller: Client) -> None:
        self.srv = srv
        self.caller = caller
        self.sel = selectors.DefaultSelector()
        self.listeners: list[socket.socket] = []
        self.accepted: list[tuple[Client, socket.socket]] = []
        for s in srv.servers:
            for ls in getattr(s, "sockets", None) or ():
                try:
                    dup = socket.socket(fileno=os.dup(ls.fileno()))
                    dup.setblocking(False)
                except OSError:
                    continue
                self.listeners.append(dup)
                self.sel.register(dup, selectors.EVENT_READ, ("listen", dup))
        self._adopt_pending(srv)
        for c in list(srv.clients.values()):
            self._watch(c)

    def _adopt_pending(self, srv: Server) -> None:
        """Connections the event loop accepted in the same iteration as the
        script's request have a Client (uvloop calls the protocol factory at
        accept time) but no transport yet: connection_made is still queued.
        Find their transports (the only objects referring to them) and make
        the connection now; uvloop's queued call then has nothing to do."""
        import gc

        for obj in gc.get_referrers(Client):
            if type(obj) is not Client or obj.srv is not srv or obj.fake or obj.closed or obj.transport:
                continue
            for ref in gc.get_referrers(obj):
                if ref is not obj and hasattr(ref, "get_extra_info") and hasattr(ref, "is_closing"):
                    obj.connection_made(ref)
                    obj.connection_made = _already_made  # type: ignore[method-assign]
                    break

    def _watch(self, c: Client) -> None:
        if c is self.caller or c.is_primary_link or c.closed or c.fd < 0 or c.transport is None:
            return
        try:
            self.sel.register(c.fd, selectors.EVENT_READ, ("client", c))
        except (ValueError, KeyError, OSError):
            pass

    def poll(self) -> None:
        """One round: accept, read and serve whatever is ready now (replies
        go out at once: Server.defer_flush waits for the event loop)."""
        srv = self.srv
        if srv.pending_writes:
            srv.write_pending()  # replies of the iteration the script started in
        try:
            ready = self.sel.select(0)
        except OSError:
            return
        for key, _ in ready:
            kind, obj = key.data
            if kind == "listen":
                self._accept(obj)
                continue
            c: Client = obj
            if c.closed:
                self._forget(key.fd)
                continue
            try:
                data = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                self._forget(key.fd)
                continue
            if not data:
                # EOF: the event loop notices it again after the script.
                self._forget(key.fd)
                continue
            c.data_received(data)
            if c.closed:
                self._forget(key.fd)
            if srv.servers and not any(s.is_serving() for s in srv.servers):
                self._exit_now()

    def _forget(self, fd: int) -> None:
        try:
            self.sel.unregister(fd)
        except (KeyError, ValueError):
            pass

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                conn, _ = ls.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            c = Client(self.srv)
            c.connection_made(HookTransport(conn))  # type: ignore[arg-type]
            if c.closed:
                conn.close()
                continue
            self.accepted.append((c, conn))
            try:
                self.sel.register(conn, selectors.EVENT_READ, ("client", c))
            except (ValueError, KeyError, OSError):
                pass

    def _exit_now(self) -> None:
        """SHUTDOWN NOSAVE ran from the hook: prepare_shutdown is done, the
        script never returns -- exit as Redis does."""
        self.srv.log.warning("Redis is now ready to exit, bye bye...")
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(self.srv.exit_code)

    def finish(self) -> None:
        """The script ended: give the connections accepted here to the loop."""
        self.sel.close()
        for ls in self.listeners:
            ls.close()
        loop = self.srv.loop
        for c, conn in self.accepted:
            if c.closed:
                continue
            if loop is None:
                c.transport_close()
                continue
            # connection_made runs again with the loop's transport: keep the
            # client counted once.
            self.srv.clients.pop(c.id, None)
            self.srv.stat_numconnections -= 1
            loop.create_task(loop.connect_accepted_socket(lambda c=c: c, conn))  # type: ignore[misc]
        self.accepted = []
