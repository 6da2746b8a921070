#!/bin/bash
# test_k8s.sh: checks the Kubernetes manifests in docker/k8s/ without a
# cluster, with what Debian has:
#   yamllint     (Debian's yamllint; installed with apt-get when missing)
#   structure    /usr/bin/python3 + python3-yaml (installed when missing):
#                every document parses; the Deployment's probes hit /ping on
#                the container port, CPU and memory requests and limits are
#                set (CPU request = limit: the worker count follows it),
#                preStop sleeps and the grace period covers it plus the
#                serve script's drain, non-root uid 10001 with a read-only
#                root and a writable /tmp; the Service, HPA (autoscaling/v2,
#                CPU) and PDB point at the Deployment's pods
#   kubectl      `kubectl create --dry-run=client --validate=false -o yaml`
#                with the kubectl on PATH (Debian: kubernetes-client; SKIP
#                when there is none), offline: a discovery cache written
#                here lists the GA APIs only, so a removed beta API fails
#                (checked with a broken copy); no field validation
# Prints which checks ran ("# k8s: ..."). Each unavailable tool is a SKIP
# line with the reason, never a silent pass.
# Run by tests/run.sh (e2e suite) or alone: bash tests/e2e/test_k8s.sh
# Env: NGINFER_K8S_DIR (default docker/k8s) to check other manifests.

. "$(dirname "$0")/lib.sh"
e2e_bound 300 "$0" "$@"

