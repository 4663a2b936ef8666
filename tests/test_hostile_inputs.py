"""Hostile inputs get one line, fast, and a run writes only inside its own directory.

Every file a user hands rft -- a config, a data file, an OpenAI job body, a grader spec, a
completions file -- goes through the readers of :mod:`rft.files`; these tests hand each reader the
inputs an attacker (or an accident) would: an alias bomb, duplicate keys, bytes that are not
UTF-8, nesting past any sane depth, integers past Python's digit limit, a FIFO or ``/dev/zero``
instead of a file, a 50 MB row, a seed past 2**63, and run names that climb out of ``output_dir``.
The CLI cases run ``rft`` as a subprocess under a wall-clock bound (a hang fails the test instead
of hanging the suite) and check for one line on stderr, exit status 2, no traceback.

Not covered here: environment observations and tool calls (tests/test_envs.py), non-finite numbers
(the non-finite gate's tests), the code sandbox's own isolation (tests/graders/).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rft.commands.openai_job import plan_job
from rft.config import ConfigError, config_from_dict, load_config
from rft.data import DataError, read_dataset, read_jsonl
from rft.files import MAX_LINE_BYTES, InputFileError, jsonl_lines, load_yaml

SRC = str(Path(__file__).resolve().parents[1] / "src")
CLI_BOUND_S = 60  # generous: each case takes well under a second of rft's own time


def rft(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``rft ARGS`` in a fresh interpreter, killed if it runs past CLI_BOUND_S."""
    full_env = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    return subprocess.run([sys.executable, "-m", "rft.cli", *args], capture_output=True, text=True,
                          timeout=CLI_BOUND_S, env=full_env)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str, status: int = 2) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == status, proc.stderr[-2000:]
    assert "Traceback" not in err and len(err.splitlines()) == 1, err[-2000:]
    for needle in needles:
        assert needle in err, err
    return err


ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip([None, *"abcdefgh"], "abcdefghi")
)  # 9**9 = 387 million strings when expanded; a few hundred bytes as written


# --- YAML: configs, --set values, grader spec files ---------------------------------------------


def test_yaml_alias_bomb_is_refused_without_expanding_it(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"bomb\.yaml: the YAML expands to over"):
        load_config(path)
    assert time.monotonic() - t0 < 30  # generous; expanding it would take hours and all memory


def test_recursive_yaml_alias_is_refused():
    with pytest.raises(InputFileError, match="expands to over|nested deeper"):
        load_yaml("a: &a [*a]\n", "x.yaml")


def test_yaml_alias_within_reason_still_loads():
    assert load_yaml("base: &g {type: math}\ngrader: *g\n", "x.yaml") == {"base": {"type": "math"},
                                                                       "grader": {"type": "math"}}


def test_duplicate_yaml_key_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("seed: 1\ngrpo:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml:4:3: .*duplicate key 'lr'"):
        load_config(path)


def test_yaml_merge_key_is_not_a_duplicate():
    assert load_yaml("a: &a {x: 1, y: 2}\nb:\n  <<: *a\n  x: 3\n", "m.yaml")["b"] == {"x": 3, "y": 2}


def test_non_utf8_config_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"seed: 1\nname: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1\.yaml:2: not UTF-8 text \(byte 0xe9"):
        load_config(path)


