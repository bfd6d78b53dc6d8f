"""What produced a run: its id, the config (file and hash), the model (file and hash), the code.

Written into ``summary.json`` (and, with a store, onto the run's metrics and alerts by its id),
so a run folder says exactly what made it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from crowdwatch.config.schema import EventConfig
from crowdwatch.estimators.base import Estimator

_CHUNK = 1 << 20


def new_run_id(kind: str = "analyze", now: datetime | None = None) -> str:
    """A run id that sorts by start time and never repeats: ``analyze-20261201T214512Z-3f9a1c``.

    Example:
        >>> new_run_id(now=datetime(2026, 12, 1, 21, 45, 12, tzinfo=timezone.utc))[:25]
        'analyze-20261201T214512Z-'
    """
    now = now or datetime.now(timezone.utc)
    return f"{kind}-{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


def config_sha256(config: EventConfig) -> str:
    """SHA-256 of the validated config in canonical JSON: equal for equal settings, whatever
    the YAML's layout or comments."""
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file's bytes (None when it cannot be read)."""
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def run_provenance(
    config: EventConfig,
    *,
    config_path: Path | None,
    estimator: Estimator,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The provenance block of ``summary.json``."""
    from crowdwatch import __version__

    model = Path(estimator.model_file)
    return {
        "run_id": run_id or new_run_id(),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "crowdwatch_version": __version__,
        "config_file": str(Path(config_path).resolve()) if config_path else None,
        "config_sha256": config_sha256(config),
        "estimator": estimator.name,
        "model_file": str(model),
        "model_sha256": file_sha256(model) if model.is_file() else None,
    }
