"""``crowdwatch run``: every camera of an event at once, for hours, into the store.

Each camera runs in its own :class:`~crowdwatch.engine.worker.CameraWorker` (a thread here, or
a Ray actor on a cluster with ``ray_address``). The engine starts them, applies configuration
changes while they run, restarts a camera that failed, prunes old data, and stops everything
cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from crowdwatch.config.schema import CameraConfig, EventConfig
from crowdwatch.engine.memory import limit_malloc_arenas
from crowdwatch.engine.reload import ConfigUpdate, ConfigWatcher
from crowdwatch.engine.worker import CameraWorker, WorkerOptions, share_estimator
from crowdwatch.estimators import Estimator
from crowdwatch.pipeline.threads import limit_opencv_threads
from crowdwatch.pipeline.venue import VenueRun
from crowdwatch.store.records import CameraHealth, Retention
from crowdwatch.store.sinks import WallClock
from crowdwatch.store.sql import SqlStore, StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    """How the engine runs.

    Attributes:
        worker: options of every camera worker (rate, stall time, capture, recording).
        reload_every_s: how often the config file and the store are checked for changes.
        restart_failed_after_s: a camera whose worker failed is restarted after this long.
        retention: how long the store keeps data; pruned hourly (None: never).
        ray_address: run camera workers as Ray actors on this cluster (``auto``, ``local``
            or ``HOST:PORT``); the store must then be reachable from every node (PostgreSQL).
        ray_cameras_per_host, ray_cpus_per_host: with Ray, how many cameras share one actor
            process (and its model), and the CPUs Ray reserves for it.
        lease_ttl_s: the store's engine lease lapses this long after the engine's last
            heartbeat (renewed every supervision tick): one engine per store.
        per_camera: worker options for particular cameras, by name (e.g. a larger recording
            quota for a key camera).
        privacy_blur: pixelate people in every picture kept whatever the config says
            (``run --privacy-blur``); applied to the config, where privacy is decided.
        venue_every_s: how often the cameras are fused onto the venue (with a ``venue:``).
    """

    worker: WorkerOptions = field(default_factory=WorkerOptions)
    reload_every_s: float = 2.0
    restart_failed_after_s: float = 10.0
    retention: Retention | None = field(default_factory=Retention)
    prune_every_s: float = 3600.0
    ray_address: str | None = None
    ray_cameras_per_host: int = 4
    ray_cpus_per_host: float = 2.0
    per_camera: dict[str, WorkerOptions] = field(default_factory=dict)
    privacy_blur: bool = False
    venue_every_s: float = 1.0
    lease_ttl_s: float = 30.0

    def worker_for(self, camera: str) -> WorkerOptions:
        """The worker options of one camera."""
        return self.per_camera.get(camera, self.worker)


class Worker(Protocol):
    """What the engine needs of a camera worker, local or remote."""

    @property
    def name(self) -> str: ...

    def start(self) -> Worker: ...

    def stop(self, timeout_s: float = 15.0) -> None: ...

    def apply(self, camera: CameraConfig) -> None: ...

    def health(self) -> CameraHealth: ...

    def is_alive(self) -> bool: ...


class Engine:
    """Runs every camera of an event.

    Example:
        >>> engine = Engine(load_config("event.yaml"), open_store("crowdwatch.db"),
        ...                 config_path=Path("event.yaml"))  # doctest: +SKIP
        >>> engine.run()  # until Ctrl-C / SIGTERM  # doctest: +SKIP
    """

    def __init__(
        self,
        config: EventConfig,
        store: SqlStore,
        options: EngineOptions | None = None,
        config_path: Path | None = None,
        estimator: Estimator | None = None,
    ) -> None:
        self.options = options or EngineOptions()
        self.config = self._with_options(config)
        self.store = store
        self.watcher = ConfigWatcher(store, config_path)
        self.workers: dict[str, Worker] = {}
        self._estimator = estimator
        self._stop = threading.Event()
        self._failed_since: dict[str, float] = {}
        self._last_prune = -float("inf")
        self.venue: VenueRun | None = None  # made at start, once the store's lease is ours
        self._venue_thread = threading.Thread(target=self._tick_venue, name="venue", daemon=True)
        self._make_worker = self._worker_factory()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._leased = False
        limit_malloc_arenas()
        limit_opencv_threads()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Engine:
        """Take the store's engine lease, save the starting config as a version and start every
        camera; returns self.

        Raises:
            StoreError: another engine holds the store's lease (one engine per store).
        """
        self._take_lease()
        self.venue = self._venue_run()
        self.watcher.initial(self.config)
        self.store.log_action("engine", "start", "engine", {"cameras": self._camera_names()})
        for camera in self.config.cameras:
            self._start_camera(camera)
        if self.venue is not None:
            self._venue_thread.start()
        return self

    def run(self, duration_s: float | None = None, on_tick: Callable[[Engine], None] | None = None):
        """Start, then supervise until stopped (signal, :meth:`request_stop` or ``duration_s``)."""
        self._install_signal_handlers()
        self.start()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        try:
            while not self._stop.wait(self.options.reload_every_s):
                self.tick()
                if on_tick is not None:
                    on_tick(self)
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            self.stop()

    def tick(self) -> None:
        """One round of supervision: the lease's heartbeat, config changes, failed cameras,
        retention."""
        self._renew_lease()
        try:
            update = self.watcher.poll()
            if update is not None:
                self.apply(update)
        except Exception:
            log.exception("checking for configuration changes failed")
        self._restart_failed()
        self._prune()

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop (thread- and signal-safe)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop every camera (closing open alerts and recordings)."""
        self._stop.set()
        workers, self.workers = list(self.workers.values()), {}
        for worker in workers:
            try:
                worker.stop()
            except Exception:
                log.exception("stopping camera %s failed", worker.name)
        if self.venue is not None:
            if self._venue_thread.is_alive():
                self._venue_thread.join(5)
            try:
                self.venue.close(time.time())
                self.store.end_run(self.venue.run_id)
            except Exception:
                log.exception("closing the venue failed")
        try:
            self.store.log_action("engine", "stop", "engine", {})
        except Exception:
            log.exception("cannot write the engine's stop to the store")
        if self._leased:
            self._leased = False
            try:
                self.store.release_lease(self.owner)
            except Exception:
                log.exception("cannot release the store's engine lease (it lapses by itself)")

    def status(self) -> list[CameraHealth]:
        """Every camera's health now."""
        return [worker.health() for worker in self.workers.values()]

    # -- configuration -----------------------------------------------------------------------

    def apply(self, update: ConfigUpdate) -> None:
        """Apply a new configuration: start added cameras, stop removed ones, hand changed
        zones, lines, thresholds, rates and sources to the running cameras."""
        new = self._with_options(update.config)
        event_wide = ("estimator", "heatmap", "webhooks", "privacy", "recording")
        changed = [name for name in event_wide if getattr(new, name) != getattr(self.config, name)]
        if changed:
            log.warning("changes to %s take effect at the next engine start", ", ".join(changed))
        old_cameras = {camera.name: camera for camera in self.config.cameras}
        new_cameras = {camera.name: camera for camera in new.cameras}
        for name in old_cameras.keys() - new_cameras.keys():
            worker = self.workers.pop(name, None)
            if worker is not None:
                worker.stop()
        for name, camera in new_cameras.items():
            if name not in self.workers:
                self._start_camera(camera)
            elif camera != old_cameras.get(name):
                self.workers[name].apply(camera)
        self.config = new
        log.info("applied configuration version %d by %s", update.version, update.author)

    # -- the lease: one engine per store -----------------------------------------------------

    def _take_lease(self) -> None:
        """The store's engine lease, taking over one whose engine was killed: lapsed (no
        heartbeat for its ttl), or held by a process of this host that no longer runs."""
        ttl = self.options.lease_ttl_s
        holder = self.store.lease()
        if holder is not None and holder.owner != self.owner and _owner_is_gone(holder.owner):
            log.warning(
                "taking over the store's lease from engine %s (no longer runs)", holder.owner
            )
            self.store.release_lease(holder.owner)
        self.store.acquire_lease(self.owner, ttl)  # raises StoreError naming the holder
        self._leased = True

    def _renew_lease(self) -> None:
        if not self._leased:
            return
        try:
            self.store.renew_lease(self.owner)
        except StoreError as lost:
            if "lost the engine lease" in str(lost):
                log.error("%s; stopping this engine", lost)
                self._leased = False
                self.request_stop()
            else:
                log.warning("cannot renew the store's engine lease: %s", lost)
        except Exception as error:  # the store is unreachable for now: try again next tick
            log.warning("cannot renew the store's engine lease: %s", error)

    # -- plumbing ----------------------------------------------------------------------------

    def _with_options(self, config: EventConfig) -> EventConfig:
        """The config with the engine's own overrides (``--privacy-blur``) applied."""
        if not self.options.privacy_blur or config.privacy.blur_people:
            return config
        privacy = config.privacy.model_copy(update={"blur_people": True})
        return config.model_copy(update={"privacy": privacy})

    def _start_camera(self, camera: CameraConfig) -> None:
        self.workers[camera.name] = self._make_worker(camera).start()

    def _worker_factory(self) -> Callable[[CameraConfig], Worker]:
        if self.options.ray_address:
            from crowdwatch.engine.distributed import RayWorkerFactory

            return RayWorkerFactory(
                self.options.ray_address,
                self.store.url_for_workers(),
                self.config,
                self.options,
                cameras_per_host=self.options.ray_cameras_per_host,
                cpus_per_host=self.options.ray_cpus_per_host,
            )
        shared: list[Estimator] = []

        def local_worker(camera: CameraConfig) -> Worker:
            if not shared:
                # Sized for every camera of the config, so that cameras added later share it.
                shared.append(
                    share_estimator(
                        self.config.estimator,
                        cameras=len(self.config.cameras),
                        estimator=self._estimator,
                    )
                )
            return CameraWorker(
                self.config,
                camera,
                shared[0],
                self.store,
                self.options.worker_for(camera.name),
                on_result=self.venue.add if self.venue is not None else None,
            )

        return local_worker

    def _venue_run(self) -> VenueRun | None:
        """The venue's step: local camera workers feed it as they analyse; Ray camera hosts
        are asked for their cameras' newest frame at each tick."""
        if self.config.venue is None:
            return None
        run_id = self.store.start_run(
            None, "engine", source=f"venue {self.config.venue.name}", detail={"venue": True}
        )
        recording = self.options.worker.recording
        folder = Path(recording.root) / self.config.venue.name if recording is not None else None
        return VenueRun(
            self.config,
            store=self.store,
            clock=WallClock(),
            run_id=run_id,
            folder=folder,
            preview=folder,
        )

    def _tick_venue(self) -> None:
        """Fuse the cameras onto the venue about once a second until the engine stops."""
        while not self._stop.wait(self.options.venue_every_s):
            try:
                if self.options.ray_address:
                    for worker in list(self.workers.values()):
                        self.venue.add_input(worker.venue_input())
                health = {h.camera: h.state for h in self.status()}
                self.venue.tick(time.time(), health)
            except Exception:
                log.exception("the venue's tick failed")

    def _restart_failed(self) -> None:
        now = time.monotonic()
        for name, worker in list(self.workers.items()):
            if worker.is_alive():
                self._failed_since.pop(name, None)
                continue
            since = self._failed_since.setdefault(name, now)
            if now - since >= self.options.restart_failed_after_s and not self._stop.is_set():
                log.warning("restarting camera %s after a failure", name)
                self._failed_since.pop(name, None)
                try:
                    worker.stop(timeout_s=5)  # release what is left (a remote actor's name)
                except Exception:
                    log.exception("cleaning up failed camera %s", name)
                camera = next(c for c in self.config.cameras if c.name == name)
                self._start_camera(camera)

    def _prune(self) -> None:
        retention = self.options.retention
        now = time.monotonic()
        if retention is None or now - self._last_prune < self.options.prune_every_s:
            return
        self._last_prune = now
        try:
            deleted = self.store.prune(retention)
            if any(deleted.values()):
                log.info("retention: deleted %s", deleted)
        except Exception:
            log.exception("pruning old data failed")

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: self.request_stop())

    def _camera_names(self) -> list[str]:
        return [camera.name for camera in self.config.cameras]


def _owner_is_gone(owner: str) -> bool:
    """True when a lease ``owner`` (``host:pid:token``) is a process of this host that has
    exited: a ``kill -9``ed engine, whose lease may be taken over at once."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def run_engine(
    config_path: Path,
    store_target: str,
    options: EngineOptions | None = None,
    duration_s: float | None = None,
    on_tick: Callable[[Engine], None] | None = None,
) -> None:
    """Load the config, open the store and run the engine until stopped."""
    from crowdwatch.config import load_config
    from crowdwatch.store import open_store

    config = load_config(config_path)
    store = open_store(store_target)
    try:
        Engine(config, store, options, config_path=config_path).run(duration_s, on_tick)
    finally:
        store.close()
