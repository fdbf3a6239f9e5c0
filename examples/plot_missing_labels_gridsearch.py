"""
Pipeline and GridSearchCV with missing labels
=============================================

Each cell may be labelled for only some tasks. Here ``phase`` is known for only
half of the cells; those cells still train the shared panel through
``bulk_labels``. scikit-learn's built-in scorers return NaN on NaN-masked targets,
so the search uses :func:`yoto_sklearn.make_masked_scorer`, which scores every task
on its observed labels only.
"""

# %%
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from yoto_sklearn import YOTOSelector, make_masked_scorer
from yoto_sklearn.datasets import load_pbmc68k_reduced

adata = load_pbmc68k_reduced()
X = pd.DataFrame(adata.raw.X.toarray(), columns=adata.raw.var_names)
rng = np.random.default_rng(0)
phase = adata.obs["phase"].astype(object).to_numpy()
phase[rng.random(adata.n_obs) < 0.5] = None  # half of the cells unlabelled
Y = pd.DataFrame({"bulk_labels": adata.obs["bulk_labels"].to_numpy(), "phase": phase})
print(Y.isna().mean())

# %%
# Search k and the final temperature, scoring macro-F1 on observed labels only.
search = GridSearchCV(
    YOTOSelector(max_iter=40, random_state=0),
    {"k": [10, 30], "temperature": [0.1, 0.5]},
    scoring=make_masked_scorer("f1_macro"),
    cv=3,
)
search.fit(X, Y)
print(search.best_params_, round(search.best_score_, 3))
print(pd.DataFrame(search.cv_results_)[["params", "mean_test_score"]])

# %%
# The selector is also a transformer: a Pipeline refits a classifier on the panel
# (here for the fully labelled task).
pipe = Pipeline(
    [
        ("yoto", YOTOSelector(k=30, max_iter=40, random_state=0)),
        ("clf", LogisticRegression(max_iter=2000)),
    ]
)
pipe.fit(X, Y["bulk_labels"])
print(pipe[:-1].transform(X).shape, round(pipe.score(X, Y["bulk_labels"]), 3))
