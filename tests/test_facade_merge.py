"""disk.merge / disk.start_merge and ``virtdisk merge``: the facade opens
the handle each MergeVirtualDisk version needs, and the content of the
chain ends up in the target."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import _virtdisk as vd
import virtdisk
from test_merge import SIZE, content, make_chain
from virtdisk.cli import main


@pytest.fixture(params=["vhd", "vhdx"])
def chain(tmp_path: Path, request: pytest.FixtureRequest) -> list[Path]:
    return make_chain(tmp_path, request.param, 3)


def test_merge_without_arguments_merges_into_the_parent(chain: list[Path]) -> None:
    base, middle, leaf = chain
    expected, base_before = content(leaf), content(base)
    with virtdisk.open(leaf) as disk:
        assert disk.read_only
        disk.merge()
        assert disk.read(0, SIZE) == expected
    assert content(middle) == expected
    assert content(base) == base_before


def test_merge_by_depth_reports_progress(chain: list[Path]) -> None:
    base, _, leaf = chain
    expected = content(leaf)
    seen: list[tuple[int, int]] = []
    with virtdisk.open(leaf) as disk:
        disk.merge(2, progress=lambda current, total: seen.append((current, total)))
    assert seen and seen[-1] == (SIZE, SIZE)
    assert all(current <= total for current, total in seen)
    assert content(base) == expected


def test_merge_by_source_and_target_leaves_the_disk(chain: list[Path]) -> None:
    base, middle, leaf = chain
    middle_view, leaf_view = content(middle), content(leaf)
    with virtdisk.open(leaf) as disk:
        disk.merge(source_depth=2, target_depth=3)
        assert disk.read(0, SIZE) == leaf_view
    assert content(base) == middle_view


def test_start_merge_is_awaitable(chain: list[Path]) -> None:
    _, middle, leaf = chain
    expected = content(leaf)

    async def run() -> None:
        with virtdisk.open(leaf) as disk:
            await disk.start_merge()

    asyncio.run(run())
    assert content(middle) == expected


def test_cancelled_start_merge_can_be_run_again(chain: list[Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    if vd.PLATFORM != "engine":
        pytest.skip("the engine's test hold")
    _, middle, leaf = chain
    expected = content(leaf)
    hold = tmp_path / "hold"
    hold.touch()
    monkeypatch.setenv("VIRTDISK_TEST_OPERATION_HOLD", str(hold))
    with virtdisk.open(leaf) as disk:
        operation = disk.start_merge()
        while operation.progress().current == 0:
            pass
        assert operation.cancel()
        with pytest.raises(virtdisk.OperationAbortedError):
            operation.result()
        hold.unlink()
        disk.merge()
    assert content(middle) == expected


@pytest.mark.parametrize("arguments, error", [
    ({"depth": 0}, ValueError),
    ({"depth": True}, TypeError),
    ({"depth": 1, "source_depth": 1}, ValueError),
    ({"source_depth": 2, "target_depth": 2}, ValueError),
    ({"target_depth": "3"}, TypeError),
])
def test_bad_arguments_raise_before_the_call(chain: list[Path], arguments: dict[str, object],
                                             error: type[Exception]) -> None:
    with virtdisk.open(chain[2]) as disk:
        handle = disk.handle
        with pytest.raises(error):
            disk.merge(**arguments)  # type: ignore[arg-type]
        assert disk.handle is handle   # not opened again


def test_merge_past_the_chain_is_an_invalid_parameter(chain: list[Path]) -> None:
    with virtdisk.open(chain[2]) as disk, pytest.raises(virtdisk.InvalidParameterError):
        disk.merge(3)


def test_merge_of_a_base_is_unsupported(chain: list[Path]) -> None:
    with virtdisk.open(chain[0]) as disk, pytest.raises(virtdisk.UnsupportedOperationError):
        disk.merge()


def test_cli_merge(chain: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    base, middle, leaf = chain
    expected = content(leaf)
    assert main(["merge", str(leaf), "--depth", "2"]) == 0
    assert capsys.readouterr().out.strip() == str(base)
    assert content(base) == expected
    # The merged disks no longer open: the API's refusal, status 1.
    assert main(["merge", str(middle)]) == 1
    assert "ERROR_VHD_CHILD_PARENT_ID_MISMATCH" in capsys.readouterr().err
    assert main(["merge", str(base)]) == 1
    assert main(["merge", str(leaf), "--depth", "0"]) == 2
