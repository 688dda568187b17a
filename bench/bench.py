#!/usr/bin/env python3
"""doscale's benchmark: scrape time against the network floor, memory, state size, evaluate+plan
time, cold start, and a reference client (curl --parallel) on the same URLs.

Run from the project root:   python3 bench/bench.py            (builds the release binary)
Options:                      --sizes 100,1000,5000 --runs 3 --latency-ms 50 --dead 0.05
                              --timeout 1 --concurrency 64

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

    def config(self, timeout, concurrency, example_policies=True):
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
        text = f'''state_file = "{self.dir}/state.json"
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
        path = os.path.join(self.dir, "bench.toml")
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--dead", type=float, default=0.05)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "doscale"], cwd=ROOT, check=True)
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    L, T, C = a.latency_ms / 1000.0, a.timeout, a.concurrency
    print(f"machine: {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}; "
          f"latency {a.latency_ms} ms, timeout {T:g} s, concurrency {C}, {a.dead:.0%} dead; medians of {a.runs} runs\n")

    scrape_rows, ep_rows, ref_rows = [], [], []
    for n in [int(x) for x in a.sizes.split(",")]:
        sim = Sim(n, a.latency_ms)
        try:
            cfg = sim.config(T, C)
            first = subprocess.run([BIN, "--config", cfg, "scrape", "--output", "json"], capture_output=True, text=True, env=env())
            ds = [d for g in json.loads(first.stdout)["groups"] for d in g["droplets"]]
            dead = int(round(n * a.dead))
            sim.req("PUT", "/_sim/faults", {"droplets_timeout": [d["id"] for d in ds[:dead]]})
            runs = [timed([BIN, "--config", cfg, "scrape", "--output", "json"]) for _ in range(a.runs)]
            bad = [r for r in runs if r[3] != 0]
            if bad:
                print(f"scrape of {n} failed: {bad[0][4][-300:]}")
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            cpu = statistics.median(r[2] for r in runs)
            pages = -(-n // 200)
            floor = max(T, ((n - dead) * L + dead * T) / C) + pages * L
            size = os.path.getsize(os.path.join(sim.dir, "state.json"))
            scrape_rows.append((n, dead, wall, floor, wall / floor, rss, size / n, cpu))

            # evaluate + plan on this state (two scrapes are in it: rates work)
            ev = [timed([BIN, "-v", "--config", cfg, "evaluate", "--output", "json"]) for _ in range(a.runs)]
            pl = [timed([BIN, "-v", "--config", cfg, "plan", "--output", "json"]) for _ in range(a.runs)]
            e_wall, p_wall = statistics.median(r[0] for r in ev), statistics.median(r[0] for r in pl)
            core = lambda rs: statistics.median(float(re.search(r"decision core ([0-9.]+) ms", r[4]).group(1)) for r in rs)
            ep_rows.append((n, e_wall, p_wall, e_wall + p_wall, max(r[1] for r in ev + pl), core(ev), core(pl)))

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
        print(f"{n:>6} {e * 1000:>12.1f} {p * 1000:>8.1f} {s * 1000:>8.1f} {rss:>12.1f} {ce:>13.2f} {cp:>13.2f}")
    if ref_rows:
        print("\nReference client: curl --parallel on the same URLs (same concurrency, same timeout)")
        print(f"{'N':>6} {'curl s':>8} {'doscale s':>10} {'doscale/curl':>13} {'sim, no dead, curl s':>21} {'N·L/C s':>8}")
        for n, ref, w, r, alive, ideal in ref_rows:
            print(f"{n:>6} {ref:>8.3f} {w:>10.3f} {r:>13.2f} {alive:>21.3f} {ideal:>8.3f}")
    cold = [timed([BIN, "--version"])[0] for _ in range(max(a.runs, 20))]
    print(f"\nCold start: doscale --version median {statistics.median(cold) * 1000:.1f} ms (min {min(cold) * 1000:.1f} ms, {len(cold)} runs)")


if __name__ == "__main__":
    main()
