"""scikit-learn's bundled sets (iris, breast cancer, wine, digits): no download, seeded stratified split."""

from __future__ import annotations

from typing import Any, Callable

from sklearn import datasets as sk_datasets

from .splits import _check_bool, _check_fraction, _split_standardize


def _sklearn_tabular(loader: Callable[..., Any], title: str):
    """A registry loader for one of scikit-learn's bundled tabular sets."""

    def load(*, seed: int, test_fraction: float = 0.2, standardize: bool = True):
        test_fraction = _check_fraction("test_fraction", test_fraction)
        _check_bool("standardize", standardize)
        x, y = loader(return_X_y=True)
        return _split_standardize(
            x, y, test_fraction=test_fraction, seed=seed, standardize=standardize, num_classes=int(y.max()) + 1
        )

    load.__doc__ = f"""{title}

    ``sklearn.datasets.{loader.__name__}`` (bundled with scikit-learn, no download); a
    stratified, seeded train/test split; features standardised with the train mean
    and std when ``standardize`` (tabular features live on very different scales).

    Parameters
    ----------
    test_fraction : float
        Share held out for testing.
    standardize : bool
        Standardise features with train statistics (default True).
    """
    return load


_iris = _sklearn_tabular(
    sk_datasets.load_iris, "Iris: 150 flowers, 4 features, 3 classes (UCI; Greenewald et al. 2023, Sec. 5.2)."
)
_breast_cancer = _sklearn_tabular(
    sk_datasets.load_breast_cancer,
    "Breast Cancer Wisconsin (Diagnostic): 569 samples, 30 features, 2 classes "
    "(UCI; Greenewald et al. 2023, Sec. 5.2).",
)
_wine = _sklearn_tabular(sk_datasets.load_wine, "Wine: 178 samples, 13 features, 3 classes (UCI).")


def _digits(*, seed: int, test_fraction: float = 0.2):
    """Digits: 1797 8x8 grey images, 10 classes (scikit-learn's copy of UCI optdigits).

    Images of shape ``(N, 1, 8, 8)``: pixel counts 0..16 divided by 16, so in [0, 1],
    not standardised (like the image sets). Stratified, seeded train/test split.

    Parameters
    ----------
    test_fraction : float
        Share held out for testing.
    """
    test_fraction = _check_fraction("test_fraction", test_fraction)
    bunch = sk_datasets.load_digits()
    x = bunch.images[:, None, :, :] / 16.0
    return _split_standardize(x, bunch.target, test_fraction=test_fraction, seed=seed, standardize=False,
                              num_classes=10)
