"""`cxunify verify`: every file of an output folder against the SHA-256 its run recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cxunify.output import NOT_AS_WRITTEN
from tests.conftest import SMALL_CONFIG, SMALL_ROWS, small_output, write


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small output, with its update state; each test damages a copy."""
    return small_output(tmp_path_factory.mktemp("verify"))


@pytest.fixture
def out(written: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(written, copy)
    return copy


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))


def _checked(cli, out: Path) -> tuple[int, dict]:
    result = cli("verify", out, "--json")
    return result.exit_code, json.loads(result.stdout)


def test_an_output_as_written_passes_with_every_file_checked(cli, out: Path):
    code, found = _checked(cli, out)
    assert code == 0
    assert found["damaged"] == 0
    files = {f["file"] for f in found["files"]}
    # run.json, each Parquet output, the state's manifest and its files
    assert {"run.json", "profiles.parquet", "links.parquet", "touchpoints.parquet"} <= files
    assert "state/state.json" in files
    assert any(f.startswith("state/records/rows-") for f in files)
    result = cli("verify", out)
    assert result.exit_code == 0
    assert f"files of {out} are as their run wrote them" in result.stderr


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        # a file no update reads: nothing else would ever notice
        (lambda out: _flip(out / "touchpoints.parquet"), "touchpoints.parquet"),
        (lambda out: _flip(out / "state" / "records" / "rows-00000.parquet"),
         "state/records/rows-00000.parquet"),
        (lambda out: (out / "links.parquet").unlink(), "links.parquet"),
        (lambda out: (out / "state" / "state.json").write_text("{"), "state/state.json"),
        # what update --previous reads first: without it the folder cannot be updated
        (lambda out: (out / "state" / "state.json").unlink(), "state/state.json"),
        (lambda out: shutil.rmtree(out / "state"), "state/state.json"),
        (lambda out: (out / "run.json").write_text(
            (out / "run.json").read_text().replace('"rows_in": 3', '"rows_in": 4')), "run.json"),
    ],
)  # fmt: skip
def test_a_damaged_or_missing_file_is_named_and_exits_1(cli, out: Path, damage, named: str):
    damage(out)
    code, found = _checked(cli, out)
    assert code == 1
    assert [f["file"] for f in found["files"] if not f["ok"]] == [named]
    result = cli("verify", out)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 2  # the file's line, then the one error line
    assert result.stderr.startswith(f"{named}: ")
    assert f"Error: {out}: 1 of " in result.stderr


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda state: state.unlink(), "missing"),
        (lambda state: state.write_text("[]"), "unreadable: not a JSON object"),
        (lambda state: state.write_text(state.read_text().replace('"last_record_key": 3',
                                                                  '"last_record_key": 2')),
         NOT_AS_WRITTEN),
        (lambda state: state.write_text(json.dumps(
            {k: v for k, v in json.loads(state.read_text()).items() if k != "sha256"})),
         "records no digests of the state's files"),
    ],
)  # fmt: skip
def test_a_missing_or_damaged_state_json_is_reported(cli, out: Path, damage, problem: str):
    """`rm out/state/state.json` passed verify (exit 0), though `update --previous out` then
    stopped with 'has no update state': verify checked the state only when it found its
    state.json."""
    damage(out / "state" / "state.json")
    code, found = _checked(cli, out)
    assert code == 1
    assert [(f["file"], f["problem"]) for f in found["files"] if not f["ok"]] == [
        ("state/state.json", problem)
    ]
    result = cli("verify", out)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"state/state.json: {problem}\nError: {out}: 1 of ")


def test_an_update_of_a_folder_whose_state_json_is_gone_says_it_is_missing(
    cli, out: Path, tmp_path: Path
):
    """It said the output was 'written with `output.state: false` or by an older version',
    though its run.json says its run wrote a state: the file was removed or lost since."""
    (out / "state" / "state.json").unlink()
    write(tmp_path / "crm.csv", SMALL_ROWS)
    config = write(tmp_path / "cfg.yaml", SMALL_CONFIG)
    result = cli("update", "--previous", out, "--config", config)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out / 'state' / 'state.json'}: damaged update state (missing); run a full "
        "`cxunify unify` to rebuild it\n"
    )


def test_a_folder_written_without_a_state_passes_without_one(cli, tmp_path: Path):
    write(tmp_path / "crm.csv", SMALL_ROWS)
    config = write(tmp_path / "cfg.yaml", SMALL_CONFIG + "output: {state: false}\n")
    result = cli("unify", "--config", config, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "out" / "state").exists()
    code, found = _checked(cli, tmp_path / "out")
    assert (code, found["damaged"]) == (0, 0)
    assert not any(f["file"].startswith("state/") for f in found["files"])


def test_a_folder_without_digests_is_refused_in_one_line(cli, out: Path, tmp_path: Path):
    run = json.loads((out / "run.json").read_text())
    del run["sha256"]
    (out / "run.json").write_text(json.dumps(run))
    result = cli("verify", out)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {out}: its run.json records no digests")
    assert result.stderr.count("\n") == 1
    result = cli("verify", tmp_path / "nothing")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {tmp_path / 'nothing'}: no such output folder\n",
    )
    result = cli("verify", tmp_path)
    assert result.exit_code == 1
    assert "not a cxunify output folder" in result.stderr


def test_verify_takes_the_folder_as_every_other_command_does(cli, sample_out: Path, tmp_path):
    """`cxunify verify --out out` said `No such option: --out`: every other command that reads
    an output takes --out (default out); the folder as an argument still works."""
    for args in (["--out", sample_out], ["-o", sample_out], [sample_out, "--out", sample_out]):
        result = cli("verify", *args)
        assert result.exit_code == 0, result.stderr
    result = cli("verify", sample_out, "--out", tmp_path)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: give {sample_out} or --out {tmp_path}, not both"
