"""The live engine: many cameras at once, streams that drop and return, into the store.

Typical use::

    from crowdwatch.engine import Engine, EngineOptions, WorkerOptions
    from crowdwatch.recording import RecordingOptions

    options = EngineOptions(worker=WorkerOptions(recording=RecordingOptions(Path("recordings"))))
    Engine(load_config("event.yaml"), open_store("crowdwatch.db"), options,
           config_path=Path("event.yaml")).run()
"""

from crowdwatch.engine.batching import BatchingEstimator
from crowdwatch.engine.capture import CaptureOptions, FrameGrabber, Grab
from crowdwatch.engine.engine import Engine, EngineOptions, run_engine
from crowdwatch.engine.reload import ConfigUpdate, ConfigWatcher
from crowdwatch.engine.worker import (
    CameraWorker,
    SharedEstimator,
    WorkerOptions,
    WorkerStats,
    model_threads_and_slots,
    share_estimator,
)

__all__ = [
    "BatchingEstimator",
    "CameraWorker",
    "CaptureOptions",
    "ConfigUpdate",
    "ConfigWatcher",
    "Engine",
    "EngineOptions",
    "FrameGrabber",
    "Grab",
    "SharedEstimator",
    "model_threads_and_slots",
    "share_estimator",
    "WorkerOptions",
    "WorkerStats",
    "run_engine",
]
