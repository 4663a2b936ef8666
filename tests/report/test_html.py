"""The HTML report: self-contained, every section present, runs overlaid, written atomically."""

import base64
import json
import re

import pytest

from rft.report.html import default_output, write_report, write_report_or_warn


def _run(root, name, rewards, alert=None, doctor=None):
    run = root / name
    (run / "samples").mkdir(parents=True)
    (run / "config.yaml").write_text(f"name: {name}\ngrpo:\n  beta: 0.04  # <b>not html</b>\n")
    records = [{"type": "val", "step": 0, "val/pass@1": 0.1}]
    for step, r in enumerate(rewards, 1):
        records.append({"type": "train", "step": step, "reward_mean": r, "reward_std": 0.1, "kl": 0.01 * step,
                        "completion_len_mean": 3.0, "completion_len_max": 4, "time/rollout": 0.1})
    if alert:
        records.append({"type": "alert", "step": 1, "monitor": "length", "message": alert})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = [{"group": 0, "prompt": "1+1=", "completion": c, "score": s, "reason": why, "advantage": a}
            for c, s, why, a in [("2", 1.0, "extracted 2, expected 2", 0.5), ("11", 0.0, "extracted 11, expected 2", -0.5)]]
    (run / "samples" / "step_000002.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if doctor is not None:
        (run / "doctor.json").write_text(json.dumps(doctor))
    return run


def _images(page):
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_report_is_self_contained_with_one_png_per_recorded_plot(tmp_path):
    run = _run(tmp_path, "a", [0.2, 0.5])
    page = write_report([run]).read_text()
    images = _images(page)
    # reward, held-out, length, KL, time: the plots this run has data for
    assert len(images) == 5 and all(img.startswith(b"\x89PNG") for img in images)
    assert not re.search(r'(src|href)="(http|//)', page), "the report must not load anything from outside"
    assert "<script" not in page


def test_report_shows_alerts_config_doctor_and_best_worst_samples(tmp_path):
    run = _run(tmp_path, "a", [0.2, 0.5], alert="completions <doubled>",
               doctor={"verdict": "warn", "checks": [{"name": "grader sanity", "verdict": "ok",
                                                      "summary": "reference scores 1", "values": {"n": 3}}]})
    page = write_report([run]).read_text()
    assert "completions &lt;doubled&gt;" in page  # alerts listed, escaped
    assert "# &lt;b&gt;not html&lt;/b&gt;" in page  # the resolved config, escaped
    assert "overall: <b>warn</b>" in page
    assert "<td>grader sanity</td><td>ok</td><td>reference scores 1</td><td>{&quot;n&quot;: 3}</td>" in page
    best, worst = page.index("extracted 2, expected 2"), page.index("extracted 11, expected 2")
    assert best < worst, "best completion first, the worst beside it"
    assert "Not recorded:" in page and "Truncated completions" in page


def test_runs_overlay_in_one_report_named_after_both(tmp_path):
    a, b = _run(tmp_path, "a", [0.2, 0.5]), _run(tmp_path, "b", [0.4, 0.9, 0.95])
    out = write_report([a, b])
    assert out == default_output([a, b]) == tmp_path / "compare-a-vs-b.html"
    page = out.read_text()
    assert len(_images(page)) == 5, "runs share the panels instead of getting their own"
    assert "<h2>Run a</h2>" in page and "<h2>Run b</h2>" in page


def test_report_replaces_the_old_one_and_leaves_no_temporary_files(tmp_path):
    run = _run(tmp_path, "a", [0.2])
    (run / "report.html").write_text("stale")
    write_report([run], out=run / "report.html")
    assert (run / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_a_directory_without_metrics_is_a_user_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics.jsonl"):
        write_report([tmp_path])


def test_report_failure_at_the_end_of_training_is_a_warning_not_an_error(tmp_path):
    path, warning = write_report_or_warn(tmp_path / "missing")
    assert path is None and "could not write the report" in warning
