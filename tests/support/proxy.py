"""A TCP proxy a test can cut and restore: the broker becomes unreachable for one client only."""

from __future__ import annotations

import socket

import eventlet


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.enabled = True
        self.connections: list[socket.socket] = []
        self.pipes: list = []
        self.refused = 0
        self._acceptor = eventlet.spawn(self._accept)

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            if not self.enabled:
                self.refused += 1
                client.close()
                continue
            try:
                upstream = eventlet.connect(self.target)
            except OSError:
                client.close()
                continue
            self.connections += [client, upstream]
            self.pipes += [
                eventlet.spawn(self._pipe, client, upstream),
                eventlet.spawn(self._pipe, upstream, client),
            ]

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy one direction. On the way out it shuts both sockets down, which wakes the
        partner pipe with EOF, and closes only the socket it reads: closing a socket another
        greenthread is blocked on would leave that reader behind on a recycled descriptor."""
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except (OSError, EOFError):  # the other side (or cut()) closed the pair
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            source.close()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until :meth:`restore`."""
        self.enabled = False
        # stop the pipes first: a greenthread still waiting on a closed socket would collide
        # with whatever reuses its file descriptor next
        for pipe in self.pipes:
            pipe.kill()
        self.pipes = []
        for sock in self.connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.connections = []

    def restore(self) -> None:
        self.enabled = True

    def close(self) -> None:
        self.cut()
        self._acceptor.kill()
        self.listener.close()
