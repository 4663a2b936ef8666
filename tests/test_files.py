"""rft.files: a directory appears complete or not at all; JSONL lines come with their numbers."""

import pytest

from rft.files import atomic_directory, jsonl_lines


def test_a_directory_replaces_the_old_one_only_when_complete(tmp_path):
    out = tmp_path / "model"
    with atomic_directory(out) as tmp:
        (tmp / "weights").write_text("v1")
        assert not out.exists()  # nothing at the final place while it is being written
    with atomic_directory(out) as tmp:
        (tmp / "weights").write_text("v2")
        assert (out / "weights").read_text() == "v1"
    assert (out / "weights").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no .tmp- or .old- left


def test_a_failed_write_leaves_the_old_directory_and_no_temporary_one(tmp_path):
    out = tmp_path / "model"
    with atomic_directory(out) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_directory(out) as tmp:
            (tmp / "weights").write_text("half")
            raise RuntimeError("disk full")
    assert (out / "weights").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_jsonl_lines_are_numbered_in_the_file_blank_lines_skipped_bad_ones_reported(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n  \n"text"\n{"torn": \n[1, 2]\n')
    rows = list(jsonl_lines(path))
    assert [(n, v) for n, v, bad in rows if bad is None] == [(1, {"a": 1}), (4, "text"), (6, [1, 2])]
    [(n, v, bad)] = [r for r in rows if r[2] is not None]
    assert n == 5 and v is None and bad.msg == "Expecting value"
