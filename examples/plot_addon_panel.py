"""
A Xenium-style add-on panel: a fixed base, an expression budget, probe penalties
================================================================================

Imaging panels are usually a commercial base panel plus genes the lab adds. The
additions must complement the base, and the whole panel must stay under the
instrument's crowding limit: the panel's genes together produce only so many spots
per cell. Some genes are poor probe targets (few designable probes, homologs),
so a designer wants to penalise them, not forbid them.

Here the base is 12 classic PBMC markers that pbmc68k_reduced measures; YOTO adds
12 genes for cell type and cell-cycle phase, under an expression budget, with
penalties from a (made-up) probe-design table. All scores are on held-out cells.
"""

# %%
import warnings

import numpy as np
import pandas as pd

from yoto_sklearn import YOTOSelector
from yoto_sklearn.anndata import obs_targets
from yoto_sklearn.datasets import load_pbmc68k_reduced
from yoto_sklearn.evaluation import holdout_split

adata = load_pbmc68k_reduced()
targets = ["bulk_labels", "phase"]
base = ["IL7R", "CCR7", "LYZ", "S100A4", "MS4A1", "CD8A"]
base += ["FCGR3A", "GNLY", "NKG7", "FCER1A", "CST3", "CD3D"]
k = len(base) + 12

y, task_types = obs_targets(adata.obs, targets)
train, test, _ = holdout_split(y, task_types, test_size=0.25, random_state=0)
common = dict(use_raw=True, random_state=0, n_threads=1, verbose=0)


def fit(**params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return YOTOSelector(k=k, required_genes=base, **common, **params).fit(
            adata[train], targets
        )


def report(name, model):
    scores = model.score_tasks(adata[test], y.iloc[test])
    added = [g for g in model.get_feature_names_out() if g not in base]
    load = model.gene_loads_ if model.gene_loads_ is not None else None
    total = "" if load is None else f", panel total {model.panel_load_:.2f}"
    print(
        f"{name}: bulk_labels {scores['bulk_labels']:.3f}, phase "
        f"{scores['phase']:.3f} (held-out accuracy){total}"
    )
    print("  added:", ", ".join(added))


# %%
# The base alone takes most of a budget. The free add-on (no budget) shows how
# much the 12 added genes spend when nothing limits them; we allow them half of
# that on top of the base.
free = fit()
means = np.asarray(adata[train].raw.X.mean(axis=0)).ravel()
loads = pd.Series(means, index=adata.raw.var_names)
free_total = loads[free.get_feature_names_out()].sum()
base_total = loads[base].sum()
budget = base_total + 0.5 * (free_total - base_total)
print(f"base {base_total:.2f}; free panel {free_total:.2f}; budget {budget:.2f}")
report("free", free)

# %%
# The selection learns every gene's score; the learned ranking is then trimmed to
# fit the budget (the most expressed gene out, the best-ranked gene that fits in)
# and the heads are refined on that panel, so the budget holds on the result.
budgeted = fit(expression_budget=budget)
report("budget", budgeted)
assert budgeted.panel_load_ <= budget * (1 + 1e-9)  # float rounding only

# %%
# A probe-design table: some genes have few designable probes. Penalise them (the
# weight is roughly the training loss a gene must save to be worth its place).
probes = pd.DataFrame(
    {"gene": ["HMGB2", "CD74", "PCNA", "CCL5"], "designable_probes": [3, 4, 5, 6]}
)
probes["weight"] = 0.5 * (8 - probes["designable_probes"]) / 8
print(probes.to_string(index=False))
penalised = fit(
    expression_budget=budget,
    gene_penalties=dict(zip(probes.gene, probes.weight, strict=True)),
)
report("budget + penalties", penalised)

# %%
# The panel's total expression per cell on the held-out cells, against the budget.
from yoto_sklearn.plotting import plot_panel_budget  # noqa: E402

fig = plot_panel_budget(penalised, adata[test])
