"""Reading an event configuration from YAML, with every problem named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from crowdwatch.config.schema import CameraConfig, EventConfig
from crowdwatch.errors import ConfigError


def load_config(path: str | Path) -> EventConfig:
    """Parse and validate an event YAML file.

    Raises:
        ConfigError: listing every problem, each prefixed by where it is in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file ({exc.reason})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'cameras' list at the top level")
    config = parse_config(data, origin=str(path))
    return _sources_relative_to(config, path.parent)


def parse_config(data: dict[str, Any], origin: str = "config") -> EventConfig:
    """Validate an already-parsed mapping (from YAML, JSON or the console)."""
    try:
        return EventConfig.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation_errors(exc)
        raise ConfigError(
            f"{origin}: {len(problems)} problem(s):\n" + "\n".join(problems)
        ) from None


def _sources_relative_to(config: EventConfig, folder: Path) -> EventConfig:
    """Resolve relative file sources against the config file's folder, as users expect."""
    cameras = []
    for camera in config.cameras:
        source = camera.source
        if isinstance(source, str) and not _is_url_or_device(source):
            candidate = folder / source
            if not Path(source).is_absolute() and candidate.exists():
                camera = camera.model_copy(update={"source": str(candidate)})
        cameras.append(camera)
    return config.model_copy(update={"cameras": cameras})


def _is_url_or_device(source: str) -> bool:
    return "://" in source or source.isdigit()


def default_config(source: str | int) -> EventConfig:
    """One camera on ``source`` with no zones: the whole frame becomes a single zone."""
    return EventConfig(cameras=[CameraConfig(name="camera", source=source)])


def describe_validation_errors(exc: ValidationError) -> list[str]:
    """One readable line per pydantic error, e.g. ``cameras[0].zones[1].polygon: ...``."""
    lines = []
    for error in exc.errors():
        where = _location(error["loc"])
        if error["type"] == "extra_forbidden":
            lines.append(f"- {where}: unknown key")
        elif error["type"] == "missing":
            lines.append(f"- {where}: required key missing")
        else:
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"- {where}: {message}" if where else f"- {message}")
    return lines


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in {"function-after[_number_is_threshold(), LevelRule]"}:
            continue
        else:
            text += f".{part}" if text else str(part)
    return text


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return problem
