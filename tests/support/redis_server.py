"""A real redis-server for the tests: on a free loopback port, in its own directory.

It keeps its data in an append-only file fsynced at every write (``appendfsync always``), so
a server killed with SIGKILL and started again in the same directory has every acknowledged
write: what a test that restarts Redis mid-run needs.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis

#: Seconds a start or a stop may take at most.
TIMEOUT = 10.0
MISSING = (
    "redis-server is not installed: the Redis tests need the real server "
    "(Debian/Ubuntu: apt-get install redis-server; .ci/run installs it)"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    def __init__(self, directory: Path, args: Sequence[str] = ()) -> None:
        """``args``: more redis-server options (``--cluster-enabled yes``, say)."""
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(MISSING)
        self.executable = executable
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.args = list(args)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A synchronous client, for the tests' own checks."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=TIMEOUT)

    def start(self) -> RedisServer:
        for _ in range(3):
            self.process = subprocess.Popen(
                [
                    self.executable,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--dir",
                    str(self.directory),
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--logfile",
                    "redis.log",
                    *self.args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_until_ready():
                return self
            # Another process took the port between its choice and the bind: another port.
            self.process.wait(TIMEOUT)
            self.port = free_port()
        raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")

    def _wait_until_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if self.client().ping():
                    return True
            except redis.ConnectionError:
                pass
            except redis.BusyLoadingError:
                pass  # reading its append-only file back
            time.sleep(0.01)
        raise RuntimeError(f"redis-server did not answer within {TIMEOUT} s")

    def kill(self) -> None:
        """SIGKILL: the server dies without a chance to save anything more."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(TIMEOUT)
        self.process = None

    def restart(self) -> None:
        """Killed, then started again on the same port and directory."""
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