k8s=${NGINFER_K8S_DIR:-$E2E_ROOT/docker/k8s}
files=("$k8s"/*.yaml)
ran=()

# apt_install PKG...: installs missing Debian packages (root only).
apt_install() {
    [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
        { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; }; } \
        >"$e2e_tmp/apt-$1.log" 2>&1
}

[ -e "${files[0]}" ] || { fail k8s/files "no $k8s/*.yaml"; exit 1; }

# --- yamllint ---------------------------------------------------------------------------

command -v yamllint >/dev/null 2>&1 || apt_install yamllint
if command -v yamllint >/dev/null 2>&1; then
    if out=$(yamllint -f parsable -s \
        -d '{extends: default, rules: {line-length: {max: 120}, document-start: disable}}' \
        "${files[@]}" 2>&1); then
        pass k8s/yamllint
    else
        fail k8s/yamllint "$(echo "$out" | head -5 | tr '\n' ' ')"
    fi
    ran+=("yamllint $(yamllint --version 2>/dev/null | awk '{ print $2 }')")
else
    skip k8s/yamllint "yamllint is not installed and apt-get could not install it"
fi

# --- structure (python3-yaml) ----------------------------------------------------------

"$E2E_PY" -c 'import yaml' 2>/dev/null || apt_install python3-yaml
if "$E2E_PY" -c 'import yaml' 2>/dev/null; then
    ran+=("python3-yaml structure")
    "$E2E_PY" - "${files[@]}" >"$e2e_tmp/structure.out" 2>&1 <<'EOF'
import sys, yaml

docs = {}
def check(name, ok, why=""):
    print(("PASS k8s/%s" % name) if ok else ("FAIL k8s/%s: %s" % (name, why)))

try:
    for f in sys.argv[1:]:
        for d in yaml.safe_load_all(open(f)):
            if d is None:
                continue
            key = d.get("kind")
            if key in docs:
                raise ValueError("two %s documents" % key)
            docs[key] = d
    check("yaml-parses", True)
except Exception as e:
    check("yaml-parses", False, "%s" % e)
    sys.exit(0)

want = {"Deployment": "apps/v1", "Service": "v1", "HorizontalPodAutoscaler": "autoscaling/v2",
        "PodDisruptionBudget": "policy/v1"}
for kind, api in want.items():
    d = docs.get(kind)
    check("kind-" + kind.lower(), d is not None and d.get("apiVersion") == api and d.get("metadata", {}).get("name"),
          "missing, or apiVersion %r (want %s), or no metadata.name" % (d and d.get("apiVersion"), api))

def g(d, *path, default=None):
    for p in path:
        if isinstance(d, dict) and p in d:
            d = d[p]
        elif isinstance(d, list) and isinstance(p, int) and p < len(d):
            d = d[p]
        else:
            return default
    return d

dep = docs.get("Deployment") or {}
name = g(dep, "metadata", "name")
pod = g(dep, "spec", "template", default={})
labels = g(pod, "metadata", "labels", default={})
def selects(sel):
    return isinstance(sel, dict) and sel and all(labels.get(k) == v for k, v in sel.items())
check("deployment-selector", selects(g(dep, "spec", "selector", "matchLabels")), "matchLabels do not match the pod labels")
cs = g(pod, "spec", "containers", default=[])
check("one-container", len(cs) == 1, "%d containers" % len(cs))
c = cs[0] if cs else {}
ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
check("container-port-8080", 8080 in ports.values(), "ports %r" % ports)

def probe_ok(p):
    h = (p or {}).get("httpGet") or {}
    port = h.get("port")
    return h.get("path") == "/ping" and (port == 8080 or ports.get(port) == 8080)
for pr in ("readinessProbe", "livenessProbe", "startupProbe"):
    check(pr.lower() + "-ping", probe_ok(c.get(pr)), "%r" % c.get(pr))
live = c.get("livenessProbe") or {}
check("liveness-tolerant", live.get("timeoutSeconds", 1) * live.get("failureThreshold", 3) >= 10,
      "a busy pod would be restarted: timeoutSeconds x failureThreshold < 10 s")

res = c.get("resources") or {}
have = all(g(res, a, b) is not None for a in ("requests", "limits") for b in ("cpu", "memory"))
check("resources-set", have, "%r" % res)
check("cpu-request-equals-limit", have and str(g(res, "requests", "cpu")) == str(g(res, "limits", "cpu")),
      "workers follow the CPU limit; the HPA measures against the request")

pre = g(c, "lifecycle", "preStop", "exec", "command", default=[])
sleep = None
if pre and pre[0].endswith("sleep") and len(pre) == 2:
    try:
        sleep = float(pre[1])
    except ValueError:
        pass
check("prestop-sleep", sleep is not None and 1 <= sleep <= 15, "preStop %r" % pre)
grace = g(pod, "spec", "terminationGracePeriodSeconds")
# the serve script: nginx drain 10 s, TERM 2 s, workers 10 s (NGINFER_STOP_TIMEOUT=10)
check("grace-covers-drain", isinstance(grace, int) and sleep is not None and grace >= sleep + 22,
      "terminationGracePeriodSeconds %r < preStop %r + 22 s of drain" % (grace, sleep))

psc = g(pod, "spec", "securityContext", default={})
csc = c.get("securityContext") or {}
check("non-root-10001", (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")) and
      (csc.get("runAsUser") or psc.get("runAsUser")) == 10001, "pod %r container %r" % (psc, csc))
check("read-only-root", csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False,
      "%r" % csc)
mounts = {m.get("mountPath"): m.get("name") for m in c.get("volumeMounts", [])}
vols = {v.get("name"): v for v in g(pod, "spec", "volumes", default=[])}
check("tmp-writable", mounts.get("/tmp") in vols, "no volume mounted at /tmp (the run dir /tmp/nginfer)")

svc = docs.get("Service") or {}
check("service-selects-pods", selects(g(svc, "spec", "selector")), "selector does not match the pod labels")
tp = [p.get("targetPort") for p in g(svc, "spec", "ports", default=[])]
check("service-target-port", tp and all(t == 8080 or ports.get(t) == 8080 for t in tp), "targetPort %r" % tp)

hpa = docs.get("HorizontalPodAutoscaler") or {}
ref = g(hpa, "spec", "scaleTargetRef", default={})
check("hpa-target", ref.get("kind") == "Deployment" and ref.get("name") == name and ref.get("apiVersion") == "apps/v1",
      "scaleTargetRef %r" % ref)
ms = g(hpa, "spec", "metrics", default=[])
cpu = [m for m in ms if m.get("type") == "Resource" and g(m, "resource", "name") == "cpu"
       and g(m, "resource", "target", "type") == "Utilization"]
check("hpa-cpu-utilization", len(cpu) == 1 and 0 < g(cpu[0], "resource", "target", "averageUtilization", default=0) <= 100,
      "metrics %r" % ms)
lo, hi = g(hpa, "spec", "minReplicas", default=1), g(hpa, "spec", "maxReplicas")
check("hpa-replicas", isinstance(hi, int) and 1 <= lo <= hi, "min %r max %r" % (lo, hi))

pdb = docs.get("PodDisruptionBudget") or {}
check("pdb-selects-pods", selects(g(pdb, "spec", "selector", "matchLabels")), "selector does not match the pod labels")
EOF
    rc=$?
    cat "$e2e_tmp/structure.out"
    [ $rc -eq 0 ] || fail k8s/structure "the python check exited $rc: $(tail -2 "$e2e_tmp/structure.out" | tr '\n' ' ')"
    py_failed=$(grep -c '^FAIL ' "$e2e_tmp/structure.out")
    e2e_failed=$((e2e_failed + py_failed))
else
    skip k8s/structure "/usr/bin/python3 has no yaml module and apt-get could not install python3-yaml"
fi

# --- kubectl dry-run --------------------------------------------------------------------

# kubectl maps each object's apiVersion and kind to a resource through the
# API server's discovery, even with --dry-run=client --validate=false. No
# server here: the kubeconfig names a closed loopback port, and the test
# writes kubectl's discovery cache (--cache-dir; the same layout in
# kubectl 1.20, Debian's kubernetes-client, and 1.32) with the GA APIs the
# manifests may use: v1, apps/v1, autoscaling/v2, policy/v1. A manifest on a
# removed beta API (autoscaling/v2beta2, policy/v1beta1) is then not
# recognized, as by a current cluster; a broken copy checks that. Fields
# are not validated (no OpenAPI document without a server).
if command -v kubectl >/dev/null 2>&1; then
    kv=$(kubectl version --client 2>/dev/null | head -1 | sed 's/^Client Version: //; s/version.Info{Major:"\([0-9]*\)", Minor:"\([0-9]*\)".*/v\1.\2/')
    kport=$(free_port 700)
    kdir=$e2e_tmp/kube
    disc=$kdir/cache/discovery/127.0.0.1_$kport
    mkdir -p "$disc/v1" "$disc/apps/v1" "$disc/autoscaling/v2" "$disc/policy/v1"
    cat >"$kdir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: none
  cluster:
    server: https://127.0.0.1:$kport
users:
- name: none
  user:
    token: none
contexts:
- name: none
  context:
    cluster: none
    user: none
current-context: none
EOF
    # servergroups.json: an APIGroupList; GROUP/VERSION/serverresources.json:
    # an APIResourceList per group version (client-go discovery/cached/disk).
    gv() { # GROUP VERSION: the APIGroupList entry
        local n=$1 v=$2 g=${1:+$1/}$2
        printf '{"name":"%s","versions":[{"groupVersion":"%s","version":"%s"}],"preferredVersion":{"groupVersion":"%s","version":"%s"}}' \
            "$n" "$g" "$v" "$g" "$v"
    }
    res() { # GROUP/VERSION PLURAL KIND: that version's resource list
        printf '{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"%s","resources":[{"name":"%s","singularName":"%s","namespaced":true,"kind":"%s","verbs":["create","delete","get","list","patch","update","watch"]}]}\n' \
            "$1" "$2" "$(tr '[:upper:]' '[:lower:]' <<<"$3")" "$3"
    }
    printf '{"kind":"APIGroupList","apiVersion":"v1","groups":[%s,%s,%s,%s]}\n' \
        "$(gv '' v1)" "$(gv apps v1)" "$(gv autoscaling v2)" "$(gv policy v1)" >"$disc/servergroups.json"
    res v1 services Service >"$disc/v1/serverresources.json"
    res apps/v1 deployments Deployment >"$disc/apps/v1/serverresources.json"
    res autoscaling/v2 horizontalpodautoscalers HorizontalPodAutoscaler >"$disc/autoscaling/v2/serverresources.json"
    res policy/v1 poddisruptionbudgets PodDisruptionBudget >"$disc/policy/v1/serverresources.json"
    kc() { # kubectl create --dry-run=client of $1 (a file or directory)
        KUBECONFIG=$kdir/kubeconfig timeout 30 kubectl create --dry-run=client --validate=false \
            --cache-dir "$kdir/cache" --request-timeout=5s -o yaml -f "$1" 2>&1 </dev/null
    }
    if out=$(kc "$k8s"); then
        n=$(grep -c '^kind: ' <<<"$out")
        want=$(cat "${files[@]}" | grep -c '^kind: ')
        [ "$n" -eq "$want" ] && pass k8s/kubectl-dry-run ||
            fail k8s/kubectl-dry-run "$n objects printed for the $want in $k8s"
    else
        fail k8s/kubectl-dry-run "$(tail -3 <<<"$out" | tr '\n' ' ')"
    fi
    sed 's|^apiVersion: autoscaling/v2$|apiVersion: autoscaling/v2beta2|' "$k8s/hpa.yaml" >"$kdir/hpa-v2beta2.yaml"
    # Not in the cache: kubectl drops it, asks the (absent) server again and
    # gives up on that file.
    if out=$(kc "$kdir/hpa-v2beta2.yaml"); then
        fail k8s/kubectl-refuses-removed-api "an HPA on autoscaling/v2beta2 passed: $(head -3 <<<"$out" | tr '\n' ' ')"
    elif grep -q 'unable to recognize "[^"]*hpa-v2beta2.yaml"\|no matches for kind' <<<"$out"; then
        pass k8s/kubectl-refuses-removed-api
    else
        fail k8s/kubectl-refuses-removed-api "failed for another reason: $(tail -2 <<<"$out" | tr '\n' ' ')"
    fi
    ran+=("kubectl $kv create --dry-run=client --validate=false (discovery cache: v1, apps/v1, autoscaling/v2, policy/v1; no server, no field validation)")
else
    skip k8s/kubectl-dry-run "no kubectl (Debian package kubernetes-client)"
    ran+=("kubectl: not installed")
fi

note "k8s: checks run: $(printf '%s; ' "${ran[@]}" | sed 's/; $//')"
echo "# e2e k8s: $e2e_failed failed"
[ "$e2e_failed" -eq 0 ]
