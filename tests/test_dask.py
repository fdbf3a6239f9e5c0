"""Grid search over k x temperature on a Dask cluster through joblib."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from yoto_sklearn import YOTOSelector

from .conftest import make_data

distributed = pytest.importorskip("distributed")


def test_grid_search_on_local_dask_cluster(fast_params):
    from joblib import parallel_backend

    X, y = make_data(n=90, n_features=12)
    grid = {"k": [2, 4], "temperature": [0.1, 0.5]}
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            host="127.0.0.1",
            protocol="tcp://",  # real sockets on loopback, as a cluster would use
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        search = GridSearchCV(YOTOSelector(**fast_params), grid, cv=2, n_jobs=-1)
        with distributed.get_task_stream(client) as stream, parallel_backend("dask"):
            search.fit(X, y)
        workers = set(client.scheduler_info()["workers"])
    # the fits really ran as tasks on the cluster's workers (joblib may batch
    # several fits into one task, so count tasks loosely)
    assert len(stream.data) >= 1
    used = {t["worker"] for t in stream.data}
    assert used <= workers and all(w.startswith("tcp://127.0.0.1") for w in used)
    assert search.best_params_["k"] in (2, 4)
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_.transform(X).shape[1] == search.best_params_["k"]
