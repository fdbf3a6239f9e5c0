import numpy as np
import pytest

FAST = dict(
    k=3,
    max_iter=4,
    hidden_layer_sizes=(8,),
    batch_size=16,
    early_stopping=False,
    random_state=0,
)


@pytest.fixture
def fast_params():
    return dict(FAST)


def make_data(n=160, n_features=30, n_informative=4, n_classes=3, seed=0):
    """Gaussian data whose first ``n_informative`` columns carry the class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = rng.normal(size=(n, n_features))
    for c in range(n_classes):
        X[y == c, :n_informative] += 2.0 * np.cos(np.arange(n_informative) + c)
    return X, y


@pytest.fixture
def data():
    return make_data()
