"""A real local Redis Cluster for the tests: three masters and three replicas on 127.0.0.1.

Six ``redis-server --cluster-enabled yes`` processes on free ports (each with its cluster bus
on a free port of its own), joined by ``redis-cli --cluster create --cluster-replicas 1``.
A node that misses ``node_timeout_ms`` of pings is failed over to its replica, so a test
that kills a master sees its replica take over within a few seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from support.redis_server import TIMEOUT, RedisServer, free_port

CLI_MISSING = (
    "redis-cli is not installed: the Redis Cluster tests need it to create the cluster "
    "(Debian/Ubuntu: apt-get install redis-tools; .ci/run installs it)"
)


class LocalCluster:
    def __init__(self, directory: Path, *, node_timeout_ms: int = 1000) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError(CLI_MISSING)
        self.cli = cli
        options = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(node_timeout_ms),
            # Appends go on while a slot's master is away only where it is served.
            "--cluster-require-full-coverage", "no",
            # A replica's first sync at once, not after the default 5 s wait for more replicas.
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip
        self.nodes = [
            RedisServer(directory / f"node-{i}", [*options, "--cluster-port", str(free_port())])
            for i in range(6)
        ]

    @property
    def url(self) -> str:
        """A URL naming one live node: a cluster client finds the others from it."""
        return self.live()[0].url

    def live(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.process is not None]

    def start(self) -> LocalCluster:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        create = ["--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"]
        subprocess.run(
            [self.cli, *create],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_until_ok()
        return self

    def wait_until_ok(self, timeout: float = 30.0) -> None:
        """Until every live node says cluster_state:ok and serves all 16384 slots, and every
        replica is in sync with its master (else it could not be failed over to)."""
        deadline = time.monotonic() + timeout
        while True:
            infos = []
            for node in self.live():
                try:
                    info = dict(node.client().cluster("info"))
                    replication = node.client().info("replication")
                except redis.RedisError:
                    info, replication = {}, {}
                info["in_sync"] = replication.get("role") == "master" or (
                    replication.get("master_link_status") == "up"
                )
                infos.append(info)
            if all(
                info.get("cluster_state") == "ok"
                and int(info.get("cluster_slots_ok", 0)) == 16384
                and int(info.get("cluster_known_nodes", 0)) >= len(self.live())
                and info["in_sync"]
                for info in infos
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster is not ok after {timeout} s: {infos}")
            time.sleep(0.05)

    def client(self) -> RedisCluster:
        """A synchronous cluster client, for the tests' own checks."""
        node = self.live()[0]
        return RedisCluster(host="127.0.0.1", port=node.port, socket_timeout=TIMEOUT)

    def master_of(self, key: str) -> RedisServer:
        """The node serving ``key``'s slot, as the first live node sees it."""
        slot = key_slot(key.encode())
        for line in self._nodes_table(self.live()[0]):
            port, flags, ranges = line
            if "master" in flags and "fail" not in flags and _covers(ranges, slot):
                return self._by_port(port)
        raise AssertionError(f"no master serves slot {slot}")

    def _nodes_table(self, node: RedisServer) -> list[tuple[int, str, list[list[str]]]]:
        """(port, flags, slot ranges) per node, from ``node``'s CLUSTER NODES."""
        table = node.client().execute_command("CLUSTER NODES")  # parsed by redis-py
        return [
            (int(address.split("@")[0].rsplit(":", 1)[1]), row["flags"], row["slots"])
            for address, row in table.items()
        ]

    def _by_port(self, port: int) -> RedisServer:
        return next(node for node in self.nodes if node.port == port)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _covers(ranges: list[list[str]], slot: int) -> bool:
    return any(int(low) <= slot <= int(high) for low, high in ranges)
