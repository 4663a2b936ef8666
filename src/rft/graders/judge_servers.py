"""Local judges: the loopback servers a grader pool starts for model graders whose ``judge`` names a
local model (``judge: {model: smollm2-135m-instruct}``), so that every judge -- local or run by the
user -- is reached by the same HTTP client (:mod:`rft.graders.judge_client`).

:meth:`LocalJudges.resolve` walks a spec dict (``multi`` sub-graders included) and returns it with
each local judge replaced by the endpoint serving it (``{"base_url": "http://127.0.0.1:PORT/v1",
"served_model": <model>, ...}``), starting one server per (model, device) on first need:
``python -m rft.rollout.judge_server`` in a child process (the grader side never imports a model;
the server is a process of its own, like a user's vLLM). The child prints its port once the model is
loaded (bounded by :data:`STARTUP_TIMEOUT_S`), serves on 127.0.0.1 only, and exits when its stdin
closes: at :meth:`LocalJudges.close` (the pool's ``close``), or when this process dies.

Not covered: sharing one local judge between two runs (each pool starts its own), a judge on a
second GPU chosen by index (``device`` is auto, cpu or cuda), and restarting a server that died
mid-run (its judgments fail with ``JudgeUnreachable`` and score 0).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import threading
from typing import Any

STARTUP_TIMEOUT_S = 600.0
MODEL_GRADERS = ("score_model", "label_model")


class LocalJudgeError(RuntimeError):
    """A local judge's server did not start; the message says why and has its stderr's tail."""


class LocalJudges:
    def __init__(self) -> None:
        self.servers: dict[tuple[str, str], tuple[subprocess.Popen[str], str]] = {}  # (model, device) -> (proc, url)

    def resolve(self, spec: dict[str, Any]) -> dict[str, Any]:
        """``spec`` with every local judge pointed at its running server (``spec`` itself when it has none)."""
        if not needs_server(spec):
            return spec
        out = copy.deepcopy(spec)
        for node in _model_graders(out):
            judge = node["judge"]
            model = judge.pop("model")
            device = judge.pop("device", "auto")
            judge["base_url"] = self.url(str(model), str(device))
            judge.setdefault("served_model", str(model))
        return out

    def url(self, model: str, device: str = "auto") -> str:
        key = (model, device)
        if key not in self.servers:
            self.servers[key] = start_server(model, device)
        return self.servers[key][1]

    def close(self) -> None:
        for proc, _ in self.servers.values():
            stop_server(proc)
        self.servers.clear()


def _model_graders(spec: Any) -> list[dict[str, Any]]:
    if not isinstance(spec, dict):
        return []
    if spec.get("type") in MODEL_GRADERS and isinstance(spec.get("judge"), dict) and spec["judge"].get("model"):
        return [spec]
    subs = spec.get("graders") if spec.get("type") == "multi" else None
    return [n for s in (subs.values() if isinstance(subs, dict) else []) for n in _model_graders(s)]


def needs_server(spec: Any) -> bool:
    """Whether ``spec`` (a grader spec dict) has a model grader whose judge is a local model."""
    return bool(_model_graders(spec))


def start_server(model: str, device: str = "auto", threads: int | None = None) -> tuple[subprocess.Popen[str], str]:
    """(the server process, its base_url) once the model has loaded and the port is bound."""
    threads = threads if threads is not None else max(1, (os.cpu_count() or 2) // 2)
    cmd = [sys.executable, "-m", "rft.rollout.judge_server", "--model", model, "--device", device,
           "--threads", str(threads)]
    log = tempfile.TemporaryFile("w+")  # not a pipe: a chatty model load must not block on a full one
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(STARTUP_TIMEOUT_S)
    try:
        said = json.loads(line[0]) if line and line[0] else {}
    except ValueError:
        said = {}
    port = said.get("port") if isinstance(said, dict) else None
    if not isinstance(port, int):
        stop_server(proc)
        log.seek(0)
        why = said.get("error") if isinstance(said, dict) and said.get("error") else (
            log.read()[-300:].strip() or f"no port within {STARTUP_TIMEOUT_S:g}s")
        log.close()
        raise LocalJudgeError(f"the local judge {model!r} did not start: {why}; check judge.model (any model.path "
                              "rft loads)")
    log.close()
    return proc, f"http://127.0.0.1:{port}/v1"


def stop_server(proc: subprocess.Popen[str]) -> None:
    """Close the server's stdin (it exits), then kill it if it has not within 5 s."""
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait(timeout=5)
