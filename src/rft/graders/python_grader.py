"""The ``python`` grader: the user's own reward code, in OpenAI's or TRL's shape.

OpenAI shape -- ``grade(sample, item) -> float``, from inline source or a file::

    {"type": "python", "source": "def grade(sample, item):\\n    return float(...)"}
    {"type": "python", "file": "my_grader.py"}            # defines grade(sample, item)

``sample`` is ``{"output_text": completion, "output_json": parsed JSON or None}``; ``item`` is the
row (``id``, ``prompt`` and its fields). score = the returned number; passed = score >=
``pass_threshold`` when set, else None.

TRL shape -- a batch reward function by ``module:function`` or ``path/to/file.py:function``::

    {"type": "python", "function": "my_rewards:accuracy_reward"}

called as ``f(prompts=[prompt], completions=[completion], **{column: [value]})`` -- a batch of one,
columns being the row's fields -- and must return a list of one float (or None: "not applicable",
recorded as a skipped grade). Completions are passed as plain strings (TRL's "standard" format).

Trust: this is the *user's* code, not the model's: it runs unsandboxed with the user's rights. The
pool's per-grade timeout bounds a hang when it runs in worker processes; in-process (workers=0)
nothing does. A non-number, NaN/inf, a wrong-length list or an exception scores 0 with the reason.
Not covered: OpenAI's image inputs (``image_tag`` is accepted and ignored), async functions.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rft.data import Example
from rft.grader_specs import PythonSpec
from rft.graders.base import Grade, Grader, SpecError
from rft.graders.templates import strict_json_loads


def load_callable(ref: str, where: str = "python grader: field 'function'") -> Callable[..., Any]:
    """``pkg.module:name`` or ``path/to/file.py:name`` -> the function (or class); SpecError names what is
    wrong, after ``where`` (the field it came from)."""
    target, sep, name = ref.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise SpecError(f"{where} = {ref!r}: expected 'module:name' or 'file.py:name'")
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise SpecError(f"{where} = {ref!r}: no file {target!r}; check the path")
            module_spec = importlib.util.spec_from_file_location(f"rft_user_{path.stem}", path)
            module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
            module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(target)
    except SpecError:
        raise
    except Exception as e:  # noqa: BLE001 - any import failure of user code is a spec error here
        raise SpecError(f"{where} = {ref!r}: importing failed ({type(e).__name__}: {e})") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise SpecError(f"{where} = {ref!r}: {target} has no function or class {name!r}")
    return fn


def _grade_from_source(source: str, where: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {"__name__": "rft_user_grader"}
    try:
        exec(compile(source, where, "exec"), namespace)  # noqa: S102 - the user's own grader code
    except SyntaxError as e:
        raise SpecError(f"python grader: {where} line {e.lineno}: syntax error ({e.msg}); fix the grader source") from None
    except Exception as e:  # noqa: BLE001 - a failing module body is a spec error
        raise SpecError(f"python grader: {where}: running the source failed ({type(e).__name__}: {e})") from None
    fn = namespace.get("grade")
    if not callable(fn):
        raise SpecError(f"python grader: {where} defines no function grade(sample, item); add one")
    return fn


def _number(value: Any) -> float | str:
    """The value as a finite float, or a reason why it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"returned {type(value).__name__}, not a number"
    if not math.isfinite(value):
        return f"returned {value}"
    return float(value)


# Python callables handed to rft.train / rft.evaluate / rft.grade in this process, by the reference
# their spec records (``{"type": "python", "function": "module:qualname"}``); filled by
# rft.graders.callables.register. A reference found here is used as is, never imported.
IN_PROCESS: dict[str, Grader] = {}


@dataclass(frozen=True)
class PythonGrader:
    spec: PythonSpec
    fn: Callable[..., Any]

    @classmethod
    def from_spec(cls, spec: PythonSpec) -> "PythonGrader":
        if spec.function in IN_PROCESS:
            return IN_PROCESS[spec.function]  # type: ignore[return-value]  # same protocol, same spec
        if spec.function is not None:
            return cls(spec, load_callable(spec.function))
        if spec.source is not None:
            return cls(spec, _grade_from_source(spec.source, "<source>"))
        path = Path(spec.file)  # type: ignore[arg-type]  # exactly one of the three is set
        if not path.is_file():
            raise SpecError(f"python grader: field 'file' = {spec.file!r}: no such file; "
                            "give the path of a .py file defining grade(sample, item)")
        return cls(spec, _grade_from_source(path.read_text(encoding="utf-8"), str(path)))

    def __call__(self, completion: str, example: Example) -> Grade:
        if self.spec.function is not None:  # TRL's batch style
            columns = {k: [v] for k, v in example.fields.items() if k not in ("prompts", "completions")}
            out = self.fn(prompts=[example.prompt], completions=[completion], **columns)
            if not isinstance(out, (list, tuple)) or len(out) != 1:
                size = len(out) if isinstance(out, (list, tuple)) else type(out).__name__
                return Grade(0.0, False, f"reward function returned {size} values for a batch of 1", {"error": "BadReturn"})
            if out[0] is None:
                return Grade(0.0, None, "reward function returned None (not applicable)", {"skipped": True})
            value = _number(out[0])
        else:
            try:
                parsed = strict_json_loads(completion)
            except (ValueError, RecursionError):
                parsed = None
            item = {"id": example.id, "prompt": example.prompt, **example.fields}
            value = _number(self.fn({"output_text": completion, "output_json": parsed}, item))
        if isinstance(value, str):
            return Grade(0.0, False, f"grader {value}", {"error": "BadReturn"})
        threshold = self.spec.pass_threshold
        passed = None if threshold is None else value >= threshold
        return Grade(value, passed, f"python grader returned {value:.4g}", {})
