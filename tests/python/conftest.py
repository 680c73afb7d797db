# SPDX-License-Identifier: MIT
"""A live 3-node dstack-p2p mesh for the SDK tests (tests/python/harness.sh), and the
independent observers the tests check the SDK against: `cast call` and `wg show`."""
from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))  # the SDK by path, as an app may use it


class Mesh:
    """The running harness: send it commands, read its state."""

    def __init__(self) -> None:
        self.log = open(os.environ.get("SDK_HARNESS_LOG", "/tmp/dstack-p2p-sdk-harness.log"), "w")
        self.proc = subprocess.Popen(["bash", str(ROOT / "tests/python/harness.sh")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)
        self.lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self._answer(300)
        if not ready.startswith("ready "):
            raise RuntimeError(f"the harness did not come up: {ready!r} (see {self.log.name})")
        fields = dict(kv.split("=", 1) for kv in ready.split()[1:])
        self.run = Path(fields["run"])
        self.prefix = fields["prefix"]
        self.contract = fields["contract"]
        self.cast_bin = fields["cast"]
        self.tokens: Dict[int, int] = {i + 1: int(t) for i, t in enumerate(fields["tokens"].split(","))}

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("")  # EOF

    def _answer(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return "err no answer"

    def do(self, command: str, timeout: float = 180) -> str:
        """Run one harness command; returns what follows "ok"."""
        assert self.proc.stdin
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self._answer(timeout)
        if not answer.startswith("ok"):
            raise RuntimeError(f"harness command {command!r}: {answer!r} (see {self.log.name})")
        return answer[2:].strip()

    def add(self, i: int) -> int:
        self.tokens[i] = int(self.do(f"add {i}"))
        return self.tokens[i]

    def control(self, i: int) -> str:
        return str(self.run / f"ctl{i}.sock")

    def cast(self, *args: str) -> str:
        out = subprocess.run([self.cast_bin, *args, "--rpc-url", str(self.run / "anvil.ipc")],
                             capture_output=True, text=True, timeout=60, check=True)
        return out.stdout.strip()

    def call(self, sig: str, *args: str) -> str:
        return self.cast("call", self.contract, sig, *args)

    def wg_allowed(self, i: int) -> List[str]:
        """Node i's peers' addresses as its WireGuard device reports them."""
        out = subprocess.run(["ip", "netns", "exec", f"{self.prefix}n{i}", "wg", "show", f"{self.prefix}w{i}",
                              "allowed-ips"], capture_output=True, text=True, timeout=30, check=True).stdout
        return sorted(ip.split("/")[0] for line in out.splitlines() for ip in line.split()[1:])

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="session")
def mesh():
    m = Mesh()
    yield m
    m.close()
