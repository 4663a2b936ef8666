"""The plotting data path: metric records -> panels, on hand-made records; and that panels render."""

import struct

import pytest

from rft.report.plots import (
    build_panels,
    metric_keys,
    missing_panels,
    render_png,
    series_of,
)
from rft.report.samples import pick_pairs, spread


def _train(step, **kw):
    return {"type": "train", "step": step, **kw}


RUN = [
    {"type": "val", "step": 0, "val/pass@1": 0.1, "val/match_sloppy": 0.5, "val/skipped": 3},
    _train(1, reward_mean=0.2, reward_std=0.1, completion_len_mean=3.0, completion_len_max=5,
           truncated_frac=0.0, kl=0.01, entropy=1.5, frac_zero_std_groups=0.5, **{"time/rollout": 0.3,
           "time/update": 0.2, "grader/math/mean": 0.2, "grader/math/count": 8}),
    _train(2, reward_mean=0.4, reward_std=0.2, completion_len_mean=4.0, completion_len_max=8,
           truncated_frac=0.25, kl=None, entropy=1.2, frac_zero_std_groups=0.25, **{"time/rollout": 0.4,
           "time/update": 0.2, "grader/math/mean": 0.4, "grader/math/count": 8}),
    {"type": "val", "step": 2, "val/pass@1": 0.3, "val/match_sloppy": 0.2},
    {"type": "alert", "step": 2, "monitor": "length", "message": "completions doubled"},
]


def _panel(panels, key):
    return next(p for p in panels if p.key == key)


def test_reward_band_is_mean_plus_minus_std():
    reward = _panel(build_panels([("a", RUN)]), "reward")
    (s,) = reward.series
    assert s.x == [1.0, 2.0] and s.y == [0.2, 0.4]
    assert s.band[0] == pytest.approx([0.1, 0.2]) and s.band[1] == pytest.approx([0.3, 0.6])


def test_validation_panel_holds_the_val_shares_at_their_steps_but_not_counts():
    val = _panel(build_panels([("a", RUN)]), "val")
    assert [(s.label, s.x, s.y) for s in val.series] == [
        ("val/pass@1", [0.0, 2.0], [0.1, 0.3]), ("val/match_sloppy", [0.0, 2.0], [0.5, 0.2])]


def test_null_values_are_gaps_not_zeros():
    assert series_of(RUN, "train", "kl") == ([1.0], [0.01])


def test_grader_panel_takes_means_only_and_time_panel_every_phase():
    panels = build_panels([("a", RUN)])
    assert [s.label for s in _panel(panels, "graders").series] == ["grader/math/mean"]
    assert [s.label for s in _panel(panels, "time").series] == ["time/rollout", "time/update"]


def test_alerts_mark_every_panel_of_their_run():
    panels = build_panels([("a", RUN)])
    assert all(p.alerts == [(0, 2.0, "length: completions doubled")] for p in panels)


def test_panels_without_data_are_dropped_and_named():
    panels = build_panels([("a", RUN)])
    assert {p.key for p in panels} == {"reward", "val", "length", "truncation", "kl", "entropy", "graders",
                                       "zero_std", "time"}
    assert missing_panels(panels) == [
        "Held-out sampled pass@k (unbiased) and maj@k", "Held-out mean reward per grader",
        "Capability guard: general text vs the start", "Dynamic sampling: groups sampled and kept per step",
        "Loss", "Gradient norm", "Learning rate"]


def test_two_runs_overlay_on_one_panel_with_run_labels():
    other = [_train(1, reward_mean=0.5, reward_std=0.0), _train(3, reward_mean=0.7, reward_std=0.1)]
    reward = _panel(build_panels([("a", RUN), ("b", other)]), "reward")
    assert [(s.label, s.run, s.x) for s in reward.series] == [("a", 0, [1.0, 2.0]), ("b", 1, [1.0, 3.0])]
    length = _panel(build_panels([("a", RUN), ("b", other)]), "length")
    assert [s.label for s in length.series] == ["a: completion_len_mean", "a: completion_len_max"]


def test_a_resumed_step_logged_twice_keeps_its_last_value():
    records = [_train(1, reward_mean=0.1), _train(2, reward_mean=0.9), _train(2, reward_mean=0.3)]
    assert series_of(records, "train", "reward_mean") == ([1.0, 2.0], [0.1, 0.3])


def test_metric_keys_skip_non_numeric_values():
    assert metric_keys([_train(1, **{"time/x": "slow", "time/y": 1.0})], "train", ["time/*"]) == ["time/y"]


def test_rendered_panel_is_a_png_of_the_requested_size():
    png = render_png(_panel(build_panels([("a", RUN)]), "reward"), width_in=4, height_in=3, dpi=50)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (200, 150)


def test_spread_keeps_first_and_last():
    assert spread(list(range(10)), 4) == [0, 3, 6, 9]
    assert spread([1, 2], 4) == [1, 2]


def test_pairs_put_best_and_worst_side_by_side_mixed_groups_first():
    rows = [{"group": 0, "prompt": "p0", "completion": c, "score": s} for c, s in [("a", 1.0), ("b", 1.0)]]
    rows += [{"group": 1, "prompt": "p1", "completion": c, "score": s} for c, s in [("x", 0.0), ("y", 1.0), ("z", 0.5)]]
    pairs = pick_pairs(rows, step=5, n_groups=2)
    assert [p.group for p in pairs] == [1, 0]
    assert (pairs[0].best["completion"], pairs[0].worst["completion"]) == ("y", "x")
    assert pairs[0].prompt == "p1" and pairs[0].step == 5
