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

Trust: this is the *user's* code, not the model's: it runs unsandboxed with the user's rights, in
this process's user-code host (:mod:`rft.isolation.user_code`), never in the grading process itself, with or
without grading workers: the module is imported there (a failing or hanging import is a SpecError
when the grader is built), and each call gets ``timeout_s`` (default 30 s). A non-number, NaN/inf,
a wrong-length list, an exception of any kind (``SystemExit`` too), ``os._exit``, a crash or a call
past ``timeout_s`` scores 0 with the reason (``details["error"]``: the exception's name,
``Timeout``, ``HostCrash``), and the next call gets a fresh host. ``network: deny`` runs the code
with no network at all (``rft.isolation.user_code`` says what that blocks); the default ``allow`` gives it the
caller's network. Not covered: OpenAI's image inputs (``image_tag`` is accepted and ignored), async
functions, state kept between calls (a host can be replaced at any call).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rft.config.base import SpecError
from rft.config.graders import PythonSpec
from rft.data import Example
from rft.graders.base import Grade, Grader
from rft.graders.templates import strict_json_loads
from rft.isolation.user_code import (
    NetworkUnavailable,
    UserCodeFailed,
    UserCodeHost,
    shared_host,
)


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


def load_in_host(kind: str, network: str, loader: Callable[..., Any], args: tuple[Any, ...],
                 what: str, fix: str = "") -> tuple[UserCodeHost, Any]:
    """``(host, key)``: the user's code loaded by ``loader(*args)`` in the shared user-code host of
    ``network``; a host that cannot be made (no network namespace) or code that fails to load is a
    one-line SpecError of the ``kind`` grader: ``<what> failed (<error>)<fix>``."""
    try:
        host = shared_host(network)
        return host, host.load(loader, args)
    except NetworkUnavailable as e:
        raise SpecError(f"{kind} grader: field 'network' = 'deny': {e}") from None
    except UserCodeFailed as e:
        if e.type_name == "SpecError":
            raise SpecError(e.message) from None
        raise SpecError(f"{kind} grader: {what} failed ({e}){fix}") from None


@dataclass(frozen=True)
class PythonGrader:
    spec: PythonSpec
    host: UserCodeHost
    key: str  # the user's function, loaded in the host

    @classmethod
    def from_spec(cls, spec: PythonSpec) -> "PythonGrader":
        if spec.function in IN_PROCESS:  # a callable handed to the Python API: it lives in this process
            return IN_PROCESS[spec.function]  # type: ignore[return-value]  # same protocol, same spec
        host, key = load_in_host("python", spec.network, _load, (spec,), "loading the grader's code",
                                 "; fix its module")
        return cls(spec, host, key)

    @property
    def timeout_s(self) -> float:
        return self.spec.timeout_s

    def __call__(self, completion: str, example: Example) -> Grade:
        try:
            return self.host.call(self.key, score_with, (self.spec, completion, example), self.spec.timeout_s)
        except UserCodeFailed as e:
            return Grade(0.0, False, f"python grader: {e}"[:300], e.details())


# -- run in the host (rft.isolation.user_code) ------------------------------------------------------------------


def _load(spec: PythonSpec) -> Callable[..., Any]:
    if spec.function is not None:
        return load_callable(spec.function)
    if spec.source is not None:
        return _grade_from_source(spec.source, "<source>")
    path = Path(spec.file)  # type: ignore[arg-type]  # exactly one of the three is set
    if not path.is_file():
        raise SpecError(f"python grader: field 'file' = {spec.file!r}: no such file; "
                        "give the path of a .py file defining grade(sample, item)")
    return _grade_from_source(path.read_text(encoding="utf-8"), str(path))


def score_with(fn: Callable[..., Any], spec: PythonSpec, completion: str, example: Example) -> Grade:
    if spec.function is not None:  # TRL's batch style
        columns = {k: [v] for k, v in example.fields.items() if k not in ("prompts", "completions")}
        out = fn(prompts=[example.prompt], completions=[completion], **columns)
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
        value = _number(fn({"output_text": completion, "output_json": parsed}, item))
    if isinstance(value, str):
        return Grade(0.0, False, f"grader {value}", {"error": "BadReturn"})
    threshold = spec.pass_threshold
    passed = None if threshold is None else value >= threshold
    return Grade(value, passed, f"python grader returned {value:.4g}", {})
