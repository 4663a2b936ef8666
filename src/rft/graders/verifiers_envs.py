"""verifiers environments opened for offline scoring: both of its APIs behind one small interface.

A *scorer* (:class:`TasksetScorer`, :class:`RubricScorer`) is built once from an environment and
scores one completion of one rft row with ``await scorer.score(completion, example)`` ->
:class:`Scores` (every reward's and metric's value, and the weight of each reward that counts).
``open_environment(ref, args)`` picks the API from what the module defines:

- **v1** (verifiers >= 0.3: ``import verifiers.v1 as vf``): a ``vf.Taskset`` subclass exported in
  ``__all__``; ``args`` are its ``TasksetConfig`` fields. The row becomes the task's ``TaskData``
  (``prompt`` and the row's fields, validated by the data class), the completion the trace's one
  assistant message, and ``await task.score(trace)`` runs the task's ``@vf.reward`` / ``@vf.metric``
  methods -- verifiers' own offline path (``vf-replay``), with no runtime.
- **Environment API** (verifiers < 0.4, ``vf.SingleTurnEnv(dataset, parser, rubric)``, deprecated
  in 0.3 and gone in 0.4; most community environments): ``load_environment(**args)``; each reward
  function of ``env.rubric`` (a ``RubricGroup`` is flattened) is called as verifiers calls it --
  by the names it asks for, out of ``prompt, completion, answer, state, task, info``, the rubric's
  class objects (``parser``) and the row's other fields; a ``**kwargs`` function gets them all --
  and awaited when async. Chat environments get the prompt and completion as messages
  (``[{"role": "assistant", "content": completion}]``), completion environments as text.

Refused when opened (:class:`SpecError` naming the reward and the fix), because scoring here has no
inference server, API key, sandbox or network: a weighted reward that is handed a judge model or a
model client (``JudgeRubric``'s ``judge``, ``judge_client``), that needs a runtime (a v1 reward with
a required ``runtime`` parameter: it runs commands in the rollout's box), a judge plugged into a
v1 task config, a group-level or multi-agent reward function (it scores a whole group at once; rft
grades one completion at a time), a sandbox environment (``SandboxEnv``, ``PythonEnv``), an
``EnvGroup`` and a multi-agent v1 ``Env``. A refused function with weight 0 is a metric: it is
left out and listed in ``Scores.not_run``. A reward that opens a connection anyway is stopped at run
time by the grader (:mod:`rft.graders.verifiers_grader`).

Not covered: rewards that read rollout state a multi-turn environment builds (``state["..."]`` set
by ``env_response``: the grade fails naming the missing key), tool calls (the completion is one
assistant message), images, and ``vf.load_environment``'s environment-hub install step (install
the environment package first).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, get_origin

from rft.config.base import SpecError
from rft.data import Example

JUDGE_OBJECTS = frozenset({"judge", "judge_client"})
CLIENT_MODULES = frozenset({"openai", "anthropic", "httpx", "aiohttp", "litellm", "requests"})
GROUP_PARAMS = frozenset({"states", "prompts", "completions", "answers", "tasks", "infos"})
SANDBOX_ENVS = ("SandboxEnv", "PythonEnv")
FIX = "set its weight to 0 (a metric), remove it from the rubric, or score that part with an rft grader"


class RowMismatch(ValueError):
    """The row does not fit the environment's task data (a field missing or of the wrong type)."""


class RewardError(RuntimeError):
    """A reward function raised or returned something that is not a number."""


@dataclass
class Scores:
    values: dict[str, float] = field(default_factory=dict)    # every reward and metric that ran
    weights: dict[str, float] = field(default_factory=dict)   # the rewards that count, by name
    feedback: dict[str, str] = field(default_factory=dict)    # RewardResult feedback, when given
    not_run: tuple[str, ...] = ()                             # weight-0 functions refused offline


# -- finding the environment ---------------------------------------------------------------------


