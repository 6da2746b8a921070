#!/usr/bin/python3
"""events.py: event lines for runtime_api.py and timings from its log.

  events.py one ID=FILE ...               "ID<TAB>compact JSON of FILE", one line each
  events.py cycle PREFIX N FILE ...       N lines PREFIX-000001.. cycling through the FILEs
  events.py big ID ROWS                   a direct {"instances": [...]} event of ROWS rows
  events.py timing LOG PREFIX             per-invocation time of the PREFIX-* events in
                                          log.jsonl: "MEAN_US P50_US P99_US WALL_US_PER_EVENT N"
  events.py first-next LOG                unix time of the first /next in log.jsonl
"""
import json
import sys


def compact(path):
    with open(path) as f:
        return json.dumps(json.load(f), separators=(",", ":"))


def main(argv):
    cmd = argv[1]
    if cmd == "one":
        for pair in argv[2:]:
            rid, path = pair.split("=", 1)
            print("%s\t%s" % (rid, compact(path)))
    elif cmd == "cycle":
        prefix, n, files = argv[2], int(argv[3]), argv[4:]
        bodies = [compact(p) for p in files]
        out = []
        for i in range(n):
            out.append("%s-%06d\t%s" % (prefix, i + 1, bodies[i % len(bodies)]))
        sys.stdout.write("\n".join(out) + "\n")
    elif cmd == "big":
        rid, rows = argv[2], int(argv[3])
        inst = [[round(((r * 7 + c * 13) % 100) / 1000.0 - 0.05, 6) for c in range(10)] for r in range(rows)]
        print("%s\t%s" % (rid, json.dumps({"instances": inst}, separators=(",", ":"))))
    elif cmd in ("timing", "first-next"):
        recs = [json.loads(l) for l in open(argv[2]) if l.strip()]
        if cmd == "first-next":
            ts = [r["t"] for r in recs if r["ev"] == "next"]
            print("%.6f" % ts[0] if ts else "")
            return
        prefix = argv[3] + "-"
        nxt, done = {}, {}
        for r in recs:
            rid = r.get("id") or ""
            if not rid.startswith(prefix):
                continue
            if r["ev"] == "next":
                nxt[rid] = r["t"]
            elif r["ev"] in ("response", "error"):
                done[rid] = r["t"]
        d = sorted((done[k] - nxt[k]) * 1e6 for k in done if k in nxt)
        if not d:
            print("0 0 0 0 0")
            return
        wall = (max(done.values()) - min(nxt.values())) * 1e6 / len(d)
        print("%.0f %.0f %.0f %.0f %d" % (sum(d) / len(d), d[len(d) // 2], d[min(len(d) - 1, len(d) * 99 // 100)],
                                          wall, len(d)))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
