"""A small TCP proxy for replication tests: it forwards one port to another
and can cut every connection, refuse new ones, delay the bytes, or deliver
each chunk in two pieces cut at a random byte, so a test can break a
replication link on purpose."""

from __future__ import annotations

import random
import socket
import threading
import time


class Proxy:
    """``Proxy(target_port).start()`` listens on ``self.port`` (127.0.0.1)."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target = (host, target_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.refusing = False
        self.delay = 0.0
        self.split = False  # each chunk in two pieces, 1 ms apart: frames end anywhere
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = False
        self.accepted = 0

    def start(self) -> Proxy:
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def _accept_loop(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self.accepted += 1
            with self.lock:
                self.conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.delay:
                    time.sleep(self.delay)
                if self.split and len(data) > 1:
                    cut = random.randrange(1, len(data))
                    dst.sendall(data[:cut])
                    time.sleep(0.001)
                    data = data[cut:]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self) -> None:
        """Break every open connection (both directions)."""
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.sock.close()
