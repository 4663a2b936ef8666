"""The HTTP side of a model grader: one ``POST {base_url}/chat/completions`` to an OpenAI-compatible
server (rft's own loopback judge, vLLM's, llama.cpp's, Ollama's), on the standard library alone.

:meth:`ChatClient.chat` sends the judge's messages and returns a :class:`Reply` (the text, the
server's ``usage`` token counts, the seconds taken, the attempts made) or raises :class:`JudgeError`
with a kind (``JudgeTimeout``, ``JudgeUnreachable``, ``JudgeHTTPError``, ``JudgeBadResponse``):

- the whole judgment, retries included, is bounded by ``timeout_s`` (each attempt gets what is left);
- a connection error, a dropped connection, HTTP 429 or 5xx is retried ``retries`` times with
  exponential backoff (0.2 s, 0.4 s, ...), a 4xx is not (the request itself is wrong);
- at most ``concurrency`` requests per ``base_url`` are in flight at once in one process (a
  semaphore per URL: the grader pool's workers are processes, so the server sees up to workers x
  concurrency);
- a response body over 1 MiB, or one that is not the chat-completion JSON, is ``JudgeBadResponse``;
- the API key is read from the environment variable ``api_key_env`` names, on each call, and is
  sent only as the ``Authorization`` header: never logged, never in an error message.

Not covered: streaming, TLS client certificates, proxies (``http_proxy`` is not read), tool calls.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass

MAX_RESPONSE_BYTES = 1 << 20
BACKOFF_S = 0.2
_SEMAPHORES: dict[str, threading.BoundedSemaphore] = {}
_LOCK = threading.Lock()


class JudgeError(RuntimeError):
    """A judgment that did not come back; ``kind`` is the ``details["error"]`` it becomes."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    attempts: int


@dataclass(frozen=True)
class ChatClient:
    base_url: str
    model: str
    api_key_env: str | None = None
    timeout_s: float = 60.0
    retries: int = 2
    concurrency: int = 4

    def _semaphore(self) -> threading.BoundedSemaphore:
        with _LOCK:
            return _SEMAPHORES.setdefault(self.base_url, threading.BoundedSemaphore(self.concurrency))

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise JudgeError("JudgeNoKey", f"the environment variable {self.api_key_env} (judge.api_key_env) is "
                                 "not set; export it before the run")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def chat(self, messages: list[dict[str, str]], params: dict[str, object]) -> Reply:
        """The judge's reply to ``messages`` (role/content dicts) sampled with ``params`` (temperature,
        top_p, seed, max_tokens); :class:`JudgeError` when none came within ``timeout_s``."""
        body = json.dumps({"model": self.model, "messages": messages, **params}).encode()
        headers = self._headers()
        t0 = time.monotonic()
        deadline = t0 + self.timeout_s
        last = "no attempt"
        for attempt in range(1, self.retries + 2):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with self._semaphore():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    status, data = _post(self.base_url, body, headers, left)
                except TimeoutError:
                    raise JudgeError("JudgeTimeout", f"no reply from {self.base_url} within "
                                     f"{self.timeout_s:g}s (judge.timeout_s)") from None
                except (OSError, http.client.HTTPException) as e:
                    status, data, last = 0, b"", f"{type(e).__name__}: {e}"[:200]
            if status == 200:
                return _reply(data, time.monotonic() - t0, attempt)
            if status:
                last = f"HTTP {status}: {data[:200].decode('utf-8', 'replace')}"
                if status != 429 and status < 500:
                    raise JudgeError("JudgeHTTPError", f"{self.base_url} answered {last}")
            time.sleep(min(BACKOFF_S * 2 ** (attempt - 1), max(0.0, deadline - time.monotonic())))
        kind = "JudgeHTTPError" if last.startswith("HTTP") else "JudgeUnreachable"
        if time.monotonic() >= deadline:
            kind = "JudgeTimeout"
        raise JudgeError(kind, f"{self.base_url}: {last} (after {self.retries + 1} attempt(s) within "
                         f"{self.timeout_s:g}s)")


def _post(base_url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> tuple[int, bytes]:
    url = urllib.parse.urlsplit(base_url.rstrip("/") + "/chat/completions")
    conn_type = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = conn_type(url.hostname or "127.0.0.1", url.port, timeout=timeout_s)
    try:
        conn.request("POST", url.path + (f"?{url.query}" if url.query else ""), body=body, headers=headers)
        response = conn.getresponse()
        data = response.read(MAX_RESPONSE_BYTES + 1)
        if len(data) > MAX_RESPONSE_BYTES:
            raise JudgeError("JudgeBadResponse", f"{base_url}: a response over {MAX_RESPONSE_BYTES} bytes")
        return response.status, data
    finally:
        conn.close()


def _reply(data: bytes, seconds: float, attempts: int) -> Reply:
    try:
        doc = json.loads(data)
        text = doc["choices"][0]["message"]["content"]
        usage = doc.get("usage") or {}
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise JudgeError("JudgeBadResponse", f"not a chat completion ({type(e).__name__}: {str(e)[:100]})") from None
    if not isinstance(text, str):
        raise JudgeError("JudgeBadResponse", f"the reply's content is {type(text).__name__}, not text")
    return Reply(text, prompt, completion, seconds, attempts)
