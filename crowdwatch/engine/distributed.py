"""Scale-out on Ray: camera workers run in Ray actors across the machines of a cluster.

An actor is a *camera host*: one process with one estimator (one model in memory) and one store
connection, running a few cameras as :class:`~crowdwatch.engine.worker.CameraWorker` threads.
Ray places hosts on nodes by the CPUs they reserve, so a 16-core node takes eight hosts of two
cores. Every host writes straight to the shared store (use PostgreSQL: every node must reach it).
The engine process only supervises: it starts cameras, passes configuration changes on, and
restarts a camera whose host died. Ray is optional: ``pip install 'crowdwatch[ray]'``.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

from crowdwatch.config.schema import CameraConfig, EventConfig
from crowdwatch.engine.worker import WorkerOptions
from crowdwatch.errors import CrowdwatchError
from crowdwatch.store.records import CameraHealth

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 30.0


class CameraHost:
    """The body of a camera host actor. Arguments are plain data so they travel between
    machines."""

    def __init__(self, event: dict, store_url: str) -> None:
        from crowdwatch.engine.memory import limit_malloc_arenas
        from crowdwatch.engine.worker import share_estimator
        from crowdwatch.pipeline.threads import limit_opencv_threads
        from crowdwatch.store import open_store

        limit_malloc_arenas()
        limit_opencv_threads()
        self.config = EventConfig.model_validate(event)
        self.store = open_store(store_url)
        self.estimator = share_estimator(self.config.estimator, cameras=len(self.config.cameras))
        self.workers: dict[str, Any] = {}
        self._venue_inputs: dict[str, Any] = {}  # camera -> its newest VenueInput

    def add(self, camera: dict, options: WorkerOptions) -> bool:
        from crowdwatch.engine.worker import CameraWorker

        config = CameraConfig.model_validate(camera)
        keep = self._keep_venue_input if self.config.venue is not None else None
        worker = CameraWorker(
            self.config, config, self.estimator, self.store, options, on_result=keep
        )
        self.workers[config.name] = worker.start()
        return True

    def venue_input(self, name: str) -> Any:
        """The camera's newest :class:`~crowdwatch.pipeline.venue.VenueInput` (None if none
        since the last call), for the engine's venue step."""
        return self._venue_inputs.pop(name, None)

    def _keep_venue_input(self, name: str, result: Any, scene: Any) -> None:
        from crowdwatch.pipeline.venue import VenueInput

        self._venue_inputs[name] = VenueInput.of(name, result, scene)

    def remove(self, name: str) -> int:
        """Stop one camera; returns how many the host still runs."""
        worker = self.workers.pop(name, None)
        if worker is not None:
            worker.stop()
        return len(self.workers)

    def apply(self, name: str, camera: dict) -> bool:
        self.workers[name].apply(CameraConfig.model_validate(camera))
        return True

    def health(self, name: str) -> CameraHealth:
        return self.workers[name].health()

    def is_alive(self, name: str) -> bool:
        worker = self.workers.get(name)
        return worker is not None and worker.is_alive()

    def node(self) -> str:
        """The IP address of the node the host runs on."""
        import ray

        return ray.util.get_node_ip_address()

    def close(self) -> bool:
        for name in list(self.workers):
            self.remove(name)
        self.store.close()
        return True


@dataclass
class _Host:
    actor: Any
    cameras: set[str] = field(default_factory=set)
    dead: bool = False


