"""
A published marker panel against a YOTO panel of the same size
==============================================================

The Seurat PBMC tutorial's markers (IL7R, CCR7, LYZ, S100A4, MS4A1, CD8A, FCGR3A,
GNLY, NKG7, FCER1A, CST3, CD3D: the 12 that pbmc68k_reduced measures) are a panel
people know. :func:`yoto_sklearn.evaluation.evaluate_panel` scores it side by side
with a 12-gene YOTO panel on the same held-out cells: YOTO's heads and a
LogisticRegression refit per task, and spapros's metric families when spapros is
installed. The YOTO panel is selected on the training cells of the same split, so
neither panel has seen the cells it is scored on.
"""

# %%
import warnings

import pandas as pd

from yoto_sklearn import YOTOSelector
from yoto_sklearn.anndata import obs_targets
from yoto_sklearn.datasets import load_pbmc68k_reduced
from yoto_sklearn.evaluation import evaluate_panel, holdout_split

adata = load_pbmc68k_reduced()
published = ["IL7R", "CCR7", "LYZ", "S100A4", "MS4A1", "CD8A"]
published += ["FCGR3A", "GNLY", "NKG7", "FCER1A", "CST3", "CD3D"]
targets = ["bulk_labels", "phase"]

# the split evaluate_panel makes (test_size=0.25, random_state=0): select on its
# training cells only
y, task_types = obs_targets(adata.obs, targets)
train, test, _ = holdout_split(y, task_types, test_size=0.25, random_state=0)
yoto = YOTOSelector(k=len(published), use_raw=True, random_state=0, n_threads=1)
yoto.fit(adata[train], targets)
ours = list(yoto.get_feature_names_out())
print("YOTO panel:", ", ".join(ours))

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # spapros's small-type notes
    table = evaluate_panel(
        adata,
        {"published": published, "YOTO": ours},
        targets,
        use_raw=True,
        forest_min_cells=10,  # 175 held-out cells: few types reach spapros's 40
        n_threads=1,
    )
pd.set_option("display.width", 120)
print(table.round(3).to_string())

# %%
# The same table, as a picture: each metric's two values side by side.
import matplotlib.pyplot as plt  # noqa: E402

shown = table.drop(index="panel", level="model")
labels = [f"{task} {metric}" for _, task, metric in shown.index]
fig, ax = plt.subplots(figsize=(7, 0.28 * len(shown) + 1), layout="constrained")
positions = range(len(shown))
ax.barh([p + 0.2 for p in positions], shown["published"], 0.4, label="published")
ax.barh([p - 0.2 for p in positions], shown["YOTO"], 0.4, label="YOTO")
ax.set_yticks(list(positions), labels, fontsize=7)
ax.invert_yaxis()
ax.set_xlabel("held-out score (higher is better)")
ax.legend()
plt.show()
