#!/usr/bin/python3
"""report.py -- turn bench/run.sh's raw figures into bench/results.

    /usr/bin/python3 bench/report.py WORK_DIR RESULTS_DIR

Reads WORK_DIR/manifest.json and WORK_DIR/raw/*.json[l]; writes
RESULTS_DIR/latest.json (every raw figure plus the derived ratios and
target verdicts), RESULTS_DIR/latest.md and, with gnuplot,
RESULTS_DIR/throughput.png, p99.png and cold_start.png.

Throughput everywhere is good answers per second: (requests - answers with
status >= 400) / duration, so a server that answers errors fast does not
look fast. All ratios compare figures of the same run.
"""

import json
import math
import os
import statistics
import subprocess
import sys

VARIANTS = ["nginfer", "fixed", "flask", "flask_nginx", "ort", "ort_nginx"]
VLABEL = {
    "nginfer": "nginfer",
    "fixed": "fixed-answer FastCGI (limit)",
    "flask": "Flask+gunicorn",
    "flask_nginx": "nginx -> Flask+gunicorn",
    "ort": "ORT node",
    "ort_nginx": "nginx -> ORT node",
}
WORKLOADS = ["rf100_1", "rf100_64", "rf500_1", "mlp_1", "cnn_1", "bert_1"]
WLABEL = {
    "rf100_1": "default forest (100 trees), 1 row",
    "rf100_64": "default forest (100 trees), 64 rows",
    "rf500_1": "500-tree forest, 1 row",
    "mlp_1": "digits MLP, 1 row",
    "cnn_1": "digits CNN, 1 image",
    "bert_1": "text BERT, 1 sequence",
}


