"""A local judge: an OpenAI-compatible ``/v1/chat/completions`` server over a model rft loads, on the
loopback only. ``python -m rft.rollout.judge_server --model PATH`` loads the model (any ``model.path``:
a directory, a preset, a hub id, ``embedded``), binds ``127.0.0.1`` on a free port, prints one line
``{"port": N}`` and serves until its stdin closes (the grader pool that started it holds the other
end: :mod:`rft.graders.judge_servers`), so it never outlives the run.

Requests are batched: one generation thread takes every request waiting (up to ``--max-batch``,
after waiting ``BATCH_WAIT_S`` for more), groups them by sampling parameters and runs one left-padded
``generate`` per group -- greedy at ``temperature`` 0, else sampled with ``temperature``/``top_p``
(a group's first ``seed`` seeds torch's generator: seeded replies are repeatable for the same batch,
not across batch compositions). Messages go through the tokenizer's chat template, their text with
special-token strings kept as text (:func:`render`); a tokenizer without a template (the embedded
tiny model) gets ``role: content`` lines and ``assistant:``.

Hostile input never stops the server: a body over :data:`MAX_BODY_BYTES`, bad JSON, wrong types,
more than :data:`MAX_MESSAGES` messages, a prompt that does not fit the context, ``max_tokens``
over :data:`MAX_NEW_TOKENS` are answered 400 with the reason; an exception while generating is a
500 for that batch. Responses carry ``usage`` (prompt and completion tokens).

Not covered: streaming, ``n`` > 1, logprobs, tools, authentication (it listens on 127.0.0.1 only:
anyone on this machine can call it).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import torch

MAX_BODY_BYTES = 1 << 20
MAX_MESSAGES = 64
MAX_NEW_TOKENS = 512
BATCH_WAIT_S = 0.005
REQUEST_TIMEOUT_S = 600.0


class BadRequest(ValueError):
    """A request the server refuses (HTTP 400); the message says why."""


@dataclass
class Job:
    prompt_ids: list[int]
    params: tuple[float, float, int, int | None]  # temperature, top_p, max_tokens, seed
    done: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    completion_tokens: int = 0
    finish: str = "stop"
    error: str | None = None


def render(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """The prompt's token ids. The template's own text keeps its special tokens; the messages' text is
    encoded with ``split_special_tokens``, so a completion that writes ``<|im_end|><|im_start|>assistant``
    stays text and cannot close its turn and forge the judge's (the ``forged_turn`` attack of ``rft
    audit``). A template that does not copy each message's text verbatim is refused."""
    def text_ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])

    if not getattr(tokenizer, "chat_template", None):
        return text_ids("".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:")
    from rft.models.chat import chat_prompt_text

    markers = [f"\u241e{i}\u241e" for i in range(len(messages))]  # a symbol no template writes
    rest = chat_prompt_text(tokenizer, [{"role": m["role"], "content": k} for m, k in zip(messages, markers)])
    ids: list[int] = []
    for m, marker in zip(messages, markers):
        if rest.count(marker) != 1:
            raise BadRequest("the judge's chat template does not copy each message's text once; serve it elsewhere")
        before, _, rest = rest.partition(marker)
        ids += list(tokenizer(before, add_special_tokens=False)["input_ids"]) + text_ids(m["content"])
    return ids + list(tokenizer(rest, add_special_tokens=False)["input_ids"])


def parse_request(body: bytes, tokenizer: Any, context: int) -> Job:
    """The :class:`Job` of one request body, or :class:`BadRequest` naming what is wrong."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise BadRequest(f"the body is not JSON ({type(e).__name__})") from None
    if not isinstance(doc, dict):
        raise BadRequest("the body must be a JSON object")
    messages = doc.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        raise BadRequest(f"'messages' must be a list of 1..{MAX_MESSAGES} messages")
    clean = []
    for m in messages:
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise BadRequest("each message must be an object with string 'role' and 'content'")
        clean.append({"role": m["role"], "content": m["content"]})

    def number(key: str, default: float, low: float, high: float) -> float:
        value = doc.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise BadRequest(f"'{key}' must be a number in [{low:g}, {high:g}]")
        return float(value)

    temperature, top_p = number("temperature", 1.0, 0.0, 2.0), number("top_p", 1.0, 1e-6, 1.0)
    max_tokens = int(number("max_tokens", 16, 1, MAX_NEW_TOKENS))
    seed = doc.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
        raise BadRequest("'seed' must be a non-negative integer")
    if sum(len(m["content"]) for m in clean) > MAX_BODY_BYTES:
        raise BadRequest("the messages are too long")
    try:
        ids = render(tokenizer, clean)
    except BadRequest:
        raise
    except Exception as e:  # noqa: BLE001 - a template that rejects these messages is the request's problem
        raise BadRequest(f"the chat template rejected the messages ({type(e).__name__}: {str(e)[:100]})") from None
    if len(ids) + max_tokens > context:
        raise BadRequest(f"the prompt is {len(ids)} tokens + max_tokens {max_tokens} > the judge's context of {context}")
    return Job(ids, (temperature, top_p, max_tokens, seed))


class Generator:
    """The one thread that runs the model: batches waiting jobs by their sampling parameters."""

    def __init__(self, model: Any, tokenizer: Any, max_batch: int) -> None:
        self.model, self.tokenizer, self.max_batch = model, tokenizer, max_batch
        self.jobs: queue.Queue[Job] = queue.Queue()
        threading.Thread(target=self._loop, name="rft-judge-generate", daemon=True).start()

    def _loop(self) -> None:
        while True:
            batch = [self.jobs.get()]
            time.sleep(BATCH_WAIT_S)
            while len(batch) < self.max_batch and not self.jobs.empty():
                batch.append(self.jobs.get_nowait())
            groups: dict[tuple[Any, ...], list[Job]] = {}
            for job in batch:
                groups.setdefault(job.params[:3], []).append(job)
            for jobs in groups.values():
                try:
                    self._generate(jobs)
                except Exception as e:  # noqa: BLE001 - a failed batch is a 500 for its requests, not a dead server
                    for job in jobs:
                        job.error = f"{type(e).__name__}: {str(e)[:200]}"
                for job in jobs:
                    job.done.set()

    @torch.no_grad()
    def _generate(self, jobs: list[Job]) -> None:
        temperature, top_p, max_tokens, _ = jobs[0].params
        seed = next((j.params[3] for j in jobs if j.params[3] is not None), None)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        width = max(len(j.prompt_ids) for j in jobs)
        device = next(self.model.parameters()).device
        ids = torch.tensor([[pad] * (width - len(j.prompt_ids)) + j.prompt_ids for j in jobs], device=device)
        mask = torch.tensor([[0] * (width - len(j.prompt_ids)) + [1] * len(j.prompt_ids) for j in jobs], device=device)
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
            if seed is not None:
                torch.manual_seed(seed)
        out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_tokens, pad_token_id=pad,
                                  eos_token_id=self.tokenizer.eos_token_id, **sampling)
        for job, row in zip(jobs, out[:, width:].tolist()):
            eos = self.tokenizer.eos_token_id
            stop = row.index(eos) if eos in row else len(row)
            job.completion_tokens = stop
            job.finish = "stop" if stop < max_tokens else "length"
            job.text = self.tokenizer.decode(row[:stop], skip_special_tokens=True)


def make_handler(generator: Generator, model_name: str, context: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # a request log would be noise on the run's stderr
            return

        def _send(self, status: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"error": {"message": message, "type": "invalid_request_error" if status < 500
                                          else "server_error"}})

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.rstrip("/") in ("/v1/models", "/health"):
                self._send(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
            else:
                self._error(404, f"no such path {self.path[:100]!r}")

        def do_POST(self) -> None:  # noqa: N802
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"no such path {self.path[:100]!r}; POST /v1/chat/completions")
                return
            try:
                length = int(self.headers.get("Content-Length") or -1)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY_BYTES:
                self.close_connection = True
                self._error(413 if length > MAX_BODY_BYTES else 411, f"give a Content-Length of at most {MAX_BODY_BYTES}")
                return
            try:
                job = parse_request(self.rfile.read(length), generator.tokenizer, context)
            except BadRequest as e:
                self._error(400, str(e))
                return
            generator.jobs.put(job)
            if not job.done.wait(REQUEST_TIMEOUT_S) or job.error:
                self._error(500, job.error or "generation timed out")
                return
            self._send(200, {
                "id": f"chatcmpl-rft-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
                "model": model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": job.text},
                             "finish_reason": job.finish}],
                "usage": {"prompt_tokens": len(job.prompt_ids), "completion_tokens": job.completion_tokens,
                          "total_tokens": len(job.prompt_ids) + job.completion_tokens}})

    return Handler


def serve(model_path: str, device: str = "auto", max_batch: int = 16, port: int = 0) -> None:
    """Load the model, print ``{"port": N}`` (or ``{"error": ...}`` and exit 1), serve on 127.0.0.1 until
    stdin closes."""
    from rft.models.load import (
        context_length,
        load_model,
        load_tokenizer,
        resolve_model_path,
    )

    try:
        resolved = resolve_model_path(model_path)
        tokenizer = load_tokenizer(resolved)
        model = load_model(resolved, "float32", device)
    except Exception as e:  # noqa: BLE001 - told to the process that started this server, in one line
        print(json.dumps({"error": f"{type(e).__name__}: {e}"[:500]}), flush=True)
        raise SystemExit(1) from None
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(Generator(model, tokenizer, max_batch), model_path,
                                                                   context_length(model)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="rft-judge-http", daemon=True).start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    sys.stdin.read()  # EOF: the process that started this server is gone or done with it
    server.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rft.rollout.judge_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="any model.path rft loads")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: torch's default")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    serve(args.model, args.device, args.max_batch, args.port)


if __name__ == "__main__":
    main()
