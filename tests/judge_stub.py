"""A loopback chat-completions server whose replies a test scripts (a real socket for the judge client)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Stub:
    """A loopback chat-completions server whose replies the test scripts: each request pops the next
    action -- a reply text, ("status", code), ("sleep", s), or "drop" (close the socket, no reply)."""

    def __init__(self, actions: list) -> None:
        self.actions, self.requests, self.in_flight, self.most = list(actions), [], 0, 0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub.lock:
                    stub.requests.append((body, dict(self.headers)))
                    action = stub.actions.pop(0) if len(stub.actions) > 1 else stub.actions[0]
                    stub.in_flight += 1
                    stub.most = max(stub.most, stub.in_flight)
                try:
                    if action == "drop":
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    if isinstance(action, tuple) and action[0] == "sleep":
                        time.sleep(action[1])
                        action = "0"
                    if callable(action):  # a judge that reads the request: action(user text) -> reply
                        action = action(body["messages"][-1]["content"])
                    status, text = (action[1], "") if isinstance(action, tuple) else (200, action)
                    doc = {"choices": [{"message": {"role": "assistant", "content": text}}],
                           "usage": {"prompt_tokens": 11, "completion_tokens": 2}} if status == 200 else {"error": "x"}
                    data = json.dumps(doc).encode()
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with stub.lock:
                        stub.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
