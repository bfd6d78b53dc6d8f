"""Several cameras' frames in one model call: what a GPU needs to be worth its cost.

A GPU runs one frame of a small density network in about the time it runs eight, so the live
engine's camera threads hand their frames to one :class:`BatchingEstimator`, which gathers the
frames that arrive together (up to ``max_batch``, waiting at most ``wait_s`` for more after the
first) and runs them as one call of the estimator's ``estimate_batch``. Each camera still gets
exactly the estimate its frame would get alone; only the waiting changes, bounded by ``wait_s``.
On the CPU the engine does not batch (side-by-side single-threaded calls are faster there; see
:class:`~crowdwatch.engine.worker.SharedEstimator`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from crowdwatch.types import Anchor, Estimate

log = logging.getLogger(__name__)


class BatchEstimator(Protocol):
    """An estimator that also estimates several frames in one call."""

    name: str
    anchor: Anchor

    def estimate(self, image: np.ndarray) -> Estimate: ...

    def estimate_batch(self, images: list[np.ndarray]) -> list[Estimate]: ...


@dataclass
class _Request:
    image: np.ndarray
    result: Future = field(default_factory=Future)


_STOP = object()


class BatchingEstimator:
    """Gathers concurrent ``estimate`` calls into ``estimate_batch`` calls of ``estimator``.

    Args:
        estimator: the shared model (for example a ``DensityEstimator`` on ``device="cuda"``).
        max_batch: at most this many frames a call.
        wait_s: after the first frame of a batch, wait at most this long for more.

    ``batch_sizes`` keeps the size of the last 2000 calls (for benchmarks). A frame that makes
    its batch fail (a bad image) fails alone: the batch is then estimated frame by frame.

    Example:
        >>> model = DensityEstimator(device="cuda")  # doctest: +SKIP
        >>> shared = BatchingEstimator(model, max_batch=8)  # doctest: +SKIP
        >>> shared.estimate(frame.image).count  # doctest: +SKIP
    """

    def __init__(self, estimator: BatchEstimator, *, max_batch: int = 8, wait_s: float = 0.02):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.inner = estimator
        self.name = estimator.name
        self.anchor = estimator.anchor
        self.model_file = getattr(estimator, "model_file", None)
        self.max_batch = int(max_batch)
        self.wait_s = max(0.0, float(wait_s))
        self.batch_sizes: deque[int] = deque(maxlen=2000)
        self._requests: queue.Queue = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="model-batches", daemon=True)
        self._thread.start()

    def estimate(self, image: np.ndarray) -> Estimate:
        """``image``'s estimate, computed in a batch with the frames other cameras sent."""
        if self._closed:
            raise RuntimeError("the batching estimator is closed")
        request = _Request(image)
        self._requests.put(request)
        return request.result.result()

    def close(self) -> None:
        """Finish the calls already queued, then stop the batching thread."""
        if not self._closed:
            self._closed = True
            self._requests.put(_STOP)
            self._thread.join()

    def _serve(self) -> None:
        while True:
            first = self._requests.get()
            if first is _STOP:
                return
            batch, stop = self._gather(first)
            self._run(batch)
            if stop:
                return

    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        """``first`` and the requests that arrive within ``wait_s`` of it (up to max_batch)."""
        batch = [first]
        deadline = time.monotonic() + self.wait_s
        while len(batch) < self.max_batch:
            try:
                item = self._requests.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self, batch: list[_Request]) -> None:
        self.batch_sizes.append(len(batch))
        try:
            estimates = self.inner.estimate_batch([request.image for request in batch])
        except Exception as exc:  # one bad frame must not fail the other cameras' frames
            if len(batch) == 1:
                batch[0].result.set_exception(exc)
                return
            log.debug("a batch of %d failed; estimating its frames one by one", len(batch))
            for request in batch:
                self._run([request])
            return
        for request, estimate in zip(batch, estimates, strict=True):
            request.result.set_result(estimate)
