"""The fuzz corpus through the command line, in-process: no traceback, no crash; each input
ends with exit 0, or exit 2 and exactly one ``error:`` line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fuzz_corpus import CONFIGS, CORPUS, argument_sets, configs, media
from hostile import run_cli

CONFIG_FILES = sorted(CORPUS.glob("*.yaml"))


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)


def test_the_corpus_is_complete_and_up_to_date() -> None:
    assert len(CONFIG_FILES) == CONFIGS >= 300
    expected = dict(configs())
    assert {path.stem: path.read_text("utf-8") for path in CONFIG_FILES} == expected


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda path: path.stem)
def test_mutated_config(capsys, path: Path) -> None:
    # Every 8th also opens its camera for the frame-geometry checks.
    offline = ["--offline"] if int(path.stem) % 8 else []
    outcome = run_cli(capsys, "config", "check", path, *offline)
    assert outcome.clean, (path.read_text("utf-8")[:300], outcome)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "medium" in metafunc.fixturenames:
        metafunc.parametrize("medium", range(len(media(Path("/tmp/crowdwatch-fuzz-probe")))))
    if "arguments" in metafunc.fixturenames:
        metafunc.parametrize(
            "arguments", range(len(argument_sets(Path("/tmp/crowdwatch-fuzz-probe"))))
        )


def test_bad_medium(capsys, tmp_path: Path, medium: int) -> None:
    source = media(tmp_path / "media")[medium]
    outcome = run_cli(
        capsys, "analyze", source, "--out", tmp_path / "out", "-e", "ssd", "--no-video",
        "--max-frames", "2",
    )  # fmt: skip
    assert outcome.clean, (source, outcome)
    assert outcome.code == 2, (source, outcome)


def test_bad_arguments(capsys, tmp_path: Path, arguments: int) -> None:
    args = argument_sets(tmp_path)[arguments]
    outcome = run_cli(capsys, *args)
    assert outcome.clean, (args, outcome)
    assert outcome.code == 2, (args, outcome)


def test_corpus_counts() -> None:
    folder = Path("/tmp/crowdwatch-fuzz-probe")
    assert len(media(folder)) + len(argument_sets(folder)) >= 40
