"""Worker "hosts" for scale-out tests and benchmarks: each is a Celery worker with its own node name
(``--hostname``), its own process group, and its own network path to Redis through a TCP proxy that a test
can cut, as a network partition cuts one machine off.

Why a proxy and not a network namespace per host: it needs no root and no iproute2, so the tests run the same
on a laptop, in an unprivileged container and in CI; and it cuts exactly the host's path to Redis (PostgreSQL
stays reachable), which is the fault under test. A cut *holds* traffic rather than refusing it: bytes in
flight and new connections wait, in both directions, as TCP retransmits through a partition, and are delivered
if the path heals before the sockets time out. Nothing is reset, so no peer learns of the cut early. (One
difference from a dropped link: a new connection during a cut completes its handshake with the proxy, so the
client waits on its socket timeout rather than its connect timeout.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

from tests.support.services import REPO_ROOT

BUFFER_BYTES = 64 * 1024


class _Link:
    """One proxied connection."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.replication = False  # the client is a Redis replica (it sent REPLCONF or PSYNC)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to an upstream address; :meth:`cut` holds all traffic (or only a replica's
    replication stream), :meth:`heal` lets it flow again. One thread per direction per connection: a peer that
    stops reading (a frozen host) stalls only its own connection."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self._listener.getsockname()[1]
        self._state = threading.Condition()
        self._cut_all = False
        self._cut_replication = False
        self._closed = False
        self._sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}", daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cut(self, replication_only: bool = False) -> None:
        """Hold traffic: all of it, or only what flows between the server and a replica of it."""
        with self._state:
            if replication_only:
                self._cut_replication = True
            else:
                self._cut_all = True

    def heal(self) -> None:
        with self._state:
            self._cut_all = self._cut_replication = False
            self._state.notify_all()

    def drop(self) -> None:
        """Close every connection, discarding what a cut held (it was in flight when the far side died), and let
        new connections through again."""
        self._close_connections()
        self.heal()

    def close(self) -> None:
        self._closed = True
        with suppress(OSError):
            self._listener.close()
        self.drop()

    def _held(self, link: _Link) -> bool:
        return not self._closed and (self._cut_all or (self._cut_replication and link.replication))

    def _wait_while_held(self, link: _Link) -> None:
        with self._state:
            self._state.wait_for(lambda: not self._held(link))

    def _close_connections(self) -> None:
        with self._state:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked in recv()
            with suppress(OSError):
                sock.close()

    def _track(self, sock: socket.socket) -> None:
        with self._state:
            self._sockets.add(sock)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._track(client)
            threading.Thread(target=self._open, args=(_Link(client),), daemon=True).start()

    def _open(self, link: _Link) -> None:
        self._wait_while_held(link)  # a connection made during a cut reaches the server only once healed
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
            upstream.settimeout(None)
        except OSError:
            with suppress(OSError):
                link.client.close()
            return
        self._track(upstream)
        for source, target in ((link.client, upstream), (upstream, link.client)):
            threading.Thread(target=self._pump, args=(link, source, target), daemon=True).start()

    def _pump(self, link: _Link, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(BUFFER_BYTES)
                if source is link.client and (b"REPLCONF" in data or b"PSYNC" in data):
                    link.replication = True
                self._wait_while_held(link)  # held (data or end of stream) while cut
                if not data or self._closed:
                    break
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                sock.close()


class Host:
    """One worker host: ``celery -A tasks.app worker --hostname <name>@%h`` in its own process group,
    reaching Redis through its own :class:`TcpProxy` (or ``redis_url``, when given: a Sentinel URL)."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, redis_port: int | None = None, *,
                 redis_url: str | None = None, concurrency: int = 1, queues: str = "documents",
                 max_batch_size: int = 64) -> None:
        self.name = name
        self.proxy = TcpProxy(redis_port) if redis_port is not None else None
        url = redis_url or (self.proxy.url if self.proxy else None)
        assert url, "a host needs a Redis port (through a proxy) or a Redis URL"
        self.env = {**env, "SLIMLINE_REDIS_URL": url, "SLIMLINE_TEST_HOST": name,
                    "SLIMLINE_DOCUMENTS__MAX_BATCH_SIZE": str(max_batch_size), "PYTHONPATH": str(REPO_ROOT)}
        self.log_path = log_dir / f"{name}.log"
        self.command = [sys.executable, "-m", "celery", "-A", "tasks.app", "worker", "--queues", queues,
                        "--concurrency", str(concurrency), "--pool", "prefork", "--loglevel", "INFO",
                        "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle"]
        self.process: subprocess.Popen[bytes] | None = None
        self.frozen = False

    def start(self, timeout: float = 90.0) -> Host:
        with self.log_path.open("ab") as log:
            offset = log.tell()
            self.process = subprocess.Popen(self.command, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=log,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if b" ready." in self.log_path.read_bytes()[offset:]:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def _signal(self, signum: int) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signum)

    def freeze(self) -> None:
        """SIGSTOP the whole process tree, as a machine that stalls (swap storm, VM pause)."""
        self._signal(signal.SIGSTOP)
        self.frozen = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.frozen = False

    def kill(self) -> None:
        """SIGKILL the whole process tree, mid-batch: a machine that dies."""
        self._signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        """The main process and its descendants (for CPU accounting)."""
        if not self.alive():
            return []
        assert self.process is not None
        return process_tree(self.process.pid)

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            if self.frozen:
                self.resume()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        if self.proxy is not None:
            self.proxy.close()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- {self.name} ---\n" + "\n".join(text.splitlines()[-lines:])


def start_hosts(names: Iterable[str], env: dict[str, str], log_dir: Path, redis_port: int | None = None,
                **options: object) -> list[Host]:
    """Start several hosts at once (each takes seconds to import and fork)."""
    hosts = [Host(name, env, log_dir, redis_port, **options) for name in names]  # type: ignore[arg-type]
    try:
        with ThreadPoolExecutor(len(hosts)) as pool:
            list(pool.map(lambda host: host.start(), hosts))
    except Exception:
        stop_hosts(hosts)
        raise
    return hosts


def stop_hosts(hosts: Iterable[Host]) -> None:
    hosts = list(hosts)
    if hosts:
        with ThreadPoolExecutor(len(hosts)) as pool:
            list(pool.map(lambda host: host.stop(), hosts))


def process_tree(root: int) -> list[int]:
    """``root`` and every descendant, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: Iterable[int], include_reaped_children: bool = True) -> float:
    """User + system CPU seconds of these processes (and, by default, of their children that have exited
    and been waited for: a pool process that was replaced, a finished PostgreSQL backend)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if include_reaped_children:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / ticks
