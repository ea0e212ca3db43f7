"""Figure 4 (comparison part): resident bytes per story, our LSHIndex vs datasketch MinHashLSH.

Each structure is built in a fresh child process from the same precomputed signatures and
the child's RSS growth is reported, so neither pays for the other's garbage. Three holders:

* ours: ``LSHIndex`` with the band keys of every story window (what the server holds);
* datasketch, same job: ``MinHashLSH(params=(bands, rows))`` holding one ``LeanMinHash`` per
  story window (``MinHasher.lean_minhash``), i.e. the same signatures, same banding;
* datasketch, the issue's reference: one whole-story 128-permutation signature per story in
  ``MinHashLSH(threshold=0.5, num_perm=128)`` (the ~8.5 KB/story figure).

datasketch is slow to fill and large, so it holds only ``memory_ds_stories`` stories; bytes per
story are size-independent for it (dicts of sets per band), and the report says so.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import REPO, log, rss_bytes
from wiretrace.config import IndexSettings
from wiretrace.index import release_free_heap
from wiretrace.shingling import shingle_hashes, window_bounds
from wiretrace.signatures import MinHasher
from wiretrace.text import tokenize


def _child(kind: str, npz: Path) -> dict[str, Any]:
    data = np.load(npz)
    sigs, owner, keys, whole = data["sigs"], data["owner"], data["keys"], data["whole"]
    settings = IndexSettings()
    n_stories = int(owner.max()) + 1
    # Freed temporaries (of loading, of building) handed back first, so RSS
    # growth counts what each structure holds, not what the allocator kept.
    gc.collect()
    release_free_heap()
    before = rss_bytes()
    holder: Any
    extra: dict[str, Any] = {}
    if kind == "ours":
        from wiretrace.index import LSHIndex

        holder = LSHIndex()
        per = keys.shape[1]
        holder.insert(keys.reshape(-1), np.repeat(owner.astype(np.uint32), per))
        extra["nbytes"] = holder.nbytes
    elif kind == "ds_windows":
        from datasketch import MinHashLSH

        hasher = MinHasher(settings.num_perm, settings.bands, settings.rows, settings.seed)
        holder = MinHashLSH(num_perm=settings.num_perm, params=(settings.bands, settings.rows))
        counter: dict[int, int] = {}
        for sig, o in zip(sigs, owner.tolist(), strict=True):
            w = counter.get(o, 0)
            counter[o] = w + 1
            holder.insert(f"g{o:08d}:{w}", hasher.lean_minhash(sig), check_duplication=False)
    elif kind == "ds_whole128":
        from datasketch import LeanMinHash, MinHashLSH

        holder = MinHashLSH(threshold=0.5, num_perm=128)
        for o, sig in enumerate(whole):
            holder.insert(f"g{o:08d}", LeanMinHash(seed=1, hashvalues=sig, scheme="affine32"), check_duplication=False)
        extra["params"] = [holder.b, holder.r]
    else:
        raise ValueError(kind)
    gc.collect()
    release_free_heap()
    after = rss_bytes()
    return {
        "kind": kind,
        "stories": n_stories,
        "rss_delta_bytes": after - before,
        "bytes_per_story": (after - before) / n_stories,
        **extra,
    }


def prepare(bodies: list[str], path: Path) -> dict[str, Any]:
    """Window signatures, band keys and whole-story 128-perm signatures of `bodies`."""
    settings = IndexSettings()
    hasher = MinHasher(settings.num_perm, settings.bands, settings.rows, settings.seed)
    h128 = MinHasher(128, 64, 2, settings.seed)
    sigs, owner, keys, whole = [], [], [], []
    for i, body in enumerate(bodies):
        sh = shingle_hashes(tokenize(body).hashes, settings.shingle_size)
        a, b = window_bounds(sh.size, settings.window, settings.window)
        s = hasher.signatures(sh, a, b)
        sigs.append(s)
        owner.append(np.full(s.shape[0], i, dtype=np.int64))
        keys.append(hasher.band_keys(s))
        whole.append(h128.signatures(sh, np.zeros(1, np.int64), np.full(1, max(1, sh.size), np.int64))[0])
    np.savez(
        path, sigs=np.concatenate(sigs), owner=np.concatenate(owner), keys=np.concatenate(keys), whole=np.stack(whole)
    )
    return {"windows_per_story": float(sum(s.shape[0] for s in sigs) / len(bodies))}


def run(bodies: list[str], work_dir: Path) -> dict[str, Any]:
    res: dict[str, Any] = {"stories": len(bodies)}
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        npz = Path(tmp) / "sigs.npz"
        res.update(prepare(bodies, npz))
        for kind in ("ours", "ds_windows", "ds_whole128"):
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.bench_memory", kind, str(npz)],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=900,
                check=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
            res[kind] = json.loads(out.stdout.strip().splitlines()[-1])
            log(f"memory {kind}: {res[kind]['bytes_per_story']:.0f} B/story over {len(bodies)} stories")
    return res


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], Path(sys.argv[2]))))
