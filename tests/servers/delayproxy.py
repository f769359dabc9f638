#!/usr/bin/env python3
"""delayproxy: a TCP proxy that behaves like a slow, distant link, for
benchmarks on kernels without netem. Talks only to 127.0.0.1.

    python3 bench/delayproxy.py --listen-port 0 --target 127.0.0.1:PORT \\
        --delay-ms 25 --rate-mbit 100

Each direction is one emulated wire shared by every connection: a chunk of
n bytes waits for the wire, occupies it for n*8/rate seconds, and arrives
delay later. Many chunks are in flight at once, so a single connection can
fill the rate however long the delay is. A connection's reader is held
back while the wire's queue is full or too much of its data is still in
flight, so a fast sender meets TCP backpressure instead of filling memory.

As a module:

    p = DelayProxy(target_port, delay_ms=25, rate_mbit=100)
    p.start()           # background thread; returns once listening
    ... connect to 127.0.0.1:p.port ...
    p.stop()
"""
import argparse
import asyncio
import collections
import signal
import socket
import struct
import sys
import threading

HOST = "127.0.0.1"
MAX_CHUNK = 16 * 1024
MIN_CHUNK = 1024
CHUNK_TIME = 0.002      # pace in pieces of at most ~2 ms of wire time
QUEUE_TIME = 0.005      # the wire's queue: a shallow router buffer
UNLIMITED_INFLIGHT = 64 << 20  # per direction and connection, if no rate


class Wire:
    """One direction of the link: a serializer plus a fixed delay.

    free_at is when the wire finishes sending what it has been given;
    chunks queue behind each other whichever connection they come from,
    which is what makes the rate shared.
    """

    def __init__(self, rate_mbit, delay_ms):
        self.byte_time = 8.0 / (rate_mbit * 1e6) if rate_mbit > 0 else 0.0
        self.delay = delay_ms / 1000.0
        self.free_at = 0.0
        # Longer than asyncio's ~1 ms timer slop, or the wire would go
        # idle while a sender oversleeps.
        self.queue_time = max(QUEUE_TIME, 2 * MAX_CHUNK * self.byte_time)

    def send(self, n, now):
        """Book n bytes received at now; returns when they arrive."""
        self.free_at = max(now, self.free_at) + n * self.byte_time
        return self.free_at + self.delay

    def overfull(self, now):
        """Seconds until the wire's queue has room again (<= 0: room)."""
        return self.free_at - now - self.queue_time


def chunk_size(rate_mbit):
    """Small enough that one chunk is ~2 ms of wire: smooth pacing."""
    if rate_mbit <= 0:
        return MAX_CHUNK
    n = int(rate_mbit * 1e6 / 8 * CHUNK_TIME)
    return max(MIN_CHUNK, min(MAX_CHUNK, n))


class Pipe:
    """Moves one direction of one connection across a Wire.

    pump() reads and books chunks on the wire, deliver() writes each when
    it is due. They share a FIFO of (due, bytes); None marks EOF, queued
    behind the data so a close never overtakes what was sent before it.
    """

    def __init__(self, wire, reader, writer, chunk, not_before=0.0):
        self.wire = wire
        self.reader = reader
        self.writer = writer
        self.chunk = chunk
        self.not_before = not_before
        self.fifo = collections.deque()
        self.inflight = 0
        # A bandwidth-delay product plus the queue and slack: never the
        # bottleneck, but a receiver that stops reading stops us too.
        if wire.byte_time:
            wire_time = wire.delay + wire.queue_time
            self.max_inflight = int(wire_time / wire.byte_time) + 8 * chunk
        else:
            self.max_inflight = UNLIMITED_INFLIGHT
        self.have_data = asyncio.Event()
        self.have_room = asyncio.Event()

    def _queue(self, due, data):
        self.fifo.append((due, data))
        self.have_data.set()

    async def pump(self):
        loop = asyncio.get_running_loop()
        while True:
            data = await self.reader.read(self.chunk)
            now = loop.time()
            if not data:
                self._queue(now + self.wire.delay, None)
                return
            due = max(self.wire.send(len(data), now), self.not_before)
            self.inflight += len(data)
            self._queue(due, data)
            wait = self.wire.overfull(now)
            if wait > 0:
                await asyncio.sleep(wait)
            while self.inflight > self.max_inflight:
                self.have_room.clear()
                await self.have_room.wait()

    async def _wait_due(self, loop):
        """Sleeps until the head of the FIFO is due; returns its time."""
        while True:
            while not self.fifo:
                self.have_data.clear()
                await self.have_data.wait()
            now = loop.time()
            due = self.fifo[0][0]
            if due <= now:
                return now
            await asyncio.sleep(due - now)

    async def deliver(self):
        """Writes whatever is due in one go; returns after EOF is passed."""
        loop = asyncio.get_running_loop()
        while True:
            now = await self._wait_due(loop)
            while self.fifo and self.fifo[0][0] <= now:
                _, data = self.fifo.popleft()
                if data is None:
                    await self.writer.drain()
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
                self.writer.write(data)
                self.inflight -= len(data)
            self.have_room.set()
            await self.writer.drain()


