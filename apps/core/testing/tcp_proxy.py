"""A loopback TCP proxy a test owns, to cut a shared server (PostgreSQL, Redis, RabbitMQ)
without stopping it: ``cut()`` drops every connection through it and refuses new ones,
``restore()`` lets them through again. The server behind it is never touched.

Why not Toxiproxy: neither Debian, PyPI nor npm ships its server (PyPI and npm have only
clients of it), and these scenarios need nothing beyond a cut; this one proxy is the only
one in the project.
"""

from __future__ import annotations

import socket
import threading


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0  # connections let through so far
        self._open = threading.Event()
        self._open.set()
        self._closed = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept, name=f"tcp-proxy-{self.port}", daemon=True).start()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=3)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
                self.connections += 1
            if not self._open.is_set():  # cut while this one was connecting
                _shut(client)
                _shut(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        # One side ended: end the other, so each end sees the connection drop.
        _shut(sink)
        _shut(source)
        with self._lock:
            self._sockets.discard(source)
        source.close()

    def cut(self) -> None:
        """Drop every connection now and refuse new ones until ``restore()``."""
        self._open.clear()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.cut()
        _shut(self._listener)  # wakes the accept() blocked in the other thread
        self._listener.close()