def load_jsonl(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def fmt(v, nd=0, unit=""):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if nd == 0:
        return "{:,.0f}{}".format(v, unit)
    return "{:.{}f}{}".format(v, nd, unit)


def fratio(v):
    if v is None:
        return "n/a"
    if v >= 100:
        return "%.0fx" % v
    if v >= 10:
        return "%.1fx" % v
    return "%.2fx" % v


def div(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def flatten(x):
    if isinstance(x, list):
        out = []
        for v in x:
            out.extend(flatten(v))
        return out
    return [x]


class Report:
    def __init__(self, work):
        self.work = work
        raw = os.path.join(work, "raw")
        self.manifest = load_json(os.path.join(work, "manifest.json"), {})
        self.meta = load_json(os.path.join(raw, "meta.json"), {})
        self.end = load_json(os.path.join(raw, "end.json"), {})
        self.http_raw = load_jsonl(os.path.join(raw, "http.jsonl"))
        self.core_raw = load_jsonl(os.path.join(raw, "core.jsonl"))
        self.cold_raw = load_jsonl(os.path.join(raw, "cold.jsonl"))
        self.rss_raw = load_jsonl(os.path.join(raw, "rss.jsonl"))
        self.sanity_raw = load_jsonl(os.path.join(raw, "sanity.jsonl"))
        self.deploy_raw = load_jsonl(os.path.join(raw, "deploy.jsonl"))
        self.answers_dir = os.path.join(raw, "answers")

        self.http = {}
        for r in self.http_raw:
            w = r.get("wrk")
            d = {"conns": r["conns"], "threads": r["threads"], "seconds": r["seconds"]}
            if w:
                secs = w["duration_us"] / 1e6
                good = max(0, w["requests"] - w["err_status"])
                d.update({
                    "requests": w["requests"], "rps_all": w["rps"], "rps": good / secs if secs else None,
                    "p50_ms": w["lat_p50_us"] / 1e3, "p90_ms": w["lat_p90_us"] / 1e3,
                    "p99_ms": w["lat_p99_us"] / 1e3, "max_ms": w["lat_max_us"] / 1e3,
                    "non2xx": w["err_status"],
                    "server_cpu_s": r.get("server_cpu_s"),
                    "cpu_us_per_answer": (r["server_cpu_s"] * 1e6 / good
                                          if r.get("server_cpu_s") is not None and good else None),
                    "socket_errors": {"connect": w["err_connect"], "read": w["err_read"],
                                      "write": w["err_write"], "timeout": w["err_timeout"]},
                })
            self.http[(r["variant"], r["workload"], r["conns"])] = d
        self.conns = sorted({k[2] for k in self.http}) or [1, 8, 64]

        self.core = {}
        for r in self.core_raw:
            self.core[(r["engine"], r["model"], r["batch"])] = r

        # one line per start (or per skipped round); merged per (server, model)
        self.cold = {}
        for r in self.cold_raw:
            s, m = r["server"], r["model"]
            e = self.cold.setdefault((s, m), {"runs_ms": [], "failed_runs": 0, "skipped_rounds": 0,
                                              "non200_before_first_200": [], "worker_load_ms": [],
                                              "require_ms": [], "accept_ms": []})
            if "skipped_round" in r:
                e["skipped_rounds"] += 1
                continue
            res = r["result"]
            if s == "ort_session":
                e["runs_ms"].append(res["create_ms"])
                e["require_ms"].append(res["require_ms"])
                continue
            e["runs_ms"].extend(x for x in res.get("runs_ms", []) if x is not None)
            e["failed_runs"] += res.get("failed_runs", 0)
            e["non200_before_first_200"].extend(res.get("non200_before_first_200", []))
            e["worker_load_ms"].extend(res.get("worker_load_ms", []))
            e["accept_ms"].extend(x for x in res.get("accept_ms", []) if x is not None)
        for e in self.cold.values():
            e["n_runs"] = len(e["runs_ms"])
            e["median_ms"] = statistics.median(e["runs_ms"]) if e["runs_ms"] else None
            e["worker_load_median_ms"] = statistics.median(e["worker_load_ms"]) if e["worker_load_ms"] else None
            e["accept_median_ms"] = statistics.median(e["accept_ms"]) if e["accept_ms"] else None
            e["require_median_ms"] = statistics.median(e["require_ms"]) if e["require_ms"] else None

        self.rss = {}
        for r in self.rss_raw:
            self.rss[(r["server"], r["model"], r["when"])] = r

        self.targets = []

    # --- accessors ----------------------------------------------------------

    def h(self, v, wl, c, key="rps"):
        d = self.http.get((v, wl, c))
        return d.get(key) if d else None

    def errors(self, v, wl, c):
        d = self.http.get((v, wl, c))
        if not d or "requests" not in d:
            return None
        return d["non2xx"] + sum(d["socket_errors"].values())

    def core_us(self, engine, m, b):
        r = self.core.get((engine, m, b))
        return r["median_us"] if r else None

    def floor_us(self, b):
        return self.core_us("ort", "identity", b)

    def cold_ms(self, s, m):
        r = self.cold.get((s, m))
        return r.get("median_ms") if r else None

    def model_bytes(self, m):
        return self.manifest.get("models", {}).get(m, {}).get("onnx_bytes")

    # --- targets ------------------------------------------------------------

    def target(self, name, values, op, threshold, fmt_v=fratio, note=""):
        """values: [(label, value)]; met iff every value passes."""
        vals = [(lab, v) for lab, v in values]
        known = [v for _, v in vals if v is not None]
        if not known or len(known) < len(vals):
            met = None
        elif op == ">=":
            met = all(v >= threshold for v in known)
        else:
            met = all(v <= threshold for v in known)
        self.targets.append({
            "target": name, "op": op, "threshold": threshold,
            "measured": [{"at": lab, "value": v} for lab, v in vals],
            "met": met, "note": note,
            "measured_text": "; ".join("%s%s" % (lab + ": " if lab else "", fmt_v(v)) for lab, v in vals),
        })

    def nginfer_errors_note(self, wl, cs):
        bad = [c for c in cs if (self.errors("nginfer", wl, c) or 0) > 0]
        if bad:
            return "nginfer had errors at %s conns (see tables)" % ",".join(map(str, bad))
        return ""

    def eval_targets(self):
        ms = lambda v: fmt(v, 2, " ms")  # noqa: E731
        r = lambda a, b, wl, c: div(self.h(a, wl, c), self.h(b, wl, c))  # noqa: E731
        wl = "rf100_1"
        n = self.nginfer_errors_note(wl, [8, 64])
        self.target("1-row RF: throughput vs fixed-answer limit (efficiency)",
                    [("8 conns", r("nginfer", "fixed", wl, 8)), ("64 conns", r("nginfer", "fixed", wl, 64))],
                    ">=", 0.9, lambda v: fmt(None if v is None else v * 100, 0, "%"), n)
        self.target("1-row RF: throughput vs Flask+gunicorn",
                    [("8 conns", r("nginfer", "flask", wl, 8)), ("64 conns", r("nginfer", "flask", wl, 64))],
                    ">=", 10, note=n)
        self.target("1-row RF: throughput vs ORT behind nginx",
                    [("8 conns", r("nginfer", "ort_nginx", wl, 8)), ("64 conns", r("nginfer", "ort_nginx", wl, 64))],
                    ">=", 1.5, note=n)
        self.target("1-row RF: throughput vs ORT direct",
                    [("8 conns", r("nginfer", "ort", wl, 8)), ("64 conns", r("nginfer", "ort", wl, 64))],
                    ">=", 1.0, note=n)
        self.target("1-row RF: nginfer p99 latency at 8 connections",
                    [("", self.h("nginfer", wl, 8, "p99_ms"))], "<=", 2.0, ms, n)
        wl = "rf100_64"
        n = self.nginfer_errors_note(wl, [8, 64])
        self.target("64-row RF: throughput vs ORT direct",
                    [("8 conns", r("nginfer", "ort", wl, 8)), ("64 conns", r("nginfer", "ort", wl, 64))],
                    ">=", 1.5, note=n)
        self.target("64-row RF: throughput vs Flask+gunicorn",
                    [("8 conns", r("nginfer", "flask", wl, 8)), ("64 conns", r("nginfer", "flask", wl, 64))],
                    ">=", 20, note=n)
        for m in ("rf100", "rf500"):
            if ("nginfer", m, 64) not in self.core and ("ort", m, 64) not in self.core:
                continue
            self.target("core, %s: time per row at batch 64, nginfer / ORT" % m,
                        [("", div(self.core_us("nginfer", m, 64), self.core_us("ort", m, 64)))], "<=", 0.5)
            o1, f1 = self.core_us("ort", m, 1), self.floor_us(1)
            self.target("core, %s: batch 1, nginfer / (ORT - ORT per-call floor)" % m,
                        [("", div(self.core_us("nginfer", m, 1), None if o1 is None or f1 is None else o1 - f1))],
                        "<=", 1.0)
        for m, lim in (("mlp", 1.0), ("cnn", 1.0), ("bert", 1.2)):
            if ("nginfer", m, 1) not in self.core and ("ort", m, 1) not in self.core:
                continue
            self.target("core, %s: time per call, nginfer / ORT" % m,
                        [("batch %d" % b, div(self.core_us("nginfer", m, b), self.core_us("ort", m, b)))
                         for b in (1, 64)], "<=", lim)
        for m, lim in (("rf100", 20), ("rf500", 150)):
            if ("nginfer", m) not in self.cold:
                continue
            self.target("cold start, %s: nginfer start -> first 200" % m,
                        [("", self.cold_ms("nginfer", m))], "<=", lim, ms)
        for m in ("rf100", "rf500"):
            if ("nginfer", m) not in self.cold or ("flask", m) not in self.cold:
                continue
            self.target("cold start, %s: Flask+gunicorn / nginfer" % m,
                        [("", div(self.cold_ms("flask", m), self.cold_ms("nginfer", m)))], ">=", 20)
        for m in ("rf100", "rf500", "mlp", "cnn", "bert"):
            r_ = self.rss.get(("nginfer", m, "traffic"))
            if not r_:
                continue
            mb = self.model_bytes(m)
            kb = r_.get("rss_kb_per_worker")
            v = None if kb is None else kb / 1024.0
            lim = None if mb is None else mb / 1048576.0 + 16
            self.target("RSS per nginfer worker after traffic, %s (model file %s MB + 16 MB)"
                        % (m, fmt(None if mb is None else mb / 1048576.0, 1)),
                        [("", v)], "<=", lim if lim is not None else 0, lambda x: fmt(x, 1, " MB"))

    # --- sanity: same predictions everywhere ----------------------------------

    def sanity(self):
        out = []
        status = {(r["variant"], r["workload"]): r["status"] for r in self.sanity_raw}
        for wl in WORKLOADS:
            preds = {}
            for v in VARIANTS:
                p = os.path.join(self.answers_dir, "%s_%s.json" % (v, wl))
                a = load_json(p)
                if isinstance(a, dict) and "predictions" in a and v != "fixed":
                    try:
                        preds[v] = [float(x) for x in flatten(a["predictions"])]
                    except (TypeError, ValueError):
                        pass
            ref_v = "ort" if "ort" in preds else ("flask" if "flask" in preds else None)
            row = {"workload": wl, "status": {v: status[(v, wl)] for v in VARIANTS if (v, wl) in status}}
            diffs = {}
            if ref_v:
                ref = preds[ref_v]
                for v, p in preds.items():
                    if v == ref_v:
                        continue
                    if len(p) != len(ref):
                        diffs[v] = "length %d vs %d" % (len(p), len(ref))
                    else:
                        diffs[v] = max((abs(a - b) / max(abs(b), 1.0) for a, b in zip(p, ref)), default=0.0)
            row["reference"] = ref_v
            row["max_rel_diff_vs_reference"] = diffs
            if row["status"]:
                out.append(row)
        return out

    # --- outputs --------------------------------------------------------------

    def to_json(self):
        return {
            "meta": self.meta, "end": self.end, "manifest": self.manifest,
            "http": [dict(variant=k[0], workload=k[1], **v) for k, v in sorted(self.http.items())],
            "core": self.core_raw,
            "cold": self.cold_raw,
            "cold_summary": [dict(server=k[0], model=k[1], **{kk: vv for kk, vv in v.items()})
                             for k, v in sorted(self.cold.items())],
            "rss": self.rss_raw,
            "deploy": self.deploy_raw,
            "sanity": self.sanity(),
            "targets": self.targets,
        }

    def md(self):
        L = []
        meta, end = self.meta, self.end
        L.append("# nginfer benchmark: latest run\n")
        L.append("Run %s, commit %s, %s CPUs (%s), load average %s at start and %s at the end; "
                 "the whole run took %s s. Made by bench/run.sh (what `make bench` runs)."
                 % (meta.get("date", "?"), meta.get("git", "?"), meta.get("cpus", "?"), meta.get("cpu_model", "?"),
                    meta.get("loadavg_start", "?"), end.get("loadavg_end", "?"), end.get("seconds", "?")))
        L.append("")
        L.append("**Read ratios, not absolute numbers.** The machine is shared and noisy and wrk runs on the "
                 "same two cores as the servers; every ratio below compares figures measured in this one run "
                 "(load points of all servers interleaved). Throughput is good answers (status < 400) per "
                 "second; wrk with 2 threads (1 thread at 1 connection), %s s per point after a %s s warm-up "
                 "per server and body." % (meta.get("duration_s", "?"), meta.get("warmup_s", "?")))
        L.append("")
        L.append("Versions: nginx %s, node %s, onnxruntime-node %s, scikit-learn %s, Flask %s, gunicorn %s, wrk %s."
                 % tuple(meta.get(k, "?") for k in ("nginx", "node", "onnxruntime_node", "sklearn", "flask",
                                                   "gunicorn", "wrk")))
        L.append("")

        # targets
        L.append("## Targets\n")
        L.append("| target | wanted | measured | verdict |")
        L.append("| --- | --- | --- | --- |")
        for t in self.targets:
            thr = t["threshold"]
            if "RSS" in t["target"]:
                want = "%s %.1f MB" % (t["op"], thr)
            elif "p99" in t["target"] or "cold start" in t["target"] and "/" not in t["target"]:
                want = "%s %g ms" % (t["op"], thr)
            elif "efficiency" in t["target"]:
                want = "%s %g%%" % (t["op"], thr * 100)
            else:
                want = "%s %gx" % (t["op"], thr)
            verdict = {True: "met", False: "**not met**", None: "n/a"}[t["met"]]
            if t["note"]:
                verdict += " (%s)" % t["note"]
            L.append("| %s | %s | %s | %s |" % (t["target"], want, t["measured_text"], verdict))
        L.append("")

        # HTTP tables
        L.append("## HTTP throughput and latency\n")
        L.append("`ratio` = nginfer's throughput / this server's at the same connection count. "
                 "`errors` = answers with status >= 400 plus socket errors (connect/read/write/timeout) "
                 "over all connection counts.\n")
        for wl in WORKLOADS:
            vs = [v for v in VARIANTS if any((v, wl, c) in self.http for c in self.conns)]
            if not vs:
                continue
            body = self.manifest.get("workloads", {}).get(wl, {}).get("body_bytes")
            L.append("### %s (body %s bytes)\n" % (WLABEL.get(wl, wl), body if body else "?"))
            hdr = ["server"] + ["req/s @%d" % c for c in self.conns] + ["ratio @%d" % c for c in self.conns] + \
                  ["p50/p99 ms @%d" % c for c in self.conns] + ["errors"]
            L.append("| " + " | ".join(hdr) + " |")
            L.append("|" + " --- |" * len(hdr))
            for v in vs:
                cells = [VLABEL[v]]
                cells += [fmt(self.h(v, wl, c)) for c in self.conns]
                cells += ["—" if v == "nginfer" else fratio(div(self.h("nginfer", wl, c), self.h(v, wl, c)))
                          for c in self.conns]
                cells += ["%s / %s" % (fmt(self.h(v, wl, c, "p50_ms"), 2), fmt(self.h(v, wl, c, "p99_ms"), 2))
                          for c in self.conns]
                errs = [self.errors(v, wl, c) for c in self.conns]
                cells.append(str(sum(e for e in errs if e is not None)) if any(e is not None for e in errs) else "n/a")
                L.append("| " + " | ".join(cells) + " |")
            L.append("")

        # cpu per answer
        if any(d.get("cpu_us_per_answer") is not None for d in self.http.values()):
            L.append("## Server CPU time per answer (µs)\n")
            L.append("User + system CPU time of the server's processes during each load point (/proc/PID/stat: "
                     "nginx, multiwatch and the workers for nginfer and the fixed-answer server; the gunicorn "
                     "arbiter and workers; the node primary and workers; plus the peer nginx for the \"nginx ->\" "
                     "rows), divided by the good answers. Less sensitive than req/s to what else the machine is "
                     "doing, since wrk's own CPU is not in it. `x nginfer` = this server's CPU per answer / "
                     "nginfer's, at %d connections.\n" % max(self.conns))
            L.append("| workload | server | " + " | ".join("@%d" % c for c in self.conns) + " | x nginfer |")
            L.append("|---|---|" + "---|" * len(self.conns) + "---|")
            for wl in WORKLOADS:
                for v in VARIANTS:
                    if not any((v, wl, c) in self.http for c in self.conns):
                        continue
                    cells = [fmt(self.h(v, wl, c, "cpu_us_per_answer"), 0) for c in self.conns]
                    cmax = max(self.conns)
                    rel = "—" if v == "nginfer" else fratio(div(self.h(v, wl, cmax, "cpu_us_per_answer"),
                                                                self.h("nginfer", wl, cmax, "cpu_us_per_answer")))
                    L.append("| %s | %s | %s | %s |" % (wl, VLABEL[v], " | ".join(cells), rel))
            L.append("")

        # efficiency
        L.append("## Efficiency: nginfer / fixed-answer FastCGI limit\n")
        L.append("The fixed-answer program (bench/fcgi_fixed.c) is served by the same tools/nginfer-serve, "
                 "nginx template, spawn-fcgi + multiwatch and worker count; it reads the body and answers a "
                 "constant. 100% means inference, JSON and logging cost nothing measurable.\n")
        L.append("| workload | " + " | ".join("@%d conns" % c for c in self.conns) + " |")
        L.append("|---|" + "---|" * len(self.conns))
        for wl in ("rf100_1", "rf100_64", "rf500_1"):
            if not any(("fixed", wl, c) in self.http for c in self.conns):
                continue
            cells = []
            for c in self.conns:
                e = div(self.h("nginfer", wl, c), self.h("fixed", wl, c))
                cells.append(fmt(None if e is None else e * 100, 0, "%"))
            L.append("| %s | %s |" % (WLABEL[wl], " | ".join(cells)))
        L.append("")

        # core
        L.append("## In-process core: one call, median (µs)\n")
        L.append("nginfer: `nf_model_run` in bench/core_bench.c; ORT: `await session.run()` in bench/ort_core.js "
                 "(intraOpNumThreads 1). Both single-threaded, median of many calls after a warm-up. "
                 "**ORT floor** = the same timing on a one-node Identity model ([N,10] float): ORT's fixed "
                 "per-call cost from node (N-API, promise, tensor wrapping), which a C caller of the ORT C API "
                 "would mostly not pay; `ORT - floor` subtracts it.\n")
        fl1, fl64 = self.floor_us(1), self.floor_us(64)
        L.append("ORT floor: %s µs at batch 1, %s µs at batch 64.\n" % (fmt(fl1, 1), fmt(fl64, 1)))
        L.append("| model | batch | nginfer µs | ORT µs | ORT - floor µs | nginfer / ORT | nginfer / (ORT - floor) "
                 "| nginfer µs per row | ORT µs per row |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for m in ("rf100", "rf500", "mlp", "cnn", "bert"):
            for b in (1, 64):
                n_, o_ = self.core_us("nginfer", m, b), self.core_us("ort", m, b)
                if n_ is None and o_ is None:
                    continue
                fl = fl1 if b == 1 else fl64
                oc = None if o_ is None or fl is None else o_ - fl
                L.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                    m, b, fmt(n_, 1), fmt(o_, 1), fmt(oc, 1), fratio(div(n_, o_)), fratio(div(n_, oc)),
                    fmt(div(n_, b), 2), fmt(div(o_, b), 2)))
        L.append("")
        loads = [(m, self.core.get(("nginfer", m, 1), {}).get("load_ms"), self.core.get(("ort", m, 1), {}).get("load_ms"))
                 for m in ("rf100", "rf500", "mlp", "cnn", "bert")]
        loads = [x for x in loads if x[1] is not None or x[2] is not None]
        if loads:
            L.append("Model load in these processes (one sample each, ms): " + "; ".join(
                "%s nginfer %s / ORT %s" % (m, fmt(a, 1), fmt(b, 1)) for m, a, b in loads) + ".\n")

        # cold start
        L.append("## Cold start: start of the serving processes -> first 200 on POST /invocations\n")
        L.append("Median ms (number of runs in brackets; up to %s per server and model, taken in rounds over all "
                 "of them while the run's time budget lasts). nginfer = `tools/nginfer-serve` (it starts "
                 "spawn-fcgi + multiwatch + workers, then nginx while the workers load; requests wait in the "
                 "FastCGI socket's backlog until a worker is ready); "
                 "fixed = the same script serving the fixed-answer program (the "
                 "serving machinery alone: the script, spawn-fcgi, multiwatch, nginx; no model anywhere); worker load = the workers' own `load_ms` from their ready log "
                 "lines. Flask = gunicorn start (2 workers importing Flask, scikit-learn and the pickle). "
                 "ORT server = node cluster start (2 workers, each creating its session); ORT session = "
                 "`InferenceSession.create` alone in a fresh node process, after `require` (median shown "
                 "separately). Polling: a connect every 1 ms from just before the command starts; a connection that is accepted sends the request and waits for its answer.\n" % meta.get("cold_runs", "?"))
        L.append("| model | nginfer | nginfer accepts | nginfer worker load | fixed (machinery only) | Flask+gunicorn | ORT server "
                 "| ORT session create | ORT require | Flask / nginfer | ORT server / nginfer |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")

        def cm(s_, m_):
            e = self.cold.get((s_, m_))
            if not e:
                return "n/a"
            return "%s (%d)" % (fmt(e.get("median_ms"), 1), e.get("n_runs", 0))

        for m in ("rf100", "rf500", "mlp", "cnn", "bert"):
            if not any(k[1] == m for k in self.cold):
                continue
            nf = self.cold.get(("nginfer", m), {})
            sess = self.cold.get(("ort_session", m), {})
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                m, cm("nginfer", m), fmt(nf.get("accept_median_ms"), 1), fmt(nf.get("worker_load_median_ms"), 1),
                cm("fixed", m), cm("flask", m), cm("ort", m), cm("ort_session", m),
                fmt(sess.get("require_median_ms"), 1),
                fratio(div(self.cold_ms("flask", m), self.cold_ms("nginfer", m))),
                fratio(div(self.cold_ms("ort", m), self.cold_ms("nginfer", m)))))
        fails = ["%s/%s (%d)" % (k[0], k[1], v["failed_runs"]) for k, v in sorted(self.cold.items())
                 if v.get("failed_runs")]
        if fails:
            L.append("\nStarts with no 200 within the limit (30 s; such a pair is not tried again): "
                     + ", ".join(fails) + ".")
        skipped = ["%s/%s (%d)" % (k[0], k[1], v["skipped_rounds"]) for k, v in sorted(self.cold.items())
                   if v.get("skipped_rounds")]
        if skipped:
            L.append("\nRounds skipped for lack of time: " + ", ".join(skipped) + ".")
        non200 = ["%s/%s: %s" % (k[0], k[1], v.get("non200_before_first_200"))
                  for k, v in sorted(self.cold.items()) if any(v.get("non200_before_first_200") or [])]
        if non200:
            L.append("\nAnswers other than 200 seen before the first 200 (per run; nginx answers 502/503 "
                     "until a worker accepts): " + "; ".join(non200) + ".")
        L.append("")

        # deploy targets
        if self.deploy_raw:
            L.append("## Deploy targets: Lambda runtime and container start\n")
            L.append("From tests/e2e/test_lambda.sh and test_container.sh run inside this bench (their notes below). "
                     "Lambda: nginfer-lambda against the Runtime API stand-in (tests/lambda/runtime_api.py) on "
                     "loopback; init = process start to its first `/next` (model load and warm-up included), "
                     "per invocation = `/next` sent to the answer received, over 900 mixed events. Container: "
                     "`podman run --read-only ... serve` of `localhost/nginfer` to the first 200 on "
                     "`/invocations` (podman's own container set-up included).\n")
            L.append("| measure | value |")
            L.append("|---|---|")
            for r in self.deploy_raw:
                if r.get("skipped"):
                    L.append("| %s | skipped: %s |" % (r["test"], r["skipped"]))
                    continue
                if "lambda_init_ms" in r:
                    L.append("| Lambda init (default forest) | %s ms |" % fmt(r["lambda_init_ms"], 1))
                    L.append("| Lambda per invocation | %s us |" % fmt(r["lambda_invoke_us"], 0))
                if "container_first_200_ms" in r:
                    L.append("| container: podman run -> first 200 | %d ms (%d ms from the container's start) |"
                             % (r["container_first_200_ms"], r["container_first_200_from_start_ms"]))
                L.append("| %s test checks | %d passed, %d failed |" % (r["test"], r["passed"], r["failed"]))
            for r in self.deploy_raw:
                for n in r.get("notes", []):
                    if n.startswith(("lambda: init =", "container: start")):
                        L.append("\n- %s" % n)
            L.append("")

        # rss
        L.append("## Memory: RSS per worker process (MB, VmRSS averaged over the workers)\n")
        L.append("Workers only: not nginx, multiwatch, the gunicorn arbiter or the node cluster primary. "
                 "`after traffic` = after all of that server's load points (at least %s s of traffic).\n"
                 % (3 * (meta.get("duration_s") or 0)))
        L.append("| server | model | model file MB | after load | after traffic |")
        L.append("|---|---|---|---|---|")
        seen = []
        for r in self.rss_raw:
            k = (r["server"], r["model"])
            if k not in seen:
                seen.append(k)
        for s, m in seen:
            a = self.rss.get((s, m, "load"), {}).get("rss_kb_per_worker")
            b = self.rss.get((s, m, "traffic"), {}).get("rss_kb_per_worker")
            mb = self.model_bytes(m)
            L.append("| %s | %s | %s | %s | %s |" % (VLABEL.get(s, s), m, fmt(None if mb is None else mb / 1048576, 1),
                                                  fmt(None if a is None else a / 1024, 1),
                                                  fmt(None if b is None else b / 1024, 1)))
        L.append("")

        # sanity
        L.append("## Sanity: status of one request per server, and agreement of the predictions\n")
        L.append("Max relative difference of each server's predictions from the reference server's "
                 "(ORT; the fixed-answer program is excluded).\n")
        L.append("| workload | statuses | max rel diff vs reference |")
        L.append("|---|---|---|")
        for row in self.sanity():
            st = ", ".join("%s %s" % (v, c) for v, c in row["status"].items())
            df = ", ".join("%s %s" % (v, d if isinstance(d, str) else "%.1e" % d)
                           for v, d in row["max_rel_diff_vs_reference"].items())
            L.append("| %s | %s | %s |" % (row["workload"], st, "%s (ref %s)" % (df, row["reference"]) if df else "n/a"))
        L.append("")

        L.append("## Method\n")
        L.append("- Models: `models/default.onnx` and its scikit-learn twin retrained by bench/prep.py the way "
                 "tools/make_default_model.py trains it (checked equal to the ONNX file within 1e-5 relative on "
                 "every row); a 500-tree depth-12 forest on make_regression(2000 x 50, seed 0), pickled and "
                 "converted with tools/sk2onnx.py; the torch-made digits MLP/CNN and text BERT when present. "
                 "Checks: %s." % json.dumps(self.manifest.get("checks", {})))
        L.append("- Bodies: `{\"instances\": [[...]]}` for the forests and the MLP, `{\"inputs\": [[[[...]]]]}` for "
                 "the CNN, `{\"inputs\": {\"input_ids\": ..., \"attention_mask\": ...}}` for BERT.")
        L.append("- nginfer runs with conf/nginfer.cfg as shipped (2 workers, access log on, FastCGI upstream "
                 "keepalive on with fastcgi_keep_conn, K = 64 x workers, the default) via tools/nginfer-serve, "
                 "and so does the fixed-answer peer; NGINFER_STOP_TIMEOUT is lowered so stopping takes less time.")
        L.append("- Peers behind nginx use bench/nginx-peers.conf.in: 1 worker process like nginfer's, HTTP/1.1 "
                 "upstream keepalive (used by the node server; gunicorn's sync workers close each connection).")
        L.append("- Cold start polls with a connect every 1 ms (bench/coldstart.py).")
        L.append("- Raw figures: latest.json (`http`, `core`, `cold`, `rss`, `sanity`, `targets`).")
        L.append("")
        L.append("Plots: throughput.png, p99.png, cold_start.png.")
        return "\n".join(L) + "\n"

    # --- plots ----------------------------------------------------------------

    def plots(self, res):
        pdir = os.path.join(self.work, "plot")
        os.makedirs(pdir, exist_ok=True)
        wls = [wl for wl in WORKLOADS if any(k[1] == wl for k in self.http)]
        if not wls:
            return
        for wl in wls:
            for key in ("rps", "p99_ms"):
                with open(os.path.join(pdir, "%s_%s.dat" % (wl, key)), "w") as f:
                    f.write("# conns " + " ".join(VARIANTS) + "\n")
                    for c in self.conns:
                        vals = [self.h(v, wl, c, key) for v in VARIANTS]
                        f.write("%d %s\n" % (c, " ".join("?" if x is None or x <= 0 else "%.6g" % x for x in vals)))
        cols = 3
        rows = (len(wls) + cols - 1) // cols
        for key, name, ylab in (("rps", "throughput", "good answers / s"), ("p99_ms", "p99", "p99 latency (ms)")):
            g = ["set terminal pngcairo size %d,%d font ',9'" % (440 * cols, 380 * rows),
                 "set output '%s'" % os.path.join(res, name + ".png"),
                 "set datafile missing '?'",
                 "set logscale xy", "set xtics (1, 8, 64)", "set xrange [0.8:80]",
                 "set xlabel 'connections'", "set ylabel '%s'" % ylab, "set grid",
                 "set key below font ',8' maxrows 2",
                 "set multiplot layout %d,%d title '%s vs connections (same run, ratios matter)'"
                 % (rows, cols, "Throughput" if key == "rps" else "p99 latency")]
            for wl in wls:
                dat = os.path.join(pdir, "%s_%s.dat" % (wl, key))
                plots = []
                for i, v in enumerate(VARIANTS):
                    if any((v, wl, c) in self.http for c in self.conns):
                        plots.append("'%s' using 1:%d with linespoints lw 2 lc %d pt %d title '%s'"
                                     % (dat, i + 2, i + 1, i + 1, VLABEL[v]))
                g.append("set title '%s'" % WLABEL[wl])
                g.append("plot " + ", ".join(plots))
            g.append("unset multiplot")
            self.gnuplot(g)

        # cold start: clustered bars per model, log y
        servers = [("nginfer", "nginfer"), ("nginfer_load", "nginfer worker load"),
                   ("fixed", "fixed answer (machinery only)"), ("flask", "Flask+gunicorn"),
                   ("ort", "ORT server"), ("ort_session", "ORT session create")]
        models = [m for m in ("rf100", "rf500", "mlp", "cnn", "bert") if any(k[1] == m for k in self.cold)]
        if models:
            dat = os.path.join(pdir, "cold.dat")
            with open(dat, "w") as f:
                f.write("# model " + " ".join(s for s, _ in servers) + "\n")
                for m in models:
                    vals = [self.cold.get(("nginfer", m), {}).get("worker_load_median_ms") if s == "nginfer_load"
                            else self.cold.get((s, m), {}).get("median_ms") for s, _ in servers]
                    f.write("%s %s\n" % (m, " ".join("?" if v is None or v <= 0 else "%.6g" % v for v in vals)))
            g = ["set terminal pngcairo size 900,450 font ',9'",
                 "set output '%s'" % os.path.join(res, "cold_start.png"),
                 "set datafile missing '?'", "set style data histograms", "set style histogram cluster gap 1",
                 "set style fill solid 0.8 border -1", "set logscale y", "set yrange [1:*]",
                 "set ylabel 'start -> first 200 (ms, median)'", "set grid ytics", "set key left top",
                 "set title 'Cold start per model (same run)'"]
            parts = []
            for i, (s, lab) in enumerate(servers):
                parts.append("'%s' using %d:xtic(1) title '%s'" % (dat, i + 2, lab))
            g.append("plot " + ", ".join(parts))
            self.gnuplot(g)

    def gnuplot(self, lines):
        try:
            subprocess.run(["gnuplot"], input="\n".join(lines) + "\n", text=True, check=True, timeout=60,
                           stdout=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as e:
            print("report: gnuplot failed: %s" % e, file=sys.stderr)


def main(argv):
    work, res = argv[1], argv[2]
    os.makedirs(res, exist_ok=True)
    r = Report(work)
    r.eval_targets()
    md = r.md()
    data = r.to_json()
    for name, text in (("latest.json", json.dumps(data, indent=1) + "\n"), ("latest.md", md)):
        tmp = os.path.join(res, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(res, name))
    r.plots(res)
    met = sum(1 for t in r.targets if t["met"] is True)
    print("report: %d targets, %d met, %d not met, %d n/a" % (
        len(r.targets), met, sum(1 for t in r.targets if t["met"] is False),
        sum(1 for t in r.targets if t["met"] is None)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
