"""Work-order imports as background jobs: the upload returns at once (202 and a job id) and the staff page polls the
job's progress, while the server keeps answering citizens. Imports run one at a time, in a worker thread of their own
(a daemon: a server that stops drops an unfinished import, which stored nothing yet: tickets are saved at the end).

    jobs = ImportJobs()
    job = jobs.submit(lambda progress: {"added": 3}, started_by="王编辑", filename="工单导出.xlsx")
    jobs.get(job.id).snapshot()  # {"id", "state": "queued|running|done|failed", "stage", "done", "total", "result", "error", …}

Jobs live in this process's memory: behind a load balancer, poll the replica that took the upload (sticky sessions).
"""
from __future__ import annotations

import logging
import queue
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

log = logging.getLogger(__name__)

KEPT_JOBS = 100  # finished jobs remembered for polling; older ones are forgotten first
Progress = Callable[[str, int, int], None]
Runner = Callable[[Progress], dict]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class ImportJob:
    id: str
    started_by: str | None
    filename: str
    state: str = "queued"  # queued → running → done | failed
    stage: str = "queued"  # the importer's stage: reading, checking, embedding, answering, saving
    done: int = 0
    total: int = 0  # 0 while not known (reading)
    result: dict | None = None
    error: dict | None = None  # {"error": code, "message": …} when failed
    created_at: str = field(default_factory=_now)
    finished_at: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def progress(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            self.stage, self.done, self.total = stage, done, total

    def snapshot(self) -> dict:
        with self._lock:
            return {"id": self.id, "state": self.state, "stage": self.stage, "done": self.done, "total": self.total,
                    "filename": self.filename, "started_by": self.started_by, "created_at": self.created_at,
                    "finished_at": self.finished_at, "result": self.result, "error": self.error}

    def _finish(self, result: dict | None, error: dict | None) -> None:
        with self._lock:
            self.state = "done" if error is None else "failed"
            self.stage = self.state
            self.result, self.error, self.finished_at = result, error, _now()


def describe_error(exc: Exception) -> dict:
    """An import's failure as the API's error body: the exception's own `code` (WorkOrderError and its kinds) and
    message, or a generic one (the details go to the server log, not to the page)."""
    code = getattr(exc, "code", None)
    if code:
        return {"error": code, "message": str(exc)}
    return {"error": "import_failed", "message": "导入失败（详见服务器日志）/ the import failed; see the server log"}


class ImportJobs:
    def __init__(self, kept: int = KEPT_JOBS):
        self.kept = kept
        self._jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[ImportJob, Runner]] = queue.Queue()
        self._worker: threading.Thread | None = None

    def submit(self, runner: Runner, started_by: str | None, filename: str) -> ImportJob:
        job = ImportJob(id=secrets.token_urlsafe(16), started_by=started_by, filename=filename)
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="workorder-import", daemon=True)
                self._worker.start()
        self._queue.put((job, runner))
        return job

    def get(self, job_id: str) -> ImportJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in ("done", "failed")]
        for job in finished[: max(0, len(finished) - self.kept)]:
            del self._jobs[job.id]

    def _work(self) -> None:
        while True:
            job, runner = self._queue.get()
            with job._lock:
                job.state = job.stage = "running"
            try:
                job._finish(runner(job.progress), None)
            except Exception as e:  # the job reports it; the worker goes on with the next one
                if not getattr(e, "code", None):
                    log.exception("work-order import %s failed", job.id)
                job._finish(None, describe_error(e))
            finally:
                self._queue.task_done()
