#!/bin/bash
# conf/systemd/install.sh [-b BUILD_DIR] [-d DESTDIR] [--no-enable]: installs
# nginfer for systemd on this machine (EC2 and the like), as root, after
# `make`:
#   /opt/nginfer/bin/nginfer-worker      from BUILD_DIR (default build/)
#   /opt/nginfer/tools/nginfer-serve, nginx/nginfer.conf.in,
#   /opt/nginfer/conf/nginfer.cfg, models/default.onnx
#                                        from this repository (a changed
#                                        conf/nginfer.cfg already there is
#                                        kept; the new one goes beside it
#                                        as nginfer.cfg.new)
#   /etc/systemd/system/nginfer.service  conf/systemd/nginfer.service
#   /etc/default/nginfer                 conf/systemd/nginfer.default, when
#                                        there is none yet
# then `systemctl daemon-reload` and `systemctl enable nginfer` (start it
# with `systemctl start nginfer`). Needs nginx (nginx-light), spawn-fcgi
# and multiwatch installed (tools/deps.sh run); checks they are there.
#   -d DESTDIR   install under DESTDIR (a staging root): no systemctl,
#                no checks of this machine
#   --no-enable  no systemctl calls
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$repo/build
dest=''
enable=1
die() { echo "install: $*" >&2; exit 1; }
usage() { echo "usage: conf/systemd/install.sh [-b BUILD_DIR] [-d DESTDIR] [--no-enable]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    -b) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
    -d) [ $# -ge 2 ] || usage; dest=$2; enable=0; shift 2 ;;
    --no-enable) enable=0; shift ;;
    *) usage ;;
    esac
done
case $build in /*) ;; *) build=$PWD/$build ;; esac

[ -x "$build/nginfer-worker" ] || die "$build/nginfer-worker: not built (run make, or give -b BUILD_DIR)"
if [ -z "$dest" ]; then
    [ "$(id -u)" -eq 0 ] || die "run as root (or give -d DESTDIR to stage the files)"
    for t in nginx spawn-fcgi multiwatch; do
        PATH=$PATH:/usr/sbin:/sbin command -v "$t" >/dev/null ||
            die "$t is not installed (apt-get install nginx-light spawn-fcgi multiwatch, or tools/deps.sh run)"
    done
    command -v systemctl >/dev/null || [ $enable -eq 0 ] || die "no systemctl: not a systemd machine (use --no-enable)"
fi

opt=$dest/opt/nginfer
install -d -m 0755 "$opt/bin" "$opt/tools" "$opt/nginx" "$opt/conf" "$opt/models" \
    "$dest/etc/systemd/system" "$dest/etc/default"
install -m 0755 "$build/nginfer-worker" "$opt/bin/nginfer-worker"
install -m 0755 "$repo/tools/nginfer-serve" "$opt/tools/nginfer-serve"
install -m 0644 "$repo/nginx/nginfer.conf.in" "$opt/nginx/nginfer.conf.in"
install -m 0644 "$repo/models/default.onnx" "$opt/models/default.onnx"
if [ -f "$opt/conf/nginfer.cfg" ] && ! cmp -s "$repo/conf/nginfer.cfg" "$opt/conf/nginfer.cfg"; then
    install -m 0644 "$repo/conf/nginfer.cfg" "$opt/conf/nginfer.cfg.new"
    echo "install: kept your $opt/conf/nginfer.cfg; the new one is nginfer.cfg.new"
else
    install -m 0644 "$repo/conf/nginfer.cfg" "$opt/conf/nginfer.cfg"
fi
install -m 0644 "$repo/conf/systemd/nginfer.service" "$dest/etc/systemd/system/nginfer.service"
[ -e "$dest/etc/default/nginfer" ] || install -m 0644 "$repo/conf/systemd/nginfer.default" "$dest/etc/default/nginfer"
echo "install: $opt, $dest/etc/systemd/system/nginfer.service, $dest/etc/default/nginfer"

if [ $enable -eq 1 ]; then
    systemctl daemon-reload
    systemctl enable nginfer.service
    echo "install: enabled; start with: systemctl start nginfer (logs: journalctl -u nginfer)"
fi
