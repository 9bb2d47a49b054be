"""Data sets that need no network: generated, or shipped with a dependency or the standard library.

Every loader returns the same deterministic train / validation / test split for a given seed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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


CANVAS_SIZE, CANVAS_OBJECTS = 48, 4  # canvas side in pixels; most digits on one canvas


def _paste_digits(digits: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator) -> tuple:
    """`n` canvases of 1–4 digits drawn from `digits` (k, 8, 8) in [0, 1], each resized to a side
    of 8–24 pixels and pasted where it overlaps no other; boxes are the ink's exact extent."""
    import torch.nn.functional as F

    S, K = CANVAS_SIZE, CANVAS_OBJECTS
    eye = torch.eye(8, dtype=torch.float64)[:, None]  # resizing is linear: one (side, 8) matrix per side
    resize = {s: F.interpolate(eye, size=s, mode="linear", align_corners=False)[:, 0].T.numpy()
              for s in range(8, 25)}
    images, masks = np.zeros((n, 1, S, S), np.float32), np.zeros((n, S, S), np.int64)
    boxes, classes = np.zeros((n, K, 4), np.float32), np.full((n, K), -1, np.int64)
    for i in range(n):
        taken = np.zeros((0, 3), np.int64)  # (y, x, side) of the squares pasted so far
        for k in range(rng.integers(1, K + 1)):
            side = int(rng.integers(8, 25))
            y, x = rng.integers(0, S - side + 1, size=(2, 20))  # 20 candidates; keep the first free one
            ty, tx, ts = taken[:, :1].T, taken[:, 1:2].T, taken[:, 2:].T
            free = ~((y[:, None] <= ty + ts) & (ty <= y[:, None] + side)
                     & (x[:, None] <= tx + ts) & (tx <= x[:, None] + side)).any(1)  # a 1-pixel gap
            if not free.any():
                continue
            y, x = int(y[free.argmax()]), int(x[free.argmax()])
            j = rng.integers(len(digits))
            patch = (resize[side] @ digits[j] @ resize[side].T).astype(np.float32)  # bilinear
            ink = patch > 0.3
            if not ink.any():  # cannot happen with sklearn's digits (each reaches 14/16 or more)
                continue
            rows, cols = np.nonzero(ink)
            images[i, 0, y:y + side, x:x + side] = patch
            masks[i, y:y + side, x:x + side][ink] = labels[j] + 1
            taken = np.vstack([taken, [(y, x, side)]])
            boxes[i, k] = (x + cols.min(), y + rows.min(), x + cols.max() + 1, y + rows.max() + 1)
            classes[i, k] = labels[j]
    order = np.argsort(classes < 0, axis=1, kind="stable")  # real objects first, padding after
    boxes, classes = np.take_along_axis(boxes, order[..., None], 1), np.take_along_axis(classes, order, 1)
    return tuple(torch.as_tensor(a) for a in (images, masks, boxes, classes))


def _digit_canvas(seed: int) -> Splits:
    """Detection and segmentation canvases: 1–4 of sklearn's digits, each resized to 8–24 pixels,
    pasted without overlap on a 48×48 black canvas (3,000 train, 500 val, 1,000 test).

    Each split is (images (n, 1, 48, 48) float32 in [0, 1], masks (n, 48, 48) int64 with 0 for
    background and 1 + digit for ink (pixels above 0.3), boxes (n, 4, 4) float32 (x1, y1, x2, y2)
    in pixel-edge coordinates, the exact extent of each digit's ink, classes (n, 4) int64 digits,
    -1 where a row of `boxes` is padding). The split's canvases use only that split's digits
    (the digits' own stratified split), so no test digit is ever seen in training.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    parts = _split(d.images / 16.0, d.target, seed, classify=True)
    rng = np.random.default_rng(seed)
    sizes = (3000, 500, 1000)
    canvases = [_paste_digits(X.astype(np.float32), y, n, rng) for (X, y), n in zip(parts, sizes, strict=True)]
    return Splits("digit_canvas", *canvases, num_classes=10)


# --- Wikipedia text and word-vector benchmarks, from files in gensim's wheel -------------------
WIKIPEDIA_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
WIKIPEDIA_VERSION = 2  # bump when the cleaning changes: the cache file's name carries it


def gensim_test_file(name: str) -> Path:
    """The path of a file that ships in gensim's wheel (gensim/test/test_data), without importing gensim."""
    import importlib.util

    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the Wikipedia sample ships with gensim: pip install -r requirements.txt")
    return Path(spec.submodule_search_locations[0]) / "test" / "test_data" / name


