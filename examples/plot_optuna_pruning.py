"""
Tuning with Optuna: prune hopeless trials every epoch
=====================================================

A per-epoch callback reports YOTO's validation score to an Optuna trial; Optuna's
pruner stops trials that trail the others, so a search over ``k``, ``temperature``
and the learning rates spends its time on promising settings. The same callback
pattern works for Ray Tune (see the docs page "Tuning with Optuna / Ray Tune").
"""

# %%
import numpy as np
import optuna
from sklearn.model_selection import train_test_split

from yoto_sklearn import YOTOSelector
from yoto_sklearn.datasets import load_pbmc68k_reduced

adata = load_pbmc68k_reduced()
X = adata.raw.X.toarray()
y = adata.obs["bulk_labels"].astype(str).to_numpy()
X_train, X_val, y_train, y_val = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)


def objective(trial: optuna.Trial) -> float:
    params = {
        "k": trial.suggest_int("k", 10, 40, step=10),
        "temperature": trial.suggest_float("temperature", 0.05, 1.0, log=True),
        "score_learning_rate": trial.suggest_float("score_lr", 1e-3, 1e-1, log=True),
    }

    def report(info):
        # YOTO's validation cells (early_stopping=True) give a score every epoch
        trial.report(info.validation_score, info.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()

    sel = YOTOSelector(
        **params, max_iter=40, n_threads=1, random_state=0, callbacks=[report]
    )
    return sel.fit(X_train, y_train).score(X_val, y_val)


optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(
    direction="maximize",
    sampler=optuna.samplers.TPESampler(seed=0),
    pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=10),
)
study.optimize(objective, n_trials=10)

# %%
# Pruned trials stopped early: they cost a fraction of a full fit.
states = [t.state.name for t in study.trials]
epochs = [len(t.intermediate_values) for t in study.trials]
print({s: states.count(s) for s in set(states)})
print("epochs per trial:", epochs)
print("best:", study.best_params, f"validation accuracy {study.best_value:.3f}")

# %%
# The search history: every trial's validation score per epoch, pruned ones dashed.
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
for t in study.trials:
    steps = np.array(sorted(t.intermediate_values))
    values = [t.intermediate_values[s] for s in steps]
    pruned = t.state == optuna.trial.TrialState.PRUNED
    ax.plot(steps, values, ls="--" if pruned else "-", lw=1 if pruned else 2)
ax.set_xlabel("epoch")
ax.set_ylabel("validation score (balanced accuracy)")
ax.set_title("Optuna trials; dashed: pruned")
plt.show()
