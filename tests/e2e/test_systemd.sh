#!/bin/bash
# test_systemd.sh: conf/systemd/ (nginfer.service, install.sh), the plain
# host (EC2) deployment.
#
# Always, when systemd-analyze is there (Debian package systemd; else one
# SKIP line saying so): install.sh stages the layout in a scratch root
# (-d), then `systemd-analyze verify --root` on the unit (an unknown key or
# a bad value, which verify only warns about, fails too; a broken copy of
# the unit must fail the same check), and `systemd-analyze security
# --offline` gives the unit's exposure score (at most 2.0 of 10).
#
# With NGINFER_TEST_CONTAINER=1 or CI=true (else SKIP): the unit under a
# real systemd, PID 1 of a podman container (`podman --runtime runc run
# --systemd=always`, image localhost/nginfer-systemd-test:bookworm: the
# base of docker/mkbase.sh plus Debian's systemd, nginx-light, spawn-fcgi,
# multiwatch, procps, curl and the worker's libraries; built once, kept):
# install.sh with the worker from $BUILD, NGINFER_CONFIG (a copy listening
# on 0.0.0.0), NGINFER_PORT and NGINFER_WORKERS from /etc/default/nginfer, `systemctl start` to the first /ping 200 (the
# "# systemd:" line), a prediction, the sandbox in force (not root, no
# capabilities, no_new_privs, seccomp), the pool killed: Restart=on-failure
# serves again, `systemctl stop` with a slow upload in flight: it gets its
# 200 and the service ends with success. The container is removed by id.
# Env: NGINFER_TEST_CONTAINER=1, NGINFER_SYSTEMD_IMAGE, E2E_KEEP=1.
# Run by tests/run.sh (e2e suite) or alone: BUILD=build bash tests/e2e/test_systemd.sh

. "$(dirname "$0")/lib.sh"
e2e_bound 590 "$0" "$@"

unit=$E2E_ROOT/conf/systemd/nginfer.service
install_sh=$E2E_ROOT/conf/systemd/install.sh
image=${NGINFER_SYSTEMD_IMAGE:-localhost/nginfer-systemd-test:bookworm}
row='0.038076,0.05068,0.061696,0.021872,-0.044223,-0.034821,-0.043401,-0.0025923,0.019907,-0.017646'

summary() {
    echo "# e2e systemd: $e2e_passed passed, $e2e_failed failed"
    [ "$e2e_failed" -eq 0 ]
}

[ -f "$unit" ] || { fail systemd/unit "$unit: missing"; summary; exit; }
[ -x "$E2E_BIN/nginfer-worker" ] || { fail systemd/worker "$E2E_BIN/nginfer-worker: not built (make)"; summary; exit; }

# --- install.sh -d, systemd-analyze ----------------------------------------------------

stage=$e2e_tmp/stage
if out=$(bash "$install_sh" -b "$E2E_BIN" -d "$stage" 2>&1) &&
    [ -x "$stage/opt/nginfer/bin/nginfer-worker" ] && [ -x "$stage/opt/nginfer/tools/nginfer-serve" ] &&
    [ -f "$stage/opt/nginfer/conf/nginfer.cfg" ] && [ -f "$stage/opt/nginfer/models/default.onnx" ] &&
    [ -f "$stage/opt/nginfer/nginx/nginfer.conf.in" ] && [ -f "$stage/etc/systemd/system/nginfer.service" ] &&
    [ -f "$stage/etc/default/nginfer" ]; then
    pass systemd/install-staged
else
    fail systemd/install-staged "$(echo "$out" | tail -3 | tr '\n' ' '); files: $(cd "$stage" 2>/dev/null && find . -type f | tr '\n' ' ')"
fi