def test_integer_past_the_digit_limit_in_yaml_names_the_line(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("name: x\nseed: " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"big\.yaml:2:7: .*digits"):
        load_config(path)


def test_deeply_nested_yaml_is_refused(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("grader: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"deep\.yaml.*nested deeper"):
        load_config(path)


def test_seed_past_2_63_is_refused_at_load():
    with pytest.raises(ConfigError, match=r"seed: .*less than or equal to 9223372036854775807"):
        config_from_dict({"seed": 2**63})
    assert config_from_dict({"seed": 2**63 - 1}).seed == 2**63 - 1


def test_fifo_as_config_is_refused_by_type_without_blocking(tmp_path):
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="FIFO"):
        load_config(fifo)


def test_set_value_is_read_by_the_same_loader():
    with pytest.raises(ConfigError, match="--set grader.*duplicate key"):
        load_config(None, ["grader={type: math, type: regex}"])


# --- data files ------------------------------------------------------------------------------------


def write_rows(path: Path, *lines: str | bytes) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


TOO_DEEP = "the value is nested deeper than 100 levels"
HOSTILE_ROWS = {
    "deep_nesting": ('{"prompt": "p", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", TOO_DEEP),  # blows json's stack
    "moderate_nesting": ('{"prompt": "p", "x": ' + "[" * 500 + "]" * 500 + "}", TOO_DEEP),  # parses; walks would not
    "huge_integer": ('{"prompt": "p", "x": ' + "7" * 5000 + "}", "unreadable JSON value (Exceeds the limit"),
    "not_utf8": (b'{"prompt": "caf\xe9"}', "not UTF-8 text (byte 0xe9 at column 16)"),
}


@pytest.mark.parametrize("line,message", HOSTILE_ROWS.values(), ids=HOSTILE_ROWS.keys())
def test_hostile_data_row_is_one_error_naming_file_and_line(tmp_path, line, message):
    path = write_rows(tmp_path / "d.jsonl", '{"prompt": "fine"}', line)
    with pytest.raises(DataError) as e:
        read_jsonl(path)
    assert f"d.jsonl:2: {message}" in str(e.value) and len(str(e.value).splitlines()) == 1


def test_50mb_row_is_refused_before_it_is_parsed(tmp_path):
    path = write_rows(tmp_path / "big.jsonl", '{"prompt": "' + "a" * 50_000_000 + '"}', '{"prompt": "after"}')
    t0 = time.monotonic()
    with pytest.raises(DataError, match=rf"big\.jsonl:1: the line is over {MAX_LINE_BYTES:,} bytes"):
        read_jsonl(path)
    assert time.monotonic() - t0 < 30


def test_row_just_under_the_line_limit_is_read(tmp_path):
    path = write_rows(tmp_path / "ok.jsonl", '{"prompt": "' + "a" * (MAX_LINE_BYTES - 20) + '"}')
    assert len(read_jsonl(path)[0].prompt) == MAX_LINE_BYTES - 20


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "symlink_to_dev_zero", "directory_named_jsonl"])
def test_data_file_that_is_not_a_regular_file_is_refused_by_type(tmp_path, kind):
    path = tmp_path / "train.jsonl"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        path = Path("/dev/zero")
    elif kind == "symlink_to_dev_zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    with pytest.raises(DataError, match="not a regular file|save_to_disk|datasets package"):
        read_dataset(path)  # a hang here is the bug: the old reader blocked on the FIFO or read forever


def test_jsonl_reader_refuses_a_fifo_without_opening_it_blocking(tmp_path):
    fifo = tmp_path / "f.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(InputFileError, match="FIFO"):
        list(jsonl_lines(fifo))


# --- OpenAI job bodies -----------------------------------------------------------------------------


def job_file(tmp_path: Path, **changes) -> Path:
    write_rows(tmp_path / "train.jsonl", *[json.dumps({"prompt": f"q{i}", "answer": "a"}) for i in range(4)])
    body = {"model": "embedded", "training_file": "train.jsonl",
            "method": {"type": "reinforcement", "reinforcement": {"grader": {
                "type": "string_check", "name": "g", "input": "{{sample.output_text}}",
                "reference": "{{item.answer}}", "operation": "eq"}}}, **changes}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(body))
    return path


def test_job_body_not_utf8_deep_or_huge_int_is_one_error(tmp_path):
    path = tmp_path / "job.json"
    for raw, message in ((b'{"model": "caf\xe9"}', "not UTF-8"), (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
                         (b'{"seed": ' + b"1" * 5000 + b"}", "digits")):
        path.write_bytes(raw)
        with pytest.raises(ConfigError, match=message):
            plan_job(path)


def test_job_seed_past_2_63_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="seed"):
        plan_job(job_file(tmp_path, seed=2**64))


# --- run names (deliverable 6) ---------------------------------------------------------------------

BAD_NAMES = {"dot": ".", "dotdot": "..", "empty": "", "long": "x" * 101, "separator": "a/b", "parent": "../x",
             "absolute": "/tmp/x", "nul": "a\x00b", "backslash": "a\\b"}


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_run_name_that_leaves_its_directory_is_refused_at_load(name):
    with pytest.raises(ConfigError, match=r"invalid config: name: "):
        config_from_dict({"name": name})


def test_run_name_of_100_characters_is_fine():
    assert config_from_dict({"name": "x" * 100}).name == "x" * 100


def test_run_name_that_is_a_symlink_out_of_output_dir_is_refused(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "runs" / "hop").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="outside output_dir"):
        config_from_dict({"name": "hop", "output_dir": str(tmp_path / "runs")})


@pytest.mark.parametrize("suffix", ["..", "../../etc", "a/b", "a\x00b", "!!!"])
def test_job_suffix_that_is_no_run_name_is_refused(tmp_path, suffix):
    with pytest.raises(ConfigError, match="suffix"):
        plan_job(job_file(tmp_path, suffix=suffix))


