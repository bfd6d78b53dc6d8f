"""Configuration changes while the engine runs: from the config file or from the store.

A changed file is validated and saved to the store as a new version (author ``file:PATH``);
a new version in the store (saved by the console, with its author) is picked up and applied.
Every change is kept in the store with who, when, and the old and new values.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from crowdwatch.config.load import load_config, parse_config
from crowdwatch.config.schema import EventConfig
from crowdwatch.errors import ConfigError
from crowdwatch.store.sql import SqlStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfigUpdate:
    """A configuration to apply, and which stored version it is."""

    config: EventConfig
    version: int
    author: str


class ConfigWatcher:
    """Notices new configurations. Call :meth:`poll` every second or two.

    Example:
        >>> watcher = ConfigWatcher(store, Path("event.yaml"))  # doctest: +SKIP
        >>> first = watcher.initial(config)  # doctest: +SKIP
        >>> update = watcher.poll()  # None, or the ConfigUpdate to apply  # doctest: +SKIP
    """

    def __init__(self, store: SqlStore, path: Path | None = None) -> None:
        self.store = store
        self.path = path
        self.applied_version = 0
        self.rejected: str | None = None
        self._file_stamp = _stamp(path)

    def initial(self, config: EventConfig, author: str = "engine start") -> ConfigUpdate:
        """Save the configuration the engine starts with (a no-op if the store has it)."""
        source = f"file:{self.path}" if self.path else author
        version = self.store.save_config(config, author=source, note="engine start")
        self.applied_version = version.version
        return ConfigUpdate(config, version.version, version.author)

    def poll(self) -> ConfigUpdate | None:
        """A new configuration from the file or the store, or None."""
        self._save_changed_file()
        latest = self.store.latest_config()
        if latest is None or latest.version <= self.applied_version:
            return None
        try:
            config = parse_config(latest.config, origin=f"stored config version {latest.version}")
        except ConfigError as error:
            self._reject(str(error), latest.version)
            return None
        self.applied_version = latest.version
        return ConfigUpdate(config, latest.version, latest.author)

    def _save_changed_file(self) -> None:
        stamp = _stamp(self.path)
        if self.path is None or stamp == self._file_stamp:
            return
        self._file_stamp = stamp
        try:
            config = load_config(self.path)
        except ConfigError as error:
            self._reject(str(error), None)
            return
        self.store.save_config(config, author=f"file:{self.path}", note="file changed")

    def _reject(self, problem: str, version: int | None) -> None:
        self.rejected = problem
        if version is not None:
            self.applied_version = version  # do not retry the same broken version
        log.error("configuration change rejected: %s", problem)
        self.store.log_action(
            "engine", "config rejected", f"config:{version or self.path}", {"problem": problem}
        )


def _stamp(path: Path | None) -> tuple[float, int] | None:
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime, info.st_size
