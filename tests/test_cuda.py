"""CUDA: train and predict on a GPU, load the model on the CPU. Skipped without one."""

import io
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from yoto_sklearn import YOTOSelector

from .conftest import make_data

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_fit_predict_on_cuda(fast_params):
    X, y = make_data()
    sel = YOTOSelector(**dict(fast_params, device="cuda")).fit(sp.csr_matrix(X), y)
    assert sel.device_.startswith("cuda")
    assert next(sel.module_.parameters()).device.type == "cpu"
    assert sel.predict(X).shape == (len(y),)


@cuda
def test_cuda_model_pickles_and_loads_on_cpu(fast_params, monkeypatch):
    X, y = make_data()
    sel = YOTOSelector(**dict(fast_params, device="cuda")).fit(X, y)
    blob = pickle.dumps(sel)
    # unpickle as a CPU-only machine would: no CUDA visible
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    again = pickle.load(io.BytesIO(blob))
    np.testing.assert_array_equal(again.predict(X), sel.predict(X))
    np.testing.assert_array_equal(again.support_, sel.support_)


@cuda
def test_cuda_and_cpu_select_from_the_same_data(fast_params):
    X, y = make_data()
    gpu = YOTOSelector(**dict(fast_params, device="cuda", max_iter=20)).fit(X, y)
    assert gpu.score(X, y) > 0.5
