"""
One panel for four tasks on real PBMCs (the demo)
=================================================

``yoto-sklearn demo`` in Python: one YOTO model picks 30 of 765 genes and predicts
two classification tasks (``bulk_labels``, ``phase``) and two regression tasks
(``S_score``, ``G2M_score``) from them, trained once. We compare it on held-out
cells with ``SelectKBest`` + a linear model per task, which may use a different
panel for every task.
"""

# %%
# Data: pbmc68k_reduced ships inside scanpy (``adata.raw`` holds log-normalised
# expression of 765 genes).
import numpy as np
import pandas as pd
from sklearn.feature_selection import SelectKBest, f_classif, f_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from yoto_sklearn import YOTOSelector, plotting
from yoto_sklearn.datasets import load_pbmc68k_reduced

adata = load_pbmc68k_reduced()
X = adata.raw.X.toarray()
genes = np.asarray(adata.raw.var_names)
tasks = ["bulk_labels", "phase", "S_score", "G2M_score"]
Y = pd.DataFrame({t: adata.obs[t].to_numpy() for t in tasks})
train, test = train_test_split(
    np.arange(adata.n_obs),
    test_size=0.25,
    random_state=0,
    stratify=Y["bulk_labels"],
)
print(X.shape, Y.dtypes.to_dict())

# %%
# One model, one shared panel of k = 30 genes, all four tasks.
X_frame = pd.DataFrame(X, columns=genes)
sel = YOTOSelector(k=30, random_state=0).fit(X_frame.iloc[train], Y.iloc[train])
pred = sel.predict(X_frame.iloc[test])
print("panel:", list(sel.get_feature_names_out()))

# %%
# Held-out metrics next to the per-task baseline.
rows = []
for j, task in enumerate(tasks):
    y_tr, y_te = Y[task].to_numpy()[train], Y[task].to_numpy()[test]
    if sel.task_types_[j] == "classification":
        base = make_pipeline(
            SelectKBest(f_classif, k=30),
            StandardScaler(),
            LogisticRegression(max_iter=2000),
        )
        base.fit(X[train], y_tr)
        ours = f1_score(y_te, pred[:, j].astype(y_te.dtype), average="macro")
        theirs = f1_score(y_te, base.predict(X[test]), average="macro")
        metric = "macro-F1"
    else:
        base = make_pipeline(SelectKBest(f_regression, k=30), Ridge())
        base.fit(X[train], y_tr)
        ours = r2_score(y_te, pred[:, j].astype(float))
        theirs = r2_score(y_te, base.predict(X[test]))
        metric = "R^2"
    rows.append({"task": task, "metric": metric, "YOTO": ours, "baseline": theirs})
print(pd.DataFrame(rows).round(3).to_string(index=False))

# %%
# The learned gene scores, the panel highlighted.
fig = plotting.plot_gene_scores(sel, feature_names=genes)

# %%
# The panel's expression by cell population: a marker for every population?
fig = plotting.plot_panel_expression(
    sel, X_frame.iloc[test], Y["bulk_labels"].to_numpy()[test], title="bulk_labels"
)
