"""Reading an event configuration from YAML, with every problem named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from crowdwatch.config.schema import CameraConfig, EventConfig
from crowdwatch.errors import ConfigError

# Limits on a config file, checked before it is validated: its size, how deeply its mappings
# and lists nest, and how many values it holds once anchors and aliases are expanded.
MAX_CONFIG_BYTES = 2 * 1024 * 1024  # the sample config is 2.5 kB
MAX_NESTING = 32
MAX_VALUES = 2_000_000
# The C YAML parser (libyaml) when PyYAML was built with it: ~10x faster on large polygons.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_config(path: str | Path) -> EventConfig:
    """Parse and validate an event YAML file.

    Raises:
        ConfigError: listing every problem, each prefixed by where it is in the file.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a config file" if path.is_dir() else "not found"
        raise ConfigError(f"config file {what}: {path}")
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: config file is {size / 1e6:.1f} MB, more than the "
                f"{MAX_CONFIG_BYTES / 1e6:.0f} MB limit"
            )
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file ({exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    data = parse_yaml(text, origin=str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'cameras' list at the top level")
    config = parse_config(data, origin=str(path))
    return _sources_relative_to(config, path.parent)


def parse_yaml(text: str, origin: str = "config") -> Any:
    """Parse YAML text with the safe (C, when available) loader, within the size limits.

    Raises:
        ConfigError: not YAML, larger than ``MAX_CONFIG_BYTES``, nested deeper than
            ``MAX_NESTING``, or more than ``MAX_VALUES`` values once aliases are expanded.
    """
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{origin}: config is larger than {MAX_CONFIG_BYTES / 1e6:.0f} MB")
    try:
        # The event stream first: flat, so nesting is measured without recursion.
        depth = 0
        for event in yaml.parse(text, Loader=_YAML_LOADER):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    mark = event.start_mark
                    where = f" at line {mark.line + 1}" if mark is not None else ""
                    raise ConfigError(
                        f"{origin}: mappings and lists nested more than {MAX_NESTING} deep{where}"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {_yaml_problem(exc)}") from exc
    if _count_values(data, {}) > MAX_VALUES:
        raise ConfigError(
            f"{origin}: more than {MAX_VALUES:,} values once its aliases are expanded"
        )
    return data


def _count_values(value: Any, seen: dict[int, int]) -> int:
    """Values in ``value`` with aliases expanded (shared objects counted once each time they
    appear, computed once); nesting is already bounded by ``MAX_NESTING``."""
    if not isinstance(value, dict | list):
        return 1
    known = seen.get(id(value))
    if known is not None:
        return known
    items = list(value.keys()) + list(value.values()) if isinstance(value, dict) else value
    total = 1 + sum(_count_values(item, seen) for item in items)
    seen[id(value)] = total
    return total


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
    """Resolve relative file sources (``source`` and ``analysis_source``) against the config
    file's folder, as users expect."""
    cameras = [
        camera.model_copy(
            update={
                "source": _located(camera.source, folder),
                "analysis_source": _located(camera.analysis_source, folder),
            }
        )
        for camera in config.cameras
    ]
    update: dict = {"cameras": cameras}
    plan = config.venue.plan if config.venue is not None else None
    relative = plan is not None and plan.image and not Path(plan.image).is_absolute()
    if relative and (folder / plan.image).exists():  # the site plan, like a camera's file
        located = plan.model_copy(update={"image": str(folder / plan.image)})
        update["venue"] = config.venue.model_copy(update={"plan": located})
    return config.model_copy(update=update)


def _located(source: str | int | None, folder: Path) -> str | int | None:
    """``source`` resolved against ``folder`` when it is a relative path to a file there;
    anything else (a URL, a device, an absolute or missing path) unchanged."""
    if not isinstance(source, str) or _is_url_or_device(source) or Path(source).is_absolute():
        return source
    candidate = folder / source
    return str(candidate) if candidate.exists() else source


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
