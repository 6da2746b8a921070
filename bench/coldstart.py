#!/usr/bin/python3
"""coldstart.py -- time from starting a server to its first 200 on POST.

    coldstart.py --name NAME --url http://127.0.0.1:PORT/invocations \
        --body FILE [--runs 5] [--limit 60] [--poll-ms 1] [--log FILE] -- CMD [ARG...]

Each run:
  t0      monotonic clock read just before CMD is started (so the fork and
          exec of CMD count); CMD gets its own session, stdout and stderr go
          to --log.
  accept  the first TCP connect() to the URL's port that succeeds: when the
          server accepts connections (the SageMaker contract wants this
          within 250 ms of start).
  first   the end of the first answer 200 to POST URL with the body: the
          last byte of a 200 read (connection closed by the server after
          it, "Connection: close").
Polling: connect() to the port; refused -> retry after --poll-ms (default
1 ms); accepted -> send the POST and wait for its answer however long it
takes (up to the limit): a request that reached a server still loading
waits where the server keeps it (nginfer: the FastCGI socket's backlog)
and its answer is the first 200. An answer other than 200 (nginx's 503
before a worker's socket exists) is counted and the POST is sent again
after --poll-ms. One connection at a time, no /proc scans while polling,
so the poller takes little CPU from the server it is timing.
Then CMD is stopped with SIGTERM (the servers used here stop their own
children on TERM); whatever it had started (its descendants, looked up once
the first answer came, or at the limit) and that is still alive 20 s later
gets SIGKILL. Waits for the port to be free before the next run. Prints one
JSON object: runs_ms (t0 -> first), accept_ms (t0 -> accept), medians,
answers that were not 200 before the first 200 (per run), exit codes, and,
if the log has nginfer's "ready" lines, the workers' load_ms.
"""

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        ppid, start = int(rest[1]), rest[19]
        kids.setdefault(ppid, []).append((int(d), start))
    return kids


def descendants(pid):
    kids, out, todo = children_map(), [], [pid]
    while todo:
        p = todo.pop()
        for c, start in kids.get(p, []):
            out.append((c, start))
            todo.append(c)
    return out


def same_proc(pid, start):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    rest = st[st.rfind(")") + 2:].split()
    return rest[19] == start and rest[0] != "Z"


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def status_of(answer):
    """HTTP status of a complete answer, or None."""
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", answer)
    return int(m.group(1)) if m else None


def post_once(addr, request, deadline):
    """One attempt. Returns ("refused", None, None), ("error", None, t_conn)
    or ("answer", status, t_conn); t_conn is when connect() succeeded."""
    s = socket.socket(addr[0], socket.SOCK_STREAM)
    try:
        s.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            s.connect(addr[4])
        except (ConnectionRefusedError, FileNotFoundError):
            return "refused", None, None
        except OSError:
            return "refused", None, None
        t_conn = time.monotonic()
        try:
            s.sendall(request)
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        except OSError:
            return "error", None, t_conn
        st = status_of(b"".join(chunks))
        return ("answer", st, t_conn) if st is not None else ("error", None, t_conn)
    finally:
        s.close()


def one_run(args, u, request, log):
    host, port = u.hostname, u.port
    addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    poll = args.poll_ms / 1e3
    deadline = time.monotonic() + 10
    while port_open(host, port):
        if time.monotonic() > deadline:
            raise SystemExit("coldstart: port %d still in use" % port)
        time.sleep(0.05)
    seen, non200, first, accept = set(), 0, None, None
    t0 = time.monotonic()
    p = subprocess.Popen(args.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    limit = t0 + args.limit
    try:
        while time.monotonic() < limit:
            if p.poll() is not None:
                break
            what, st, t_conn = post_once(addr, request, limit)
            if t_conn is not None and accept is None:
                accept = t_conn - t0
            if what == "answer" and st == 200:
                first = time.monotonic() - t0
                break
            if what == "answer":
                non200 += 1
            time.sleep(poll)
    finally:
        for d in descendants(p.pid):
            seen.add(d)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for pid, start in seen:
            if same_proc(pid, start):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
    ms = lambda x: None if x is None else round(x * 1e3, 2)
    return ms(first), ms(accept), non200, p.returncode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--limit", type=float, default=60)
    ap.add_argument("--poll-ms", type=float, default=1.0)
    ap.add_argument("--content-type", default="application/json")
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    # SIGTERM (timeout(1), run.sh stopping) must still stop what we started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.cmd and args.cmd[0] == "--":
        args.cmd = args.cmd[1:]
    if not args.cmd:
        ap.error("no command")
    u = urllib.parse.urlparse(args.url)
    with open(args.body, "rb") as f:
        body = f.read()
    hostport = u.netloc.encode()
    request = (b"POST " + (u.path or "/").encode() + b" HTTP/1.1\r\nHost: " + hostport +
               b"\r\nContent-Type: " + args.content_type.encode() +
               b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    runs, accepts, non200, rcs = [], [], [], []
    with open(args.log, "ab") as log:
        for i in range(args.runs):
            log.write(("--- coldstart %s run %d\n" % (args.name, i + 1)).encode())
            log.flush()
            ms, acc, n, rc = one_run(args, u, request, log)
            runs.append(ms)
            accepts.append(acc)
            non200.append(n)
            rcs.append(rc)
    load_ms = []
    try:
        with open(args.log, errors="replace") as f:
            for line in f:
                if '"event":"ready"' in line:
                    m = re.search(r'"load_ms":([0-9.]+)', line)
                    if m:
                        load_ms.append(float(m.group(1)))
    except OSError:
        pass
    ok = [r for r in runs if r is not None]
    acc_ok = [a for a in accepts if a is not None]
    out = {"name": args.name, "runs_ms": runs, "median_ms": statistics.median(ok) if ok else None,
           "accept_ms": accepts, "accept_median_ms": statistics.median(acc_ok) if acc_ok else None,
           "failed_runs": len(runs) - len(ok), "non200_before_first_200": non200, "exit_codes": rcs,
           "poll_ms": args.poll_ms,
           "measures": "t0 = just before the command is started (its fork+exec included); "
                       "accept = first successful TCP connect; first = end of the first 200 answer"}
    if load_ms:
        out["worker_load_ms"] = load_ms
        out["worker_load_median_ms"] = statistics.median(load_ms)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
