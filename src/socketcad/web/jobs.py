"""Slow operations (a build: seconds; an interface analysis: minutes) run in worker processes, so the server keeps
answering while they run and an analysis's solver gets a core of its own. Each job's progress (the operation's
stage names) comes back through a queue and is streamed to the browser (server-sent events).

A job is kept in memory: a server restart forgets running jobs, and their results were never saved (an operation
saves its records at its end, in one transaction), so nothing is half-saved. A job is its clinic's: another
clinic's user is told it does not exist.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue as queues
import threading
import time
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

__all__ = ["Job", "JobState", "Jobs"]

log = logging.getLogger("socketcad.web")
KEEP_FINISHED_S = 3600.0  # a finished job's state stays readable an hour

# The operations a job may run: name -> the request class's name in socketcad.operations. One table, so that no
# request names a function to call.
OPERATIONS = {"save_design": "DesignRequest", "analyse_revision": "AnalyseRevisionRequest", "fit": "FitRequest"}


class JobState(BaseModel):
    """What the browser sees of a job: its stages so far, whether it is done, its result or its one-line error."""

    id: str
    kind: str
    reference: str
    state: str  # queued, running, done, failed
    stages: list[str]
    started_at: float
    seconds: float
    result: dict | None = None
    error: str | None = None


@dataclass
class Job:
    id: str
    kind: str
    clinic_id: int
    reference: str
    started_at: float = field(default_factory=time.time)
    state: str = "queued"
    stages: list[str] = field(default_factory=list)
    result: dict | None = None
    error: str | None = None
    finished_at: float | None = None
    version: int = 0  # bumped on every change (the event stream sends on a change)

    def view(self) -> JobState:
        end = self.finished_at or time.time()
        return JobState(id=self.id, kind=self.kind, reference=self.reference, state=self.state,
                        stages=list(self.stages), started_at=self.started_at, seconds=round(end - self.started_at, 2),
                        result=self.result, error=self.error)


_progress: multiprocessing.Queue | None = None  # the worker process's end of the progress queue
_stores: dict = {}


def _worker_started(progress: multiprocessing.Queue) -> None:
    global _progress
    _progress = progress


def _run(job_id: str, data_folder: str, database_url: str | None, operation: str, request: dict,
         actor: str) -> dict:
    """In a worker process: run one operation on the store and return its result as JSON data. An InputError
    comes back as itself (its one line is shown); anything else is logged here and re-raised."""
    from socketcad import operations as ops
    from socketcad.clinic.store import Store

    key = (data_folder, database_url)
    if key not in _stores:
        _stores[key] = Store(Path(data_folder), database_url)
    typed = getattr(ops, OPERATIONS[operation])(**request)
    step = (lambda stage: _progress.put((job_id, stage))) if _progress is not None else ops.silent
    result = getattr(ops, operation)(_stores[key], typed, actor, step)
    return result.model_dump(mode="json")


class Jobs:
    """Worker processes (spawned: no copy of the server's threads or connections) and the jobs given to them."""

    def __init__(self, data_folder: Path, database_url: str | None, workers: int = 2):
        context = multiprocessing.get_context("spawn")
        self._queue = context.Queue()
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_started,
                                         initargs=(self._queue,))
        self._where = (str(data_folder), database_url)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._reader = threading.Thread(target=self._read_progress, name="socketcad-job-progress", daemon=True)
        self._reader.start()

    def submit(self, operation: str, request: dict, actor: str, clinic_id: int, reference: str) -> Job:
        """Start ``operation`` (a key of OPERATIONS) on ``request`` (its request's fields, validated already)."""
        job = Job(id=uuid.uuid4().hex, kind=operation, clinic_id=clinic_id, reference=reference)
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
        future = self._pool.submit(_run, job.id, *self._where, operation, request, actor)
        future.add_done_callback(lambda done: self._finished(job, done))
        return job

    def get(self, job_id: str, clinic_id: int) -> Job | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.clinic_id == clinic_id else None

    def _finished(self, job: Job, future: Future) -> None:
        from socketcad.errors import InputError

        with self._lock:
            try:
                job.result, job.state = future.result(), "done"
            except InputError as exc:
                job.error, job.state = str(exc), "failed"
            except Exception:  # a bug, or a worker killed: logged with its traceback, told in one line
                log.exception("job %s (%s) failed", job.id, job.kind)
                job.error, job.state = f"the {job.kind.replace('_', ' ')} stopped unexpectedly; see the server log", \
                    "failed"
            job.finished_at = time.time()
            job.version += 1

    def _read_progress(self) -> None:
        while not self._closed:
            try:
                job_id, stage = self._queue.get(timeout=0.5)
            except (queues.Empty, EOFError, OSError):
                continue
            with self._lock:
                job = self._jobs.get(job_id)
                if job is not None:
                    job.stages.append(stage)
                    job.state = "running" if job.state == "queued" else job.state
                    job.version += 1

    def _forget_old(self) -> None:
        now = time.time()
        for key in [k for k, j in self._jobs.items() if j.finished_at and now - j.finished_at > KEEP_FINISHED_S]:
            del self._jobs[key]

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
