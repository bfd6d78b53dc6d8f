"""What changed between two versions of a configuration, value by value."""

from __future__ import annotations

from typing import Any

_MISSING = object()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values of nested dicts and lists by path.

    List items that are dicts with a ``name`` are keyed by that name, so that reordering or
    inserting a zone does not show as a change of every zone after it.

    Example:
        >>> flatten({"cameras": [{"name": "gate", "analysis_fps": 2}]})
        {'cameras[gate].name': 'gate', 'cameras[gate].analysis_fps': 2}
    """
    if isinstance(value, dict):
        if not value:
            return {prefix: {}} if prefix else {}
        leaves: dict[str, Any] = {}
        for key, item in value.items():
            leaves.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return leaves
    if isinstance(value, list) and value and not all(_is_scalar(item) for item in value):
        leaves = {}
        for index, item in enumerate(value):
            key = item.get("name") if isinstance(item, dict) else None
            leaves.update(flatten(item, f"{prefix}[{key if key is not None else index}]"))
        return leaves
    return {prefix: value}


def diff(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(path, old, new)`` for every leaf that was added, removed or changed, sorted by path.

    Example:
        >>> diff({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3, "d": 4}})
        [('a.c', 2, 3), ('a.d', None, 4)]
    """
    before = flatten(old or {})
    after = flatten(new)
    changes = []
    for path in sorted(before.keys() | after.keys()):
        was, now = before.get(path, _MISSING), after.get(path, _MISSING)
        # An absent value and an explicit None both mean "not set".
        if was != now and not (_unset(was) and _unset(now)):
            changes.append(
                (path, None if was is _MISSING else was, None if now is _MISSING else now)
            )
    return changes


def _unset(value: Any) -> bool:
    return value is None or value is _MISSING


def _is_scalar(item: Any) -> bool:
    return not isinstance(item, (dict, list))
