"""Baseline gene selectors and the shared downstream evaluation.

Every selector has the signature ``select(X, Y, task_types, k, seed) -> indices`` and
returns exactly ``k`` distinct gene indices chosen on the training data only. The
``panels`` variant returns ``{k: indices}`` for several ``k`` from one fit, which the
harness uses so a ranking is computed once per seed.

Multi-task data. A single-task baseline ranks genes separately for each task (with the
matching univariate test / L1 model / forest / LassoNet for classification or
regression) and the panel is the **round-robin union** of the per-task rankings capped
at ``k``: take each task's best gene in turn, then each task's second best, and so on,
skipping genes already taken, until ``k`` genes are chosen. The panel is therefore
shared by all tasks, like YOTO's. Cells whose label is missing for a task are
ignored when ranking for that task.

Evaluation. On a panel, a fresh ``StandardScaler + LogisticRegression(max_iter=2000)``
is fitted per classification task (macro-F1 on the test part) and a fresh
``StandardScaler + RidgeCV`` per regression task (R^2).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import f_classif, f_regression
from sklearn.linear_model import LogisticRegression, RidgeCV, lasso_path
from sklearn.metrics import f1_score, r2_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import l1_min_c

# --------------------------------------------------------------------------- helpers


def dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def _observed(y: pd.Series) -> np.ndarray:
    return y.notna().to_numpy()


def _stable_order(scores: np.ndarray) -> np.ndarray:
    scores = np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf)
    return np.argsort(-scores, kind="stable")


def round_robin(rankings: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Union of per-task rankings, one gene per task in turn, capped at ``k``."""
    chosen: list[int] = []
    seen: set[int] = set()
    pos = [0] * len(rankings)
    while len(chosen) < k:
        progressed = False
        for t, r in enumerate(rankings):
            while pos[t] < len(r) and int(r[pos[t]]) in seen:
                pos[t] += 1
            if pos[t] < len(r) and len(chosen) < k:
                g = int(r[pos[t]])
                chosen.append(g)
                seen.add(g)
                pos[t] += 1
                progressed = True
        if not progressed:
            break
    return np.asarray(chosen, dtype=int)


def _column_variance(X) -> np.ndarray:
    if sp.issparse(X):
        Xc = X.tocsc()
        mean = np.asarray(Xc.mean(axis=0)).ravel()
        sq = np.asarray(Xc.multiply(Xc).mean(axis=0)).ravel()
        return sq - mean**2
    return np.asarray(X).var(axis=0)


# ------------------------------------------------------------- per-task rankers
# A ranker: (X_task, y_task, kind, seed, ks) -> {k: full or >=k ranking of genes}


def _rank_f(X, y, kind, seed, ks):
    Xd = dense(X)
    if kind == "classification":
        f, _ = f_classif(Xd, y)
    else:
        f, _ = f_regression(Xd, y.astype(float))
    order = _stable_order(f)
    return dict.fromkeys(ks, order)


def _rank_rf(X, y, kind, seed, ks):
    Xd = dense(X)
    common = dict(n_estimators=200, n_jobs=2, random_state=seed, min_samples_leaf=1)
    if kind == "classification":
        rf = RandomForestClassifier(**common)
        rf.fit(Xd, y)
    else:
        rf = RandomForestRegressor(max_features=0.3, **common)
        rf.fit(Xd, y.astype(float))
    order = _stable_order(rf.feature_importances_)
    return dict.fromkeys(ks, order)


