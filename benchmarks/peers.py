"""Learned gene selectors people would pick instead of YOTO (issue 9).

Each peer is installed the way its users get it (``pip install`` of its package, or
the wheel built from its public repository for PERSIST) and run through its own
public API with the settings of its README / quick start. A peer ranker has the
same signature as the classical rankers in ``baselines.py``:
``(X, y, kind, seed, ks) -> {k: at least k gene indices, best first}``, computed
on the training part of the benchmark split only.

Multi-task data: a peer is single-task, so it is run once per task it supports
and the per-task panels are merged round-robin (``baselines.round_robin``), as
for the classical baselines. Two exceptions, both stated in RESULTS.md:

- On data whose tasks nest (every class of the finest task inside one class of
  each other task; ``nested_tasks``) the peers are trained on the finest task
  only, as a user would. None of the benchmark datasets qualifies: in Zeisel,
  some ``level2`` labels occur in up to three ``level1`` classes, so the peers
  ran once on ``level1`` and once on ``level2``.
- Peers are run on the classification tasks only (MarkerMap and scGeneFit
  cannot do regression; for the others it would double the cost on pbmc):
  pbmc's ``S_score``/``G2M_score`` get no per-task panel from any peer, and are
  still scored on the peers' panels.

Settings changed from the authors' for time or for this machine are listed in
``PEER_SETTINGS`` (printed into RESULTS.md next to the results). Every peer's
training is bounded by ``PEER_BUDGET_S`` seconds of wall time per task where the
peer's API allows stopping between epochs (STG, the Concrete selector); PERSIST,
MarkerMap and scGeneFit run to their own stopping rules.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.preprocessing import StandardScaler

PEER_BUDGET_S = 60.0

PEERS = ["persist", "stg", "markermap", "scgenefit", "concrete", "spapros"]

LABELS = {
    "persist": "PERSIST",
    "stg": "STG (stochastic gates)",
    "markermap": "MarkerMap (supervised)",
    "scgenefit": "scGeneFit",
    "concrete": "Concrete selector (supervised)",
    "spapros": "spapros",
}

# spapros selects n genes by cutting one ranking of every gene that does not depend
# on n (``ProbesetSelector.select_probeset``: gene_nr <= n), so one run at the largest
# k gives every smaller panel (in spapros 0.1.6 ``self.n`` enters only that final cut
# and a warning). ``benchmarks/spapros_n_check.py`` checks it on data
# (``results/spapros_n_check.md``).
SPAPROS_HVG = 1000

PEER_SETTINGS = {
    "persist": (
        "wheel built from iancovert/persist (commit a16a496); authors' workflow: "
        "`eliminate(target=250)` then `select(num_genes=k)` for each k, both at "
        "their defaults (hidden [128, 128], Adam 1e-3, batch 64, up to 250 epochs, "
        "tol 0.2, 10 tries), CrossEntropy / MSE loss, 10 % of the training part as "
        "its validation set, expression as given (not binarised: the benchmark "
        "trains and tests on the same modality). Changed for this machine: "
        "DataLoader `num_workers=0` (its default 4 worker processes were slower on "
        "2 cores; same batches). One `eliminate` serves every k and its time is "
        "counted in every k. If `eliminate` fails (no count within the default "
        "tolerance of 20 % of the target after 10 tries) it is rerun with "
        "`tol=0.45` (listed below; the failed tries' time counts); if that fails "
        "too, the run is reported as failed."
    ),
    "stg": (
        "`stg` 0.1.2 from the package index, README usage: hidden [500, 50, 10], "
        "tanh, SGD lr 0.1, full batch, sigma 0.5, lam 0.1, 3000 epochs, cut at "
        f"{PEER_BUDGET_S:.0f} s per task (checked every 100 epochs, so one block "
        "of 100 epochs can overrun it; on Zeisel it stopped far short of 3000 "
        "epochs); standardised "
        "genes; panel = top-k genes "
        "by gate probability, ties by the gate mean (STG does not give exact k). "
        "stg 0.1.2 fails on Python >= 3.10 (`collections.Sequence`); the harness "
        "aliases those names to `collections.abc` before importing it."
    ),
    "markermap": (
        "`markermap` 1.0.3 from the package index, quick start: "
        "`MarkerMap(n_genes, 64, 16, n_classes, k, loss_tradeoff=0)` (supervised), "
        "`train_model` defaults (LR finder, 50-600 epochs, early stopping "
        "patience 3), batch 64, 1/8 of the training part as its validation set; "
        "one model per k; classification tasks only."
    ),
    "scgenefit": (
        "`scGeneFit` 1.0.2 wheel installed with `--no-deps` (its `sklearn` "
        "dependency is the dead PyPI name), `get_markers(X, labels, k, "
        "method='centers')` at its defaults (epsilon 1, redundancy 0.01, "
        "max_constraints 1000), one LP per k; classification tasks only. Its "
        "'centers' constraints pair each class with the next in `set(labels)` "
        "order, which changes with Python's hash seed, so its panels differ "
        "between processes even with numpy's RNG seeded (seen here: pbmc68k "
        "`bulk_labels`, seed 0, k = 10 gave 0.465 and 0.536)."
    ),
    "concrete": (
        "no installable package works: `pip install concrete-autoencoder` "
        "(0.0.1, the authors' Keras code) installs, but with today's Keras 3 its "
        "`fit` fails (`keras.backend.set_learning_phase` is gone) and Keras 2 "
        "needs TensorFlow. Written here from Abid et al. 2019 and that code: k "
        "Concrete selector neurons over the genes, a supervised decoder "
        "2 x [Dense(320)-LeakyReLU(0.2)-Dropout(0.1)]-Dense(out) (its example's), "
        "Adam 1e-3, batch "
        "max(n/256, 16), 300 epochs with the temperature annealed 10 -> 0.1 "
        "geometrically, epochs doubled (up to 5 tries) while the mean max "
        "selection probability is below 0.998, as the reference code does; capped "
        f"at {PEER_BUDGET_S:.0f} s per task and k. Duplicate selections are "
        "replaced by each neuron's next most probable gene so the panel has k genes."
    ),
    "spapros": (
        "`spapros` 0.1.6 from the package index, its basic-selection tutorial: "
        "log-normalised expression as given, "
        "`sc.pp.highly_variable_genes(flavor='cell_ranger', "
        f"n_top_genes={SPAPROS_HVG})` (all genes when there are fewer), then "
        "`ProbesetSelector(adata, celltype_key, n=k, save_dir=None, seed=seed)` and "
        "`select_probeset()` at its defaults (PCA preselection of 100 genes, DE "
        "genes, forests); panel = `probeset` rows with `selection`. Changed for "
        "this machine: `n_jobs=1` (one process per seed on a 2-core machine). "
        "One run with n = max(k) gives every smaller panel: spapros cuts one "
        "n-independent ranking (`gene_nr <= n`; in spapros 0.1.6 `n` enters only "
        "that cut and a warning); checked on data in `results/spapros_n_check.md` "
        "(pbmc68k seed 0, `bulk_labels`: the n = 10 run's genes are the first 10 "
        "of the n = 50 run, in the same order). Workaround: spapros 0.1.6 calls "
        "`np.in1d`, removed in numpy 2.4; the harness defines it as "
        "`np.isin(...).ravel()` (what it was) before importing spapros."
    ),
}


# --------------------------------------------------------------------------- helpers

# Seconds spent by the last peer_panels call: "shared" (one fit serving every k,
# e.g. PERSIST's eliminate or STG's single model) and per k (a model per k).
_TIMES: dict = {}


def _charge(key, seconds: float) -> None:
    _TIMES[key] = _TIMES.get(key, 0.0) + seconds


# Fallbacks taken by the last peer_panels call (reported next to the results).
_NOTES: list[str] = []


def last_notes() -> list[str]:
    """What the last ``peer_panels`` call had to do differently, if anything."""
    return list(_NOTES)


def last_times(ks) -> dict[int, float]:
    """Selection seconds attributable to each ``k`` of the last ``peer_panels``."""
    return {k: _TIMES.get("shared", 0.0) + _TIMES.get(k, 0.0) for k in ks}


@contextlib.contextmanager
def _quiet():
    """Silence a peer's prints, warnings and stray files (run in a temp dir)."""
    import io
    import sys

    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.chdir(tmp)
        out, err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = io.StringIO()
        try:
            yield
        finally:
            sys.stdout, sys.stderr = out, err
            os.chdir(cwd)


