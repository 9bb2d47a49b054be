"""Data sets that need no network: generated, or shipped with a dependency or the standard library.

Every loader returns the same deterministic train / validation / test split for a given seed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

FRACTIONS = (0.7, 0.1, 0.2)  # train, validation, test — of the examples not already set aside


@dataclass(frozen=True)
class Splits:
    """A data set's three splits: each `(X, y)` of CPU tensors, or a `str` for text corpora."""

    name: str
    train: Any
    val: Any
    test: Any
    num_classes: int | None = None

    def __repr__(self) -> str:
        def size(part: Any) -> str:
            return f"{len(part):,} chars" if isinstance(part, str) else f"{tuple(part[0].shape)}"
        return (f"Splits({self.name!r}: train {size(self.train)}, val {size(self.val)}, "
                f"test {size(self.test)}, num_classes={self.num_classes})")


def _split(X: np.ndarray, y: np.ndarray, seed: int, classify: bool) -> tuple:
    """Shuffle with `seed`, cut by FRACTIONS, stratified by label when classifying."""
    from sklearn.model_selection import train_test_split

    strat = y if classify else None
    test = FRACTIONS[2]
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=test, random_state=seed, stratify=strat)
    val = FRACTIONS[1] / (1 - test)
    strat = y_rest if classify else None
    X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, test_size=val, random_state=seed,
                                                      stratify=strat)
    return (X_train, y_train), (X_val, y_val), (X_test, y_test)


def _tensors(pair: tuple, classify: bool) -> tuple[torch.Tensor, torch.Tensor]:
    X, y = pair
    y_t = torch.as_tensor(y, dtype=torch.int64 if classify else torch.float32)
    return torch.as_tensor(X, dtype=torch.float32), y_t


def _labelled(name: str, X: np.ndarray, y: np.ndarray, seed: int, num_classes: int | None) -> Splits:
    classify = num_classes is not None
    parts = [_tensors(p, classify) for p in _split(X, y, seed, classify)]
    return Splits(name, *parts, num_classes=num_classes)


def _digits(seed: int) -> Splits:
    """sklearn's 1,797 handwritten digits, 8×8 pixels flattened to 64 features in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return _labelled("digits", d.data / 16.0, d.target, seed, 10)


def _moons(seed: int) -> Splits:
    """Two interleaved half circles in 2-D: 1,000 points, Gaussian noise 0.2, 2 classes."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=1000, noise=0.2, random_state=seed)
    return _labelled("moons", X, y, seed, 2)


def _swiss_roll(seed: int) -> Splits:
    """A 2-D swiss roll (2,000 points, the x–z plane of sklearn's, divided by 10); y is the roll position."""
    from sklearn.datasets import make_swiss_roll

    X, t = make_swiss_roll(n_samples=2000, noise=0.5, random_state=seed)
    return _labelled("swiss_roll", X[:, [0, 2]] / 10.0, t, seed, None)


def _mnist1d(seed: int) -> Splits:
    """MNIST-1D, generated locally: 40-sample 1-D signals of 10 digit templates (4,000 + 1,000 test)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = 42 + seed  # 42 is the generator's published default
    d = make_dataset(args)
    # the generator fixes its own test set; split its training part into train and validation
    X, y = d["x"].astype(np.float32), d["y"]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    n_val = len(X) // 10
    val, train = order[:n_val], order[n_val:]
    parts = [(X[train], y[train]), (X[val], y[val]), (d["x_test"].astype(np.float32), d["y_test"])]
    return Splits("mnist1d", *[_tensors(p, True) for p in parts], num_classes=10)


def _english(seed: int) -> Splits:
    """English prose from the standard library (Python's help topics, pydoc_data.topics): ~0.5 M characters.

    The topics are shuffled by `seed`, then cut 90 / 5 / 5 by characters.
    """
    from pydoc_data.topics import topics

    keys = sorted(topics)
    order = np.random.default_rng(seed).permutation(len(keys))
    text = "\n\n".join(topics[keys[i]].strip() for i in order)
    a, b = int(0.9 * len(text)), int(0.95 * len(text))
    return Splits("english", text[:a], text[a:b], text[b:], num_classes=None)


_LOADERS: dict[str, Callable[[int], Splits]] = {
    "digits": _digits,
    "moons": _moons,
    "swiss_roll": _swiss_roll,
    "mnist1d": _mnist1d,
    "english": _english,
}


def names() -> list[str]:
    """The names `load` accepts."""
    return sorted(_LOADERS)


@functools.cache
def _cached(name: str, seed: int) -> Splits:
    return _LOADERS[name](seed)


def _copy(part: Any) -> Any:
    return part if isinstance(part, str) else tuple(t.clone() for t in part)


def load(name: str, seed: int = 0) -> Splits:
    """Load data set `name` with its deterministic train / validation / test split for `seed`.

    Tensors are on the CPU: X float32 of shape (n, features), y int64 class labels (float for
    swiss_roll positions). Text corpora give a `str` per split.
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown data set {name!r}; known data sets: {', '.join(names())}")
    d = _cached(name, seed)  # generated once per process; callers get copies they may modify
    return Splits(d.name, _copy(d.train), _copy(d.val), _copy(d.test), num_classes=d.num_classes)