def reset(writer):
    """Closes with an RST, so the peer sees an error rather than an EOF
    that could pass for the end of a complete reply."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class DelayProxy:
    """A listening proxy on 127.0.0.1 to 127.0.0.1:target_port.

    connect_rtt makes each new connection's first bytes arrive one round
    trip later, as the TCP handshake would cost on the real link.
    """

    def __init__(self, target_port, delay_ms, rate_mbit, listen_port=0,
                 target_host=HOST, connect_rtt=False):
        if target_host != HOST:
            raise ValueError("delayproxy: target must be %s, not %r"
                             % (HOST, target_host))
        self.target_port = int(target_port)
        self.listen_port = int(listen_port)
        self.delay_ms = float(delay_ms)
        self.rate_mbit = float(rate_mbit)
        self.connect_rtt = connect_rtt
        self.chunk = chunk_size(self.rate_mbit)
        self.up = Wire(self.rate_mbit, self.delay_ms)
        self.down = Wire(self.rate_mbit, self.delay_ms)
        self.port = None
        self._loop = None
        self._thread = None
        self._stopping = None
        self._ready = threading.Event()
        self._error = None
        self._conns = set()

    # -- connections ---------------------------------------------------

    async def _connect(self, creader, cwriter):
        try:
            treader, twriter = await asyncio.open_connection(
                HOST, self.target_port, limit=self.chunk)
        except OSError:
            reset(cwriter)
            return
        try:
            await self._splice(creader, cwriter, treader, twriter)
        finally:
            for w in (cwriter, twriter):
                w.close()

    async def _splice(self, creader, cwriter, treader, twriter):
        loop = asyncio.get_running_loop()
        handshake = 0.0
        if self.connect_rtt:
            handshake = loop.time() + 3 * self.up.delay
        up = Pipe(self.up, creader, twriter, self.chunk, handshake)
        down = Pipe(self.down, treader, cwriter, self.chunk)
        try:
            async with asyncio.TaskGroup() as tg:
                for coro in (up.pump(), up.deliver(),
                             down.pump(), down.deliver()):
                    tg.create_task(coro)
        except* (OSError, EOFError):
            # A reset or failed write on either side ends both, abruptly,
            # so neither peer waits for data that will never come.
            for w in (cwriter, twriter):
                reset(w)

    async def _accept(self, creader, cwriter):
        task = asyncio.current_task()
        self._conns.add(task)
        try:
            await self._connect(creader, cwriter)
        except asyncio.CancelledError:
            # Only stop() cancels us. Ending normally keeps asyncio 3.11's
            # streams from logging the cancellation as an error.
            pass
        finally:
            self._conns.discard(task)

    # -- lifecycle -----------------------------------------------------

    async def serve(self, on_ready=None):
        """Listens until _stopping is set; on_ready() runs once bound."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(
            self._accept, HOST, self.listen_port, limit=self.chunk)
        self.port = server.sockets[0].getsockname()[1]
        if on_ready:
            on_ready()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._conns):
                task.cancel()
            await asyncio.gather(*self._conns, return_exceptions=True)
            await server.wait_closed()

    def _run(self):
        try:
            asyncio.run(self.serve(self._ready.set))
        except BaseException as e:  # reported by start() if not ready yet
            self._error = e
        finally:
            self._ready.set()

    def start(self):
        """Runs the proxy in a daemon thread; returns once listening."""
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="delayproxy")
        self._thread.start()
        self._ready.wait()
        if self.port is None:
            raise RuntimeError("delayproxy failed to start") from self._error
        return self

    def stop(self):
        if self._thread is None:
            return
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def parse_target(s):
    host, sep, port = s.rpartition(":")
    if not sep or host != HOST:
        raise argparse.ArgumentTypeError("target must be %s:PORT" % HOST)
    return int(port)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen-port", type=int, default=0,
                    help="port on 127.0.0.1; 0 picks a free one")
    ap.add_argument("--target", type=parse_target, required=True,
                    metavar="127.0.0.1:PORT")
    ap.add_argument("--delay-ms", type=float, default=0.0,
                    help="one-way delay per direction")
    ap.add_argument("--rate-mbit", type=float, default=0.0,
                    help="rate per direction, shared; 0 = unlimited")
    ap.add_argument("--connect-rtt", action="store_true",
                    help="charge new connections a handshake round trip")
    a = ap.parse_args(argv)
    proxy = DelayProxy(a.target, a.delay_ms, a.rate_mbit, a.listen_port,
                       connect_rtt=a.connect_rtt)

    def ready():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, proxy._stopping.set)
        print("delayproxy: listening on %s:%d" % (HOST, proxy.port),
              flush=True)

    asyncio.run(proxy.serve(ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
