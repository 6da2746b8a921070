#!/bin/bash
# test_badreq.sh: hostile and broken requests end to end through nginx, and
# the hardened defaults. Every bad request gets its status and a JSON error
# body ({"error": {"code", "message"}}) and leaves the same workers alive
# and serving: bodies over the cap, headers and URIs over 8 KB, a body
# shorter than its Content-Length (dropped at client_body_timeout, never
# reaching a worker), 300 slowloris connections (all closed at
# client_header_timeout while a normal request answers at once), malformed
# JSON and CSV, wrong feature count, empty batch, batch over max_rows,
# content types, methods, paths; the one choice for NaN and infinities; the
# worker's own checks of CONTENT_LENGTH over FastCGI. Then the hardening:
# socket mode and owners, a third user refused, nobody running as root,
# worker limits (open files, core dumps), only the needed FastCGI params.
# Server: tools/nginfer-serve, 2 workers, NGINFER_CLIENT_TIMEOUT=1s.
# Run by tests/run.sh (e2e suite) or alone: BUILD=build bash tests/e2e/test_badreq.sh

. "$(dirname "$0")/lib.sh"
e2e_bound 150 "$0" "$@"

model=$E2E_ROOT/models/default.onnx
port=$(free_port 100) || { fail badreq/port "no free port"; exit 1; }
# shellcheck disable=SC2034
base=http://127.0.0.1:$port # read by lib.sh
run_dir=$e2e_tmp/run
tool=$e2e_tmp/tool.py
am_root=0
[ "$(id -u)" -eq 0 ] && am_root=1

# --- helpers (python3 standard library) ----------------------------------------------
# tool.py raw PORT REQFILE BODYOUT [WAIT]: sends REQFILE's bytes as they are,
#   reads until the server closes (WAIT s at most); prints "STATUS SECONDS"
#   (000 when the server closed without answering) and writes the body.
# tool.py fcgi SOCKET BODY CONTENT_LENGTH OUT: one FastCGI request straight
#   to the worker socket (POST /invocations, JSON); prints the Status.
# tool.py slowloris PORT N TIMEOUT: N connections trickling a request head
#   one byte every 0.2 s, and one normal GET /ping after 0.5 s; prints
#   "closed C last_close S normal STATUS normal_s S".
# tool.py connect SOCKET: connects to a unix socket; prints "ok" or the
#   errno name.
# tool.py stub OUT: a FastCGI app on fd 0 (as spawn-fcgi hands it) that
#   appends each request's params to OUT as one JSON line and answers 200.
cat >"$tool" <<'EOF'
import errno, json, os, select, socket, struct, sys, threading, time, http.client

def recv_all(s, wait):
    out, end = b"", time.time() + wait
    s.settimeout(0.2)
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not d:
            break
        out += d
    return out

def cmd_raw(port, reqfile, bodyout, wait="5"):
    s = socket.create_connection(("127.0.0.1", int(port)))
    t0 = time.time()
    try:
        s.sendall(open(reqfile, "rb").read())
    except OSError:
        pass
    out = recv_all(s, float(wait))
    dt = time.time() - t0
    head, _, body = out.partition(b"\r\n\r\n")
    code = head.split(b" ")[1].decode() if head.startswith(b"HTTP/") else "000"
    open(bodyout, "wb").write(body)
    print(code, "%.3f" % dt)

def rec(t, rid, content):
    return struct.pack(">BBHHBB", 1, t, rid, len(content), 0, 0) + content

def nv(k, v):
    k, v = k.encode(), v.encode()
    l = lambda n: bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return l(len(k)) + l(len(v)) + k + v

