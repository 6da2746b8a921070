#!/usr/bin/env bash
# deps.sh run|test|bench: installs the Debian packages a target needs, only
# those missing. apt-get is the only package source (see README).
set -euo pipefail
what=${1:-run}
run_pkgs="gcc make libc6-dev protobuf-c-compiler libprotobuf-c-dev libonnx-dev libfcgi-dev libjson-c-dev libconfig-dev libopenblas-dev spawn-fcgi multiwatch nginx-light curl"
test_pkgs="$run_pkgs libonnx-testdata python3 python3-onnx python3-yaml yamllint valgrind zip wrk clang libclang-rt-14-dev systemd kubernetes-client"
# systemd: systemd-analyze verify (tests/e2e/test_systemd.sh); kubernetes-client:
# kubectl for the offline client dry-run of docker/k8s (tests/e2e/test_k8s.sh)
bench_pkgs="$run_pkgs wrk apache2-utils gunicorn python3-flask python3-sklearn python3-onnx gnuplot-nox nodejs npm"
case "$what" in
run) pkgs=$run_pkgs ;;
test) pkgs=$test_pkgs ;;
bench) pkgs=$bench_pkgs ;;
*) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac
missing=()
for p in $pkgs; do
  # nginx-light or full nginx both provide what we need
  if [ "$p" = nginx-light ] && command -v nginx >/dev/null 2>&1; then continue; fi
  # any kubectl will do (another package may provide it)
  if [ "$p" = kubernetes-client ] && command -v kubectl >/dev/null 2>&1; then continue; fi
  # a Node.js build that ships its own npm conflicts with Debian's npm
  if { [ "$p" = npm ] || [ "$p" = nodejs ]; } && command -v "$p" >/dev/null 2>&1; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "deps: run as root, or install: apt-get install ${missing[*]}" >&2; exit 1; fi
else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
