"""Panels and predictions of fixed-seed fits are those recorded before the refactor.

The fixture was written by ``python -m tests._behaviour_cases`` with the code of
commit 91ee08f (before issue 17 split fit into steps, the data module into a target
side and a row-source side, and the training loop into seams). On the machine kind
that wrote it (same torch version and CPU vector extensions) every array must be
bit-identical; elsewhere, float arrays may differ in the last bits (reductions
vectorise differently), so they are compared to 1e-6 and the panels exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from ._behaviour_cases import FIXTURE, cases, machine, run_all

recorded = np.load(FIXTURE)
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