def load_module(ref: str) -> ModuleType:
    """The module ``ref`` names: a ``.py`` file, a package directory, or an importable name (an
    installed environment package; a hub id ``owner/name@version`` imports ``name``, ``-`` as ``_``)."""
    path = Path(ref)
    try:
        if path.suffix == ".py" or path.is_dir():
            if not path.exists():
                raise SpecError(f"verifiers grader: field 'environment' = {ref!r}: no such file or directory")
            return _import_path(path)
        return importlib.import_module(ref.rsplit("/", 1)[-1].split("@", 1)[0].replace("-", "_"))
    except SpecError:
        raise
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] == "verifiers":
            raise SpecError(f"verifiers grader: environment {ref!r} needs the verifiers package ({e.name!r} is "
                            "missing); pip install 'rft[verifiers]'") from None
        raise SpecError(f"verifiers grader: field 'environment' = {ref!r}: cannot import {e.name!r}; install the "
                        "environment package (or the package it needs), or give the path of its .py file") from None
    except Exception as e:  # noqa: BLE001 - the environment module's own import failed
        raise SpecError(f"verifiers grader: importing environment {ref!r} failed: {type(e).__name__}: {e}"
                        f"{_legacy_hint(e)}") from None


def _import_path(path: Path) -> ModuleType:
    """A package directory is imported by its name (its own absolute imports work), a project directory
    (verifiers' ``environments/<name>/``) by its ``<name>`` package or ``<name>.py``, a file under a name
    of its own, so that ``json.py`` shadows nothing. The parent directory joins ``sys.path``: an
    environment file imports its siblings."""
    path = path.resolve()
    if path.is_dir() and not (path / "__init__.py").is_file():  # a project: environments/gsm8k/gsm8k[.py]
        if not ((path / f"{path.name}.py").is_file() or (path / path.name / "__init__.py").is_file()):
            raise SpecError(f"verifiers grader: field 'environment' = {str(path)!r}: a directory without "
                            f"__init__.py, {path.name}.py or {path.name}/; point at the environment's module")
        path = path / path.name if (path / path.name).is_dir() else path / f"{path.name}.py"
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    if path.is_dir():
        return importlib.import_module(path.name)
    name = f"rft_verifiers_env_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module  # pydantic resolves a task data class's annotations through it
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _legacy_hint(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, AttributeError) and "verifiers" in text:
        return ("; this environment uses verifiers' Environment API (vf.SingleTurnEnv, vf.Rubric), which verifiers "
                "0.4 removed: pip install 'verifiers<0.4'")
    if "api_key" in text or "API_KEY" in text:
        return ("; the environment builds a model client (a judge) when it loads, and rft scores offline without an "
                "API key: use an environment whose rewards are programs")
    return ""


def open_environment(ref: str, args: dict[str, Any]) -> "TasksetScorer | RubricScorer":
    module = load_module(ref)
    taskset_cls = _v1_export(module, "Taskset")
    env_cls = _v1_export(module, "Env")
    if env_cls is not None:
        from verifiers.v1 import SingleAgentEnv

        if not issubclass(env_cls, SingleAgentEnv):
            raise SpecError(f"verifiers grader: {ref!r} is a multi-agent environment ({env_cls.__name__}); its "
                            "score() judges several agents' traces together, which one completion cannot give")
    if taskset_cls is not None:
        return TasksetScorer.open(taskset_cls, args, ref)
    loader = getattr(module, "load_environment", None)
    if not callable(loader):
        raise SpecError(f"verifiers grader: {ref!r} defines neither load_environment(**kwargs) (verifiers' Environment "
                        "API) nor a vf.Taskset subclass in __all__ (its v1 API); point 'environment' at the module that does")
    try:
        env = loader(**args)
    except TypeError as e:
        raise SpecError(f"verifiers grader: field 'args' = {args!r}: load_environment() rejected them ({e}); give the "
                        f"keyword arguments it takes: {inspect.signature(loader)}") from None
    except Exception as e:  # noqa: BLE001 - the environment's own loading failed
        raise SpecError(f"verifiers grader: load_environment() of {ref!r} failed: {type(e).__name__}: {e}"
                        f"{_legacy_hint(e)}") from None
    return RubricScorer.open(env, ref)


def _v1_export(module: ModuleType, base_name: str) -> type | None:
    """The one subclass of ``verifiers.v1.<base_name>`` the module exports (``__all__``, else its own
    classes); None when verifiers.v1 is not in use."""
    if "verifiers.v1" not in sys.modules:
        return None
    base = getattr(sys.modules["verifiers.v1"], base_name)
    names = getattr(module, "__all__", None)
    candidates = [getattr(module, n, None) for n in names] if names is not None else [
        v for v in vars(module).values() if getattr(v, "__module__", None) == module.__name__]
    found = [c for c in candidates if isinstance(c, type) and issubclass(c, base) and c is not base]
    if len(found) > 1:
        raise SpecError(f"verifiers grader: {module.__name__} exports {len(found)} {base_name} classes "
                        f"({[c.__name__ for c in found]}); export exactly one in __all__")
    return found[0] if found else None


