"""Scale-out on Ray: each camera worker runs as a Ray actor somewhere in the cluster.

Every actor loads its own estimator and opens its own connection to the shared store (use
PostgreSQL: every node must reach it). The engine process only supervises: it starts the
actors, passes configuration changes on, and restarts a camera whose actor died.
Ray is optional: ``pip install 'crowdwatch[ray]'``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from crowdwatch.config.schema import CameraConfig, EventConfig
from crowdwatch.engine.worker import WorkerOptions
from crowdwatch.errors import CrowdwatchError
from crowdwatch.store.records import CameraHealth

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 30.0


class CameraActor:
    """The body of a camera's Ray actor: a :class:`CameraWorker` with its own estimator and
    store connection. Arguments are plain data so they travel between machines."""

    def __init__(self, camera: dict, event: dict, store_url: str, options: WorkerOptions) -> None:
        from crowdwatch.engine.memory import limit_malloc_arenas
        from crowdwatch.engine.worker import CameraWorker, LockedEstimator
        from crowdwatch.estimators import make_estimator
        from crowdwatch.store import open_store

        limit_malloc_arenas()
        config = EventConfig.model_validate(event)
        self.store = open_store(store_url)
        estimator = LockedEstimator(make_estimator(config.estimator))
        self.worker = CameraWorker(
            CameraConfig.model_validate(camera), estimator, self.store, config.heatmap, options
        )

    def start(self) -> bool:
        self.worker.start()
        return True

    def stop(self) -> bool:
        self.worker.stop()
        self.store.close()
        return True

    def apply(self, camera: dict) -> bool:
        self.worker.apply(CameraConfig.model_validate(camera))
        return True

    def health(self) -> CameraHealth:
        return self.worker.health()

    def is_alive(self) -> bool:
        return self.worker.is_alive()

    def node(self) -> str:
        """The IP address of the node the actor runs on."""
        import ray

        return ray.util.get_node_ip_address()


@dataclass
class RemoteWorker:
    """The engine's handle on one camera actor (the same methods as a local worker)."""

    name: str
    actor: Any
    ray: Any

    def start(self) -> RemoteWorker:
        self._call("start")
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        try:
            self._call("stop", timeout_s=timeout_s)
        finally:
            self.ray.kill(self.actor)

    def apply(self, camera: CameraConfig) -> None:
        self._call("apply", camera.model_dump(mode="json"))

    def health(self) -> CameraHealth:
        try:
            return self._call("health")
        except Exception as error:
            return CameraHealth(self.name, "failed", error=f"camera actor unreachable: {error}")

    def is_alive(self) -> bool:
        try:
            return bool(self._call("is_alive", timeout_s=10))
        except Exception:
            return False

    def node(self) -> str:
        """Where the camera runs."""
        return self._call("node")

    def _call(self, method: str, *args: Any, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        return self.ray.get(getattr(self.actor, method).remote(*args), timeout=timeout_s)


class RayWorkerFactory:
    """Makes a :class:`RemoteWorker` per camera on the Ray cluster at ``address``.

    Args:
        address: ``HOST:PORT`` of the cluster's head, ``auto`` (the cluster this machine is
            part of) or ``local`` (start a one-machine cluster).
        store_url: the store every actor opens (PostgreSQL for several machines).
        cpus_per_camera: CPUs Ray reserves per camera actor, which decides how many cameras a
            node takes (a 16-core node takes 32 cameras at 0.5).
    """

    def __init__(
        self,
        address: str,
        store_url: str,
        config: EventConfig,
        options: Any,
        cpus_per_camera: float = 0.5,
    ) -> None:
        try:
            import ray
        except ImportError as error:
            raise CrowdwatchError(
                "--ray needs Ray installed: pip install 'crowdwatch[ray]'"
            ) from error
        if store_url.startswith(":memory:"):
            raise CrowdwatchError("camera actors cannot share an in-memory store")
        if not store_url.startswith(("postgresql://", "postgres://")):
            log.warning("camera actors share a SQLite file: fine on one machine only")
        self.ray = ray
        if not ray.is_initialized():
            ray.init(
                address=address,  # "local" starts a one-machine cluster
                log_to_driver=False,
                include_dashboard=False,
                configure_logging=False,
            )
        self.store_url = store_url
        self.config = config
        self.options = options
        self.cpus = cpus_per_camera
        self._actor_class = ray.remote(max_restarts=0)(CameraActor)

    def __call__(self, camera: CameraConfig) -> RemoteWorker:
        actor = self._actor_class.options(
            name=f"crowdwatch-camera-{camera.name}",
            num_cpus=self.cpus,
            lifetime=None,
            get_if_exists=False,
        ).remote(
            camera.model_dump(mode="json"),
            self.config.model_dump(mode="json"),
            self.store_url,
            self.options.worker_for(camera.name),
        )
        return RemoteWorker(camera.name, actor, self.ray)