def _rank_l1(X, y, kind, seed, ks):
    """L1 path: for each k the weakest penalty reaching >= k non-zero genes.

    Genes are then ranked by |coef| (L1 norm over classes, as SelectFromModel does)
    at that penalty, ties and the tail broken by the next, weaker penalties.
    This is ``SelectFromModel(L1 model, max_features=k, threshold=-inf)`` with
    ``C`` tuned so at least ``k`` coefficients are non-zero.
    """
    Xs = StandardScaler().fit_transform(dense(X))
    n_grid = 9
    coefs = []  # list of per-gene importance along the path, strong -> weak penalty
    if kind == "classification":
        y = np.asarray(y)
        c0 = l1_min_c(Xs, y, loss="log")
        Cs = c0 * 1.5 * 2.5 ** np.arange(n_grid)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for C in Cs:
                clf = OneVsRestClassifier(
                    LogisticRegression(
                        C=C, l1_ratio=1.0, solver="liblinear", max_iter=200, tol=1e-2
                    ),
                    n_jobs=2,
                )
                clf.fit(Xs, y)
                W = np.vstack([e.coef_ for e in clf.estimators_])
                coefs.append(np.abs(W).sum(axis=0))
                if (coefs[-1] > 0).sum() >= max(ks):
                    break
    else:
        yc = np.asarray(y, dtype=float)
        yc = (yc - yc.mean()) / (yc.std() + 1e-12)
        _, path, _ = lasso_path(Xs, yc, n_alphas=60, eps=1e-3)
        coefs = [np.abs(path[:, j]) for j in range(path.shape[1])]
    nnz = np.array([(c > 0).sum() for c in coefs])
    out = {}
    for k in ks:
        j = int(np.argmax(nnz >= k)) if (nnz >= k).any() else len(coefs) - 1
        # lexicographic: |coef| at the chosen penalty, then at weaker penalties
        keys = [coefs[i] for i in range(len(coefs) - 1, j - 1, -1)]
        out[k] = np.lexsort(tuple(-c for c in keys))
    return out


LASSONET_BUDGET_S = 60.0


class _StopPath(Exception):
    pass


