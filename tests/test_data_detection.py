"""book.data's digit canvases: exact boxes, classes and masks, deterministic splits."""

from __future__ import annotations

import pytest
import torch

from book import data


@pytest.fixture(scope="module")
def canvas():
    return data.load("digit_canvas")


def test_shapes_dtypes_and_split_sizes(canvas):
    assert canvas.num_classes == 10
    for part, n in ((canvas.train, 3000), (canvas.val, 500), (canvas.test, 1000)):
        images, masks, boxes, classes = part
        assert images.shape == (n, 1, 48, 48) and images.dtype == torch.float32
        assert masks.shape == (n, 48, 48) and masks.dtype == torch.int64
        assert boxes.shape == (n, 4, 4) and classes.shape == (n, 4)
        assert 0 <= images.min() and images.max() <= 1
        counts = (classes >= 0).sum(1)
        assert counts.min() >= 1 and counts.max() <= 4
        # real objects come first, padding (-1, zero box) after
        assert bool(((classes >= 0).int().diff(dim=1) <= 0).all())
        assert bool((boxes[classes < 0] == 0).all())


def test_boxes_are_the_exact_extent_of_each_digits_ink(canvas):
    images, masks, boxes, classes = canvas.train
    for i in range(200):
        for box, c in zip(boxes[i], classes[i], strict=True):
            if c < 0:
                continue
            x1, y1, x2, y2 = box.long().tolist()
            assert box.tolist() == [x1, y1, x2, y2], "boxes lie on pixel edges"
            ink = masks[i] == c + 1
            inside = ink[y1:y2, x1:x2]
            assert inside.any(0).all() and inside.any(1).all(), "box wider than the ink"
            outside = ink.clone()
            outside[y1:y2, x1:x2] = False
            # another digit of the same class may sit elsewhere: no ink touches this box's border
            if outside.any():
                ring = torch.zeros_like(ink)
                ring[max(y1 - 1, 0):y2 + 1, max(x1 - 1, 0):x2 + 1] = True
                ring[y1:y2, x1:x2] = False
                assert not (outside & ring).any()


def test_masks_agree_with_images_and_classes(canvas):
    images, masks, boxes, classes = canvas.test
    assert bool(((masks > 0) == (images[:, 0] > 0.3)).all()), "mask = ink above 0.3"
    for i in range(len(masks)):
        present = set((masks[i].unique() - 1).tolist()) - {-1}
        assert present == set(classes[i][classes[i] >= 0].tolist())


def test_sizes_span_small_and_large_and_boxes_do_not_overlap(canvas):
    _, _, boxes, classes = canvas.train
    real = classes >= 0
    w, h = (boxes[..., 2] - boxes[..., 0])[real], (boxes[..., 3] - boxes[..., 1])[real]
    assert h.min() >= 6 and h.max() == 24
    small = (w * h < 144).float().mean()
    assert 0.3 < small < 0.7, f"fraction of small objects {small:.2f}"
    assert sorted(classes[real].unique().tolist()) == list(range(10))
    for i in range(500):
        b = boxes[i][classes[i] >= 0]
        lo, hi = torch.maximum(b[:, None, :2], b[None, :, :2]), torch.minimum(b[:, None, 2:], b[None, :, 2:])
        inter = (hi - lo).clamp(min=0).prod(-1)
        assert bool((inter.fill_diagonal_(0) == 0).all())


def test_deterministic_per_seed_and_different_across_seeds(canvas):
    again = data._digit_canvas(0)
    for a, b in zip(canvas.test, again.test, strict=True):
        assert torch.equal(a, b)
    other = data.load("digit_canvas", seed=1)
    assert not torch.equal(canvas.test[0], other.test[0])


def test_load_returns_copies(canvas):
    d = data.load("digit_canvas")
    d.train[0].zero_()
    assert data.load("digit_canvas").train[0].max() == 1
