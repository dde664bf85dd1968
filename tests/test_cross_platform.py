"""The same bytes give the same answers on every implementation.

tests/image_corpus.py builds deterministic VHD, VHDX and ISO images from the
specifications; tests/data/engine_answers.json records the portable engine's
answers for them.  Here the running implementation -- the engine on Linux and
macOS, VirtDisk.dll in the Windows wheel job -- must give those answers.  A
difference on Windows is an engine bug (or a builder bug): the engine returns
what Windows returns for the same file, by contract.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import image_corpus

RECORDED: dict[str, dict[str, Any]] = json.loads(image_corpus.ANSWERS.read_text())


@pytest.fixture(scope="module")
def live_answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return image_corpus.all_answers(tmp_path_factory.mktemp("corpus"))


def test_every_image_is_recorded() -> None:
    assert sorted(RECORDED) == sorted(image_corpus.CORPUS)


@pytest.mark.parametrize("image", sorted(image_corpus.CORPUS))
@pytest.mark.parametrize("version", image_corpus.FILE_PROPERTIES)
def test_answer_matches_the_record(
    live_answers: dict[str, dict[str, Any]], image: str, version: str
) -> None:
    assert live_answers[image][version] == RECORDED[image][version]


def test_builders_are_deterministic(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = image_corpus.write_corpus(tmp_path / "a")
    second = image_corpus.write_corpus(tmp_path / "b")
    for name in image_corpus.CORPUS:
        # The VHDX FileWriteGuid is random by design of the builder; it is not
        # an answer of any version compared here.
        if not name.endswith(".vhdx"):
            assert first[name].read_bytes() == second[name].read_bytes(), name