def _rank_lassonet(X, y, kind, seed, ks, budget_s=None):
    """LassoNet path; for each k the path point with at most k features.

    If that point has fewer than k genes, the rest are filled with the genes that
    left the path last. The path is cut (cost bound) once it reaches at most
    ``min(ks)`` features or after ``LASSONET_BUDGET_S`` seconds per task; genes still
    on the path then tie at +inf importance. Ties (genes leaving at the same path
    point) are broken by the norm of their skip-layer weight (LassoNet's linear
    part) at the last point where they were still selected.
    """
    import time

    import torch
    from lassonet import LassoNetClassifier, LassoNetRegressor

    budget = LASSONET_BUDGET_S if budget_s is None else budget_s
    Xs = StandardScaler().fit_transform(dense(X)).astype(np.float32)
    common = dict(
        hidden_dims=(32,),
        path_multiplier=1.3,
        n_iters=(100, 10),
        patience=(10, 3),
        batch_size=None,
        val_size=0.1,
        verbose=0,
        random_state=seed,
        torch_seed=seed,
        device="cpu",
    )
    hist: list = []
    t0 = time.perf_counter()

    def callback(model, h):
        hist[:] = h
        n_sel = int(h[-1].selected.sum())
        if n_sel <= min(ks) or time.perf_counter() - t0 > budget:
            raise _StopPath

    if kind == "classification":
        _, yt = np.unique(np.asarray(y), return_inverse=True)
        model = LassoNetClassifier(**common)
    else:
        yt = np.asarray(y, dtype=float)
        yt = ((yt - yt.mean()) / (yt.std() + 1e-12)).astype(np.float32)
        model = LassoNetRegressor(**common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.path(Xs, yt, callback=callback, return_state_dicts=True)
        except _StopPath:
            pass
    imp = model._compute_feature_importances(hist).numpy().astype(float)
    skip = np.zeros(Xs.shape[1])
    with torch.no_grad():
        for h in hist:
            w = h.state_dict["skip.weight"].abs().sum(dim=0).numpy()
            on = h.selected.numpy().astype(bool)
            skip[on] = w[on]
    imp_order = np.lexsort((-skip, -imp))
    out = {}
    for k in ks:
        point = next(
            (h.selected.numpy() for h in hist if int(h.selected.sum()) <= k), None
        )
        if point is None:
            out[k] = imp_order
            continue
        sel = np.flatnonzero(point)
        sel = sel[np.lexsort((-skip[sel], -imp[sel]))]
        rest = imp_order[~np.isin(imp_order, sel)]
        out[k] = np.concatenate([sel, rest])
    return out


PER_TASK_RANKERS: dict[str, Callable] = {
    "f_test": _rank_f,
    "l1": _rank_l1,
    "random_forest": _rank_rf,
    "lassonet": _rank_lassonet,
}


# --------------------------------------------------------------------------- panels


def panels(
    method: str,
    X,
    Y: pd.DataFrame,
    task_types: dict[str, str],
    ks: Sequence[int],
    seed: int,
) -> dict[int, np.ndarray]:
    """Return ``{k: k gene indices}`` for a baseline ``method``."""
    n_genes = X.shape[1]
    ks = list(ks)
    if method == "random":
        order = np.random.default_rng(seed).permutation(n_genes)
        return {k: order[:k] for k in ks}
    if method == "variance":
        order = _stable_order(_column_variance(X))
        return {k: order[:k] for k in ks}
    if method == "all_genes":
        return {k: np.arange(n_genes) for k in ks}
    return per_task_panels(PER_TASK_RANKERS[method], X, Y, task_types, ks, seed)


def per_task_panels(
    ranker: Callable,
    X,
    Y: pd.DataFrame,
    task_types: dict[str, str],
    ks: Sequence[int],
    seed: int,
    densify: bool = False,
) -> dict[int, np.ndarray]:
    """Rank genes per task on its labelled cells; merge the rankings round-robin."""
    per_task = []
    for t, kind in task_types.items():
        obs = _observed(Y[t])
        y = Y[t].to_numpy()[obs]
        Xt = X[np.flatnonzero(obs)] if not obs.all() else X
        per_task.append(ranker(dense(Xt) if densify else Xt, y, kind, seed, list(ks)))
    return {k: round_robin([r[k] for r in per_task], k) for k in ks}


def select(method, X, Y, task_types, k, seed) -> np.ndarray:
    """Return ``k`` gene indices chosen by ``method`` on ``(X, Y)``."""
    return panels(method, X, Y, task_types, [k], seed)[k]


METHODS = ["random", "variance", "f_test", "l1", "random_forest", "lassonet"]
LABELS = {
    "random": "random k",
    "variance": "highest variance",
    "f_test": "SelectKBest(f_classif)",
    "l1": "L1-logistic SelectFromModel",
    "random_forest": "random-forest importance",
    "lassonet": "LassoNet",
    "all_genes": "all genes (ceiling)",
    "yoto_heads": "YOTO (own heads)",
    "yoto_panel_lr": "YOTO panel + LogReg",
}


# --------------------------------------------------------------------------- evaluation


def evaluate_panel(
    X_train,
    Y_train: pd.DataFrame,
    X_test,
    Y_test: pd.DataFrame,
    task_types: dict[str, str],
    panel: np.ndarray,
) -> dict[str, float]:
    """Fit a fresh scaler + LogisticRegression / Ridge per task on ``panel``."""
    Xtr = dense(X_train[:, panel])
    Xte = dense(X_test[:, panel])
    scores = {}
    for t, kind in task_types.items():
        tr = _observed(Y_train[t])
        te = _observed(Y_test[t])
        ytr = Y_train[t].to_numpy()[tr]
        yte = Y_test[t].to_numpy()[te]
        if kind == "classification":
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(Xtr[tr], ytr.astype(str))
            pred = model.predict(Xte[te])
            scores[t] = f1_score(yte.astype(str), pred, average="macro")
        else:
            model = make_pipeline(
                StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13))
            )
            model.fit(Xtr[tr], ytr.astype(float))
            scores[t] = r2_score(yte.astype(float), model.predict(Xte[te]))
    return scores


def score_predictions(
    Y_test: pd.DataFrame, pred: pd.DataFrame, task_types: dict[str, str]
) -> dict[str, float]:
    """Macro-F1 / R^2 of given predictions on the observed test labels."""
    scores = {}
    for t, kind in task_types.items():
        te = _observed(Y_test[t])
        yte = Y_test[t].to_numpy()[te]
        p = np.asarray(pred[t])[te]
        if kind == "classification":
            scores[t] = f1_score(yte.astype(str), p.astype(str), average="macro")
        else:
            scores[t] = r2_score(yte.astype(float), p.astype(float))
    return scores