@dataclass
class RemoteWorker:
    """The engine's handle on one camera in a host actor (the methods of a local worker)."""

    camera: CameraConfig
    options: WorkerOptions
    host: _Host
    factory: RayWorkerFactory

    @property
    def name(self) -> str:
        return self.camera.name

    def start(self) -> RemoteWorker:
        self._call("add", self.camera.model_dump(mode="json"), self.options)
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        try:
            self._call("remove", self.name, timeout_s=timeout_s)
        except Exception as error:
            log.warning("camera %s: its host did not answer the stop: %s", self.name, error)
            self.host.dead = True
        finally:
            self.factory.release(self.host, self.name)

    def apply(self, camera: CameraConfig) -> None:
        self._call("apply", self.name, camera.model_dump(mode="json"))
        self.camera = camera

    def health(self) -> CameraHealth:
        try:
            return self._call("health", self.name)
        except Exception as error:
            return CameraHealth(self.name, "failed", error=f"camera host unreachable: {error}")

    def is_alive(self) -> bool:
        try:
            return bool(self._call("is_alive", self.name, timeout_s=10))
        except Exception:
            self.host.dead = True
            return False

    def node(self) -> str:
        """Where the camera runs."""
        return self._call("node")

    def venue_input(self) -> Any:
        """The camera's newest venue input from its host (None when nothing new or no answer)."""
        try:
            return self._call("venue_input", self.name, timeout_s=5)
        except Exception as error:
            log.warning("camera %s: no venue input from its host: %s", self.name, error)
            return None

    def _call(self, method: str, *args: Any, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        remote = getattr(self.host.actor, method).remote(*args)
        return self.factory.ray.get(remote, timeout=timeout_s)


class RayWorkerFactory:
    """Places cameras in camera host actors on the Ray cluster at ``address``.

    Args:
        address: ``HOST:PORT`` of the cluster's head, ``auto`` (the cluster this machine is
            part of) or ``local`` (start a one-machine cluster).
        store_url: the store every host opens (PostgreSQL for several machines).
        cameras_per_host: cameras sharing one host process and model (what ``cpus_per_host``
            cores analyse at their rate: about 4 at 2 fps of 1280x720 per 2 cores).
        cpus_per_host: CPUs Ray reserves per host, which decides how many hosts a node takes.
    """

    def __init__(
        self,
        address: str,
        store_url: str,
        config: EventConfig,
        options: Any,
        cameras_per_host: int = 4,
        cpus_per_host: float = 2.0,
    ) -> None:
        try:
            import ray
        except ImportError as error:
            raise CrowdwatchError(
                "--ray needs Ray installed: pip install 'crowdwatch[ray]'"
            ) from error
        if store_url.startswith(":memory:"):
            raise CrowdwatchError("camera hosts cannot share an in-memory store")
        if not store_url.startswith(("postgresql://", "postgres://")):
            log.warning("camera hosts share a SQLite file: fine on one machine only")
        if cameras_per_host < 1 or cpus_per_host <= 0:
            raise ValueError(
                f"need cameras_per_host >= 1 and cpus_per_host > 0, "
                f"got {cameras_per_host} and {cpus_per_host}"
            )
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
        self.cameras_per_host = cameras_per_host
        self.cpus_per_host = cpus_per_host
        self.hosts: list[_Host] = []
        self._host_class = ray.remote(max_restarts=0)(CameraHost)
        self._numbers = itertools.count()

    def __call__(self, camera: CameraConfig) -> RemoteWorker:
        host = self._host_with_room()
        host.cameras.add(camera.name)
        return RemoteWorker(camera, self.options.worker_for(camera.name), host, self)

    def release(self, host: _Host, camera: str) -> None:
        """Forget a camera; a host with no cameras left (or a dead one) is shut down."""
        host.cameras.discard(camera)
        if host.cameras and not host.dead:
            return
        if host in self.hosts:
            self.hosts.remove(host)
        try:
            if not host.dead:
                self.ray.get(host.actor.close.remote(), timeout=CALL_TIMEOUT_S)
        except Exception as error:
            log.warning("closing a camera host failed: %s", error)
        finally:
            self.ray.kill(host.actor)

    def _host_with_room(self) -> _Host:
        for host in self.hosts:
            if not host.dead and len(host.cameras) < self.cameras_per_host:
                return host
        actor = self._host_class.options(
            name=f"crowdwatch-host-{next(self._numbers)}", num_cpus=self.cpus_per_host
        ).remote(self.config.model_dump(mode="json"), self.store_url)
        host = _Host(actor)
        self.hosts.append(host)
        return host
