#!/usr/bin/env python3
"""bench/run.sh's table (markdown) from the directory of its results.

usage: bench/table.py JSON_DIR   (hyperfine's *.json, and the files names, versions, peaks)
"""
import datetime
import json
import os
import platform
import sys

d = sys.argv[1]
read = lambda f: open(os.path.join(d, f)).read().split("\n")
names = [n for n in read("names") if n]
versions = ", ".join(v for v in read("versions") if v)
kib = [int(p) for p in read("peaks") if p]
others = names[1:]
rows = [("run of /bin/true", "run.json"), ("run after 100 ms of quiet", "run-idle.json"),
        ("create", "create.json"), ("start", "start.json"), ("delete", "delete.json"),
        ("exec into a running container", "exec.json"), ("exec after 100 ms of quiet", "exec-idle.json"),
        ("100 containers one after another", "seq100.json"), ("50 containers at once", "par50.json")]


def ms(x):
    return f"{x * 1000:.1f} ms"


lines = [f"Measured {datetime.date.today()} on {os.cpu_count()} CPUs, kernel {platform.release()}, "
         f"with `bench/run.sh` ({versions}).", "",
         "| benchmark | " + " | ".join(names) + " | " + " | ".join(f"hezi/{n}" for n in others) + " |",
         "|---|" + "---|" * (2 * len(names) - 1)]
for name, f in rows:
    res = {r["command"]: r["mean"] for r in json.load(open(os.path.join(d, f)))["results"]}
    lines.append(f"| {name} | " + " | ".join(ms(res[n]) for n in names) + " | "
                 + " | ".join(f"{res['hezi'] / res[n]:.2f}" for n in others) + " |")
floor = json.load(open(os.path.join(d, "floor.json")))["results"][0]["mean"]
lines.append(f"| floor: `unshare` + chroot + /bin/true | {ms(floor)} |" + " |" * (2 * len(names) - 2))
lines.append("| peak RSS of `create` | " + " | ".join(f"{k} KiB" for k in kib) + " | "
             + " | ".join(f"{kib[0] / k:.2f}" for k in kib[1:]) + " |")
print("\n".join(lines))
