#!/usr/bin/python3
"""bench_cnn14.py — CNN14 engine (src/nn/cnn14.c) against PyTorch, same weights, same inputs.

Run from anywhere with /usr/bin/python3 (torch 1.13, oneDNN):
    scripts/bench_cnn14.py [--ravdess-clips N] [--repeats R] [--keep DIR]
What it does, in one run:
  * builds scripts/bench_cnn14_main.c against build/libmelodic.a (runs `make` first);
  * makes a full-width Cnn14 (64 … 2048, 80.8 M parameters) with seeded random weights
    and non-trivial BN statistics (tests/ref/gen_cnn14.py), saved as PANNs saves its
    checkpoints (.pth, zip) — the engine loads that very file through src/io/ptload;
  * log-mel inputs (PANNs 32 kHz front end, torchaudio) for one 10 s 4Q clip and a
    subset of RAVDESS (N clips spread over the 24 actors; all 1,440 take long);
  * PyTorch: eval mode, no_grad, batch 1 per clip, torch.set_num_threads(1 and 2),
    each configuration in a fresh process (peak RSS per process);
  * ours: 1 and 2 threads inside one clip; and clip-level parallelism (2 clips at once);
  * prints ms per 10 s clip, clips/s over the subset, peak RSS, GFLOP/s (2·MACs of a
    direct convolution / time, so Winograd shows as "effective" GFLOP/s), the measured
    OpenBLAS sgemm peak (OPENBLAS_CORETYPE as set, and SkylakeX for reference), the
    ratios, and the largest difference between the two implementations' outputs.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'ref'))


def sh(cmd, env=None):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True, env=env,
                          cwd=ROOT).stdout


def kv(text):
    out = {}
    for line in text.splitlines():
        p = line.split()
        if len(p) == 2:
            try:
                out[p[0]] = float(p[1])
            except ValueError:
                out[p[0]] = p[1]
    return out


def build_driver(tmp):
    sh('make -s -j2 all')
    exe = os.path.join(tmp, 'bench_cnn14_main')
    pkgs = __import__('re').search(r'^PKGS := (.*)$', open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'Makefile')).read(), __import__('re').M).group(1)
    sh('gcc -O2 -std=gnu11 -fopenmp -Isrc -D_GNU_SOURCE $(pkg-config --cflags %s) '
       'scripts/bench_cnn14_main.c -o %s -Wl,--whole-archive build/libmelodic.a '
       '-Wl,--no-whole-archive $(pkg-config --libs %s) -lm' % (pkgs, exe, pkgs))
    return exe


def make_inputs(tmp, n_ravdess):
    import h5py
    import gen_cnn14 as g
    data = os.environ.get('MELODIC_DATA') or os.path.join(ROOT, '..', 'shared', 'data')
    q = os.path.join(data, 'music-4q', 'Q1')
    song = os.path.join(q, sorted(os.listdir(q))[0])
    rav = []
    actors = sorted(d for d in os.listdir(os.path.join(data, 'ravdess')) if d.startswith('Actor_'))
    per = max(1, -(-n_ravdess // len(actors)))
    for a in actors:
        fs = sorted(os.listdir(os.path.join(data, 'ravdess', a)))
        step = max(1, len(fs) // per)
        rav += [os.path.join(data, 'ravdess', a, f) for f in fs[::step][:per]]
    rav = rav[:n_ravdess]
    ten = os.path.join(tmp, 'in_10s.h5')
    sub = os.path.join(tmp, 'in_ravdess.h5')
    with h5py.File(ten, 'w') as f:
        x = g.load_clip(song, 32000, 10.0)
        f.create_dataset('music_10s/logmel', data=g.logmel(x, 32000, 1024, 320, 14000.0).numpy())
    frames = 0
    with h5py.File(sub, 'w') as f:
        for i, p in enumerate(rav):
            lm = g.logmel(g.load_clip(p, 32000), 32000, 1024, 320, 14000.0).numpy()
            frames += lm.shape[0]
            f.create_dataset('r%04d/logmel' % i, data=lm)
    return ten, sub, len(rav), frames


def torch_worker(args):
    """Child process: time PyTorch on one configuration, print JSON."""
    import h5py
    import torch
    import gen_cnn14 as g
    torch.set_num_threads(args.threads)
    model = g.Cnn14Net()
    ck = torch.load(args.ckpt, map_location='cpu')
    model.load_state_dict({k: v for k, v in ck['model'].items()
                           if not k.startswith(('spectrogram_extractor', 'logmel_extractor'))})
    model.eval()
    del ck
    res = {}
    with h5py.File(args.inputs, 'r') as f:
        clips = [(k, torch.from_numpy(f[k]['logmel'][:])) for k in sorted(f.keys())]
    outs = {}
    with torch.no_grad():
        model(clips[0][1][None])            # warm-up (oneDNN primitive creation)
        best = 1e30
        for _ in range(args.repeats):
            t = time.perf_counter()
            for k, lm in clips:
                e, s = model(lm[None])
                outs[k] = (e[0].numpy(), s[0].numpy())
            best = min(best, time.perf_counter() - t)
    res['best_s'] = best
    res['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if args.out:
        with h5py.File(args.out, 'w') as f:
            for k, (e, s) in outs.items():
                f.create_dataset(k + '/embedding', data=e)
                f.create_dataset(k + '/scores', data=s)
    print(json.dumps(res))


def run_torch(ckpt, inputs, threads, repeats, out=None):
    cmd = [sys.executable, os.path.abspath(__file__), '--torch-worker', '--ckpt', ckpt,
           '--inputs', inputs, '--threads', str(threads), '--repeats', str(repeats)]
    if out:
        cmd += ['--out', out]
    r = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_ours(exe, ckpt, inputs, out, threads, repeats, algo='auto', clippar=0):
    r = sh('%s forward %s %s %s %d %d %s %d' % (exe, ckpt, inputs, out, threads, repeats, algo,
                                                clippar))
    return kv(r)


def max_diff(a_path, b_path):
    import h5py
    import numpy as np
    de = ds = 0.0
    with h5py.File(a_path, 'r') as a, h5py.File(b_path, 'r') as b:
        for k in a.keys():
            de = max(de, float(np.abs(a[k]['embedding'][:] - b[k]['embedding'][:]).max()))
            ds = max(ds, float(np.abs(a[k]['scores'][:] - b[k]['scores'][:]).max()))
    return de, ds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ravdess-clips', type=int, default=24)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--keep', help='folder for the checkpoint and inputs (default: temporary)')
    ap.add_argument('--torch-worker', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('--ckpt', help=argparse.SUPPRESS)
    ap.add_argument('--inputs', help=argparse.SUPPRESS)
    ap.add_argument('--threads', type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument('--out', help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        return torch_worker(args)

    import torch
    import gen_cnn14 as g
    tmpobj = None
    if args.keep:
        tmp = args.keep
        os.makedirs(tmp, exist_ok=True)
    else:
        tmpobj = tempfile.TemporaryDirectory(prefix='bench_cnn14_')
        tmp = tmpobj.name
    print('machine: %s, %d CPUs; torch %s (oneDNN), OPENBLAS_CORETYPE=%s' % (
        sh("lscpu | sed -n 's/^Model name: *//p'").strip(), os.cpu_count(), torch.__version__,
        os.environ.get('OPENBLAS_CORETYPE', '(unset)')))
    exe = build_driver(tmp)
    ckpt = os.path.join(tmp, 'cnn14_full_random.pth')
    if not os.path.exists(ckpt):
        model = g.make_model(g.WIDTHS_FULL, seed=11)
        front = {'spectrogram_extractor.stft.conv_real.weight': torch.zeros(513, 1, 1024),
                 'spectrogram_extractor.stft.conv_imag.weight': torch.zeros(513, 1, 1024),
                 'logmel_extractor.melW': torch.zeros(513, 64)}
        g.save_panns(model, ckpt, front)
        del model
    print('checkpoint: full width, random weights, %d bytes (PANNs format)' % os.path.getsize(ckpt))
    ten, sub, n_rav, rav_frames = make_inputs(tmp, args.ravdess_clips)
    print('inputs: one 10 s 4Q clip (1001 frames); %d RAVDESS clips (%d frames, %.1f s of audio)'
          % (n_rav, rav_frames, rav_frames * 0.01))

    peak = {}
    for nt in (1, 2):
        peak[nt] = kv(sh('%s sgemm 2048 %d' % (exe, nt)))['sgemm_gflops']
    env = dict(os.environ, OPENBLAS_CORETYPE='SkylakeX')
    skx = kv(sh('%s sgemm 2048 1' % exe, env=env))['sgemm_gflops']
    print('\nOpenBLAS sgemm 2048^3: %.1f GFLOP/s (1 thread), %.1f (2 threads) with the '
          'configured core type; %.1f (1 thread) with OPENBLAS_CORETYPE=SkylakeX (AVX-512, '
          'reference only)' % (peak[1], peak[2], skx))

    rows = []
    t_out = os.path.join(tmp, 'torch_10s.h5')
    o_out = os.path.join(tmp, 'ours_10s.h5')
    print('\n== one 10 s clip (best of %d) ==' % args.repeats)
    print('%-28s %10s %10s %12s %14s' % ('', 'ms/clip', 'GFLOP/s', 'peak RSS MB', 'vs PyTorch'))
    res = {}
    for nt in (1, 2):
        tr = run_torch(ckpt, ten, nt, args.repeats, t_out if nt == 1 else None)
        ou = run_ours(exe, ckpt, ten, o_out, nt, args.repeats)
        im = run_ours(exe, ckpt, ten, o_out + '.im2col.h5', nt, args.repeats, 'im2col')
        flops = ou['gflops'] * ou['best_s']          # GFLOP of one 10 s clip
        res[nt] = (tr, ou)
        for name, r in (('PyTorch %d thread(s)' % nt, tr), ('ours auto, %d thread(s)' % nt, ou),
                        ('ours im2col, %d thread(s)' % nt, im)):
            print('%-28s %10.1f %10.1f %12.0f %13.2fx' % (
                name, 1e3 * r['best_s'], flops / r['best_s'], r['peak_rss_mb'],
                tr['best_s'] / r['best_s']))
        rows.append((nt, tr['best_s'], ou['best_s']))
    print('(GFLOP per 10 s clip, direct-convolution count: %.1f; ours is the same '
          'arithmetic through Winograd in blocks 1-5)' % flops)
    print('ours: resident after loading the model %.0f MB (peak includes the checkpoint read '
          'by ptload at load time)' % ou['model_rss_mb'])
    de, ds = max_diff(t_out, o_out)
    print('outputs, ours vs PyTorch: embedding max |diff| %.3g, scores max |diff| %.3g' % (de, ds))

    print('\n== RAVDESS subset: %d clips, batch 1 each (best of %d) ==' % (n_rav, max(1, args.repeats - 1)))
    print('%-36s %10s %10s %12s' % ('', 'clips/s', 'ms/clip', 'peak RSS MB'))
    t_sub = os.path.join(tmp, 'torch_sub.h5')
    o_sub = os.path.join(tmp, 'ours_sub.h5')
    rep = max(1, args.repeats - 1)
    for nt in (1, 2):
        tr = run_torch(ckpt, sub, nt, rep, t_sub if nt == 1 else None)
        ou = run_ours(exe, ckpt, sub, o_sub, nt, rep)
        for name, r in (('PyTorch %d thread(s)' % nt, tr), ('ours, %d thread(s) per clip' % nt, ou)):
            print('%-36s %10.2f %10.1f %12.0f' % (name, n_rav / r['best_s'], 1e3 * r['best_s'] / n_rav,
                                                 r['peak_rss_mb']))
    cp = run_ours(exe, ckpt, sub, o_sub + '.par.h5', 2, rep, 'auto', 1)
    print('%-36s %10.2f %10.1f %12.0f' % ('ours, 2 clips at once (1 thread each)', n_rav / cp['best_s'],
                                         1e3 * cp['best_s'] / n_rav, cp['peak_rss_mb']))
    de, ds = max_diff(t_sub, o_sub)
    print('outputs, ours vs PyTorch over the subset: embedding max |diff| %.3g, scores %.3g' % (de, ds))
    print('\nnotes: peak RSS is per process and includes the weights (ours: packed/Winograd '
          'copies plus the checkpoint read at load time; PyTorch: the interpreter, libraries and '
          'the state dict). Timings share the machine with other jobs.')
    if tmpobj:
        tmpobj.cleanup()


if __name__ == '__main__':
    sys.exit(main())
