"""`rft train --json` and the end-of-run report, on a real 3-step run through the CLI."""

import json

from rft.cli import main


def test_train_json_prints_only_json_lines_one_per_record(trained_run):
    run_dir, lines = trained_run
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert [r["step"] for r in records if r["type"] == "train"] == [1, 2, 3]
    assert [r["step"] for r in records if r["type"] == "val"] == [0, 1, 2, 3]
    assert records[-1]["type"] == "summary" and records[-1]["steps"] == 3
    on_disk = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records[:-1] == on_disk


def test_train_writes_tensorboard_events_and_the_report(trained_run):
    run_dir, _ = trained_run
    assert list(run_dir.glob("events.out.tfevents.*")), "no TensorBoard event file in the run directory"
    assert (run_dir / "report.html").read_text().count("data:image/png;base64,") >= 7


def test_report_command_compares_runs_into_the_named_file(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    out = tmp_path / "cmp.html"
    assert main(["report", str(run_dir), str(run_dir), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.read_text().count("<h2>Run ") == 2


def test_report_of_a_directory_that_is_not_a_run_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