def cmd_fcgi(sock, body, clen, out):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    params = b"".join(nv(k, v) for k, v in [("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", "/invocations"),
        ("CONTENT_TYPE", "application/json"), ("CONTENT_LENGTH", clen)])
    b = body.encode()
    s.sendall(rec(1, 1, struct.pack(">HB5x", 1, 0)) + rec(4, 1, params) + rec(4, 1, b"")
              + (rec(5, 1, b) if b else b"") + rec(5, 1, b""))
    data, stdout = recv_all(s, 5), b""
    while len(data) >= 8:
        _, t, _, cl, pl, _ = struct.unpack(">BBHHBB", data[:8])
        if t == 6:
            stdout += data[8:8 + cl]
        data = data[8 + cl + pl:]
    head, _, resp = stdout.partition(b"\r\n\r\n")
    open(out, "wb").write(resp)
    st = [l for l in head.split(b"\r\n") if l.lower().startswith(b"status:")]
    print(st[0].split()[1].decode() if st else "000")

def cmd_slowloris(port, n, timeout):
    n, port, timeout = int(n), int(port), float(timeout)
    socks, closed, t0 = [], {}, time.time()
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
    head = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    normal = {}
    def one():
        t = time.time()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/ping")
            normal["status"] = c.getresponse().status
        except Exception as e:
            normal["status"] = repr(e)
        normal["s"] = time.time() - t
    th = threading.Timer(0.5, one)
    th.start()
    i = 0
    while len(closed) < n and time.time() - t0 < timeout + 5:
        for k, s in enumerate(socks):
            if k in closed:
                continue
            try:
                s.send(head[i:i + 1] if i < len(head) else b"a")
            except OSError:
                closed[k] = time.time() - t0
                continue
            try:
                if s.recv(4096) == b"":
                    closed[k] = time.time() - t0
            except BlockingIOError:
                pass
            except OSError:
                closed[k] = time.time() - t0
        i += 1
        time.sleep(0.2)
    th.join()
    for s in socks:
        s.close()
    print("closed", len(closed), "last_close", "%.2f" % max(closed.values() or [0]),
          "normal", normal.get("status"), "normal_s", "%.3f" % normal.get("s", -1))

def cmd_connect(sock):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sock)
        print("ok")
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)))

def cmd_stub(out):
    ls = socket.socket(fileno=0)
    while True:
        c, _ = ls.accept()
        buf, params, rid = b"", b"", 1
        while True:
            while len(buf) < 8:
                d = c.recv(65536)
                if not d:
                    break
                buf += d
            if len(buf) < 8:
                break
            _, t, rid, cl, pl, _ = struct.unpack(">BBHHBB", buf[:8])
            while len(buf) < 8 + cl + pl:
                buf += c.recv(65536)
            content, buf = buf[8:8 + cl], buf[8 + cl + pl:]
            if t == 4:
                params += content
            if t == 5 and cl == 0:
                break
        env, i = {}, 0
        def ln(i):
            return (params[i], i + 1) if params[i] < 128 else (struct.unpack(">I", params[i:i + 4])[0] & 0x7fffffff, i + 4)
        while i < len(params):
            kl, i = ln(i)
            vl, i = ln(i)
            env[params[i:i + kl].decode()] = params[i + kl:i + kl + vl].decode("latin-1")
            i += kl + vl
        with open(out, "a") as f:
            f.write(json.dumps(env) + "\n")
        body = b"Status: 200 OK\r\nContent-Type: application/json\r\n\r\n{\"status\":\"ok\"}"
        c.sendall(rec(6, rid, body) + rec(6, rid, b"") + rec(3, rid, struct.pack(">IB3x", 0, 0)))
        c.close()

globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
EOF

# --- request bodies -------------------------------------------------------------------
"$E2E_PY" - "$e2e_tmp" <<'EOF'
import json, os, sys
d = sys.argv[1]
row = [0.038076, 0.05068, 0.061696, 0.021872, -0.044223, -0.034821, -0.043401, -0.0025923, 0.019907, -0.017646]
rs = ", ".join(repr(x) for x in row)
def w(name, s):
    with open(os.path.join(d, name), "wb") as f:
        f.write(s if isinstance(s, bytes) else s.encode())
