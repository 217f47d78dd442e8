"""Ingest progress as plain lines, for logs and pipes where a progress bar cannot draw (CI, `make demo | tee`,
a child process): a line every few seconds with files, chunks, chunks/s and the time left.

    lines = ProgressLines(ProgressConfig(interval=5.0), write=print)
    IngestPipeline(kb).run(paths, on_file=lines.file, on_plan=lines.plan, on_embedded=lines.embedded)
    lines.done(report)
    # ingest: 1718 files read, 51051 chunks to embed
    # ingest: embedded 3200/51051 chunks (6%), 24.1 chunks/s, about 33 min left
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ProgressConfig:
    interval: float = 5.0  # seconds between two lines
    prefix: str = "ingest"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


class ProgressLines:
    def __init__(self, config: ProgressConfig | None = None, write: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.config = config or ProgressConfig()
        self.write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self.clock = clock
        self.files = 0
        self.failed = 0
        self.total_chunks = 0
        self.embedded_chunks = 0
        self._started = clock()
        self._embed_started: float | None = None
        self._last = clock()

    def _due(self) -> bool:
        now = self.clock()
        if now - self._last >= self.config.interval:
            self._last = now
            return True
        return False

    def file(self, outcome) -> None:
        self.files += 1
        if getattr(outcome, "status", "") == "failed":
            self.failed += 1
            self.write(f"{self.config.prefix}: failed: {outcome.error}")
        elif self._due():
            self.write(f"{self.config.prefix}: {self.files} files read")

    def plan(self, n_docs: int, n_chunks: int) -> None:
        self.total_chunks = n_chunks
        self._embed_started = self.clock()
        self._last = self._embed_started
        self.write(f"{self.config.prefix}: {n_docs} new or changed files, {n_chunks} chunks to embed"
                   f" (read in {_duration(self._embed_started - self._started)})")

    def embedded(self, n: int) -> None:
        self.embedded_chunks += n
        if not self._due() and self.embedded_chunks < self.total_chunks:
            return
        self.write(self.status())

    def status(self) -> str:
        elapsed = max(self.clock() - (self._embed_started or self._started), 1e-6)
        rate = self.embedded_chunks / elapsed
        line = f"{self.config.prefix}: embedded {self.embedded_chunks}/{self.total_chunks} chunks"
        if self.total_chunks:
            line += f" ({100 * self.embedded_chunks / self.total_chunks:.0f}%)"
        line += f", {rate:.1f} chunks/s"
        left = self.total_chunks - self.embedded_chunks
        if rate > 0 and left > 0:
            line += f", about {_duration(left / rate)} left"
        return line

    def done(self, report) -> None:
        self.write(f"{self.config.prefix}: done in {_duration(report.seconds)}: {report.counts()}")
