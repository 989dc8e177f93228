#!/usr/bin/python3
"""soak_server.py — 2,000 mixed requests against `melodic serve`: valid
uploads (raw and multipart), garbage, truncated and empty audio, oversize
bodies, wrong types, bad parameters, health, track lists, ranged track
audio, feedback. Eight client threads over raw sockets (so that an oversize
body can be refused before it is sent, as with Expect: 100-continue). Checks
that every request gets its expected status (none lost) and that the
server's resident memory grows by less than 10% between the end of a
warm-up and the end of the run.
With --speech-calibrated, uploads of four users also fill and use the per-user
calibration store (SQLite) under the same concurrency.
Usage: /usr/bin/python3 scripts/soak_server.py [--speech S.h5] [--library L.h5] [--speech-calibrated C.h5]
       [--clip FILE] [-n 2000]
"""
import argparse
import collections
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_server import ROOT, free_port, stop, wait_up, wav_bytes  # noqa: E402


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def request(port, raw, body=b"", expect_first=False):
    """Send raw header bytes (+ body); returns the status or -1 when the connection failed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        s.sendall(raw)
        if expect_first:   # wait for the early answer (413) before sending anything else
            pass
        elif body:
            s.sendall(body)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        while True:   # drain so that the server's close is orderly
            chunk = s.recv(65536)
            if not chunk:
                break
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else -1
    except OSError:
        return -1
    finally:
        s.close()


def mkreq(method, path, headers=None, body=b"", length=None, expect_first=False):
    h = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    h += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or length is not None:
        h.append(f"Content-Length: {length if length is not None else len(body)}")
    return ("\r\n".join(h) + "\r\n\r\n").encode(), body, expect_first


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--speech", default=os.path.join(ROOT, "build/models/speech.h5"))
    ap.add_argument("--library", default=os.path.join(ROOT, "build/models/library.h5"))
    ap.add_argument("--speech-calibrated", default=None,
                    help="also serve a calibrated bundle: uploads of users u0..u3 then build and use calibration histories")
    data = os.environ.get("MELODIC_DATA", os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--clip", default=os.path.join(data, "ravdess/Actor_01/03-01-02-01-01-01-01.flac"))
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/melodic"), help="e.g. build-asan/melodic")
    a = ap.parse_args()
    wav, _ = wav_bytes(a.clip)
    rng = random.Random(1)
    garbage = bytes(rng.getrandbits(8) for _ in range(20000))
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
    port = free_port()
    db = f"/tmp/mm_soak_{os.getpid()}.sqlite"
    cal = ["--speech-calibrated", a.speech_calibrated] if a.speech_calibrated else []
    p = subprocess.Popen([a.bin, "serve", "--speech", a.speech, "--library", a.library,
                          "--port", str(port), "--threads", "2", "--db", db, "--quiet", "--max-upload", "2"] + cal,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_up(port, p)
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("GET", "/api/tracks?limit=5")
        ids = [t["id"] for t in json.loads(c.getresponse().read())["tracks"]]
        mp = (b"--SoAk\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"v.wav\"\r\n"
              b"Content-Type: audio/wav\r\n\r\n" + wav + b"\r\n--SoAk--\r\n")
        kinds = [  # (name, weight, request, expected status)
            ("recommend", 6, mkreq("POST", "/api/recommend?n=5", {"Content-Type": "audio/wav"}, wav), 200),
            ("emotion-multipart", 3, mkreq("POST", "/api/emotion", {"Content-Type": "multipart/form-data; boundary=SoAk"}, mp), 200),
            ("garbage", 3, mkreq("POST", "/api/emotion", {"Content-Type": "audio/wav"}, garbage), 400),
            ("truncated", 2, mkreq("POST", "/api/recommend", {"Content-Type": "audio/wav"}, wav[:3000]), 400),
            ("empty", 1, mkreq("POST", "/api/emotion", {"Content-Type": "audio/wav"}, b""), 400),
            ("oversize", 2, mkreq("POST", "/api/emotion", {"Content-Type": "audio/wav", "Expect": "100-continue"},
                                 length=50 << 20, expect_first=True), 413),
            ("wrong-type", 1, mkreq("POST", "/api/emotion", {"Content-Type": "text/plain"}, b"hello"), 415),
            ("bad-param", 1, mkreq("POST", "/api/recommend?policy=loud", {"Content-Type": "audio/wav"}, wav), 400),
            ("health", 3, mkreq("GET", "/api/health"), 200),
            ("tracks", 2, mkreq("GET", "/api/tracks?offset=10&limit=50"), 200),
            ("range", 2, mkreq("GET", f"/api/tracks/{ids[0]}/audio", {"Range": "bytes=1000-4999"}), 206),
            ("missing", 1, mkreq("GET", "/api/tracks/" + "0" * 64 + "/audio"), 404),
            ("method", 1, mkreq("DELETE", "/api/health"), 405),
            ("feedback", 1, mkreq("POST", "/api/feedback", {"Content-Type": "application/json"},
                                 json.dumps({"user": "soak", "track": ids[1], "signal": "like"}).encode()), 204),
        ]
        if a.speech_calibrated:   # four users whose clips build (then use) their calibration
            kinds += [(f"user-u{u}", 2, mkreq("POST", f"/api/recommend?n=5&user=u{u}", {"Content-Type": "audio/wav"}, wav), 200)
                      for u in range(4)]
        weights = [k[1] for k in kinds]
        lock = threading.Lock()

        def run(plan, results):
            nxt = [0]

            def worker():
                while True:
                    with lock:
                        if nxt[0] >= len(plan):
                            return
                        k = plan[nxt[0]]
                        nxt[0] += 1
                    raw, body, ef = kinds[k][2]
                    st = request(port, raw, body, ef)
                    with lock:
                        results[k][st] += 1

            th = [threading.Thread(target=worker) for _ in range(a.threads)]
            for t in th:
                t.start()
            for t in th:
                t.join()

        # warm-up with the same mix and concurrency, so that allocator arenas and
        # caches reach their working size before the baseline is taken
        run(rng.choices(range(len(kinds)), weights, k=a.warmup), collections.defaultdict(collections.Counter))
        rss0 = rss_kb(p.pid)
        results = collections.defaultdict(collections.Counter)
        t0 = time.time()
        half = a.n // 2
        plan = rng.choices(range(len(kinds)), weights, k=a.n)
        run(plan[:half], results)
        rss_mid = rss_kb(p.pid)
        run(plan[half:], results)
        wall = time.time() - t0
        rss1 = rss_kb(p.pid)
        alive = p.poll() is None
        bad = 0
        for k, (name, _, _, want) in enumerate(kinds):
            got = results[k]
            wrong = sum(v for s, v in got.items() if s != want)
            bad += wrong
            print(f"{name:>18}: {sum(got.values()):4d} sent, expected {want}: "
                  + ", ".join(f"{s}×{v}" for s, v in sorted(got.items())) + ("" if not wrong else "  <-- WRONG"))
        growth = 100.0 * (rss1 - rss0) / rss0
        print(f"{a.n} requests in {wall:.1f} s ({a.n / wall:.0f} req/s) from {a.threads} threads; "
              f"wrong or lost: {bad}; server alive: {alive}; RSS after warm-up {rss0 / 1024:.1f} MB, "
              f"half-way {rss_mid / 1024:.1f} MB, end {rss1 / 1024:.1f} MB ({growth:+.1f}%)")
        stop(p)
        err = p.stderr.read().decode(errors="replace")
        if p.returncode != 0 or "ERROR" in err or "runtime error" in err:
            print(f"server exit status {p.returncode}; stderr:\n{err[-4000:]}")
        clean = p.returncode == 0 and "runtime error" not in err
        print(f"server stopped cleanly: {clean}")
        ok = bad == 0 and alive and growth < 10 and clean
        print("soak: " + ("passed" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        if p.poll() is None:
            stop(p)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)


if __name__ == "__main__":
    sys.exit(main())