# -- v1: Taskset / Task / @vf.reward ---------------------------------------------------------------


def _needs_runtime(fn: Callable[..., Any]) -> bool:
    """verifiers' own test (``Task.score``): a ``runtime`` parameter without a default."""
    param = inspect.signature(fn).parameters.get("runtime")
    return param is not None and param.default is inspect.Parameter.empty


@dataclass
class TasksetScorer:
    taskset: Any
    task_cls: type
    data_cls: type
    not_run: tuple[str, ...]

    @classmethod
    def open(cls, taskset_cls: type, args: dict[str, Any], ref: str) -> "TasksetScorer":
        import verifiers.v1 as vf
        from pydantic import ValidationError
        from verifiers.v1.utils.generic import concrete_type

        config_cls = concrete_type(taskset_cls, vf.TasksetConfig, origin=vf.Taskset) or vf.TasksetConfig
        try:
            config = config_cls.model_validate({"id": Path(ref).stem if ref.endswith(".py") else ref, **args})
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            raise SpecError(f"verifiers grader: field 'args' = {args!r}: {config_cls.__name__} rejects them ({problems}); "
                            f"give its fields: {sorted(config_cls.model_fields)}") from None
        taskset = taskset_cls(config)
        task_cls = taskset_cls.task_type()
        data_cls = task_cls.data_type()
        probe = task_cls(data_cls.model_construct(), config.task)  # only to list its rewards
        not_run = []
        for fn in probe.hooks("reward"):
            if _needs_runtime(fn):
                if getattr(fn, "_vf_weight", 1.0) != 0:
                    raise SpecError(f"verifiers grader: reward '{fn.__name__}' of {task_cls.__name__} needs a runtime "
                                    "(a sandbox or container it runs commands in), which offline scoring has not; "
                                    f"{FIX}")
                not_run.append(fn.__name__)
        for judge in config.task.judges:
            raise SpecError(f"verifiers grader: {task_cls.__name__} has a judge ({type(judge).__name__}, "
                            f"id {getattr(judge, 'id', '?')!r}): it asks a model to grade, and rft scores offline "
                            "without an inference server or API key; remove it from the task config's judges")
        return cls(taskset, task_cls, data_cls, tuple(not_run))

    async def score(self, completion: str, example: Example) -> Scores:
        from pydantic import ValidationError

        try:
            data = self.data_cls.model_validate({**example.fields, "id": example.id, "prompt": example.prompt})
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            raise RowMismatch(f"row does not fit {self.data_cls.__name__} ({problems})") from None
        task = self.task_cls(data, self.taskset.config.task)
        trace = _trace(task, data, completion)
        await task.score(trace)  # runs without a runtime: the refused rewards are left out by verifiers itself
        scores = Scores(not_run=self.not_run)
        for name, reward in trace.rewards.items():
            if reward is None:
                raise RewardError(f"reward '{name}' was not scored")
            scores.values[name], scores.weights[name] = reward.score, reward.weight
        scores.values.update({k: float(v) for k, v in trace.metrics.items() if v is not None and k not in scores.values})
        return scores


def _trace(task: Any, data: Any, completion: str) -> Any:
    """A trace of one turn: the task's prompt (its system prompt first) and the completion, as the
    model's sampled reply -- what ``trace.last_reply`` and ``trace.messages`` read."""
    import verifiers.v1 as vf
    from verifiers.v1.graph import MessageNode
    from verifiers.v1.trace import AgentInfo, TraceTask

    prompt = [vf.UserMessage(content=data.prompt)] if isinstance(data.prompt, str) else list(data.prompt or [])
    if data.system_prompt is not None and not any(m.role == "system" for m in prompt):
        prompt.insert(0, vf.SystemMessage(content=data.system_prompt))
    trace = vf.Trace(task=TraceTask(type=type(task).__name__, data=data), agent=AgentInfo(config=vf.AgentConfig()))
    for i, message in enumerate(prompt):
        trace.nodes.append(MessageNode(parent=i - 1 if i else None, message=message))
    trace.nodes.append(MessageNode(parent=len(prompt) - 1 if prompt else None,
                                   message=vf.AssistantMessage(content=completion), sampled=True))
    return trace


