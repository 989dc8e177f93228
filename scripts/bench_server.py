#!/usr/bin/python3
"""bench_server.py — POST /api/recommend latency and throughput of `melodic
serve` against the Flask + PyTorch + scikit-learn reference
(scripts/ref_server_flask.py, same models from the same files), in one run.

Both servers get the same RAVDESS clip of about 3.5 s as a 16-bit WAV (what
the web page uploads), one server at a time on 127.0.0.1: warm-up, then
latency at 1 client (p50, p99) and throughput at 1, 4 and 16 concurrent
clients (keep-alive connections, fixed request counts). Also prints the
largest probability difference between the two (same models → small; the
resamplers differ: soxr vs torchaudio's sinc). The load generator runs on the
same machine and takes some of its CPU for both.

With --tracks N (issue 17's scale targets), melodic is also run on a library
of N tracks made from --library by scripts/make_synthetic_library (kept in
--work, remade when missing or older than --library), side by side with
--library itself, same model, clip and load; for each it reports the time to
ready (exec to the first /api/health 200, the library being opened before the
server listens; with --cold also once with the library file evicted from the
page cache), the server's peak resident memory (VmHWM) and its CPU time
per request at 1 and 16 clients (on a machine shared with other work the
steady figure: 2 cores / CPU per request bounds the throughput the load
generator could not reach), and checks the targets (p50 <= 10 ms, p99 <= 30 ms
at 1 client, >= 300 req/s at 16 clients, ready <= 3 s, RSS <= 2 GB).
Usage: /usr/bin/python3 scripts/bench_server.py [--speech S.h5] [--library L.h5]
         [--clip FILE] [--threads N] [--requests N] [--no-ref] [--bin MELODIC]
         [--tracks N [--work DIR] [--cold]]
"""
import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import torchaudio
from scipy.io import wavfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wav_bytes(path):
    x, sr = torchaudio.load(path)
    x = x.mean(0).numpy()
    b = io.BytesIO()
    wavfile.write(b, sr, np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16))
    return b.getvalue(), len(x) / sr


def wait_up(port, proc, seconds=300, poll=0.2):
    t0 = time.time()
    while time.time() - t0 < seconds:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/api/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(poll)
    raise RuntimeError("server did not come up")


