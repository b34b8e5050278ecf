"""The WebSocket load client of the ws bench: many connections per process on raw asyncio
sockets under uvloop (no WebSocket library: a client this thin keeps up with a server on the
same two cores), several processes, each reporting what it received and the CPU it used.

Every broadcast the bench publishes carries ``bench_seq`` and ``bench_sent`` (wall clock, same
machine); a client records, per delivered message, its receive time, sequence number and
send time. A broadcast is the same frame on every socket, so only its first copy in a process
is decoded: the others are recognised by their bytes (a dictionary lookup per message, the
client's whole per-message cost besides the read)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import time
import zlib
from array import array
from multiprocessing import get_context
from urllib.parse import urlsplit

HANDSHAKE_CONCURRENCY = 64


class _Socket(asyncio.Protocol):
    def __init__(self, worker: _Worker, request: bytes):
        self.worker, self.request = worker, request
        self.transport = None
        self.buffer = bytearray()
        self.upgraded = False
        self.opened = asyncio.get_running_loop().create_future()
        self.closed = False
        self.inflater = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc):
        self.closed = True
        self.worker.lost += 1
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc}"))

    def data_received(self, data):
        now = time.time()
        buffer = self.buffer
        if not buffer:  # the usual case: one whole broadcast frame, seen on another socket
            known = self.worker.frames.get(data)
            if known is not None:
                self.worker.delivered(known, now)
                return
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                self.transport.close()
                return
            self.upgraded = True
            self.opened.set_result(True)
        at, size = 0, len(buffer)
        while size - at >= 2:
            length = buffer[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                if size - at < 4:
                    break
                length = int.from_bytes(buffer[at + 2 : at + 4], "big")
                start = at + 4
            elif length == 127:
                if size - at < 10:
                    break
                length = int.from_bytes(buffer[at + 2 : at + 10], "big")
                start = at + 10
            if size < start + length:
                break
            opcode = buffer[at] & 0x0F
            payload = bytes(buffer[start : start + length])
            frame = None
            if buffer[at] & 0x40:  # RSV1: compressed (permessage-deflate)
                if self.inflater is None:
                    self.inflater = zlib.decompressobj(-15)
                payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
                self.worker.compressed += 1
            elif opcode == 1:
                frame = bytes(buffer[at : start + length])
            at = start + length
            if opcode == 1:
                self.worker.text(payload, now, frame)
            elif opcode == 9:  # ping: answer with a masked pong
                self._send(0xA, payload)
            elif opcode == 8:
                self.worker.server_closes += 1
                self.transport.close()
        if at:
            del buffer[:at]

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        if self.transport and not self.closed:
            try:
                self._send(0x8, (1000).to_bytes(2, "big"))
            except Exception:
                pass
            self.transport.close()


class _Worker:
    def __init__(self):
        self.receive_times = array("d")
        self.sent_ats = array("d")
        self.seqs = array("q")
        self.frames: dict[bytes, tuple[int, float]] = {}  # a broadcast's frame: (seq, sent)
        self.other_messages = 0
        self.lost = 0
        self.server_closes = 0
        self.compressed = 0

    def delivered(self, known: tuple[int, float], now: float) -> None:
        self.receive_times.append(now)
        self.seqs.append(known[0])
        self.sent_ats.append(known[1])

    def text(self, payload: bytes, now: float, frame: bytes | None) -> None:
        if b'"bench_seq"' not in payload:
            self.other_messages += 1
            return
        message = json.loads(payload)
        known = (message["bench_seq"], message["bench_sent"])
        if frame is not None:
            if len(self.frames) > 64:
                self.frames.clear()
            self.frames[frame] = known
        self.delivered(known, now)


def _request(url: str, origin: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\n"
        # as a browser asks; a server that agrees costs itself a compression per socket
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    ).encode()
    return parts.hostname, parts.port or 80, request


async def _run(urls: list[str], origin: str, pipe) -> None:
    loop = asyncio.get_running_loop()
    worker = _Worker()
    sockets: list[_Socket] = []
    errors: dict[str, int] = {}
    gate = asyncio.Semaphore(HANDSHAKE_CONCURRENCY)

    async def open_one(url: str) -> None:
        host, port, request = _request(url, origin)
        async with gate:
            try:
                _, sock = await loop.create_connection(lambda: _Socket(worker, request), host, port)
                await asyncio.wait_for(sock.opened, 60)
                sockets.append(sock)
            except (TimeoutError, OSError) as exc:
                kind = type(exc).__name__ + (f": {exc}" if isinstance(exc, ConnectionError) else "")
                errors[kind] = errors.get(kind, 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(open_one(url) for url in urls))
    pipe.send(("connected", len(sockets), errors, time.monotonic() - started))
    await loop.run_in_executor(None, pipe.recv)  # "measure"
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    await loop.run_in_executor(None, pipe.recv)  # "stop"
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    open_at_end = sum(1 for s in sockets if not s.closed)
    for sock in sockets:
        sock.close()
    await asyncio.sleep(0.2)
    pipe.send(
        (
            "result",
            {
                "receive_times": worker.receive_times.tobytes(),
                "sent_ats": worker.sent_ats.tobytes(),
                "seqs": worker.seqs.tobytes(),
                "other_messages": worker.other_messages,
                "open_at_end": open_at_end,
                "server_closes": worker.server_closes,
                "compressed": worker.compressed,
                "cpu_seconds": cpu,
            },
        )
    )


def cpu_list(cpus: str) -> set[int]:
    """taskset's list form ("1", "0,2", "2-3") as a set of CPUs."""
    chosen: set[int] = set()
    for part in cpus.split(","):
        first, _, last = part.partition("-")
        chosen.update(range(int(first), int(last or first) + 1))
    return chosen


