"""The example's dev server: edit this file while `pmtop` runs and watch `site` restart (`watch` in
pmtop.toml). Standard library only."""

import http.server
import os

GREETING = "hello from the watched dev server"
PORT = 8768


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{GREETING} (pid {os.getpid()})\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(format % args, flush=True)


print(f"site: serving on http://127.0.0.1:{PORT}/ ({GREETING})", flush=True)
http.server.HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
