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
#   kubectl      `kubectl create --dry-run=client --validate=false -o yaml`,
#                with the kubectl on PATH or Debian's kubernetes-client; SKIP
#                when it cannot work offline (it asks an API server for
#                discovery even in client dry-run)
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

if ! command -v kubectl >/dev/null 2>&1; then
    if apt-cache policy kubernetes-client 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        apt_install kubernetes-client
    fi
fi
if command -v kubectl >/dev/null 2>&1; then
    kv=$(kubectl version --client 2>/dev/null | head -1)
    # No cluster: a kubeconfig naming a closed loopback port, so kubectl
    # never talks to whatever listens on its default localhost:8080.
    kport=$(free_port 700)
    cat >"$e2e_tmp/kubeconfig" <<EOF
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
    if out=$(KUBECONFIG=$e2e_tmp/kubeconfig timeout 30 kubectl create --dry-run=client --validate=false \
        --request-timeout=5s -o yaml -f "$k8s" 2>&1 </dev/null); then
        n=$(echo "$out" | grep -c '^kind: ')
        [ "$n" -eq ${#files[@]} ] && pass k8s/kubectl-dry-run ||
            fail k8s/kubectl-dry-run "$n objects printed for ${#files[@]} files"
        ran+=("kubectl dry-run ($kv)")
    elif echo "$out" | grep -qi 'unable to recognize\|server API group list\|connection refused\|dial tcp'; then
        skip k8s/kubectl-dry-run "$kv needs an API server's discovery even with --dry-run=client: $(echo "$out" | tail -1 | cut -c1-160)"
        ran+=("kubectl: skipped (needs a server)")
    else
        fail k8s/kubectl-dry-run "$(echo "$out" | tail -3 | tr '\n' ' ')"
        ran+=("kubectl dry-run ($kv)")
    fi
else
    skip k8s/kubectl-dry-run "no kubectl, and Debian's kubernetes-client could not be installed"
    ran+=("kubectl: not available")
fi

note "k8s: checks run: $(printf '%s; ' "${ran[@]}" | sed 's/; $//')"
echo "# e2e k8s: $e2e_failed failed"
[ "$e2e_failed" -eq 0 ]
