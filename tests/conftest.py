import numpy as np
import pytest
import torch

# The models in the tests are tiny: intra-op threads only add synchronisation, and on a
# busy 2-core machine (CI, or pytest-xdist) two OpenMP threads per process made a
# 0.06 s fit take 6 s. The library itself leaves torch's thread settings alone.
torch.set_num_threads(1)

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
    """Gaussian data whose first ``n_informative`` columns are class markers.

    Column ``j < n_informative`` is shifted up by 2 in the cells of class
    ``j % n_classes``; every other column is noise.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = rng.normal(size=(n, n_features))
    for j in range(n_informative):
        X[y == j % n_classes, j] += 2.0
    return X, y


@pytest.fixture
def data():
    return make_data()
