"""`rft doctor` writes doctor.json into the run directory before the run exists; training must still
start there, and a directory with anything else in it is still protected."""

import pytest

from rft.training.run_dir import RunDir


def test_a_run_directory_holding_only_doctor_json_can_start_a_run(tmp_path):
    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    (run.path / "doctor.json").write_text("{}")
    run.create("name: r\n", overwrite=False)
    assert (run.path / "doctor.json").is_file() and run.config_path.is_file()
    with pytest.raises(FileExistsError):
        run.create("name: r\n", overwrite=False)