# verify_unit NAME: `systemd-analyze verify` of the staged unit NAME; 0 when
# it exits 0 and says nothing about NAME (verify only warns about unknown
# keys and bad values, and still exits 0).
verify_unit() {
    local out rc
    out=$(cd "$stage" && systemd-analyze verify --root="$stage" "$1" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || grep -q "${1%.service}" <<<"$out"; then
        why="exit $rc: $(grep "${1%.service}\|rror" <<<"$out" | head -4 | tr '\n' ' ')"
        return 1
    fi
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
    skip systemd/verify "systemd-analyze is not installed (Debian package systemd)"
    skip systemd/security "systemd-analyze is not installed (Debian package systemd)"
else
    # The units the service's dependencies name (sysinit.target, ...).
    units=/usr/lib/systemd/system
    [ -d "$units" ] || units=/lib/systemd/system
    mkdir -p "$stage/usr/lib/systemd"
    cp -a "$units" "$stage/usr/lib/systemd/system"
    t systemd/verify verify_unit nginfer.service
    # The check can fail: a copy with a misspelt key and a bad value.
    sed -e 's/^ProtectSystem=/ProtectSystm=/' -e 's/^Restart=on-failure/Restart=onfailure/' \
        "$stage/etc/systemd/system/nginfer.service" >"$stage/etc/systemd/system/nginfer-broken.service"
    if verify_unit nginfer-broken.service; then
        fail systemd/verify-catches-typos "a unit with ProtectSystm= and Restart=onfailure passed"
    else
        pass systemd/verify-catches-typos
    fi
    rm -f "$stage/etc/systemd/system/nginfer-broken.service"
    sec=$(cd "$stage" && systemd-analyze security --offline=yes --root="$stage" nginfer.service 2>&1)
    score=$(sed -n 's/.*Overall exposure level for nginfer.service: \([0-9.]*\).*/\1/p' <<<"$sec")
    if [ -n "$score" ]; then
        note "systemd: systemd-analyze security: exposure $score of 10 ($(sed -n 's/.*Overall exposure level for nginfer.service: [0-9.]* \([A-Z]*\).*/\1/p' <<<"$sec"))"
        awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' && pass systemd/security-exposure-at-most-2 ||
            fail systemd/security-exposure-at-most-2 "exposure $score: $(grep '✗' <<<"$sec" | head -5 | tr -s ' ' | tr '\n' ';')"
    else
        fail systemd/security-exposure-at-most-2 "no score from systemd-analyze security: $(tail -3 <<<"$sec" | tr '\n' ' ')"
    fi
fi

# --- the unit under systemd, in a podman container -------------------------------------

if [ "${NGINFER_TEST_CONTAINER:-}" != 1 ] && [ "${CI:-}" != true ]; then
    skip systemd/under-systemd "set NGINFER_TEST_CONTAINER=1 (or CI=true) to run the unit under systemd in a podman container"
    summary
    exit
fi
if e2e_asan; then
    skip systemd/under-systemd "$E2E_BIN/nginfer-worker is a sanitizer build (make SANITIZE=1): the test image has no libasan"
    summary
    exit
fi
if ! command -v podman >/dev/null 2>&1; then
    skip systemd/under-systemd "podman is not installed (tests/e2e/test_container.sh installs it)"
    summary
    exit
fi
e2e_podman systemd/under-systemd || { summary; exit; }

if ! "${pm[@]}" image exists "$image"; then
    t0=$SECONDS
    if ! make -C "$E2E_ROOT" image-base CONTAINER=podman >"$e2e_tmp/base.log" 2>&1; then
        fail systemd/test-image "make image-base: $(tail -3 "$e2e_tmp/base.log" | tr '\n' ' ')"
        summary
        exit
    fi
    mkdir -p "$e2e_tmp/img"
    cat >"$e2e_tmp/img/Containerfile" <<'EOF'
FROM localhost/nginfer-base:bookworm
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        systemd systemd-sysv nginx-light spawn-fcgi multiwatch procps curl \
        libfcgi0ldbl libjson-c5 libconfig9 libprotobuf-c1 libopenblas0-pthread \
 && rm -f /usr/sbin/policy-rc.d && rm -rf /var/lib/apt/lists/* \
 && systemctl disable nginx.service \
 && systemctl mask systemd-logind.service getty.target console-getty.service
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
EOF
    if "${pm[@]}" build "${ulim[@]}" -t "$image" "$e2e_tmp/img" >"$e2e_tmp/img.log" 2>&1; then
        note "systemd: built $image in $((SECONDS - t0)) s"
    else
        fail systemd/test-image "podman build: $(tail -3 "$e2e_tmp/img.log" | tr '\n' ' ')"
        summary
        exit
    fi
fi

cidfile=$e2e_tmp/cid
s_cleanup() {
    [ -s "$cidfile" ] && "${pm[@]}" rm -f "$(cat "$cidfile")" >/dev/null 2>&1
    e2e_cleanup
}
trap s_cleanup EXIT
if ! "${pm[@]}" run -d --cidfile "$cidfile" "${ulim[@]}" --systemd=always \
    -v "$E2E_ROOT:/src:ro" -v "$E2E_BIN:/build:ro" "$image" >"$e2e_tmp/run.log" 2>&1; then
    fail systemd/container "podman run: $(tail -3 "$e2e_tmp/run.log" | tr '\n' ' ')"
    summary
    exit
fi
cid=$(cat "$cidfile")
# sx SCRIPT: bash -c SCRIPT in the container; output in $e2e_tmp/sx.out.
sx() { "${pm[@]}" exec "$cid" bash -c "$1" >"$e2e_tmp/sx.out" 2>&1; }
sx_out() { tail -c 400 "$e2e_tmp/sx.out" | tr '\n' ' '; }

booted() {
    local s
    for _ in $(seq 150); do
        s=$("${pm[@]}" exec "$cid" systemctl is-system-running 2>/dev/null)
        case $s in running | degraded) return 0 ;; esac
        sleep 0.2
    done
    why="systemd in the container is '$s' after 30 s"
    return 1
}
t systemd/boot booted || { summary; exit; }

# As /etc/default/nginfer tells: a configuration in /etc/nginfer that
# listens on all addresses, port and workers from the environment file.
if sx '/src/conf/systemd/install.sh -b /build && mkdir -p /etc/nginfer &&
      sed -e "s|^listen *=.*|listen = \"0.0.0.0:8080\";|" -e "s|^model *=.*|model = \"/opt/nginfer/models/default.onnx\";|" \
          /opt/nginfer/conf/nginfer.cfg >/etc/nginfer/nginfer.cfg &&
      printf "NGINFER_CONFIG=/etc/nginfer/nginfer.cfg\nNGINFER_PORT=8181\nNGINFER_WORKERS=1\n" >>/etc/default/nginfer'; then
    pass systemd/install
else
    fail systemd/install "$(sx_out)"
    summary
    exit
fi

# systemctl start (Type=exec: returns once nginfer-serve runs) to the
# first 200 on /ping, which a worker answers once it has the model.
if sx 't0=$(date +%s%N); systemctl start nginfer || exit 1
      t1=$(date +%s%N)
      for i in $(seq 1500); do
          c=$(curl -s -o /dev/null -w %{http_code} --max-time 1 127.0.0.1:8181/ping)
          [ "$c" = 200 ] && { echo "$(((t1 - t0) / 1000000)) $((($(date +%s%N) - t0) / 1000000))"; exit 0; }
          sleep 0.01
      done
      echo "no 200 in 15 s, last $c"; systemctl status --no-pager nginfer | tail -5; exit 1'; then
    read -r ms_start ms_ping <"$e2e_tmp/sx.out"
    pass systemd/start
    note "systemd: systemctl start returned in $ms_start ms, first /ping 200 at $ms_ping ms"
else
    fail systemd/start "$(sx_out)"
    summary
    exit
fi

sx "curl -s --max-time 5 -H 'Content-Type: text/csv' --data-binary '$row' 127.0.0.1:8181/invocations"
grep -q '^{"predictions":\[[0-9.]*\]' "$e2e_tmp/sx.out" && pass systemd/prediction ||
    fail systemd/prediction "$(sx_out)"

# Everything runs as the service's (dynamic) user, one worker
# (NGINFER_WORKERS=1 from /etc/default/nginfer), in the sandbox.
sandbox() {
    sx 'p=$(systemctl show -p MainPID --value nginfer)
        grep -E "^(Uid|CapEff|NoNewPrivs|Seccomp):" /proc/$p/status
        ps -eo uid=,comm= | awk "\$2 ~ /^(nginfer-serve|multiwatch|nginx|nginfer-worker)\$/ { print \"proc\", \$1, \$2 }"
        cat /proc/$p/mountinfo | awk "\$5 == \"/\" { print \"root \" \$6 }"
        grep -h "^ *listen " /run/nginfer/nginx.conf' || { why="$(sx_out)"; return 1; }
    local o uid
    o=$(cat "$e2e_tmp/sx.out")
    uid=$(awk '$1 == "Uid:" { print $2 }' <<<"$o")
    [ -n "$uid" ] && [ "$uid" != 0 ] || { why="main process uid '$uid'"; return 1; }
    grep -q '^CapEff:[[:space:]]*0000000000000000$' <<<"$o" || { why="capabilities: $(grep CapEff <<<"$o")"; return 1; }
    grep -q '^NoNewPrivs:[[:space:]]*1$' <<<"$o" || { why="no_new_privs not set"; return 1; }
    grep -q '^Seccomp:[[:space:]]*2$' <<<"$o" || { why="no seccomp filter"; return 1; }
    grep -q '^root ro' <<<"$o" || { why="root file system not read-only: $(grep '^root' <<<"$o")"; return 1; }
    [ "$(awk -v u="$uid" '$1 == "proc" && $2 != u' <<<"$o" | wc -l)" -eq 0 ] ||
        { why="processes of another user: $(awk -v u="$uid" '$1 == "proc" && $2 != u' <<<"$o" | tr '\n' ' ')"; return 1; }
    [ "$(awk '$1 == "proc" && $3 == "nginfer-worker"' <<<"$o" | wc -l)" -eq 1 ] ||
        { why="want 1 worker (NGINFER_WORKERS=1): $(awk '$1 == "proc"' <<<"$o" | tr '\n' ' ')"; return 1; }
    grep -q '^ *listen 0.0.0.0:8181[ ;]' <<<"$o" ||
        { why="nginx does not listen on 0.0.0.0:8181 (NGINFER_CONFIG, NGINFER_PORT): $(grep listen <<<"$o")"; return 1; }
    [ "$(awk '$1 == "proc" && $3 == "nginx"' <<<"$o" | wc -l)" -ge 2 ] ||
        { why="nginx master and worker not both running: $(awk '$1 == "proc"' <<<"$o" | tr '\n' ' ')"; return 1; }
}
t systemd/sandbox-and-env-file sandbox

# The pool dies (multiwatch and its workers, as when multiwatch gives up):
# nginfer-serve exits 1, Restart=on-failure starts it again.
if sx 'kill -KILL $(pgrep -x multiwatch) $(pgrep -x nginfer-worker); t0=$(date +%s%N); sleep 0.2
      for i in $(seq 2000); do
          n=$(systemctl show -p NRestarts --value nginfer)
          c=$(curl -s -o /dev/null -w %{http_code} --max-time 1 127.0.0.1:8181/ping)
          [ "$n" -ge 1 ] && [ "$c" = 200 ] && { echo $((($(date +%s%N) - t0) / 1000000)); exit 0; }
          sleep 0.01
      done
      echo "NRestarts $n, /ping $c after 20 s"; exit 1'; then
    pass systemd/restart-on-pool-death
    note "systemd: pool killed -> serving again (Restart=on-failure) in $(cat "$e2e_tmp/sx.out") ms"
else
    fail systemd/restart-on-pool-death "$(sx_out)"
fi

# systemctl stop with a 136 kB upload at 50 kB/s in flight (KillMode=mixed:
# SIGTERM to nginfer-serve alone, which lets nginx finish it).
if sx "{ printf '{\"instances\": ['; for i in \$(seq 1399); do printf '[%s],' '$row'; done; printf '[%s]]}' '$row'; } >/tmp/slow.json
      curl -s -o /tmp/slow.out -w '%{http_code}' --max-time 25 --limit-rate 50k -H 'Content-Type: application/json' \
          --data-binary @/tmp/slow.json 127.0.0.1:8181/invocations >/tmp/slow.code &
      sleep 0.7
      t0=\$(date +%s%N); systemctl stop nginfer; ms=\$(((\$(date +%s%N) - t0) / 1000000))
      wait
      echo \"\$ms \$(cat /tmp/slow.code) \$(systemctl show -p Result --value nginfer) \$(systemctl show -p ExecMainStatus --value nginfer)\"
      grep -q predictions /tmp/slow.out"; then
    read -r ms code result status <"$e2e_tmp/sx.out"
    note "systemd: systemctl stop took $ms ms with a slow upload in flight: HTTP $code, Result=$result, exit $status"
    if [ "$code" = 200 ] && [ "$result" = success ] && [ "$status" = 0 ] && [ "$ms" -ge 1000 ] && [ "$ms" -lt 30000 ]; then
        pass systemd/stop-drains
    else
        fail systemd/stop-drains "stop $ms ms (want 1-30 s: was the upload in flight?), upload HTTP $code, Result=$result, exit $status"
    fi
else
    fail systemd/stop-drains "$(sx_out)"
fi

summary