def test_job_suffix_with_spaces_still_maps_to_a_name(tmp_path):
    assert plan_job(job_file(tmp_path, suffix="my model v2")).config.name == "my-model-v2"


# --- the CLI: one line, exit 2, within the bound ---------------------------------------------------


def test_cli_alias_bomb_config_is_one_line(tmp_path):
    (tmp_path / "bomb.yaml").write_text(ALIAS_BOMB)
    assert_one_line_error(rft("config", str(tmp_path / "bomb.yaml")), "bomb.yaml", "expands to over")


def test_cli_duplicate_key_and_non_utf8_config(tmp_path):
    (tmp_path / "dup.yaml").write_text("name: a\nname: b\n")
    assert_one_line_error(rft("config", str(tmp_path / "dup.yaml")), "dup.yaml:2:1", "duplicate key 'name'")
    (tmp_path / "bad.yaml").write_bytes(b"name: \xff\n")
    assert_one_line_error(rft("config", str(tmp_path / "bad.yaml")), "bad.yaml:1: not UTF-8")


def test_cli_seed_and_run_name_overrides_are_refused():
    assert_one_line_error(rft("config", "--set", f"seed={2**63}"), "seed")
    assert_one_line_error(rft("config", "--set", "name=.."), "name")


@pytest.mark.parametrize("data", ["fifo", "/dev/zero", "deep"])
def test_cli_grade_on_hostile_data_is_one_line(tmp_path, data):
    path = tmp_path / "data.jsonl"
    if data == "fifo":
        os.mkfifo(path)
    elif data == "deep":
        write_rows(path, '{"prompt": "p", "completion": "c", "x": ' + "[" * 50_000 + "]" * 50_000 + "}")
    else:
        path = Path(data)
    proc = rft("grade", "--grader", '{"type": "string_check"}', "--data", str(path), "--workers", "0")
    why = "is nested deeper than 100 levels" if data == "deep" else "not a regular file"
    assert_one_line_error(proc, str(path), why)


def test_cli_grade_spec_file_alias_bomb_is_one_line(tmp_path):
    (tmp_path / "spec.yaml").write_text("type: string_check\n" + ALIAS_BOMB)
    (tmp_path / "d.jsonl").write_text('{"completion": "a", "answer": "a"}\n')
    proc = rft("grade", "--grader", str(tmp_path / "spec.yaml"), "--data", str(tmp_path / "d.jsonl"))
    assert_one_line_error(proc, "spec.yaml", "expands to over")


def test_cli_openai_job_suffix_climbing_out_is_one_line(tmp_path):
    proc = rft("config", "--openai-job", str(job_file(tmp_path, suffix="../../etc")))
    assert_one_line_error(proc, "suffix", "'../../etc'")


# --- the CLI on an unexpected exception ------------------------------------------------------------

_CRASH = """
import sys
import rft.cli as cli
import rft.commands.config as command
def boom(args):
    raise {exc}
command.run = boom
sys.exit(cli.main(sys.argv[1:]))
"""


def crash(tmp_path: Path, exc: str, *args: str) -> subprocess.CompletedProcess:
    """``rft config`` whose command raises ``exc``: the CLI's handling, whatever the bug."""
    env = {**os.environ, "PYTHONPATH": SRC, "TMPDIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", _CRASH.format(exc=exc), *args, "config"], capture_output=True,
                          text=True, timeout=CLI_BOUND_S, env=env)


def test_unexpected_exception_is_one_line_with_a_saved_traceback(tmp_path):
    proc = crash(tmp_path, 'RuntimeError("boom\\nsecond line")')
    err = assert_one_line_error(proc, "unexpected RuntimeError: boom", "--debug", status=1)
    saved = [p for p in tmp_path.glob("rft-traceback-*.txt")]
    assert len(saved) == 1 and str(saved[0]) in err
    assert "Traceback" in saved[0].read_text() and "second line" in saved[0].read_text()


def test_debug_prints_the_traceback_instead(tmp_path):
    proc = crash(tmp_path, 'RuntimeError("boom")', "--debug")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "RuntimeError: boom" in proc.stderr


def test_keyboard_interrupt_still_exits_130_in_one_line(tmp_path):
    proc = crash(tmp_path, "KeyboardInterrupt()")
    assert_one_line_error(proc, "interrupted", status=130)


def test_expected_errors_keep_their_form(tmp_path):
    proc = crash(tmp_path, 'ConfigError("grpo.lr: bad")'.replace("ConfigError", "__import__('rft.config').config."
                                                                               "ConfigError"))
    assert assert_one_line_error(proc, status=2) == "error: grpo.lr: bad"
