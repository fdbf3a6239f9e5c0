"""Panels and predictions of fixed-seed fits are those recorded before the refactor.

The fixtures were written by ``python -m tests._behaviour_cases`` with the code of
commit 91ee08f (before issue 17 split fit into steps, the data module into a target
side and a row-source side, and the training loop into seams), one per machine kind
the project runs on: ``behaviour.npz`` on a CPU with AVX-512, ``behaviour_avx2.npz``
on one with AVX2 only (same torch; the cases file of commit 4da63f2 run against
91ee08f's package). On a machine kind with a fixture (same torch version and CPU
vector extensions) every array must be bit-identical. Elsewhere float arrays are
compared to 1e-6 and the panels exactly; that is a weaker check, since training
amplifies last-bit differences (between the two kinds above, predicted
probabilities differed by up to 1e-3 after training).
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from ._behaviour_cases import FIXTURE, cases, machine, run_all

_KINDS = [np.load(f) for f in sorted(glob.glob(os.path.join(
    os.path.dirname(FIXTURE), "behaviour*.npz")))]  # fmt: skip
recorded = next((r for r in _KINDS if str(r["machine"]) == machine()), np.load(FIXTURE))
SAME_MACHINE = str(recorded["machine"]) == machine()


@pytest.fixture(scope="module")
def current():
    return run_all()


@pytest.mark.parametrize("case", sorted(cases()))
def test_fit_matches_the_recorded_behaviour(case, current):
    keys = [k for k in recorded.files if k.startswith(f"{case}/")]
    assert keys and sorted(keys) == sorted(
        k for k in current if k.startswith(case + "/")
    )
    for key in keys:
        want, got = recorded[key], current[key]
        if SAME_MACHINE or want.dtype.kind in "iu":
            np.testing.assert_array_equal(got, want, err_msg=key)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, err_msg=key)