# -- the Environment API: env.rubric, reward functions and weights -----------------------------------


@dataclass(frozen=True)
class RubricReward:
    name: str
    fn: Callable[..., Any]
    weight: float
    objects: dict[str, Any]  # the rubric's class objects (parser, judge, ...)

    def takes(self, available: set[str]) -> set[str]:
        params = inspect.signature(self.fn).parameters
        if any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return set(available)
        return available & set(params)


def _rubric_rewards(rubric: Any) -> list[RubricReward]:
    subs = getattr(rubric, "rubrics", None)  # RubricGroup
    if isinstance(subs, (list, tuple)) and subs:
        return [r for sub in subs for r in _rubric_rewards(sub)]
    funcs = list(getattr(rubric, "funcs", None) or getattr(rubric, "reward_funcs", None) or [])
    weights = list(getattr(rubric, "weights", None) or getattr(rubric, "reward_weights", None) or [1.0] * len(funcs))
    objects = dict(getattr(rubric, "class_objects", None) or {})
    if getattr(rubric, "parser", None) is not None:
        objects.setdefault("parser", rubric.parser)
    return [RubricReward(getattr(f, "__name__", repr(f)), f, float(w), objects) for f, w in zip(funcs, weights)]


def _unique(rewards: list[RubricReward]) -> list[RubricReward]:
    """Names made unique (two lambdas, one function in two rubrics): ``name``, ``name_2``, ..."""
    seen: dict[str, int] = {}
    out = []
    for r in rewards:
        seen[r.name] = seen.get(r.name, 0) + 1
        out.append(r if seen[r.name] == 1 else RubricReward(f"{r.name}_{seen[r.name]}", r.fn, r.weight, r.objects))
    return out


def _is_client(name: str, value: Any) -> bool:
    root = (type(value).__module__ or "").split(".")[0]
    return name in JUDGE_OBJECTS or root in CLIENT_MODULES or type(value).__name__.endswith("Client")


def _refusal(reward: RubricReward) -> str | None:
    """Why ``reward`` cannot run offline, or None."""
    sig = inspect.signature(reward.fn)
    plural = GROUP_PARAMS & set(sig.parameters)
    ret = sig.return_annotation
    if plural or ret is list or get_origin(ret) is list:
        return f"is a group reward function (it takes {sorted(plural) or 'a group'} and scores a whole group at once)"
    if ret is dict or get_origin(ret) is dict:
        return "is a multi-agent reward function (it returns a score per agent)"
    clients = sorted(n for n in reward.takes(set(reward.objects)) if _is_client(n, reward.objects[n]))
    if clients:
        return (f"is handed a judge model ({', '.join(clients)}): it asks a model to grade, and rft scores offline "
                "without an inference server or API key")
    return None


