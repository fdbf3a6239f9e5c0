"""Fixed-seed fits whose results were recorded before the issue-17 refactor.

``python -m tests._behaviour_cases`` (from the repository root) rewrites
``tests/fixtures/behaviour.npz`` from the code as it is; ``test_behaviour.py``
compares the current code with the recorded file. The file was written by the code
of commit 91ee08f (before the refactor), so the test shows that the refactor left
panels and predictions unchanged. Regenerate it only for a deliberate change of
behaviour, and say so in the CHANGELOG.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "behaviour.npz")

BASE = dict(
    k=4,
    max_iter=8,
    hidden_layer_sizes=(16,),
    batch_size=16,
    random_state=0,
    n_threads=1,
    device="cpu",
)


def _data(seed: int = 0, n: int = 150, g: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = np.abs(rng.normal(size=(n, g)))
    for j in range(5):
        X[y == j % 3, j] += 1.5
    X[rng.random((n, g)) < 0.4] = 0.0
    return X, y


def _multitask() -> tuple[np.ndarray, Any]:
    import pandas as pd

    X, y = _data(seed=1)
    rng = np.random.default_rng(7)
    labels = np.array(["a", "b", "c"], dtype=object)[y]
    labels[rng.random(len(y)) < 0.2] = None
    score = X[:, 5] - X[:, 6] + 0.1 * rng.normal(size=len(y))
    score[rng.random(len(y)) < 0.1] = np.nan
    return X, pd.DataFrame({"kind": labels, "score": score, "coarse": y % 2})


def _case(
    X: Any, y: Any, **params: Any
) -> Callable[[], tuple[Any, Any, dict[str, Any]]]:
    return lambda: (X, y, {**BASE, **params})


def cases() -> dict[str, Callable[[], tuple[Any, Any, dict[str, Any]]]]:
    """Name -> () -> (X, y, YOTOSelector params)."""
    X, y = _data()
    Xm, Ym = _multitask()
    return {
        "dense": _case(X, y, early_stopping=False),
        "dense_early_stopping": _case(X, y, early_stopping=True, n_iter_no_change=2),
        "csr": _case(sp.csr_matrix(X), y, early_stopping=True),
        "csc_softmax": _case(sp.csc_matrix(X), y, relaxation="softmax"),
        "design": _case(
            X,
            y,
            required_genes=[7, 3],
            excluded_genes=[0, 11],
            expression_window=(0.2, 1.5),
        ),
        "binarize": _case(X, y, binarize=0.5, class_weight="balanced"),
        "multitask_missing": _case(Xm, Ym, k=6, task_weights=[1.0, 0.5, 2.0]),
        "no_standardize": _case(X, y, standardize=False, class_weight=None),
        "capped_epochs": _case(X, y, max_cells_per_epoch=40, early_stopping=True),
    }


def outputs(sel: Any, X: Any) -> dict[str, np.ndarray]:
    """What must not change: the panel, the scores and every prediction."""
    out = {
        "support": np.asarray(sel.support_),
        "scores": np.asarray(sel.scores_),
        "ranking": np.asarray(sel.ranking_),
        "loss_curve": np.asarray(sel.loss_curve_),
    }
    n_tasks = len(sel.task_types_)
    proba = sel.predict_proba(X) if "classification" in sel.task_types_ else None
    if n_tasks == 1:
        proba = [proba]
    pred = np.asarray(sel.predict(X), dtype=object).reshape(X.shape[0], n_tasks)
    for j, kind in enumerate(sel.task_types_):
        if kind == "classification":
            out[f"proba{j}"] = np.asarray(proba[j])
        else:
            out[f"pred{j}"] = pred[:, j].astype(np.float64)
    return out


def run_all() -> dict[str, np.ndarray]:
    """Fit every case; flat ``{case/name: array}``."""
    import warnings

    from yoto_sklearn import YOTOSelector

    flat: dict[str, np.ndarray] = {}
    for name, make in cases().items():
        X, y, params = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sel = YOTOSelector(**params).fit(X, y)
        for key, value in outputs(sel, X).items():
            flat[f"{name}/{key}"] = value
    return flat


def machine() -> str:
    """The torch version and CPU kind: bits are compared exactly only on the same."""
    import platform

    import torch

    flags = ""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as fh:
            line = next((x for x in fh if x.startswith("flags")), "")
        flags = " ".join(f for f in line.split() if f.startswith(("avx", "fma")))
    return f"torch {torch.__version__} {platform.machine()} {flags}"


if __name__ == "__main__":
    os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
    np.savez_compressed(FIXTURE, machine=np.array(machine()), **run_all())
    print(f"wrote {FIXTURE}")