w("good.json", json.dumps({"instances": [row]}))
w("trunc.json", '{"instances": [[%s' % rs)
w("trailing.json", '{"instances": [[%s]]} xyz' % rs)
w("deep.json", "[" * 10000 + "]" * 10000)
w("deep_obj.json", '{"instances": ' + "[" * 10000 + "]" * 10000 + "}")
w("utf8.json", b'{"instances": [[%s]], "note": "\xff\xfe"}' % rs.encode())
w("dup_good_last.json", '{"instances": [[1, 2, 3]], "instances": [[%s]]}' % rs)
w("dup_bad_last.json", '{"instances": [[%s]], "instances": [[1, 2, 3]]}' % rs)
w("string_feature.json", '{"instances": [[%s, "x"]]}' % ", ".join(repr(x) for x in row[:9]))
w("nine.json", json.dumps({"instances": [row[:9]]}))
w("ragged.json", json.dumps({"instances": [row, row[:3]]}))
w("empty_batch.json", '{"instances": []}')
w("no_key.json", '{"foo": 1}')
w("ragged.csv", ",".join(map(repr, row)) + "\n1,2,3\n")
w("nonnum.csv", ",".join(map(repr, row[:4])) + ",abc," + ",".join(map(repr, row[5:])) + "\n")
w("nul.csv", (",".join(map(repr, row[:2])) + "\0," + ",".join(map(repr, row[2:])) + "\n").encode())
w("empty.csv", "")
w("over_rows.csv", "0,0,0,0,0,0,0,0,0,0\n" * 100001)
w("big.json", b"[" + b"0," * (7 * 1024 * 1024 // 2) + b"0]")
# NaN and infinities: feature 3 (0-based 2) of the default forest splits
# both ways, so +inf, -inf and NaN give different answers where they differ.
def one(v):
    r = [repr(x) for x in row]; r[2] = v
    return "[" + ", ".join(r) + "]"
vals = ["null", "NaN", "1e400", "Infinity", "3e38", "1e39", "-1e400", "-Infinity", "-3e38"]
w("nonfinite.json", '{"instances": [%s]}' % ", ".join(one(v) for v in vals))
def csv(v):
    r = [repr(x) for x in row]; r[2] = v
    return ",".join(r) + "\n"
w("nonfinite.csv", "".join(csv(v) for v in ["", "nan", "1e400", "inf", "3e38", "-1e400", "-inf"]))
EOF
json=(-H 'Content-Type: application/json')
csv=(-H 'Content-Type: text/csv')

# --- start -----------------------------------------------------------------------------
export NGINFER_CLIENT_TIMEOUT=1s
if ! serve_start badreq -c "$E2E_CONFIG" -b "$E2E_BIN" -m "$model" -p "$port" -w 2 -r "$run_dir"; then
    fail badreq/start "$why"
    tail_log 15
    exit 1
fi
unset NGINFER_CLIENT_TIMEOUT
pass badreq/start
workers() { pgrep -P "$mw_pid" | sort -n | tr '\n' ' '; }
workers0=$(workers)
served() { grep -c '"route":"/invocations"' "$serve_log"; }

# row NAME STATUS CODE METHOD PATH [CURL ARGS...]: one row of the table: the
# answer has STATUS and a JSON error with CODE, and the workers that were
# there at the start are all still there.
row() {
    local name=$1 st=$2 ec=$3
    shift 3
    req "$@"
    t "badreq/$name" row_check "$st" "$ec"
}
row_check() {
    expect_error "$1" "d['error']['code'] == '$2'" || return 1
    [ "$(workers)" = "$workers0" ] || { why="workers changed: $workers0-> $(workers)"; return 1; }
}
# raw NAME REQUEST-BYTES: sends them as they are; sets code, body, secs.
raw() {
    local out
    printf '%b' "$2" >"$e2e_tmp/$1.req"
    out=$("$E2E_PY" "$tool" raw "$port" "$e2e_tmp/$1.req" "$body" "${3:-5}")
    code=${out%% *} secs=${out#* }
}
raw_row() { # NAME STATUS CODE REQUEST-BYTES
    raw "$1" "$4"
    t "badreq/$1" row_check "$2" "$3"
}

# --- nginx's limits ------------------------------------------------------------------
row body-over-cap 413 payload_too_large POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/big.json"
row body-over-cap-chunked 413 payload_too_large POST /invocations "${json[@]}" -H 'Transfer-Encoding: chunked' \
    --data-binary "@$e2e_tmp/big.json"
long=$(head -c 9000 /dev/zero | tr '\0' a)
raw_row header-over-8k 400 bad_request "GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: $long\r\nConnection: close\r\n\r\n"
raw_row headers-over-32k 400 bad_request \
    "GET /ping HTTP/1.1\r\nHost: x\r\n$(for i in 1 2 3 4 5; do printf 'X-H%d: %s\\r\\n' "$i" "${long:0:7000}"; done)Connection: close\r\n\r\n"
raw_row uri-over-8k 414 uri_too_long "GET /invocations?$long HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
raw_row bad-request-line 400 bad_request "GARBAGE\r\n\r\n"
raw_row no-host-header 400 bad_request "GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n"
raw_row http-2.0-plaintext 505 http_version_not_supported "GET /ping HTTP/2.0\r\nHost: x\r\n\r\n"
raw_row trace 405 method_not_allowed "TRACE /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
raw_row bad-chunked-body 400 bad_request \
    "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
req GET /.nginfer/400
t badreq/internal-error-page-is-404 row_check 404 not_found

# A body shorter than its Content-Length: nginx waits client_body_timeout
# (1 s here) for the rest, then closes without an answer (408); no worker
# sees it.
short_body() {
    local n0
    n0=$(served)
    raw short-body "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"instances\": [[0.1" 6
    case $code in 000 | 408) ;; *) why="HTTP $code, want the connection closed (or 408)"; return 1 ;; esac
    awk -v s="$secs" 'BEGIN { exit !(s >= 0.8 && s <= 3) }' || { why="closed after $secs s, want about 1 s (client_body_timeout)"; return 1; }
    sleep 0.2
    [ "$(served)" -eq "$n0" ] || { why="a worker logged /invocations for it"; return 1; }
    note "body shorter than Content-Length: closed after $secs s (client_body_timeout 1s), answer ${code/000/none}"
}
t badreq/content-length-over-body short_body

# Slowloris: 300 connections trickling a request head; all closed at
# client_header_timeout (1 s) however slowly they send, while a normal
# request is answered at once.
slowloris() {
    local out c last st ns
    out=$("$E2E_PY" "$tool" slowloris "$port" 300 1)
    read -r _ c _ last _ st _ ns <<<"$out"
    [ "$c" = 300 ] || { why="$out: not all 300 closed"; return 1; }
    awk -v s="$last" 'BEGIN { exit !(s <= 3) }' || { why="$out: last closed after $last s, want about 1 s"; return 1; }
    [ "$st" = 200 ] || { why="$out: the normal /ping got $st"; return 1; }
    awk -v s="$ns" 'BEGIN { exit !(s < 0.5) }' || { why="$out: the normal /ping took $ns s"; return 1; }
    note "slowloris: 300 trickling connections, all closed by $last s (client_header_timeout 1s); /ping meanwhile: $st in $ns s"
}
t badreq/slowloris-300 slowloris
req GET /ping
t badreq/ping-after-slowloris expect 200

# --- the worker's checks -----------------------------------------------------------------
row json/truncated 400 bad_request POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/trunc.json"
t badreq/json/truncated-says-where py 're.search(r"line 1, column \d+", msg(d))'
row json/trailing-garbage 400 bad_request POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/trailing.json"
row json/nesting-10000 400 bad_request POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/deep.json"
row json/nesting-10000-in-object 400 bad_request POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/deep_obj.json"
row json/invalid-utf8 400 bad_request POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/utf8.json"
row json/string-feature 422 invalid_input POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/string_feature.json"
row json/no-instances-key 422 invalid_input POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/no_key.json"
# Duplicate keys: the last one wins (json-c), both ways round.
req POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/dup_good_last.json"
t badreq/json/duplicate-keys-last-wins expect 200 'len(d["predictions"]) == 1'
row json/duplicate-keys-last-wins-bad 422 invalid_input POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/dup_bad_last.json"

row csv/ragged-rows 422 invalid_input POST /invocations "${csv[@]}" --data-binary "@$e2e_tmp/ragged.csv"
t badreq/csv/ragged-rows-says-which py '"row 2" in msg(d)'
row csv/empty-body 400 bad_request POST /invocations "${csv[@]}" --data-binary "@$e2e_tmp/empty.csv"
row csv/non-numeric 400 bad_request POST /invocations "${csv[@]}" --data-binary "@$e2e_tmp/nonnum.csv"
t badreq/csv/non-numeric-says-where py '"row 1, field 5" in msg(d)'
row csv/embedded-nul 400 bad_request POST /invocations "${csv[@]}" --data-binary "@$e2e_tmp/nul.csv"

row wrong-feature-count 422 invalid_input POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/nine.json"
row ragged-batch 422 invalid_input POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/ragged.json"
row empty-batch 422 invalid_input POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/empty_batch.json"
row empty-json-body 400 bad_request POST /invocations "${json[@]}" --data-binary ''
row batch-over-max-rows 413 payload_too_large POST /invocations "${csv[@]}" --data-binary "@$e2e_tmp/over_rows.csv"
row content-type-xml 415 unsupported_media_type POST /invocations -H 'Content-Type: application/xml' \
    --data-binary "@$e2e_tmp/good.json"
row content-type-text-plain 415 unsupported_media_type POST /invocations -H 'Content-Type: text/plain' \
    --data-binary "@$e2e_tmp/good.json"
# A missing Content-Type means JSON (README, HTTP API).
req POST /invocations -H 'Content-Type:' --data-binary "@$e2e_tmp/good.json"
t badreq/content-type-missing-is-json expect 200 'len(d["predictions"]) == 1'
row accept-xml 406 not_acceptable POST /invocations "${json[@]}" -H 'Accept: application/xml' \
    --data-binary "@$e2e_tmp/good.json"
row method-get-invocations 405 method_not_allowed GET /invocations
row method-delete-invocations 405 method_not_allowed DELETE /invocations
row method-post-ping 405 method_not_allowed POST /ping --data-binary x
row unknown-path 404 not_found GET /no/such/path
row unknown-path-post 404 not_found POST /v1/models/x:predict "${json[@]}" --data-binary "@$e2e_tmp/good.json"

# --- NaN and infinities: one rule ------------------------------------------------------
# null (JSON) and an empty field (CSV) are NaN, the missing value; the
# literals NaN/Infinity (JSON), nan/inf (CSV) are read as such; a number
# beyond float32 (1e39, 1e400) is +-Infinity, sign kept. All reach the model.
# Rows: null NaN 1e400 Infinity 3e38 1e39 -1e400 -Infinity -3e38.
req POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/nonfinite.json"
t badreq/nonfinite/json expect 200 'all(num(x) for x in preds(d)) and len(set(preds(d)[0:2])) == 1 and len(set(preds(d)[2:6])) == 1 and len(set(preds(d)[6:9])) == 1 and preds(d)[2] != preds(d)[6]'
want=$("$E2E_PY" -c 'import json, sys
p = [x[0] if isinstance(x, list) else x for x in json.load(open(sys.argv[1]))["predictions"]]
print([p[i] for i in (0, 1, 2, 3, 4, 6, 7)])' "$body" 2>/dev/null) || want=None
# Rows: "" nan 1e400 inf 3e38 -1e400 -inf; the same answers as JSON's.
req POST /invocations "${csv[@]}" --data-binary "@$e2e_tmp/nonfinite.csv"
t badreq/nonfinite/csv-same-as-json expect 200 "preds(d) == $want"

# --- the worker's own checks, straight over FastCGI ---------------------------------------
# nginx always sends a whole body; the worker still checks CONTENT_LENGTH
# against the bytes it read, and the cap against CONTENT_LENGTH.
fcgi_row() { # NAME BODY CONTENT_LENGTH STATUS CODE
    code=$("$E2E_PY" "$tool" fcgi "$run_dir/worker.sock" "$2" "$3" "$body")
    t "badreq/worker/$1" row_check "$4" "$5"
}
fcgi_row content-length-over-body '{"instances": [[0.1]]}' 100 400 bad_request
fcgi_row content-length-under-body '{"instances": [[0.1]]}' 5 400 bad_request
fcgi_row content-length-over-cap '{"instances": [[0.1]]}' 7000000 413 payload_too_large
good=$(cat "$e2e_tmp/good.json")
code=$("$E2E_PY" "$tool" fcgi "$run_dir/worker.sock" "$good" "${#good}" "$body")
t badreq/worker/fcgi-direct-good expect 200 'len(d["predictions"]) == 1'

# --- still serving ------------------------------------------------------------------------
req POST /invocations "${json[@]}" --data-binary "@$e2e_tmp/good.json"
t badreq/serving-after expect 200 'len(d["predictions"]) == 1'
[ "$(workers)" = "$workers0" ] && pass badreq/no-worker-died ||
    fail badreq/no-worker-died "workers $workers0 at the start, $(workers) now"

# --- hardening ------------------------------------------------------------------------------
sock=$run_dir/worker.sock
perm=$(stat -c %a "$run_dir")
[ $((8#$perm & 8#022)) -eq 0 ] && pass harden/run-dir-not-writable-by-others ||
    fail harden/run-dir-not-writable-by-others "$run_dir mode $perm"
nginx_kid=$(pgrep -P "$nginx_pid" | head -1)
uid_of() { awk '/^Uid:/ { print $2 }' "/proc/$1/status"; }
gid_of() { awk '/^Gid:/ { print $2 }' "/proc/$1/status"; }
if [ $am_root -eq 1 ]; then
    w1=${workers0%% *}
    [ "$(stat -c %a "$sock")" = 660 ] && pass harden/socket-mode-0660 ||
        fail harden/socket-mode-0660 "$(stat -c '%a %U:%G' "$sock")"
    [ "$(stat -c %u "$sock")" = "$(uid_of "$w1")" ] && [ "$(stat -c %g "$sock")" = "$(gid_of "$nginx_kid")" ] &&
        pass harden/socket-owner-worker-group-nginx ||
        fail harden/socket-owner-worker-group-nginx "socket $(stat -c '%U:%G' "$sock"), worker uid $(uid_of "$w1"), nginx worker gid $(gid_of "$nginx_kid")"
    ok=1
    for p in $workers0 $mw_pid; do [ "$(uid_of "$p")" -ne 0 ] || ok=0; done
    [ $ok -eq 1 ] && pass harden/workers-not-root ||
        fail harden/workers-not-root "$(ps -o pid=,user=,comm= -p "${workers0// /,}$mw_pid" | tr '\n' ' ')"
    ok=1
    for p in $(pgrep -P "$nginx_pid"); do [ "$(uid_of "$p")" -ne 0 ] || ok=0; done
    [ $ok -eq 1 ] && [ -n "$nginx_kid" ] && pass harden/nginx-workers-not-root ||
        fail harden/nginx-workers-not-root "$(ps -o pid=,user=,comm= --ppid "$nginx_pid" | tr '\n' ' ')"
    # A third user (daemon: neither the workers' user nor in their group).
    third=daemon
    if id "$third" >/dev/null 2>&1; then
        got=$(setpriv --reuid="$third" --regid="$(id -g "$third")" --clear-groups "$E2E_PY" "$tool" connect "$sock" 2>&1)
        [ "$got" = EACCES ] && pass harden/third-user-refused ||
            fail harden/third-user-refused "user $third connecting to $sock: $got (want EACCES)"
    else
        skip harden/third-user-refused "no user $third"
    fi
else
    [ "$(stat -c %a "$sock")" = 600 ] && pass harden/socket-mode-0600-unprivileged ||
        fail harden/socket-mode-0600-unprivileged "$(stat -c '%a %U:%G' "$sock")"
    skip harden/users "not root: everything runs as $(id -un)"
fi
limits_ok() {
    local p n c
    for p in $workers0; do
        n=$(awk '/^Max open files/ { print $4 }' "/proc/$p/limits")
        c=$(awk '/^Max core file size/ { print $5 }' "/proc/$p/limits")
        [ "$n" != unlimited ] && [ "$n" -le 1024 ] || { why="worker $p: open files soft limit $n (want <= 1024, libfcgi's select)"; return 1; }
        [ "$c" = 0 ] || { why="worker $p: core file size $c (want 0)"; return 1; }
    done
    c=$(awk '/^Max core file size/ { print $5 }' "/proc/$nginx_pid/limits")
    [ "$c" = 0 ] || { why="nginx: core file size $c (want 0)"; return 1; }
}
t harden/worker-limits limits_ok
t harden/stop serve_stop_check "$serve_pid" "$run_dir"

# Only the FastCGI params the worker needs: a stand-in worker (tool.py stub)
# records what nginx sends for a request carrying Proxy, Cookie and
# Authorization headers.
stub_bin=$e2e_tmp/stubbin
mkdir -p "$stub_bin"
params=$e2e_tmp/params.jsonl
: >"$params"
chmod 0666 "$params"
cat >"$stub_bin/nginfer-worker" <<EOF
#!/bin/sh
for a in "\$@"; do
    case \$a in --check|--get) exec "$E2E_BIN/nginfer-worker" "\$@" ;; esac
done
exec "$E2E_PY" "$tool" stub "$params"
EOF
chmod 0755 "$stub_bin/nginfer-worker"
if serve_start stub -c "$E2E_CONFIG" -b "$stub_bin" -m "$model" -p "$port" -w 1 -r "$e2e_tmp/run-stub"; then
    : >"$params"
    req POST /invocations "${json[@]}" -H 'Proxy: http://evil.example:1' -H 'Cookie: secret=1' \
        -H 'Authorization: Bearer x' -H 'Accept: text/csv' -H 'X-Amzn-SageMaker-Custom-Attributes: a=1' \
        --data-binary "@$e2e_tmp/good.json"
    params_check() {
        local got
        got=$("$E2E_PY" - "$params" <<'EOF'
import json, sys
env = json.loads(open(sys.argv[1]).readlines()[-1])
want = {"REQUEST_METHOD", "CONTENT_TYPE", "CONTENT_LENGTH", "SCRIPT_NAME", "DOCUMENT_URI", "HTTP_ACCEPT",
        "HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES", "HTTP_PROXY"}
bad = sorted(set(env) - want)
if bad: print("unexpected params: %s" % bad)
elif env.get("HTTP_PROXY", "") != "": print("HTTP_PROXY=%r" % env["HTTP_PROXY"])
elif env.get("HTTP_ACCEPT") != "text/csv" or env.get("HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES") != "a=1":
    print("headers the worker reads are missing: %s" % env)
else: print("ok " + " ".join(sorted(env)))
EOF
        )
        [ "${got%% *}" = ok ] || { why="HTTP $code: $got"; return 1; }
        note "FastCGI params sent: ${got#ok }"
    }
    t harden/fastcgi-params-only-needed params_check
    t harden/stub-stop serve_stop_check "$serve_pid" "$e2e_tmp/run-stub"
else
    fail harden/fastcgi-params-only-needed "stand-in worker: $why"
fi

echo "# e2e badreq: $e2e_passed passed, $e2e_failed failed"
[ "$e2e_failed" -eq 0 ]
