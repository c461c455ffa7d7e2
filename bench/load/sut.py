"""The system under test that LoadGen drives: a pool of workers, each with its own session, fed by
a dynamic batcher.

LoadGen hands queries to :meth:`BatchingSUT.issue` (from its own issue thread); every sample joins
one queue. Each worker (one thread, one session of the runtime) takes a batch from the queue as
Triton's dynamic batcher forms one (Triton Inference Server, "Dynamic Batcher": a batch is sent
when it reaches the preferred size or when the oldest request has waited ``max_queue_delay``):

- at most ``max_batch`` samples, the oldest first;
- with ``max_queue_delay_ms`` 0 it takes what is queued at once (no waiting);
- otherwise it waits until ``max_batch`` samples are queued or the oldest has waited the delay.

A worker runs the batch, answers LoadGen for every sample of it (the predicted class, int64, 8
bytes, which LoadGen's accuracy mode logs) and records, per sample, the issue, start and end times
(``time.perf_counter_ns``) and the batch size: queueing time is start - issue, compute time end -
start. A failing call still answers every sample of its batch (LoadGen would wait forever
otherwise) and is kept in :attr:`BatchingSUT.error`. A failure anywhere else in a worker (a fault of
the harness) answers its batch, aborts the system (every later sample is answered at once) and is kept
in :attr:`BatchingSUT.fault` for good, so LoadGen never waits on a dead worker.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

import numpy as np

Respond = Callable[[list[int], np.ndarray], None]  # (query sample ids, int64 predictions) -> None


class BatchingSUT:
    """Workers and a dynamic batcher over preprocessed inputs.

    Args:
        sessions: one open runtime session per worker (``run(x)`` of float32 (n, ...) -> (n, ...)).
        inputs: the query sample library's images, float32 (N, 1, 28, 28) (row ``i`` is sample index ``i``).
        max_batch: the largest batch a worker runs (>= 1).
        max_queue_delay_ms: how long the oldest queued sample may wait for a batch to fill, ms (>= 0).
        respond: called with the sample ids and int64 predictions of each finished batch (LoadGen's
            ``QuerySamplesComplete``; tests pass a recorder).
        clock: nanosecond clock (tests pass a fake one).
    """

    def __init__(self, sessions: list, inputs: np.ndarray, respond: Respond, max_batch: int = 1,
                 max_queue_delay_ms: float = 0.0, clock: Callable[[], int] = time.perf_counter_ns) -> None:
        if not sessions:
            raise ValueError("a system under test needs at least one worker session")
        if max_batch < 1 or not max_queue_delay_ms >= 0:
            raise ValueError(f"max_batch >= 1 and max_queue_delay_ms >= 0, got {max_batch}, {max_queue_delay_ms}")
        self.inputs, self.respond, self.clock = inputs, respond, clock
        self.max_batch, self.delay_ns = int(max_batch), int(max_queue_delay_ms * 1e6)
        self._queue: deque[tuple[int, int, int]] = deque()  # (sample id, sample index, issue ns)
        self._cv = threading.Condition()
        self._stop = False
        self._aborted = False
        self._timings: list[np.ndarray] = []  # per batch: (n, 4) int64 of issue, start, end, batch size
        self._lock = threading.Lock()
        self.error: str | None = None
        self.fault: str | None = None  # a worker's failure outside the runtime call; never reset
        self._workers = [threading.Thread(target=self._work, args=(s,), daemon=True, name=f"mnistbench-worker-{i}")
                         for i, s in enumerate(sessions)]
        for w in self._workers:
            w.start()

    def issue(self, samples) -> None:
        """LoadGen's ``issue_query`` callback: queue each sample (``.id``, ``.index``) with the time now
        (after :meth:`abort`: answer it at once, unmeasured)."""
        now = self.clock()
        if self._aborted:
            self.respond([s.id for s in samples], np.full(len(samples), -1, np.int64))
            return
        with self._cv:
            self._queue.extend((s.id, s.index, now) for s in samples)
            self._cv.notify_all()

    def abort(self) -> None:
        """Answer every queued and later query at once, unmeasured (an interrupted test: LoadGen, which
        cannot be stopped, then ends at its minimum duration without waiting on the workers)."""
        with self._cv:
            self._aborted = True
            pending = list(self._queue)
            self._queue.clear()
        if pending:
            self.respond([p[0] for p in pending], np.full(len(pending), -1, np.int64))

    def flush(self) -> None:
        """LoadGen's ``flush_queries`` callback: nothing is held back, so nothing to do."""

    def close(self) -> None:
        """Stop the workers once the queue is empty, and wait for them."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        for w in self._workers:
            w.join()

    def _take(self) -> list[tuple[int, int, int]] | None:
        with self._cv:
            while True:
                if self._queue:
                    if len(self._queue) >= self.max_batch or self.delay_ns == 0 or self._stop:
                        break
                    left = self._queue[0][2] + self.delay_ns - self.clock()
                    if left <= 0:
                        break
                    self._cv.wait(left / 1e9)
                elif self._stop:
                    return None
                else:
                    self._cv.wait()
            n = min(len(self._queue), self.max_batch)
            return [self._queue.popleft() for _ in range(n)]

    def _work(self, session) -> None:
        while (batch := self._take()) is not None:
            ids, answered = [b[0] for b in batch], [False]
            try:
                self._serve(session, batch, ids, answered)
            except BaseException as exc:  # noqa: BLE001  (a fault outside the runtime call: never leave LoadGen waiting)
                self._fault(exc)
                if not answered[0]:
                    try:
                        self.respond(ids, np.full(len(ids), -1, np.int64))
                    except BaseException:  # noqa: BLE001  (nothing more can be done for this batch)
                        pass
                self.abort()

    def _serve(self, session, batch, ids, answered) -> None:
        x = self.inputs[np.fromiter((b[1] for b in batch), np.int64, len(batch))]
        start = self.clock()
        try:
            y = np.asarray(session.run(x))
            pred = y.reshape(len(batch), -1).argmax(axis=1).astype(np.int64)
        except Exception as exc:  # noqa: BLE001  (any runtime error: answer LoadGen, keep the first line)
            with self._lock:
                self.error = self.error or _first_line(exc)
            pred = np.full(len(batch), -1, np.int64)
        end = self.clock()
        t = np.empty((len(batch), 4), np.int64)
        t[:, 0] = [b[2] for b in batch]
        t[:, 1], t[:, 2], t[:, 3] = start, end, len(batch)
        with self._lock:
            self._timings.append(t)
        answered[0] = True
        self.respond(ids, pred)

    def _fault(self, exc: BaseException) -> None:
        """A worker failed outside the runtime call (a bug, not the model's): keep it for good, so that no
        later test on these workers reads as valid (:meth:`reset` keeps it), and abort."""
        with self._lock:
            self.fault = self.fault or f"worker fault: {_first_line(exc)}"
            self.error = self.fault

    def timings(self) -> np.ndarray:
        """Every answered sample so far: int64 (n, 4) of issue ns, start ns, end ns, batch size."""
        with self._lock:
            return np.concatenate(self._timings) if self._timings else np.empty((0, 4), np.int64)

    def reset(self) -> None:
        """Forget the timings and the runtime error (between LoadGen runs on the same workers); a worker
        fault stays, and the workers stay aborted."""
        with self._lock:
            self._timings.clear()
            self.error = self.fault


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