def _seed_all(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (peers draw from the global state)
    torch.manual_seed(seed)


def _codes(y) -> tuple[np.ndarray, int]:
    _, codes = np.unique(np.asarray(y).astype(str), return_inverse=True)
    return codes.astype(np.int64), int(codes.max()) + 1


def _val_split(n: int, seed: int, frac: float) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(frac * n)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _fill(panel: np.ndarray, order: np.ndarray, k: int) -> np.ndarray:
    """Distinct genes of ``panel`` (in order), topped up from ``order`` to ``k``."""
    panel = list(dict.fromkeys(int(g) for g in panel))
    for g in order:
        if len(panel) >= k:
            break
        if int(g) not in panel:
            panel.append(int(g))
    return np.asarray(panel[:k], dtype=int)


def nested_tasks(Y, task_types: dict[str, str]) -> str | None:
    """The finest classification task if every other task is a coarsening of it.

    A task is a coarsening of ``fine`` when every class of ``fine`` sits inside a
    single class of it (on the cells labelled for both). ``None`` when the tasks
    do not nest (or a task is regression).
    """
    import pandas as pd

    cls = [t for t, kind in task_types.items() if kind == "classification"]
    if len(cls) != len(task_types) or len(cls) < 2:
        return None
    fine = max(cls, key=lambda t: Y[t].nunique())
    for t in cls:
        if t == fine:
            continue
        both = Y[[fine, t]].dropna()
        if (pd.Series(both[t].values).groupby(both[fine].values).nunique() > 1).any():
            return None
    return fine


# --------------------------------------------------------------------------- peers


def _rank_persist(X, y, kind, seed, ks):
    import torch
    import torch.nn as nn
    from persist import PERSIST, ExpressionDataset
    from persist import models as pmodels
    from torch.utils.data import DataLoader

    def loader(*args, **kwargs):  # num_workers=0: see PEER_SETTINGS
        kwargs["num_workers"] = 0
        return DataLoader(*args, **kwargs)

    pmodels.DataLoader = loader
    Xd = np.asarray(X, dtype=np.float32)
    if kind == "classification":
        out, _ = _codes(y)
        loss = nn.CrossEntropyLoss()
    else:
        yt = np.asarray(y, dtype=float)
        out = ((yt - yt.mean()) / (yt.std() + 1e-12)).astype(np.float32)[:, None]
        loss = nn.MSELoss()
    tr, va = _val_split(len(Xd), seed, 0.1)
    _seed_all(seed)
    t0 = time.perf_counter()
    with _quiet():
        sel = PERSIST(
            ExpressionDataset(Xd[tr], out[tr]),
            ExpressionDataset(Xd[va], out[va]),
            loss_fn=loss,
            device=torch.device("cpu"),
        )
        try:
            _, model = sel.eliminate(target=250, bar=False)
        except ValueError as exc:  # "reached maximum number of trials ..."
            # what its error message suggests and peers.md measured: a wider
            # tolerance around the target count; the failed tries' time counts
            _NOTES.append(
                f"eliminate(target=250, tol=0.2) failed after "
                f"{time.perf_counter() - t0:.0f} s ({str(exc)[:60]}...); "
                "reran with tol=0.45"
            )
            _, model = sel.eliminate(target=250, tol=0.45, bar=False)
        # gate probabilities over all genes (eliminate starts from all of them):
        # tops up a panel whose selector neurons chose the same gene twice
        gate = model.input_layer.probs.detach().cpu().numpy()
        cand_order = np.argsort(-gate, kind="stable")
        _charge("shared", time.perf_counter() - t0)
        result = {}
        for k in ks:
            t1 = time.perf_counter()
            inds, _ = sel.select(num_genes=k, bar=False)
            result[k] = _fill(np.asarray(inds), cand_order, k)
            _charge(k, time.perf_counter() - t1)
    return result


def _stg_python311_shim() -> None:
    """stg 0.1.2 uses ``collections.Sequence``/``Mapping`` (gone since Python 3.10)."""
    import collections
    import collections.abc

    for name in ("Sequence", "Mapping", "Iterable", "Set"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


def _rank_stg(X, y, kind, seed, ks, budget_s=None):
    _stg_python311_shim()
    from stg import STG

    budget = PEER_BUDGET_S if budget_s is None else budget_s
    Xs = StandardScaler().fit_transform(np.asarray(X, dtype=float)).astype(np.float32)
    if kind == "classification":
        yt, n_out = _codes(y)
        task = "classification"
    else:
        yt = np.asarray(y, dtype=float)
        yt = ((yt - yt.mean()) / (yt.std() + 1e-12)).astype(np.float32)
        n_out, task = 1, "regression"
    tr, va = _val_split(len(Xs), seed, 0.1)
    _seed_all(seed)
    with _quiet():
        model = STG(
            task_type=task,
            input_dim=Xs.shape[1],
            output_dim=n_out,
            hidden_dims=[500, 50, 10],
            activation="tanh",
            optimizer="SGD",
            learning_rate=0.1,
            batch_size=len(tr),
            feature_selection=True,
            sigma=0.5,
            lam=0.1,
            random_state=seed,
            device="cpu",
        )
        t0, done = time.perf_counter(), 0
        while done < 3000 and time.perf_counter() - t0 < budget:
            model.fit(
                Xs[tr],
                yt[tr],
                nr_epochs=100,
                valid_X=Xs[va],
                valid_y=yt[va],
                print_interval=1000,
            )
            done += 100
    if done < 3000:
        _NOTES.append(f"budget: stopped after {done} of 3000 epochs")
    prob = np.asarray(model.get_gates(mode="prob"), dtype=float)
    raw = np.asarray(model.get_gates(mode="raw"), dtype=float)
    order = np.lexsort((-raw, -prob))
    _charge("shared", time.perf_counter() - t0)
    return dict.fromkeys(ks, order)


def _rank_markermap(X, y, kind, seed, ks):
    from markermap.utils import get_dataloader
    from markermap.vae_models import MarkerMap, train_model

    Xd = np.asarray(X, dtype=np.float32)
    yt, n_cls = _codes(y)
    tr, va = _val_split(len(Xd), seed, 1 / 8)
    result = {}
    for k in ks:
        _seed_all(seed)
        t0 = time.perf_counter()
        with _quiet():
            train_dl = get_dataloader(Xd[tr], yt[tr], 64, shuffle=True)
            val_dl = get_dataloader(Xd[va], yt[va], 64, shuffle=False)
            mm = MarkerMap(Xd.shape[1], 64, 16, n_cls, k, loss_tradeoff=0)
            train_model(mm, train_dl, val_dl)
            result[k] = np.asarray(mm.markers().clone().cpu().detach().numpy())
        _charge(k, time.perf_counter() - t0)
    return result


def _rank_scgenefit(X, y, kind, seed, ks):
    from scGeneFit.functions import get_markers

    Xd = np.asarray(X, dtype=float)
    labels = list(np.asarray(y).astype(str))
    result = {}
    for k in ks:
        np.random.seed(seed)  # noqa: NPY002 (its constraints sample globally)
        t0 = time.perf_counter()
        with _quiet():
            result[k] = np.asarray(get_markers(Xd, labels, k, verbose=False))
        _charge(k, time.perf_counter() - t0)
    return result


def _rank_concrete(X, y, kind, seed, ks, budget_s=None):
    """Supervised Concrete selector (Abid et al. 2019), one model per k."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    budget = PEER_BUDGET_S if budget_s is None else budget_s
    Xs = torch.as_tensor(StandardScaler().fit_transform(np.asarray(X, dtype=float)))
    Xs = Xs.float()
    if kind == "classification":
        yt, n_out = _codes(y)
        target = torch.as_tensor(yt)

        def loss_fn(out, yb):
            return F.cross_entropy(out, yb)
    else:
        v = np.asarray(y, dtype=float)
        target = torch.as_tensor((v - v.mean()) / (v.std() + 1e-12)).float()
        n_out = 1

        def loss_fn(out, yb):
            return F.mse_loss(out[:, 0], yb)

    n, d = Xs.shape
    bs = max(n // 256, 16)
    result = {}
    for k in ks:
        torch.manual_seed(seed)
        logits = nn.Parameter(torch.empty(k, d))
        nn.init.xavier_normal_(logits)
        decoder = nn.Sequential(  # the reference code's example decoder
            nn.Linear(k, 320),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.1),
            nn.Linear(320, 320),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.1),
            nn.Linear(320, n_out),
        )
        t0 = time.perf_counter()
        epochs = 300
        for _try in range(5):
            opt = torch.optim.Adam([logits, *decoder.parameters()], lr=1e-3)
            steps, step = epochs * int(np.ceil(n / bs)), 0
            for _ in range(epochs):
                for b in torch.randperm(n).split(bs):
                    temp = 10.0 * (0.1 / 10.0) ** (step / steps)
                    u = torch.rand(k, d).clamp(1e-10, 1 - 1e-10)
                    w = F.softmax((logits - torch.log(-torch.log(u))) / temp, dim=1)
                    loss = loss_fn(decoder(Xs[b] @ w.T), target[b])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    step += 1
                if time.perf_counter() - t0 > budget:
                    break
            converged = F.softmax(logits.detach(), 1).max(1).values.mean() >= 0.998
            if converged or time.perf_counter() - t0 > budget:
                break
            epochs *= 2
        probs = F.softmax(logits.detach(), 1).numpy()
        # each neuron's genes by probability; duplicates fall to the next choice
        chosen: list[int] = []
        for row in probs[np.argsort(-probs.max(1))]:
            for g in np.argsort(-row):
                if int(g) not in chosen:
                    chosen.append(int(g))
                    break
        result[k] = np.asarray(chosen, dtype=int)
        _charge(k, time.perf_counter() - t0)
    return result


def spapros_module():
    """Import spapros after the numpy 2.4 workaround (``np.in1d`` is gone)."""
    if not hasattr(np, "in1d"):  # spapros 0.1.6 calls np.in1d (flattening isin)
        setattr(np, "in1d", lambda a, b, **kw: np.isin(a, b, **kw).ravel())  # noqa: B010
    import spapros

    return spapros


def spapros_ranking(X, y, seed, n, gene_names=None):
    """Genes in spapros's order (``probeset`` sorted by ``gene_nr``), the first ``n``
    selected; indices into the columns of ``X``."""
    import anndata
    import pandas as pd
    import scanpy as sc
    import scipy.sparse as sp

    spapros = spapros_module()
    names = (
        np.asarray(gene_names, dtype=str)
        if gene_names is not None
        else np.array([f"g{i}" for i in range(X.shape[1])])
    )
    adata = anndata.AnnData(
        X=sp.csr_matrix(np.asarray(X, dtype=np.float32)),
        obs=pd.DataFrame(
            {"celltype": pd.Categorical(np.asarray(y).astype(str))},
            index=[f"c{i}" for i in range(X.shape[0])],
        ),
        var=pd.DataFrame(index=names),
    )
    sc.pp.highly_variable_genes(
        adata, flavor="cell_ranger", n_top_genes=min(SPAPROS_HVG, adata.n_vars)
    )
    selector = spapros.se.ProbesetSelector(
        adata,
        celltype_key="celltype",
        n=n,
        verbosity=0,
        save_dir=None,
        seed=seed,
        n_jobs=1,
    )
    selector.select_probeset()
    table = selector.probeset.sort_values("gene_nr")
    where = {g: i for i, g in enumerate(names)}
    return np.asarray([where[g] for g in table.index], dtype=int)


def _rank_spapros(X, y, kind, seed, ks):
    t0 = time.perf_counter()
    with _quiet():
        order = spapros_ranking(X, y, seed, max(ks))
    _charge("shared", time.perf_counter() - t0)
    return {k: order[:k] for k in ks}


_MODULES = {
    "persist": "persist",
    "stg": "stg",
    "markermap": "markermap",
    "scgenefit": "scGeneFit",
    "concrete": "torch",
    "spapros": "spapros",
}


def peer_installed(method: str) -> bool:
    """Whether the package a peer needs can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec(_MODULES[method]) is not None


PEER_RANKERS: dict[str, Callable] = {
    "persist": _rank_persist,
    "stg": _rank_stg,
    "markermap": _rank_markermap,
    "scgenefit": _rank_scgenefit,
    "concrete": _rank_concrete,
    "spapros": _rank_spapros,
}


def peer_panels(method, X, Y, task_types, ks, seed) -> dict[int, np.ndarray]:
    """``{k: k genes}`` of a peer on the training data (see the module docstring)."""
    from baselines import per_task_panels

    _TIMES.clear()
    _NOTES.clear()
    fine = nested_tasks(Y, task_types)
    tasks = {t: kind for t, kind in task_types.items() if kind == "classification"}
    if fine is not None:
        tasks = {fine: task_types[fine]}
    if not tasks:
        raise ValueError(f"{method} needs a classification task; got {task_types}")
    ranker = PEER_RANKERS[method]
    return per_task_panels(ranker, X, Y, tasks, ks, seed, densify=True)
