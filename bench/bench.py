#!/usr/bin/env python3
"""doscale's benchmark: scrape time against the network floor, memory, state size, evaluate+plan
time, cold start, and a reference client (curl --parallel) on the same URLs.

Run from the project root:   python3 bench/bench.py            (builds the release binary)
Options:                      --sizes 100,1000,5000 --runs 3 --latency-ms 50 --dead 0.05
                              --timeout 1 --concurrency 64
Side by side with an older doscale, in the same run (the same simulator, runs interleaved):
                              --baseline PATH/TO/doscale   or   --compare-rev GIT_REV

Everything talks to loopback only: `doscale sim` serves the API and every droplet on 127.0.0.0/8.
Timings are medians of --runs runs; peak RSS is the maximum (getrusage of the child).
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, "release", "doscale")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith("DIGITALOCEAN") and not k.lower().endswith("_proxy")}
    e["NO_COLOR"] = "1"
    return e


def timed(cmd, stdin=None):
    """Wall time, peak RSS (MB) and CPU time (s) of one command."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env(), stdin=stdin)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace")
    return wall, ru.ru_maxrss / 1024.0, ru.ru_utime + ru.ru_stime, os.waitstatus_to_exitcode(status), err


class Sim:
    def __init__(self, n, latency_ms, seed=5):
        self.dir = tempfile.mkdtemp(prefix="doscale-bench-")
        self.cfg = os.path.join(self.dir, "sim.toml")
        self.log = open(os.path.join(self.dir, "sim.log"), "w")
        self.proc = subprocess.Popen([BIN, "sim", "--droplets", str(n), "--latency-ms", str(latency_ms), "--seed", str(seed),
                                      "--listen", "127.0.0.1:0", "--config-out", self.cfg],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env(), start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if os.path.exists(self.cfg):
                try:
                    self.conf = tomllib.load(open(self.cfg, "rb"))
                    self.url = self.conf["api"]["url"].rstrip("/")
                    self.req("GET", "/_sim/faults")
                    return
                except Exception:
                    pass
            if self.proc.poll() is not None:
                raise SystemExit("doscale sim exited: " + open(self.log.name).read()[-300:])
            time.sleep(0.1)
        raise SystemExit("doscale sim did not come up")

    def req(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        r = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        with OPENER.open(r, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else None

    def config(self, timeout, concurrency, example_policies=True, name="bench"):
        g = self.conf["group"][0] if isinstance(self.conf["group"], list) else self.conf["group"]
        port = g["metrics"]["port"]
        token = os.path.join(self.dir, self.conf["api"]["token_file"])
        policies = ""
        if example_policies:
            # the example configuration's policies and target (config/doscale.toml)
            ex = open(os.path.join(ROOT, "config", "doscale.toml")).read()
            start = ex.index("[[group.policy]]")
            end = ex.index("# do-scaler's custom actions")
            policies = ex[start:end]
        text = f'''state_file = "{self.dir}/{name}-state.json"
max_scrape_age = "1h"
plan_max_age = "1h"
[api]
url = "{self.url}"
token_file = "{token}"
[[group]]
name = "web"
tag = "{g["tag"]}"
min = 1
max = 10000
warmup = "0s"
[group.metrics]
port = {port}
timeout = "{timeout}s"
concurrency = {concurrency}
{policies}'''
        path = os.path.join(self.dir, f"{name}.toml")
        open(path, "w").write(text)
        return path

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


def curl_reference(urls, concurrency, timeout, workdir):
    """A well-tuned C client fetching the same URLs at the same concurrency and timeout."""
    if not shutil.which("curl"):
        return None
    cfg = os.path.join(workdir, "curl.cfg")
    with open(cfg, "w") as f:
        for u in urls:
            f.write(f'url = "{u}"\noutput = "/dev/null"\n')
    t0 = time.monotonic()
    subprocess.run(["curl", "--parallel", "--parallel-max", str(concurrency), "--max-time", str(timeout),
                    "--silent", "--noproxy", "*", "-K", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def build_revision(rev):
    """Builds doscale at git revision `rev` in a temporary worktree, with a target directory of
    its own (kept between runs, so a second comparison with the same revision builds nothing);
    returns the path of the binary. The worktree is removed afterwards."""
    sha = subprocess.run(["git", "rev-parse", "--verify", "--quiet", rev + "^{commit}"], cwd=ROOT,
                         capture_output=True, text=True).stdout.strip()
    if not sha:
        raise SystemExit(f"--compare-rev {rev}: not a commit of this repository")
    target = os.path.join(TARGET, "bench-baseline")
    out = os.path.join(target, f"doscale-{sha[:12]}")
    if os.path.exists(out):
        return out
    os.makedirs(target, exist_ok=True)
    wt = tempfile.mkdtemp(prefix=f"doscale-{sha[:12]}-")
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", wt, sha], cwd=ROOT, check=True)
    try:
        print(f"building {rev} ({sha[:12]}) into {target} ...", flush=True)
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "doscale"], cwd=wt,
                       env={**os.environ, "CARGO_TARGET_DIR": target}, check=True)
        shutil.copy2(os.path.join(target, "release", "doscale"), out)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", wt], cwd=ROOT)
        shutil.rmtree(wt, ignore_errors=True)
    return out


def interleaved(bins, runs, cmd):
    """`runs` runs of `cmd(bin)` for each binary, alternating which goes first; results per binary."""
    out = {b: [] for b in bins}
    for i in range(runs):
        for b in (bins if i % 2 == 0 else bins[::-1]):
            out[b].append(timed(cmd(b)))
    return out


def core_ms(rs):
    """The median of the decision core's time that `-v` logs, None if this binary does not log it."""
    found = [re.search(r"decision core ([0-9.]+) ms", r[4]) for r in rs]
    return statistics.median(float(m.group(1)) for m in found) if all(found) else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--dead", type=float, default=0.05)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--no-build", action="store_true")
    old = ap.add_mutually_exclusive_group()
    old.add_argument("--baseline", metavar="PATH", help="an older doscale binary to measure side by side")
    old.add_argument("--compare-rev", metavar="REV", help="build git revision REV (own target directory) and measure it side by side")
    a = ap.parse_args()
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "doscale"], cwd=ROOT, check=True)
    base = os.path.realpath(a.baseline) if a.baseline else build_revision(a.compare_rev) if a.compare_rev else None
    if base and not os.access(base, os.X_OK):
        raise SystemExit(f"--baseline {base}: not an executable file")
    if base and os.path.realpath(base) == os.path.realpath(BIN):
        raise SystemExit(f"--baseline {base} is this binary: copy the older one elsewhere first")
    bins = [BIN] + ([base] if base else [])
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    L, T, C = a.latency_ms / 1000.0, a.timeout, a.concurrency
    print(f"machine: {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}; "
          f"latency {a.latency_ms} ms, timeout {T:g} s, concurrency {C}, {a.dead:.0%} dead; medians of {a.runs} runs")
    if base:
        version = subprocess.run([base, "--version"], capture_output=True, text=True).stdout.strip()
        print(f"baseline: {base} ({version}), its runs interleaved with this binary's on the same simulator")
    print()

    scrape_rows, ep_rows, ref_rows = [], [], []
    side = []  # (N, figure, this, baseline)
    for n in [int(x) for x in a.sizes.split(",")]:
        sim = Sim(n, a.latency_ms)
        try:
            # one configuration, and so one state file, per binary
            cfgs = {b: sim.config(T, C, name="bench" if b == BIN else "baseline") for b in bins}
            for b in bins:
                first = subprocess.run([b, "--config", cfgs[b], "scrape", "--output", "json"], capture_output=True, text=True, env=env())
                if b == BIN:
                    ds = [d for g in json.loads(first.stdout)["groups"] for d in g["droplets"]]
            dead = int(round(n * a.dead))
            sim.req("PUT", "/_sim/faults", {"droplets_timeout": [d["id"] for d in ds[:dead]]})
            scrapes = interleaved(bins, a.runs, lambda b: [b, "--config", cfgs[b], "scrape", "--output", "json"])
            pages = -(-n // 200)
            floor = max(T, ((n - dead) * L + dead * T) / C) + pages * L
            figs = {}
            for b, runs in scrapes.items():
                bad = [r for r in runs if r[3] != 0]
                if bad:
                    print(f"scrape of {n} by {b} failed: {bad[0][4][-300:]}")
                wall = statistics.median(r[0] for r in runs)
                rss = max(r[1] for r in runs)
                cpu = statistics.median(r[2] for r in runs)
                state = os.path.join(sim.dir, ("bench" if b == BIN else "baseline") + "-state.json")
                figs[b] = {"scrape s": wall, "scrape/floor": wall / floor, "scrape peak RSS MB": rss,
                           "state B/droplet": os.path.getsize(state) / n, "scrape CPU s": cpu}
            f = figs[BIN]
            wall = f["scrape s"]
            scrape_rows.append((n, dead, wall, floor, f["scrape/floor"], f["scrape peak RSS MB"], f["state B/droplet"], f["scrape CPU s"]))

            # evaluate + plan on this state (two scrapes are in it: rates work)
            ev = interleaved(bins, a.runs, lambda b: [b, "-v", "--config", cfgs[b], "evaluate", "--output", "json"])
            pl = interleaved(bins, a.runs, lambda b: [b, "-v", "--config", cfgs[b], "plan", "--output", "json"])
            for b in bins:
                for what, rs in (("evaluate", ev[b]), ("plan", pl[b])):
                    bad = [r for r in rs if r[3] not in (0, 3)]
                    if bad:
                        print(f"{what} of {n} by {b} exited {bad[0][3]}: {bad[0][4][-300:]}")
                e_wall, p_wall = statistics.median(r[0] for r in ev[b]), statistics.median(r[0] for r in pl[b])
                figs[b].update({"evaluate ms": e_wall * 1000, "plan ms": p_wall * 1000,
                                "evaluate+plan ms": (e_wall + p_wall) * 1000,
                                "evaluate+plan peak RSS MB": max(r[1] for r in ev[b] + pl[b]),
                                "core evaluate ms": core_ms(ev[b]), "core plan ms": core_ms(pl[b])})
            f = figs[BIN]
            ep_rows.append((n, f["evaluate ms"] / 1000, f["plan ms"] / 1000, f["evaluate+plan ms"] / 1000,
                            f["evaluate+plan peak RSS MB"], f["core evaluate ms"], f["core plan ms"]))
            if base:
                side += [(n, k, v, figs[base][k]) for k, v in figs[BIN].items()]

            # the reference client on the same URLs, same concurrency and timeout
            port = (sim.conf["group"][0] if isinstance(sim.conf["group"], list) else sim.conf["group"])["metrics"]["port"]
            urls = [f"http://{d['address']}:{port}/" for d in ds]
            refs = [curl_reference(urls, C, T, sim.dir) for _ in range(a.runs)]
            if refs[0] is not None:
                ref = statistics.median(refs)
                # the simulator alone, without the dead droplets (its own serving speed)
                sim.req("PUT", "/_sim/faults", {})
                alive = statistics.median(curl_reference(urls, C, T, sim.dir) for _ in range(a.runs))
                ref_rows.append((n, ref, wall, wall / ref, alive, n * L / C))
        finally:
            sim.close()

    print("Scrape (doscale scrape --output json; floor = max(T, ((N-D)L + DT)/C) + pages·L)")
    print(f"{'N':>6} {'dead':>5} {'wall s':>8} {'floor s':>8} {'ratio':>6} {'peak RSS MB':>12} {'state B/droplet':>16} {'CPU s':>7}")
    for n, d, w, f, r, rss, per, cpu in scrape_rows:
        print(f"{n:>6} {d:>5} {w:>8.3f} {f:>8.3f} {r:>6.2f} {rss:>12.1f} {per:>16.0f} {cpu:>7.2f}")
    print("\nEvaluate + plan on the scraped state (example policies and target): whole commands, with")
    print("reading and atomically rewriting the state file, and the decision core alone (in-process)")
    print(f"{'N':>6} {'evaluate ms':>12} {'plan ms':>8} {'sum ms':>8} {'peak RSS MB':>12} {'core eval ms':>13} {'core plan ms':>13}")
    for n, e, p, s, rss, ce, cp in ep_rows:
        print(f"{n:>6} {e * 1000:>12.1f} {p * 1000:>8.1f} {s * 1000:>8.1f} {rss:>12.1f} {ce or float('nan'):>13.2f} {cp or float('nan'):>13.2f}")
    if ref_rows:
        print("\nReference client: curl --parallel on the same URLs (same concurrency, same timeout)")
        print(f"{'N':>6} {'curl s':>8} {'doscale s':>10} {'doscale/curl':>13} {'sim, no dead, curl s':>21} {'N·L/C s':>8}")
        for n, ref, w, r, alive, ideal in ref_rows:
            print(f"{n:>6} {ref:>8.3f} {w:>10.3f} {r:>13.2f} {alive:>21.3f} {ideal:>8.3f}")
    colds = interleaved(bins, max(a.runs, 20), lambda b: [b, "--version"])
    cold = [r[0] for r in colds[BIN]]
    print(f"\nCold start: doscale --version median {statistics.median(cold) * 1000:.1f} ms (min {min(cold) * 1000:.1f} ms, {len(cold)} runs)")
    if base:
        side.append(("", "cold start ms", statistics.median(r[0] for r in colds[BIN]) * 1000,
                     statistics.median(r[0] for r in colds[base]) * 1000))
        print(f"\nSide by side with the baseline {base}\n(same simulator, runs interleaved; ratio = this / baseline: below 1 is faster or smaller)")
        print(f"{'N':>6}  {'figure':<26} {'this':>10} {'baseline':>10} {'ratio':>7}")
        for n, k, this, old in side:
            if this is None or old is None:
                print(f"{n:>6}  {k:<26} {'-' if this is None else f'{this:.3f}':>10} {'-' if old is None else f'{old:.3f}':>10} {'-':>7}")
            else:
                print(f"{n:>6}  {k:<26} {this:>10.3f} {old:>10.3f} {this / old if old else float('nan'):>7.2f}")


if __name__ == "__main__":
    main()
