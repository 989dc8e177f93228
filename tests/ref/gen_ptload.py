#!/usr/bin/python3
"""gen_ptload.py — tiny PyTorch checkpoints for tests/test_ptload.c.

Run with /usr/bin/python3 (Debian torch). Values are arange-based so that the
C test can recompute them without a second fixture:
  small.pt   top object = OrderedDict state dict (float32/16/64, int64, a
             transposed (non-contiguous) view, a view with storage offset,
             an nn.Parameter, a 0-d tensor)
  nested.pt  {'model': state dict, 'iteration': 7, 'lr': 0.5, 'optimizer': {...}}
             as PANNs checkpoints are laid out
  legacy.pt  the same as small.pt in torch's legacy (non-zip) format
  wrong_mn04.pt  an mn04-like state dict whose stem conv is 5x5 (shape check)
  zip64.pt   small.pt re-packed with zip64 records everywhere (zipfile's limit
             lowered so that every size/offset takes the zip64 path)
  deflated.pt  small.pt re-packed with compressed entries (must be refused)
"""
import collections
import os
import zipfile

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "pt")


def state():
    sd = collections.OrderedDict()
    sd["conv.weight"] = torch.arange(18, dtype=torch.float32).reshape(2, 1, 3, 3) * 0.5
    sd["conv.bias"] = torch.tensor([-1.0, 2.5])
    sd["half"] = (torch.arange(6, dtype=torch.float32) / 4 - 0.5).to(torch.float16)
    sd["double"] = torch.arange(4, dtype=torch.float64) * 1.25
    sd["bn.num_batches_tracked"] = torch.tensor(12345, dtype=torch.int64)
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd["transposed"] = base.t()                 # shape (4, 3), strides (1, 4)
    sd["offset_view"] = base[1:, 1:3]           # shape (2, 2), offset 5, strides (4, 1)
    sd["param"] = torch.nn.Parameter(torch.tensor([[3.0, -4.0]]))
    sd["scalar"] = torch.tensor(0.25)
    return sd


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = state()
    torch.save(sd, os.path.join(OUT, "small.pt"))
    ck = {"model": sd, "iteration": 7, "lr": 0.5,
          "optimizer": {"state": {}, "param_groups": [{"lr": 0.5, "betas": (0.9, 0.999),
                                                        "params": [0, 1], "amsgrad": False,
                                                        "weight_decay": None}]}}
    torch.save(ck, os.path.join(OUT, "nested.pt"))
    torch.save(sd, os.path.join(OUT, "legacy.pt"), _use_new_zipfile_serialization=False)
    torch.save({"features.0.0.weight": torch.zeros(8, 1, 5, 5)},
               os.path.join(OUT, "wrong_mn04.pt"))
    src = os.path.join(OUT, "small.pt")
    with zipfile.ZipFile(src) as z:
        items = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    saved = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 16          # every entry, offset and the directory go zip64
    try:
        with zipfile.ZipFile(os.path.join(OUT, "zip64.pt"), "w", zipfile.ZIP_STORED) as z:
            for name, data in items:
                z.writestr(name, data)
    finally:
        zipfile.ZIP64_LIMIT = saved
    with zipfile.ZipFile(os.path.join(OUT, "deflated.pt"), "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in items:
            z.writestr(name, data)
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))


if __name__ == "__main__":
    main()
