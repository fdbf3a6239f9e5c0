"""scikit-learn's estimator checks over fast YOTOSelector instances."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from yoto_sklearn import YOTOSelector

from .conftest import FAST

ESTIMATORS = [
    YOTOSelector(**FAST),
    YOTOSelector(**{**FAST, "early_stopping": True, "relaxation": "softmax"}),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
