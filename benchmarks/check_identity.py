"""Do two versions of the code give bit-identical YOTO panels and predictions?

    python benchmarks/check_identity.py record before.npz   # on the old code
    python benchmarks/check_identity.py record after.npz    # on the new code
    python benchmarks/check_identity.py compare before.npz after.npz

``record`` fits YOTO with its defaults (``n_threads=1``) on every benchmark dataset
(seed 0 split of ``run_benchmark.py``, k = 10, 25, 50) and stores the panel, the
scores and the test-cell predictions (``predict_proba`` per classification task,
``predict`` per regression task). ``compare`` prints one line per array and exits 1
when any differs in any bit. Used for issue 17 (a refactor that must not change
behaviour).
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from datasets import LOADERS, load  # noqa: E402
from run_benchmark import split  # noqa: E402


def record(path: str) -> None:
    from yoto_sklearn import YOTOSelector

    arrays = {}
    for name in LOADERS:
        ds = load(name)
        Xtr, Ytr, Xte, _ = split(ds, 0)
        for k in (10, 25, 50):
            sel = YOTOSelector(
                k=k, random_state=0, task_types=ds.task_types, n_threads=1
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sel.fit(Xtr, Ytr)
            key = f"{name}/k{k}"
            arrays[f"{key}/support"] = np.asarray(sel.support_)
            arrays[f"{key}/scores"] = np.asarray(sel.scores_)
            proba = (
                sel.predict_proba(Xte) if "classification" in sel.task_types_ else []
            )
            proba = [proba] if len(sel.task_types_) == 1 else proba
            pred = np.asarray(sel.predict(Xte), dtype=object).reshape(Xte.shape[0], -1)
            for j, kind in enumerate(sel.task_types_):
                if kind == "classification":
                    arrays[f"{key}/proba{j}"] = np.asarray(proba[j])
                else:
                    arrays[f"{key}/pred{j}"] = pred[:, j].astype(np.float64)
            print(f"{key}: n_iter {sel.n_iter_}", flush=True)
    np.savez_compressed(path, **arrays)


def compare(a_path: str, b_path: str) -> int:
    a, b = np.load(a_path), np.load(b_path)
    bad = 0
    for key in sorted(set(a.files) | set(b.files)):
        if key not in a.files or key not in b.files:
            print(f"{key}: missing in one file")
            bad += 1
            continue
        same = a[key].shape == b[key].shape and np.array_equal(a[key], b[key])
        bad += not same
        print(f"{key}: {'identical' if same else 'DIFFERS'}")
    print(f"{len(a.files)} arrays, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "record":
        record(sys.argv[2])
    else:
        sys.exit(compare(sys.argv[2], sys.argv[3]))