@dataclass
class RubricScorer:
    rewards: list[RubricReward]
    chat: bool | None  # the environment's message_type; None: as the row's prompt is
    not_run: tuple[str, ...]

    @classmethod
    def open(cls, env: Any, ref: str) -> "RubricScorer":
        kinds = [k.__name__ for k in type(env).__mro__]
        if any(k in SANDBOX_ENVS for k in kinds):
            raise SpecError(f"verifiers grader: {ref!r} is a {type(env).__name__}: its rewards run code in a remote "
                            "sandbox, which offline scoring has not; score code with rft's code grader instead")
        if isinstance(getattr(env, "envs", None), (list, tuple)):
            raise SpecError(f"verifiers grader: {ref!r} is an EnvGroup; point 'environment' at one of its environments")
        rubric = getattr(env, "rubric", None)
        if rubric is None:
            raise SpecError(f"verifiers grader: load_environment() of {ref!r} returned a {type(env).__name__} without a "
                            "rubric; it must return a verifiers Environment")
        rewards, not_run = [], []
        for reward in _unique(_rubric_rewards(rubric)):
            why = _refusal(reward)
            if why is None:
                rewards.append(reward)
            elif reward.weight == 0:
                not_run.append(reward.name)
            else:
                raise SpecError(f"verifiers grader: reward '{reward.name}' (weight {reward.weight:g}) {why}; {FIX}")
        if not any(r.weight for r in rewards):
            raise SpecError(f"verifiers grader: the rubric of {ref!r} has no reward with a non-zero weight; add one")
        message_type = getattr(env, "message_type", None)
        return cls(rewards, None if message_type is None else message_type == "chat", tuple(not_run))

    async def score(self, completion: str, example: Example) -> Scores:
        prompt = example.prompt
        chat = self.chat if self.chat is not None else not isinstance(prompt, str)
        if chat and isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        reply: Any = [{"role": "assistant", "content": completion}] if chat else completion
        fields = dict(example.fields)
        answer, info, task = fields.get("answer", ""), fields.get("info") or {}, fields.get("task", "default")
        state = {"prompt": prompt, "completion": reply, "answer": answer, "task": task, "info": info,
                 "input": {"prompt": prompt, **fields}, "example_id": fields.get("example_id", example.id),
                 "responses": [], "trajectory": [], "turn": 1}
        base = {**{k: v for k, v in fields.items() if k not in ("prompt", "answer", "info", "example_id")},
                "prompt": prompt, "completion": reply, "answer": answer, "state": state, "info": info, "task": task}
        scores = Scores(not_run=self.not_run)
        for reward in self.rewards:  # one at a time, in the rubric's order: deterministic
            available = {**base, **reward.objects}
            value = await _call(reward, {k: available[k] for k in reward.takes(set(available))})
            if isinstance(value, dict) and "score" in value:  # RewardResult: {"score", "feedback"}
                if value.get("feedback"):
                    scores.feedback[reward.name] = str(value["feedback"])[:300]
                value = value["score"]
            try:  # as verifiers does: float(value), so True and numpy numbers count
                number = float(value)
            except (TypeError, ValueError):
                raise RewardError(f"reward '{reward.name}' returned {type(value).__name__}, not a number") from None
            if not math.isfinite(number):
                raise RewardError(f"reward '{reward.name}' returned {number}")
            scores.values[reward.name], scores.weights[reward.name] = number, reward.weight
        return scores


async def _call(reward: RubricReward, kwargs: dict[str, Any]) -> Any:
    try:
        value = reward.fn(**kwargs)
        return await value if inspect.isawaitable(value) else value
    except Exception as e:  # noqa: BLE001 - named here, recorded by the grader
        raise RewardError(f"reward '{reward.name}' raised {type(e).__name__}: {e}") from e


# -- the environment's own rows, as rft data ---------------------------------------------------------


def environment_rows(ref: str, args: dict[str, Any] | None = None, split: str = "train",
                     limit: int | None = None) -> list[dict[str, Any]]:
    """The environment's dataset as rft rows (``id``, ``prompt`` and the fields its rewards read),
    which the verifiers grader scores back as they are: a v1 taskset's tasks (``TaskData`` without
    its defaults; a system prompt becomes the first message), or an Environment's ``dataset``
    (``split="train"``) or ``eval_dataset`` (``"eval"``) rows as verifiers formatted them."""
    module = load_module(ref)
    taskset_cls = _v1_export(module, "Taskset")
    if taskset_cls is not None:
        taskset = TasksetScorer.open(taskset_cls, args or {}, ref).taskset
        if limit is not None or taskset.INFINITE:
            taskset = taskset.take(limit if limit is not None else 1000)
        return [_task_row(task.data, Path(ref).stem, i) for i, task in enumerate(taskset)]
    if not callable(getattr(module, "load_environment", None)):
        raise SpecError(f"verifiers: {ref!r} defines neither load_environment() nor a vf.Taskset in __all__")
    env = module.load_environment(**(args or {}))
    dataset = getattr(env, "dataset" if split == "train" else "eval_dataset", None)
    if dataset is None:
        raise SpecError(f"verifiers: {ref!r} has no {'dataset' if split == 'train' else 'eval_dataset'}")
    rows = dataset.to_list() if hasattr(dataset, "to_list") else list(dataset)
    rows = rows[:limit] if limit is not None else rows
    return [{"id": f"{Path(ref).stem}-{row.get('example_id', i)}", **row} for i, row in enumerate(rows)]


def _task_row(data: Any, stem: str, position: int) -> dict[str, Any]:
    row = data.model_dump(mode="json", exclude_defaults=True)
    idx, system = row.pop("idx", position), row.pop("system_prompt", None)
    prompt = row.pop("prompt")
    if system is not None:
        prompt = [{"role": "system", "content": system},
                  *([{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt)]
    return {"id": row.pop("id", None) or f"{stem}-{idx}", "prompt": prompt, **row}