def cache_dir() -> Path:
    """Where parsed corpora are kept: $BOOK_CACHE, else ~/.cache/executable-deep-learning."""
    return Path(os.environ.get("BOOK_CACHE") or Path.home() / ".cache" / "executable-deep-learning")


def _wikipedia_articles() -> list[str]:
    """The sample's articles, cleaned: one line each of lowercase words separated by single spaces.

    gensim's wiki parser strips the markup (templates, links, tables, references) and keeps
    alphabetic words only (split at underscores, which its tokenizer counts as letters).
    Parsing takes a few seconds, so the result is cached as a text file (written atomically;
    skipped where the cache folder is read-only) and read back next time.
    """
    import bz2

    source = gensim_test_file(WIKIPEDIA_FILE)
    cache = cache_dir() / f"wikipedia-v{WIKIPEDIA_VERSION}-{source.stat().st_size}.txt"
    if cache.is_file():
        return cache.read_text(encoding="utf-8").splitlines()
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki, tokenize

    lines = []
    with bz2.open(source) as f:
        for _title, text, _page_id in extract_pages(f, filter_namespaces=("0",)):
            if not text.lstrip().lower().startswith("#redirect"):
                tokens = tokenize(filter_wiki(text), token_min_len=1, token_max_len=20, lower=True)
                words = [part for token in tokens for part in token.split("_") if part]
                lines += [" ".join(words)] if words else []
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.name}.{os.getpid()}.partial")
        partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(partial, cache)
    except OSError:
        pass  # a read-only home (a grading sandbox): parse again next time
    return lines


def _wikipedia(seed: int) -> Splits:
    """English Wikipedia (gensim's sample of the first articles): ~470 k words in ~100 articles.

    The articles are shuffled by `seed`, then cut 90 / 5 / 5 by words: an article goes to the
    split in which its first word falls. Each split is a `str`, one article per line, of
    lowercase alphabetic words separated by single spaces.
    """
    lines = _wikipedia_articles()
    order = np.random.default_rng(seed).permutation(len(lines))
    sizes = np.array([lines[i].count(" ") + 1 for i in order])
    start = (np.cumsum(sizes) - sizes) / sizes.sum()  # fraction of words before each article
    part = np.searchsorted([0.9, 0.95], start, side="right")  # 0 train, 1 val, 2 test
    text = ["\n".join(lines[i] for i, p in zip(order, part, strict=True) if p == k) for k in range(3)]
    return Splits("wikipedia", *text, num_classes=None)


@functools.cache
def word_benchmarks() -> dict[str, tuple]:
    """Word-vector test sets from gensim's wheel, lowercased, as tuples of plain values.

    - ``analogy``: Mikolov et al.'s 19,544 questions, (section, a, b, c, d) for a : b :: c : d,
      in 14 sections (5 semantic such as ``capital-common-countries``, 9 ``gram*`` syntactic);
    - ``wordsim353``: 353 pairs (word1, word2, mean human relatedness on a 0-10 scale);
    - ``simlex999``: 999 pairs (word1, word2, mean human similarity on a 0-10 scale).
    """
    analogy, section = [], None
    for line in gensim_test_file("questions-words.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            section = line[1:].strip()
        elif line.strip():
            analogy.append((section, *line.lower().split()))

    def pairs(name: str) -> tuple:
        rows = [line.lower().split("\t") for line in gensim_test_file(name).read_text(encoding="utf-8")
                .splitlines() if line.strip() and not line.startswith("#")]
        return tuple((a, b, float(score)) for a, b, score in rows)

    return {"analogy": tuple(analogy), "wordsim353": pairs("wordsim353.tsv"),
            "simlex999": pairs("simlex999.txt")}


_LOADERS: dict[str, Callable[[int], Splits]] = {
    "digits": _digits,
    "moons": _moons,
    "swiss_roll": _swiss_roll,
    "mnist1d": _mnist1d,
    "english": _english,
    "digit_canvas": _digit_canvas,
    "wikipedia": _wikipedia,
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
    swiss_roll positions). Text corpora give a `str` per split. `digit_canvas` gives a 4-tuple per
    split instead, (images, masks, boxes, classes): see `_digit_canvas`.
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown data set {name!r}; known data sets: {', '.join(names())}")
    d = _cached(name, seed)  # generated once per process; callers get copies they may modify
    return Splits(d.name, _copy(d.train), _copy(d.val), _copy(d.test), num_classes=d.num_classes)
