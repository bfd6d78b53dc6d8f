"""One run, one folder: a run folder never mixes the outputs of two runs.

The rule (the one users of ``--out``-style tools such as ffmpeg's ``-y`` expect): a run writes
into an empty or new folder; a folder that already holds files is refused with one ``error:``
line unless ``--overwrite`` is given, which first removes what a crowdwatch run writes there
(its files, its snapshots, a store and recording folder it kept inside) and refuses if anything
else is in the folder, so no file of the user's is ever deleted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from crowdwatch.errors import OutputError
from crowdwatch.pipeline.outputs import (
    ALERTS_FILE,
    BIRDSEYE_FILE,
    LINES_FILE,
    METRICS_FILE,
    SNAPSHOTS_FOLDER,
    SPOOL_FILE,
    VIDEO_FILE,
)

SUMMARY_FILE = "summary.json"
VENUE_FOLDER = "venue"  # with a venue: the venue's alerts.jsonl
# Everything a run writes into its folder (besides a store or recordings given inside it).
RUN_FILES = (
    METRICS_FILE,
    LINES_FILE,
    ALERTS_FILE,
    VIDEO_FILE,
    BIRDSEYE_FILE,
    SUMMARY_FILE,
    SNAPSHOTS_FOLDER,
    VENUE_FOLDER,
    SUMMARY_FILE + ".tmp",
    SPOOL_FILE,
)
_STORE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def prepare_run_folder(
    folder: Path, *, overwrite: bool, keep_also: Iterable[str | os.PathLike[str] | None] = ()
) -> None:
    """Make ``folder`` ready for one run's outputs.

    ``keep_also`` names a store file or recording folder the run writes; when they lie inside
    ``folder`` they count as the run's own outputs (removed by ``overwrite``).

    Raises:
        OutputError: ``folder`` is a file, cannot be created, holds files without
            ``overwrite``, or holds files no crowdwatch run writes.
    """
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output folder {folder} is a file: choose a folder for --out")
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    if entries and not overwrite:
        names = ", ".join(entry.name for entry in entries[:4])
        more = f" and {len(entries) - 4} more" if len(entries) > 4 else ""
        raise OutputError(
            f"output folder {folder} already holds files ({names}{more}): give --overwrite to "
            f"replace the earlier run's outputs, or choose another --out"
        )
    own = _run_entries(folder, keep_also)
    foreign = [entry.name for entry in entries if entry.name not in own]
    if foreign:
        raise OutputError(
            f"output folder {folder} holds files that no crowdwatch run writes "
            f"({', '.join(foreign[:4])}): --overwrite only replaces a run's own outputs; "
            f"choose another --out"
        )
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create output folder {folder}: {error.strerror}") from error


def _run_entries(folder: Path, extra: Iterable[str | os.PathLike[str] | None]) -> set[str]:
    names = set(RUN_FILES)
    inside = folder.resolve()
    for item in extra:
        if item is None or "://" in os.fspath(item):
            continue
        path = Path(item).resolve()
        if path.parent == inside:
            names.update(path.name + suffix for suffix in _STORE_SUFFIXES)
    return names
