"""Alert rules: which metric, which levels, and how long a condition must hold.

A rule watches one metric of one zone or counting line and has up to three levels
(advisory, warning, critical). Each level has a threshold, a lower *clear* threshold
(hysteresis), a latch (how long the condition must hold before the alert fires), a clear
latch and a cooldown. Values left out of a level come from the rule's shared defaults.

Rules are embedded in the event YAML config, so the models forbid unknown keys. In YAML a
level may be a bare number (its threshold) or a mapping::

    metric: density            # people per square metre
    latch_s: 10
    levels:
      advisory: 2.0
      warning: {threshold: 3.5, clear: 3.0}
      critical: {threshold: 5.0, latch_s: 3}

Default figures (see ``DEFAULT_LEVELS``) come from the crowd-safety literature collected in
the project's research notes: walking slows at 2 /m², involuntary contact at 3.5 /m², dangerous
crowd forces from about 5 /m² in a moving crowd; Fruin walkway flow levels D/E/F start at
49/66/82 people per metre per minute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crowdwatch.types import Level

MetricName = Literal[
    "count", "density", "occupancy", "flow_rate", "pressure", "rise_rate", "minutes_to_limit"
]
LevelName = Literal["advisory", "warning", "critical"]
Direction = Literal["rising", "falling"]

METRIC_UNITS: dict[str, str] = {
    "count": "people",
    "density": "people/m²",
    "occupancy": "count / capacity",
    "flow_rate": "people/m/min",
    "pressure": "1/s² (density × velocity variance)",
    "rise_rate": "metric units per minute",
    "minutes_to_limit": "min",
}

# Metrics that alarm when they fall *below* their thresholds: little time left is the danger.
FALLING_METRICS: frozenset[str] = frozenset({"minutes_to_limit"})


class LevelRule(BaseModel):
    """One level of a rule. Fields left as ``None`` take the rule's shared defaults.

    Attributes:
        threshold: the level fires when the metric reaches it (at or above for rising metrics,
            at or below for falling ones) for ``latch_s`` seconds.
        clear: the alert clears once the metric is back beyond this value (below it for rising
            metrics) for ``clear_latch_s`` seconds. Default: ``threshold`` moved by the rule's
            ``hysteresis`` fraction.
        latch_s: how long the condition must hold before the alert opens.
        clear_latch_s: how long the metric must stay clear before the alert closes.
        cooldown_s: after an alert of this level closes, it cannot open again for this long.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    threshold: float
    clear: float | None = None
    latch_s: float | None = Field(default=None, ge=0)
    clear_latch_s: float | None = Field(default=None, ge=0)
    cooldown_s: float | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _number_is_threshold(cls, data: Any) -> Any:
        # YAML shorthand: ``warning: 3.5`` means ``warning: {threshold: 3.5}``.
        if isinstance(data, int | float) and not isinstance(data, bool):
            return {"threshold": data}
        return data


@dataclass(frozen=True)
class ResolvedLevel:
    """A level with every default filled in: what the engine actually runs."""

    level: Level
    threshold: float
    clear: float
    latch_s: float
    clear_latch_s: float
    cooldown_s: float


