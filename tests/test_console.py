"""Console.progress when stdout is not a terminal: plain lines every 10% or 30 s, whichever comes
first, and the final state; a rich bar on a terminal; nothing when quiet or in --json mode."""

import io

import pytest

from rft.console import Console


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


@pytest.fixture()
def plain(monkeypatch):
    """A console writing to a StringIO (not a terminal, whatever the environment says) and its clock."""
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    out, clock = io.StringIO(), FakeClock()
    return Console(file=out, clock=clock), out, clock


def _run(console, clock, total, seconds_per_step, steps=None, start=0):
    with console.progress(total, "grpo") as bar:
        if start:
            bar.update(start)  # a resumed run jumps to its step at once, as train() does
        for step in range(start + 1, (steps or total) + 1):
            clock.t += seconds_per_step
            bar.update(1, reward=f"{step / total:.3f}", val="0.500")


def test_a_line_every_tenth_of_the_total_with_step_elapsed_eta_and_live_fields(plain):
    console, out, clock = plain
    _run(console, clock, total=40, seconds_per_step=1.0)
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [f"{n}/40" for n in range(4, 41, 4)]  # the last is not repeated
    # eta from the pace since the first update: 3 s for steps 2..4, 1 s a step, 36 to go
    assert lines[0] == "grpo 4/40 (10%) elapsed 0:00:04 eta 0:00:36  reward 0.100  val 0.500"
    assert lines[-1] == "grpo 40/40 (100%) elapsed 0:00:40 eta 0:00:00  reward 1.000  val 0.500"


def test_fast_steps_give_ten_lines_not_one_per_step(plain):
    console, out, clock = plain
    _run(console, clock, total=1000, seconds_per_step=0.01)
    assert len(out.getvalue().splitlines()) == 10


def test_slow_steps_give_a_line_every_30_seconds(plain):
    console, out, clock = plain
    _run(console, clock, total=1000, seconds_per_step=11.0, steps=9)  # 99 s: lines at 33, 66 and 99 s
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["3/1000", "6/1000", "9/1000"]


def test_a_status_update_without_progress_shows_after_30_seconds(plain):
    console, out, clock = plain
    with console.progress(40, "grpo") as bar:
        bar.update(0, now="validating on 20 held-out examples")
        clock.t += 31
        bar.update(0, now="validating on 20 held-out examples")
    assert out.getvalue().splitlines() == ["grpo 0/40 (0%) elapsed 0:00:31 eta ?  now validating on 20 held-out examples"]


def test_a_run_that_stops_early_ends_with_its_last_state(plain):
    console, out, clock = plain
    _run(console, clock, total=40, seconds_per_step=1.0, steps=37)
    assert out.getvalue().splitlines()[-1].startswith("grpo 37/40 (92%) elapsed 0:00:37 eta 0:00:03")


def test_a_resumed_run_does_not_take_its_jump_to_the_step_for_speed(plain):
    console, out, clock = plain
    _run(console, clock, total=40, seconds_per_step=2.0, start=20)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("grpo 20/40 (50%) elapsed 0:00:00 eta ?")
    assert lines[1].startswith("grpo 24/40 (60%) elapsed 0:00:08 eta 0:00:32")  # 2 s a step, 16 to go


@pytest.mark.parametrize("flags", [{"quiet": True}, {"json_lines": True}], ids=["quiet", "json"])
def test_quiet_and_json_modes_print_no_progress(monkeypatch, capsys, flags):
    out, clock = io.StringIO(), FakeClock()
    _run(Console(file=out, clock=clock, **flags), clock, total=10, seconds_per_step=60.0)
    assert out.getvalue() == "" and capsys.readouterr().out == ""


def test_a_terminal_keeps_the_rich_bar(monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    out, clock = io.StringIO(), FakeClock()
    _run(Console(file=out, clock=clock), clock, total=10, seconds_per_step=1.0)
    text = out.getvalue()
    assert "━" in text and "10/10" in text and "elapsed" not in text


def test_training_into_a_pipe_prints_progress_lines(tmp_path, tiny_model_dir, capsys, monkeypatch):
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    from rft.config import config_from_dict
    from rft.grpo.train import train

    cfg = config_from_dict({
        "name": "pipe", "output_dir": str(tmp_path), "seed": 0, "threads": 2, "model": {"path": str(tiny_model_dir)},
        "data": {"task": {"digits": 1, "val_size": 4}}, "sampling": {"num_generations": 2, "max_new_tokens": 3},
        "grpo": {"steps": 2, "prompts_per_step": 2}, "eval": {"every": 100}, "monitors": {"enabled": False},
    })
    train(cfg, console=Console())
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("grpo ")]
    assert [x.split()[1] for x in lines] == ["1/2", "2/2"]
    assert " reward " in lines[-1] and " val " in lines[-1]
