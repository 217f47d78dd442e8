"""Small measuring tools the benchmarks share: memory of a process, latency summaries, a server subprocess.

    with PeakRss() as peak: work()           # peak.mb: highest resident set seen while working
    rss_mb(pid), hwm_mb(pid)                  # current / high-water resident set of any process
    summary = latency_summary([12.0, 15.5])   # {"n", "p50", "p95", "p99", "mean", "max"}
    with ServerProcess(kb_dir) as srv: httpx.post(srv.url + "/v1/ask", json={...})

Benchmarks print figures; they never assert timings (the machine is shared).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from .metrics import percentile
from .report import write_json
from .runner import load_average, machine_info

__all__ = ["PeakRss", "rss_mb", "hwm_mb", "latency_summary", "ServerProcess", "machine_info", "load_average",
           "contention_note", "fmt_lat"]


def _status_kb(pid: int | str, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb(pid: int | str = "self") -> float | None:
    kb = _status_kb(pid, "VmRSS")
    return None if kb is None else kb / 1024


def hwm_mb(pid: int | str = "self") -> float | None:
    """Peak resident set of the process over its whole life (VmHWM)."""
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else kb / 1024


class PeakRss:
    """Highest VmRSS of a process seen by a sampling thread while the block runs (every `interval` s)."""

    def __init__(self, pid: int | str = "self", interval: float = 0.05):
        self.pid, self.interval = pid, interval
        self.start_mb: float | None = None
        self.mb: float = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            v = rss_mb(self.pid)
            if v is not None and v > self.mb:
                self.mb = v
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRss":
        self.start_mb = rss_mb(self.pid)
        self.mb = self.start_mb or 0.0
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        v = rss_mb(self.pid)
        if v is not None and v > self.mb:
            self.mb = v


def latency_summary(ms: list[float], seconds: float | None = None) -> dict:
    out = {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "mean": sum(ms) / len(ms) if ms else None,
        "max": max(ms) if ms else None,
    }
    if seconds:
        out["seconds"] = seconds
        out["req_per_s"] = len(ms) / seconds
    return out


def fmt_lat(s: dict | None, keys=("p50", "p95", "p99")) -> str:
    if not s or not s.get("n"):
        return "n/a"
    parts = [f"{k} {s[k]:.1f}" for k in keys if s.get(k) is not None]
    text = " / ".join(parts) + " ms"
    if s.get("req_per_s"):
        text += f" · {s['req_per_s']:.1f} req/s"
    return text


def contention_note(load_start: list[float] | None, load_end: list[float] | None, cores: int | None) -> str:
    """The machine is shared: say how busy it was, so figures are read with that in mind."""
    if not load_start:
        return "load average unknown"
    cores = cores or 1
    worst = max(load_start[0], (load_end or load_start)[0])
    verdict = "quiet" if worst < 0.5 * cores else "busy" if worst < 1.5 * cores else "heavily contended"
    return (f"1-min load average {load_start[0]:.2f} at start, {(load_end or [float('nan')])[0]:.2f} at end on "
            f"{cores} cores: {verdict} (other processes share these cores; figures are upper bounds)")


def finish(console, machine: dict, result: dict, json_out: Path | None) -> None:
    """The closing lines every benchmark prints: how busy the machine was, then the figures as JSON if asked."""
    console.print(contention_note(machine.get("load_average"), machine.get("load_average_end"), machine.get("cores")),
                  highlight=False)
    if json_out:
        write_json(result, json_out)
        console.print(f"wrote {json_out}", highlight=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def policyqa_command() -> list[str]:
    """The installed console script beside this interpreter, else `python -m qa_service.cli`."""
    exe = Path(sys.executable).with_name("policyqa")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("policyqa")
    return [found] if found else [sys.executable, "-m", "qa_service.cli"]


class ServerProcess:
    """`policyqa serve --kb DIR` on a free loopback port, rate limit off; stopped (by its own pid) on exit."""

    def __init__(self, kb_dir: Path, env: dict | None = None, startup_timeout: float = 600.0, log_path: Path | None = None):
        self.kb_dir = Path(kb_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "POLICYQA_RATE_LIMIT_PER_MINUTE": "0", **(env or {})}
        self.startup_timeout = startup_timeout
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log = None

    def __enter__(self) -> "ServerProcess":
        import httpx  # lazy: httpx costs 0.05-0.08 s at every policyqa command's start-up; only --url needs it

        cmd = [*policyqa_command(), "serve", "--kb", str(self.kb_dir), "--host", "127.0.0.1", "--port", str(self.port)]
        self._log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with code {self.proc.returncode}: {' '.join(cmd)}"
                                   + (f" (log: {self.log_path})" if self.log_path else ""))
            try:
                if httpx.get(self.url + "/healthz", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.__exit__(None, None, None)
        raise RuntimeError(f"server did not become healthy within {self.startup_timeout:.0f} s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