class AlertRule(BaseModel):
    """Alert levels for one metric of a zone or counting line.

    Attributes:
        metric: which metric to watch: ``count`` (people), ``density`` (people/m²),
            ``occupancy`` (count / capacity), ``flow_rate`` (people/m/min), ``pressure``
            (crowd pressure, density × velocity variance), ``rise_rate`` (how fast the zone
            fills) or ``minutes_to_limit`` (forecast minutes left before a limit at the
            current trend; this one alarms when it falls *below* its thresholds).
        name: label of the rule, unique per target; defaults to the metric name.
        direction: ``rising`` (alarm at or above thresholds) or ``falling`` (at or below);
            defaults to ``falling`` for ``minutes_to_limit`` and ``rising`` otherwise.
        levels: level name -> :class:`LevelRule` (or a bare threshold number).
        latch_s, clear_latch_s, cooldown_s: defaults for levels that leave them out.
        hysteresis: default clear threshold as a fraction of the threshold's size
            (0.1: a rising 2.0 /m² alert clears below 1.8 /m²).
        none_as: the value a ``None`` sample stands for. ``None`` (the default) makes ``None``
            a missing sample that neither raises nor clears. ``minutes_to_limit`` rules default
            to ``inf``: the trend measures return ``None`` when no crossing is in sight, which
            must let a time-left alert clear. NaN is always a missing sample.

    Example:
        >>> rule = AlertRule(metric="density", levels={"advisory": 2.0, "warning": 3.5})
        >>> [(r.level.label, r.threshold, round(r.clear, 2)) for r in rule.resolved_levels()]
        [('advisory', 2.0, 1.8), ('warning', 3.5, 3.15)]
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    metric: MetricName
    name: str | None = None
    direction: Direction | None = None
    levels: dict[LevelName, LevelRule] = Field(min_length=1)
    latch_s: float = Field(default=10.0, ge=0)
    clear_latch_s: float = Field(default=10.0, ge=0)
    cooldown_s: float = Field(default=60.0, ge=0)
    hysteresis: float = Field(default=0.1, ge=0, lt=1)
    none_as: float | None = Field(default=None, allow_inf_nan=True)

    @model_validator(mode="before")
    @classmethod
    def _no_forecast_means_never(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("metric") == "minutes_to_limit":
            return {"none_as": math.inf, **data}
        return data

    @property
    def label(self) -> str:
        """The rule's name, or its metric when unnamed."""
        return self.name or self.metric

    @property
    def rising(self) -> bool:
        """True when high values are the danger (every metric but ``minutes_to_limit``)."""
        if self.direction is None:
            return self.metric not in FALLING_METRICS
        return self.direction == "rising"

    def resolved_levels(self) -> tuple[ResolvedLevel, ...]:
        """The rule's levels from least to most severe, defaults filled in."""
        return tuple(
            self._resolve(Level.from_name(name), self.levels[name])
            for name in sorted(self.levels, key=lambda name: Level.from_name(name))
        )

    def _resolve(self, level: Level, rule: LevelRule) -> ResolvedLevel:
        return ResolvedLevel(
            level=level,
            threshold=rule.threshold,
            clear=self._default_clear(rule.threshold) if rule.clear is None else rule.clear,
            latch_s=self.latch_s if rule.latch_s is None else rule.latch_s,
            clear_latch_s=self.clear_latch_s if rule.clear_latch_s is None else rule.clear_latch_s,
            cooldown_s=self.cooldown_s if rule.cooldown_s is None else rule.cooldown_s,
        )

    def _default_clear(self, threshold: float) -> float:
        margin = self.hysteresis * abs(threshold)
        return threshold - margin if self.rising else threshold + margin

    @model_validator(mode="after")
    def _check_levels(self) -> AlertRule:
        if self.none_as is not None and math.isnan(self.none_as):
            raise ValueError("none_as must be a number or infinity, not NaN")
        resolved = self.resolved_levels()
        way = "rising" if self.rising else "falling"
        for level in resolved:
            self._check_clear_side(level, way)
        for lower, higher in zip(resolved, resolved[1:], strict=False):
            in_order = (
                higher.threshold > lower.threshold
                if self.rising
                else higher.threshold < lower.threshold
            )
            if not in_order:
                side = "above" if self.rising else "below"
                raise ValueError(
                    f"{higher.level.label} threshold {higher.threshold:g} must be {side} "
                    f"{lower.level.label} threshold {lower.threshold:g} for a {way} "
                    f"{self.metric!r} rule"
                )
        return self

    def _check_clear_side(self, level: ResolvedLevel, way: str) -> None:
        ok = level.clear <= level.threshold if self.rising else level.clear >= level.threshold
        if not ok or not math.isfinite(level.clear):
            side = "at or below" if self.rising else "at or above"
            raise ValueError(
                f"{level.level.label} clear {level.clear:g} must be {side} its threshold "
                f"{level.threshold:g} for a {way} {self.metric!r} rule"
            )


# Literature-based starting points; every figure stays configurable per zone.
DEFAULT_LEVELS: dict[str, dict[str, float]] = {
    # EPJ Data Science chart / G. K. Still: walking slows at 2, body contact at 3.5,
    # dangerous forces in a moving crowd from about 5 people/m².
    "density": {"advisory": 2.0, "warning": 3.5, "critical": 5.0},
    # Share of the zone's configured capacity.
    "occupancy": {"advisory": 0.8, "warning": 0.9, "critical": 1.0},
    # Fruin walkway levels of service D, E, F start at 49, 66 and 82 people/m/min.
    "flow_rate": {"advisory": 49.0, "warning": 66.0, "critical": 82.0},
    # Helbing et al. (2007) saw crowd turbulence at Mina above about 0.02 /s².
    "pressure": {"advisory": 0.01, "warning": 0.015, "critical": 0.02},
    # Forecast minutes left before the zone's limit at the current trend.
    "minutes_to_limit": {"advisory": 15.0, "warning": 10.0, "critical": 5.0},
}


def default_rules(metrics: tuple[str, ...] = ("density",)) -> list[AlertRule]:
    """Rules with the literature defaults for the given metrics.

    ``count`` and ``rise_rate`` have no default: their thresholds depend on the zone's size.

    Example:
        >>> [rule.metric for rule in default_rules(("density", "occupancy"))]
        ['density', 'occupancy']
    """
    missing = [metric for metric in metrics if metric not in DEFAULT_LEVELS]
    if missing:
        known = ", ".join(DEFAULT_LEVELS)
        raise ValueError(f"no default thresholds for {missing}; defaults exist for: {known}")
    return [
        AlertRule.model_validate({"metric": metric, "levels": DEFAULT_LEVELS[metric]})
        for metric in metrics
    ]


def zone_rules(configured: Sequence[AlertRule], *, area_known: bool) -> list[AlertRule]:
    """A zone's own rules, or the literature density defaults when its area is known.

    Example:
        >>> [rule.metric for rule in zone_rules([], area_known=True)]
        ['density']
        >>> zone_rules([], area_known=False)
        []
    """
    if configured:
        return list(configured)
    return default_rules(("density",)) if area_known else []
