"""An HTTP server on 127.0.0.1 (stdlib http.server in a thread) for download tests: nothing reaches the internet.

`server.routes[path] = Route(body, kind)` decides what a GET of `path` gets; every request is logged in
`server.requests` as (path, Range header or None).
"""
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    kind: str = "file"  # file | drop_once (half the bytes, then the connection closes) | status | fail_once
    #                     | no_length (no Content-Length: the size is unknown until the connection closes)
    status: int = 200
    content_type: str = "application/octet-stream"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        server = self.server
        path = urllib.parse.unquote(self.path.split("?", 1)[0])
        range_header = self.headers.get("Range")
        server.requests.append((path, range_header))
        route = server.routes.get(path)
        if route is None:
            self._send(404, b"not found", "text/plain")
            return
        if route.kind == "status":
            self._send(route.status, route.body, route.content_type)
            return
        if route.kind == "fail_once" and sum(p == path for p, _ in server.requests) == 1:
            self._send(503, b"busy", "text/plain")
            return
        body, start = route.body, 0
        if range_header and range_header.startswith("bytes="):
            start = int(range_header[len("bytes="):].split("-")[0])
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", route.content_type)
        if route.kind != "no_length":
            self.send_header("Content-Length", str(len(body) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        first_time = sum(p == path for p, _ in server.requests) == 1
        if route.kind == "drop_once" and first_time:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LoopbackServer:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.routes, self.httpd.requests = {}, []
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def routes(self):
        return self.httpd.routes

    @property
    def requests(self):
        return self.httpd.requests

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
