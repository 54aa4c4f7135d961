#!/usr/bin/env python3
"""Test double for the stack test, on loopback only: an Alertmanager webhook receiver that appends every
POST body (one JSON line each) to a file, and a fake application exposing an HTTP 5xx counter on
/metrics so the wall dashboard's 5xx query has data. Usage: webhook.py PORT OUTFILE"""
import http.server
import json
import sys
import threading
import time

PORT, OUT = int(sys.argv[1]), sys.argv[2]
START = time.time()
LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with LOCK, open(OUT, "a") as f:
            f.write(json.dumps(json.loads(body)) + "\n")
        self.send_response(200)
        self.end_headers()

    def do_GET(self):
        errors = int((time.time() - START) * 2)
        text = ("# TYPE http_requests_total counter\n"
                f'http_requests_total{{code="500"}} {errors}\nhttp_requests_total{{code="200"}} {errors * 10}\n')
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
