#!/usr/bin/python3
"""runtime_api.py: a stand-in for the AWS Lambda Runtime API, for tests.

Written from the AWS Lambda developer guide ("Using the Lambda runtime API
for custom runtimes", API version 2018-06-01), standard library only:

  GET  /2018-06-01/runtime/invocation/next          -> 200, the next event;
       headers Lambda-Runtime-Aws-Request-Id, Lambda-Runtime-Deadline-Ms,
       Lambda-Runtime-Invoked-Function-Arn, Lambda-Runtime-Trace-Id.
       Blocks (long poll) until an event is queued, as Lambda does.
  POST /2018-06-01/runtime/invocation/ID/response   -> 202 (400 unknown ID)
  POST /2018-06-01/runtime/invocation/ID/error      -> 202; the
       Lambda-Runtime-Function-Error-Type header is kept
  POST /2018-06-01/runtime/init/error               -> 202

Events come from --events FILE, one per line, tailed (lines appended later
are served later): "ID<TAB>PAYLOAD" or just "PAYLOAD" (ID = evt-N). The
payload bytes are sent as they are, so a line may be invalid JSON on purpose.
Recorded in --out DIR: ID.response, ID.error and ID.error-type (bodies as
received), init-error and init-error-type, and log.jsonl, one line per call:
{"t": unix time, "ev": "next"|"response"|"error"|"init_error", "id", "conn"}.
GET /test/stats answers counts as JSON (served, responses, errors,
init_errors, pending, connections, chunked, dropped).

Test knobs: --chunked-every N sends every Nth event with chunked
transfer-encoding; --drop-every N closes the connection without warning
after every Nth /response or /error (the runtime must reconnect).
The listening port (127.0.0.1, 0 = any free one) goes to --port-file.
"""
import argparse
import itertools
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.queue = []
        self.events_off = 0
        self.partial = b""
        self.seq = 0
        self.known = set()
        self.answered = set()
        self.stats = dict(served=0, responses=0, errors=0, init_errors=0, connections=0, chunked=0, dropped=0,
                          answers=0)
        self.log = open(os.path.join(args.out, "log.jsonl"), "a", buffering=1)
        self.conn_ids = itertools.count(1)

    def poll_events(self):
        """Reads complete lines appended to the events file (lock held)."""
        try:
            with open(self.args.events, "rb") as f:
                f.seek(self.events_off)
                data = f.read()
        except FileNotFoundError:
            return
        self.events_off += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if not line.strip():
                continue
            self.seq += 1
            if b"\t" in line:
                rid, payload = line.split(b"\t", 1)
                rid = rid.decode()
            else:
                rid, payload = "evt-%d" % self.seq, line
            self.queue.append((rid, payload))

    def record(self, ev, rid, conn):
        self.log.write(json.dumps({"t": time.time(), "ev": ev, "id": rid, "conn": conn}) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "runtime-api-test/1"
    # head and body go out in separate writes: without NODELAY the body
    # waits for the client's delayed ACK (40 ms per call)
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet: everything goes to log.jsonl
        pass

    def setup(self):
        super().setup()
        st = self.server.state
        with st.lock:
            self.conn = next(st.conn_ids)
            st.stats["connections"] += 1

    def reply(self, code, body=b"", headers=None, chunked=False):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            # uneven chunks, one with an extension, then the last chunk
            parts = [body[:7], body[7:20], body[20:]]
            out = b""
            for i, p in enumerate(parts):
                if p:
                    out += b"%x%s\r\n%s\r\n" % (len(p), b";ext=1" if i == 1 else b"", p)
            out += b"0\r\n\r\n"
            self.wfile.write(out)
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        st = self.server.state
        if self.path == "/test/stats":
            with st.lock:
                st.poll_events()
                d = dict(st.stats, pending=len(st.queue))
            self.reply(200, json.dumps(d).encode(), {"Content-Type": "application/json"})
            return
        if self.path != PREFIX + "/invocation/next":
            self.reply(404, b'{"errorMessage":"unknown path","errorType":"NotFound"}')
            return
        while True:
            with st.lock:
                st.poll_events()
                if st.queue:
                    rid, payload = st.queue.pop(0)
                    st.stats["served"] += 1
                    n = st.stats["served"]
                    st.known.add(rid)
                    st.record("next", rid, self.conn)
                    break
            time.sleep(0.002)
        every = st.args.chunked_every
        chunked = every > 0 and n % every == 0
        if chunked:
            with st.lock:
                st.stats["chunked"] += 1
        hdrs = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": rid,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 30000),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:nginfer",
            "Lambda-Runtime-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
        }
        self.reply(200, payload, hdrs, chunked=chunked)

    def do_POST(self):
        st = self.server.state
        body = self.read_body()
        p = self.path
        if p == PREFIX + "/init/error":
            with st.lock:
                st.stats["init_errors"] += 1
                st.record("init_error", None, self.conn)
            with open(os.path.join(st.args.out, "init-error"), "wb") as f:
                f.write(body)
            with open(os.path.join(st.args.out, "init-error-type"), "w") as f:
                f.write(self.headers.get("Lambda-Runtime-Function-Error-Type", ""))
            self.reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
            return
        parts = p[len(PREFIX):].split("/") if p.startswith(PREFIX + "/invocation/") else []
        # ['', 'invocation', ID, 'response'|'error']
        if len(parts) != 4 or parts[3] not in ("response", "error"):
            self.reply(404, b'{"errorMessage":"unknown path","errorType":"NotFound"}')
            return
        rid, kind = parts[2], parts[3]
        with st.lock:
            if rid not in st.known or rid in st.answered:
                bad = True
            else:
                bad = False
                st.answered.add(rid)
                st.stats["responses" if kind == "response" else "errors"] += 1
                st.stats["answers"] += 1
                st.record(kind, rid, self.conn)
                n = st.stats["answers"]
        if bad:
            self.reply(400, b'{"errorMessage":"unknown or answered request id","errorType":"InvalidRequestID"}',
                       {"Content-Type": "application/json"})
            return
        with open(os.path.join(st.args.out, "%s.%s" % (rid, kind)), "wb") as f:
            f.write(body)
        if kind == "error":
            with open(os.path.join(st.args.out, "%s.error-type" % rid), "w") as f:
                f.write(self.headers.get("Lambda-Runtime-Function-Error-Type", ""))
        self.reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
        every = st.args.drop_every
        if every > 0 and n % every == 0:
            with st.lock:
                st.stats["dropped"] += 1
            self.close_connection = True  # no "Connection: close": a silent drop


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--chunked-every", type=int, default=0)
    ap.add_argument("--drop-every", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    print("runtime_api.py: listening on 127.0.0.1:%d" % port, file=sys.stderr, flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
