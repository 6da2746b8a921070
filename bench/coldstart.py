#!/usr/bin/python3
"""coldstart.py -- time from starting a server to its first 200 on POST.

    coldstart.py --name NAME --url http://127.0.0.1:PORT/invocations \
        --body FILE [--runs 5] [--limit 60] [--log FILE] -- CMD [ARG...]

Each run: note the time, start CMD (its own session; stdout and stderr to
--log), POST the body every ~2 ms (a fresh connection each time, 2 s
timeout) until an answer is 200, note the time. Then stop CMD with SIGTERM
(the servers used here stop their own children on TERM); whatever it
started that is still alive 20 s later gets SIGKILL (only pids recorded as
its descendants while it ran). Waits for the port to be free before the
next run. Prints one JSON object: runs_ms, median_ms, answers that were
not 200 before the first 200 (per run), and, if the log has nginfer's
"ready" lines, the workers' load_ms.
"""

import argparse
import http.client
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


def one_run(args, u, body, log):
    host, port = u.hostname, u.port
    deadline = time.monotonic() + 10
    while port_open(host, port):
        if time.monotonic() > deadline:
            raise SystemExit("coldstart: port %d still in use" % port)
        time.sleep(0.05)
    t0 = time.monotonic()
    p = subprocess.Popen(args.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    seen, non200, first = set(), 0, None
    limit = t0 + args.limit
    try:
        while time.monotonic() < limit:
            if p.poll() is not None:
                break
            try:
                c = http.client.HTTPConnection(host, port, timeout=2)
                c.request("POST", u.path or "/", body, {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    first = time.monotonic() - t0
                    break
                non200 += 1
            except (OSError, http.client.HTTPException):
                pass
            if len(seen) < 64:
                for d in descendants(p.pid):
                    seen.add(d)
            time.sleep(0.002)
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
    return (None if first is None else first * 1e3), non200, p.returncode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--limit", type=float, default=60)
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
    runs, non200, rcs = [], [], []
    with open(args.log, "ab") as log:
        for i in range(args.runs):
            log.write(("--- coldstart %s run %d\n" % (args.name, i + 1)).encode())
            log.flush()
            ms, n, rc = one_run(args, u, body, log)
            runs.append(ms)
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
    out = {"name": args.name, "runs_ms": runs, "median_ms": statistics.median(ok) if ok else None,
           "failed_runs": len(runs) - len(ok), "non200_before_first_200": non200, "exit_codes": rcs}
    if load_ms:
        out["worker_load_ms"] = load_ms
        out["worker_load_median_ms"] = statistics.median(load_ms)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
