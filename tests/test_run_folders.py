"""Run folders never mix two runs; runs in one store are told apart; a folder names its maker."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
from pathlib import Path

import yaml
from test_cli import crowdwatch

from crowdwatch.alerts import read_alert_log
from crowdwatch.paths import sample_config
from crowdwatch.store import open_store

FRAMES = 30


def _config(tmp_path: Path, name: str, advisory: float) -> Path:
    config = yaml.safe_load(sample_config().read_text())
    camera = config["cameras"][0]
    camera["source"] = str(sample_config().parent / camera["source"])
    camera["zones"][0]["alerts"] = [{"metric": "count", "latch_s": 0.3, "clear_latch_s": 0.3,
                                     "levels": {"advisory": advisory}}]  # fmt: skip
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def _analyze(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return crowdwatch(
        "analyze", "-c", str(config), "-o", str(out), "--max-frames", str(FRAMES),
        "-e", "ssd", "--no-video", "--camera", "plaza", *extra,
        str(sample_config().parent / "pets2009_s2l1.mp4"),
    )  # fmt: skip


def test_a_second_run_into_the_same_folder_is_refused_or_replaces_the_first(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    eager, calm = _config(tmp_path, "eager.yaml", 2), _config(tmp_path, "calm.yaml", 3)
    first = _analyze(eager, out)
    assert first.returncode == 0, first.stderr
    first_road = [a for a in read_alert_log(out / "alerts.jsonl") if a["zone"] == "road"]
    assert first_road and all(alert["threshold"] == 2 for alert in first_road)
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}

    refused = _analyze(calm, out)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("error: output folder") and "--overwrite" in line
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before

    replaced = _analyze(calm, out, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    alerts = read_alert_log(out / "alerts.jsonl")
    lines = (out / "alerts.jsonl").read_text().splitlines()
    assert {json.loads(text)["id"] for text in lines} == {alert["id"] for alert in alerts}
    road = [alert for alert in alerts if alert["zone"] == "road"]
    assert road and all(alert["threshold"] == 3 for alert in road)  # none of the first run's
    snapshots = {path.stem for path in (out / "snapshots").glob("*.jpg")}
    assert snapshots == {alert["id"] for alert in alerts}
    with (out / "metrics.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 2 * FRAMES
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["config_file"] == str(calm.resolve())

    # A folder holding someone else's files is never cleared.
    (out / "notes.txt").write_text("mine")
    kept = _analyze(calm, out, "--overwrite")
    assert kept.returncode == 2 and "no crowdwatch run writes" in kept.stderr
    assert (out / "notes.txt").read_text() == "mine" and (out / "metrics.csv").exists()


def test_two_analyses_into_one_store_are_told_apart(tmp_path: Path) -> None:
    config, store = _config(tmp_path, "event.yaml", 2), tmp_path / "shared.db"
    for name in ("a", "b"):
        result = _analyze(config, tmp_path / name, "--store", str(store))
        assert result.returncode == 0, result.stderr
    summaries = [json.loads((tmp_path / n / "summary.json").read_text()) for n in "ab"]
    ids = [summary["provenance"]["run_id"] for summary in summaries]
    assert ids[0] != ids[1]
    with open_store(store) as opened:
        runs = {run.id: run for run in opened.runs("plaza")}
        assert set(ids) <= set(runs) and all(runs[i].ended is not None for i in ids)
        per_run = [opened.metrics("plaza", run_id=run_id) for run_id in ids]
        assert [len(samples) for samples in per_run] == [3 * FRAMES - 1] * 2
        alerts = [opened.alerts(camera="plaza", run_id=run_id) for run_id in ids]
    # The same clip raises the same alerts at the same video times: two runs, two sets of rows.
    assert len(alerts[0]) == len(alerts[1]) >= 1
    assert not {a.id for a in alerts[0]} & {a.id for a in alerts[1]}


def test_summary_names_the_run_config_and_model(tmp_path: Path) -> None:
    config = _config(tmp_path, "event.yaml", 2)
    assert _analyze(config, tmp_path / "out").returncode == 0
    provenance = json.loads((tmp_path / "out" / "summary.json").read_text())["provenance"]
    assert provenance["run_id"].startswith("analyze-")
    assert provenance["config_file"] == str(config.resolve())
    assert len(provenance["config_sha256"]) == 64 and provenance["estimator"] == "ssd"
    model = Path(provenance["model_file"])
    assert provenance["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert provenance["crowdwatch_version"]