def post(conn, body):
    conn.request("POST", "/api/recommend?n=10", body=body, headers={"Content-Type": "audio/wav"})
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def run_load(port, body, clients, total):
    """total requests over `clients` keep-alive connections; returns latencies (s), wall (s), errors."""
    lat, errors, lock = [], [0], threading.Lock()
    per = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]

    def worker(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        for _ in range(per[k]):
            t = time.perf_counter()
            try:
                st, _ = post(conn, body)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                st = -1
            mine.append(time.perf_counter() - t)
            if st != 200:
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            lat.extend(mine)

    th = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in th:
        t.start()
    for t in th:
        t.join()
    return np.array(lat), time.perf_counter() - t0, errors[0]


def cpu_s(pid):
    """user + system CPU seconds of a process and its threads."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s():
    """user + system CPU seconds of this process (the load generator's threads)."""
    t = os.times()
    return t.user + t.system


def vm_hwm_mb(pid):
    """peak resident set (VmHWM) of a running process, MB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def bench(name, port, body, n_lat, counts, pid):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(5):
        st, data = post(conn, body)
        assert st == 200, (name, st, data[:200])
    conn.close()
    out = {"answer": json.loads(data)}
    c0 = cpu_s(pid)
    lat, wall, err = run_load(port, body, 1, n_lat)
    out["cpu_ms"] = 1e3 * (cpu_s(pid) - c0) / n_lat
    out["p50"], out["p99"] = np.percentile(lat, 50) * 1e3, np.percentile(lat, 99) * 1e3
    print(f"{name:>8}: 1 client, {n_lat} requests: p50 {out['p50']:.1f} ms, p99 {out['p99']:.1f} ms, "
          f"server CPU {out['cpu_ms']:.1f} ms/request, errors {err}", flush=True)
    for c, total in counts:
        c0, g0 = cpu_s(pid), own_cpu_s()
        lat, wall, err = run_load(port, body, c, total)
        c1, g1 = cpu_s(pid), own_cpu_s()
        out[c] = total / wall
        out[f"cpu_ms{c}"] = 1e3 * (c1 - c0) / total
        out[f"gen_ms{c}"] = 1e3 * (g1 - g0) / total
        print(f"{name:>8}: {c:2d} clients, {total} requests: {total / wall:6.1f} req/s, "
              f"p50 {np.percentile(lat, 50) * 1e3:.1f} ms, p99 {np.percentile(lat, 99) * 1e3:.1f} ms, "
              f"server busy {(c1 - c0) / wall:.2f} cores, CPU {out[f'cpu_ms{c}']:.1f} ms/request "
              f"(load generator {out[f'gen_ms{c}']:.1f}), errors {err}", flush=True)
    return out


def start(cmd, port, env=None, poll=0.2):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        wait_up(port, p, poll=poll)
    except Exception:
        p.kill()
        print(p.stderr.read().decode()[-2000:], file=sys.stderr)
        raise
    return p


def stop(p):
    p.terminate()
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def synthetic(library, n, work):
    """The n-track library made from `library` (kept in work; remade when missing or older)."""
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, f"library_{n}.h5")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(library):
        t = time.time()
        tmp = out + ".tmp"
        subprocess.run([os.path.join(ROOT, "scripts/make_synthetic_library"), library, str(n), tmp], check=True,
                       stdout=subprocess.DEVNULL)
        os.replace(tmp, out)
        print(f"made {os.path.relpath(out, ROOT)} from {os.path.relpath(library, ROOT)} in {time.time() - t:.0f} s",
              flush=True)
    return out


def run_melodic(name, a, library, body, counts, env, ready_runs):
    """Start melodic serve on library ready_runs times (time to the first /api/health 200, polled every
    2 ms; the median is reported), bench the last one and read its VmHWM before stopping it."""
    cmd = [a.bin, "serve", "--speech", a.speech, "--library", library,
           "--threads", str(a.threads), "--db", "none", "--quiet"]
    cold = None
    if a.cold:   # one start with the library file evicted from the page cache (its clean pages only)
        fd = os.open(library, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        port = free_port()
        t0 = time.perf_counter()
        stop(start(cmd + ["--port", str(port)], port, env, poll=0.002))
        cold = time.perf_counter() - t0
    ready = []
    for k in range(ready_runs):
        port = free_port()
        t0 = time.perf_counter()
        p = start(cmd + ["--port", str(port)], port, env, poll=0.002)
        ready.append(time.perf_counter() - t0)
        if k + 1 < ready_runs:
            stop(p)
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/api/health")
        n_tracks = json.loads(c.getresponse().read())["tracks"]
        c.close()
        out = bench(name, port, body, a.requests, counts, p.pid)
        out["n_tracks"] = n_tracks
        out["ready"] = float(np.median(ready))
        out["hwm"] = vm_hwm_mb(p.pid)
    finally:
        stop(p)
    out["tracks"] = out["answer"].get("tracks", [])
    out["cold"] = cold
    print(f"{name:>8}: ready {out['ready']:.2f} s (median of {ready_runs} starts: "
          f"{', '.join(f'{r:.2f}' for r in ready)}" + (f"; file evicted from the page cache first: {cold:.2f} s"
                                                       if cold is not None else "")
          + f"), peak RSS (VmHWM) {out['hwm']:.0f} MB", flush=True)
    return out


def scale_report(a, small, big):
    """The issue-17 targets at --tracks, side by side with the small library."""
    cores, n_small = os.cpu_count(), small["n_tracks"]
    print(f"scale: {n_small} tracks vs {big['n_tracks']} tracks (same speech model, clip, load; {cores} cores)")
    rows = [("p50 at 1 client, ms", "p50", "{:.1f}", "<= 10"), ("p99 at 1 client, ms", "p99", "{:.1f}", "<= 30"),
            ("req/s at 1 client", 1, "{:.0f}", ""), ("req/s at 4 clients", 4, "{:.0f}", ""),
            ("req/s at 16 clients", 16, "{:.0f}", ">= 300"),
            ("server CPU ms/request, 1 client", "cpu_ms", "{:.2f}", ""),
            ("server CPU ms/request, 16 clients", "cpu_ms16", "{:.2f}", ""),
            ("load generator CPU ms/request, 16 clients", "gen_ms16", "{:.2f}", ""),
            (f"req/s bound by CPU at 16 clients ({cores} cores / server CPU per request)", "bound", "{:.0f}", ">= 300"),
            (f"  same, with this load generator on the same {cores} cores", "bound_gen", "{:.0f}", ""),
            ("ready (exec to /api/health), s", "ready", "{:.2f}", "<= 3"),
            ("  same, library file evicted from the page cache first, s", "cold", "{:.2f}", ""),
            ("peak RSS (VmHWM), MB", "hwm", "{:.0f}", "<= 2048")]
    for r in (small, big):
        r["bound"] = 1e3 * cores / r["cpu_ms16"]
        r["bound_gen"] = 1e3 * cores / (r["cpu_ms16"] + r["gen_ms16"])
    ok = {"p50": big["p50"] <= 10, "p99": big["p99"] <= 30, 16: big[16] >= 300, "bound": big["bound"] >= 300,
          "ready": big["ready"] <= 3, "hwm": big["hwm"] <= 2048}
    print(f"  {'':66s} {n_small:>9d} {big['n_tracks']:>9d}  target")
    for label, key, fmt, target in rows:
        if small.get(key) is None or big.get(key) is None:
            continue
        mark = "" if not target else ("  met" if ok[key] else "  MISSED")
        print(f"  {label:66s} {fmt.format(small[key]):>9s} {fmt.format(big[key]):>9s}  {target}{mark}")
    print(f"  answers: {len(small['tracks'])} and {len(big['tracks'])} tracks, emotion "
          f"{small['answer']['emotion']} / {big['answer']['emotion']}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--speech", default=os.path.join(ROOT, "build/models/speech.h5"))
    ap.add_argument("--library", default=os.path.join(ROOT, "build/models/library.h5"))
    data = os.environ.get("MELODIC_DATA", os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--clip", default=os.path.join(data, "ravdess/Actor_01/03-01-02-01-01-01-01.flac"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--requests", type=int, default=60, help="requests for the 1-client latency run")
    ap.add_argument("--no-ref", action="store_true")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/melodic"), help="the melodic to run (e.g. another build)")
    ap.add_argument("--tracks", type=int, default=0, help="also run melodic on a synthetic library of N tracks")
    ap.add_argument("--work", default=os.path.join(ROOT, "build/bench_server"), help="where --tracks keeps its library")
    ap.add_argument("--ready-runs", type=int, default=3, help="server starts timed per library (median)")
    ap.add_argument("--cold", action="store_true", help="also time one start with the library evicted from the page cache")
    a = ap.parse_args()
    body, secs = wav_bytes(a.clip)
    print(f"clip {os.path.relpath(a.clip, ROOT)}: {secs:.2f} s, {len(body)} bytes WAV; "
          f"{os.cpu_count()} cores; ours with {a.threads} workers; load average "
          + open("/proc/loadavg").read().split()[0], flush=True)
    counts = [(1, a.requests // 2), (4, a.requests), (16, 2 * a.requests)]
    # the machine's OpenBLAS needs its core type named (else a slow generic kernel); both servers get it
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = {}
    big = synthetic(a.library, a.tracks, a.work) if a.tracks else None
    res["melodic"] = run_melodic("melodic", a, a.library, body, counts, env, a.ready_runs)
    if big:
        res["big"] = run_melodic(f"melodic {a.tracks}", a, big, body, counts, env, a.ready_runs)
        scale_report(a, res["melodic"], res["big"])
    if not a.no_ref:
        # the reference in its best thread setting (Flask's threaded server runs requests
        # concurrently either way): torch, OpenMP and OpenBLAS with one thread each, or
        # with their defaults (all cores); per metric the better of the two
        settings = [("1 thread each", ["--torch-threads", "1"],
                     dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")),
                    ("library defaults", [], dict(os.environ))]
        for k, (label, extra, fenv) in enumerate(settings):
            port = free_port()
            p = start(["/usr/bin/python3", os.path.join(ROOT, "scripts/ref_server_flask.py"), "--speech", a.speech,
                       "--library", a.library, "--port", str(port)] + extra, port, fenv)
            try:
                res[f"flask{k}"] = bench(f"flask ({label})", port, body, a.requests, counts, p.pid)
            finally:
                stop(p)
        runs = [v for k, v in res.items() if k.startswith("flask")]
        f = dict(runs[0])
        f["p50"] = min(r["p50"] for r in runs)
        f["cpu_ms"] = min(r["cpu_ms"] for r in runs)
        for c in (1, 4, 16):
            f[c] = max(r[c] for r in runs)
        print("flask: the best of its thread settings per metric below", flush=True)
        m = res["melodic"]
        labels = list(m["answer"]["proba"])
        d = max(abs(m["answer"]["proba"][k] - f["answer"]["proba"][k]) for k in labels)
        same = len({t["id"] for t in m["answer"]["tracks"]} & {t["id"] for t in f["answer"]["tracks"]})
        print(f"answers: melodic {m['answer']['emotion']}, flask {f['answer']['emotion']}; "
              f"max |proba diff| {d:.4f}; {same}/10 tracks in common", flush=True)
        print(f"server CPU per request: melodic {m['cpu_ms']:.1f} ms, flask {f['cpu_ms']:.1f} ms, "
              f"ratio {f['cpu_ms'] / m['cpu_ms']:.2f}x (independent of other load on the machine)")
        print(f"p50 at 1 client: melodic {m['p50']:.1f} ms, flask {f['p50']:.1f} ms, ratio {f['p50'] / m['p50']:.2f}x "
              f"(target >= 3x)")
        for c in (1, 4, 16):
            print(f"throughput at {c:2d} clients: melodic {m[c]:.1f} req/s, flask {f[c]:.1f} req/s, "
                  f"ratio {m[c] / f[c]:.2f}x" + (" (target >= 5x)" if c == 16 else ""))
    print("issue's quoted reference: ~31 ms at one client, ~33 req/s max; load average now "
          + open("/proc/loadavg").read().split()[0])


if __name__ == "__main__":
    main()
