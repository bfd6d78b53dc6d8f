"""One truth about how bad things are: a level per zone and per camera, computed once per
refresh from the store's latest metrics and its open alerts, and used by every panel (camera
badge, zone table, zone outline on the frame, alert bar, banner, tab title).

A target's level is the most severe of the alert engine's current level (stored with each
metric sample) and the level of every open alert on it: a panel can never say NORMAL while an
alert on the same zone is open, nor list an alert that the zone table does not reflect.

Example:
    >>> from crowdwatch.store.records import MetricSample
    >>> now = Situation.of([MetricSample("gate", "north", 5.0, {"count": 3.0}, level="advisory")],
    ...                    [])
    >>> now.zone_level("gate", "north"), now.camera_level("gate"), now.level
    ('advisory', 'advisory', 'advisory')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from crowdwatch.store.records import MetricSample, StoredAlert

LEVELS: tuple[str, ...] = ("normal", "advisory", "warning", "critical")
LEVEL_RANK: dict[str, int] = {level: rank for rank, level in enumerate(LEVELS)}
#: Levels that sound (when the operator turned sound on) and turn the alert bar red.
LOUD_LEVELS: frozenset[str] = frozenset({"warning", "critical"})


def worst(levels: Iterable[str]) -> str:
    """The most severe of some levels (``normal`` when there are none).

    Example:
        >>> worst(["advisory", "critical", "normal"])
        'critical'
    """
    return max(levels, key=lambda level: LEVEL_RANK.get(level, 0), default="normal")


def attention_order(alerts: Iterable[StoredAlert]) -> list[StoredAlert]:
    """Open alerts in a stable order for the alert bar and the alert cards: unacknowledged
    before acknowledged, then oldest first (a newly opened alert goes to the end, so the cards
    an operator is working on never move under them), then by id."""
    return sorted(alerts, key=lambda a: (a.acknowledged, a.opened, a.id))


@dataclass(frozen=True)
class Situation:
    """Levels of every target and camera at one moment, and the open alerts behind them."""

    targets: dict[tuple[str, str], str] = field(default_factory=dict)  # (camera, zone)
    active: tuple[StoredAlert, ...] = ()
    samples: tuple[MetricSample, ...] = ()

    @classmethod
    def of(cls, latest: Sequence[MetricSample], active: Sequence[StoredAlert]) -> Situation:
        """The situation from the store's latest samples and its open alerts."""
        targets: dict[tuple[str, str], str] = {}
        for sample in latest:
            key = (sample.camera, sample.zone)
            targets[key] = worst([targets.get(key, "normal"), sample.level])
        for alert in active:
            key = (alert.camera, alert.zone)
            targets[key] = worst([targets.get(key, "normal"), alert.level])
        return cls(targets, tuple(attention_order(active)), tuple(latest))

    @classmethod
    def at(
        cls, samples: Sequence[MetricSample], alerts: Sequence[StoredAlert], when: float
    ) -> Situation:
        """The situation at a past moment: each target's newest sample by ``when`` and the
        alerts open at ``when`` (for review pictures)."""
        newest: dict[tuple[str, str, str], MetricSample] = {}
        for sample in sorted(samples, key=lambda s: s.time):
            if sample.time <= when:
                newest[(sample.camera, sample.kind, sample.zone)] = sample
        open_then = [
            a for a in alerts if a.opened <= when and (a.closed is None or a.closed >= when)
        ]
        return cls.of(list(newest.values()), open_then)

    def zone_level(self, camera: str, zone: str) -> str:
        """The level of one zone (or counting line) of a camera."""
        return self.targets.get((camera, zone), "normal")

    def camera_level(self, camera: str) -> str:
        """The worst level of a camera's targets."""
        return worst(level for (name, _), level in self.targets.items() if name == camera)

    @property
    def level(self) -> str:
        """The worst level anywhere."""
        return worst(self.targets.values())

    def alerts_of(self, camera: str) -> list[StoredAlert]:
        """The camera's open alerts, in attention order."""
        return [alert for alert in self.active if alert.camera == camera]

    @property
    def waiting(self) -> list[StoredAlert]:
        """Open alerts nobody has acknowledged yet, oldest first."""
        return [alert for alert in self.active if not alert.acknowledged]

    def elevated(self) -> list[tuple[str, str, str]]:
        """``(camera, zone, level)`` of targets above normal with no open alert of their own
        (the engine's level is rising but no alert has latched yet)."""
        alerted = {(alert.camera, alert.zone) for alert in self.active}
        return sorted(
            (camera, zone, level)
            for (camera, zone), level in self.targets.items()
            if level != "normal" and (camera, zone) not in alerted
        )

    def title(self, base: str = "crowdwatch") -> str:
        """The browser tab's title: the alert count and worst level first, so that it reads in
        a row of tabs (``(2) WARNING · crowdwatch``)."""
        if not self.active and self.level == "normal":
            return base
        count = f"({len(self.active)}) " if self.active else ""
        return f"{count}{self.level.upper()} · {base}"