def _process_main(urls: list[str], origin: str, pipe, cpus: str | None = None) -> None:
    if cpus:
        os.sched_setaffinity(0, cpu_list(cpus))
    try:
        import uvloop
    except ImportError:  # the plain asyncio loop: a slower client, the same figures
        asyncio.run(_run(urls, origin, pipe))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_run(urls, origin, pipe))


class LoadClient:
    """``len(urls)`` WebSocket connections spread over ``processes`` processes."""

    def __init__(
        self, urls: list[str], *, origin: str, processes: int = 2, cpus: str | None = None
    ):
        context = get_context("spawn")
        self.pipes, self.processes = [], []
        for index in range(processes):
            mine = urls[index::processes]
            parent, child = context.Pipe()
            process = context.Process(target=_process_main, args=(mine, origin, child, cpus))
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def wait_connected(self, timeout: float = 600) -> tuple[int, dict, float]:
        connected, errors, seconds = 0, {}, 0.0
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise TimeoutError("the load client did not connect in time")
            _, count, errs, took = pipe.recv()
            connected += count
            seconds = max(seconds, took)
            for kind, n in errs.items():
                errors[kind] = errors.get(kind, 0) + n
        return connected, errors, seconds

    def measure(self) -> None:
        for pipe in self.pipes:
            pipe.send("measure")

    def stop(self) -> dict:
        for pipe in self.pipes:
            pipe.send("stop")
        merged = {
            "receive_times": array("d"),
            "sent_ats": array("d"),
            "seqs": array("q"),
            "other_messages": 0,
            "open_at_end": 0,
            "server_closes": 0,
            "compressed": 0,
            "cpu_seconds": [],
        }
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            _, part = pipe.recv()
            for name in ("receive_times", "sent_ats", "seqs"):
                merged[name].frombytes(part[name])
            for name in ("other_messages", "open_at_end", "server_closes", "compressed"):
                merged[name] += part[name]
            merged["cpu_seconds"].append(part["cpu_seconds"])
            process.join(10)
            if process.is_alive():
                process.kill()
        return merged

    def kill(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()
