"""A small, readable training loop with a progress bar for people and silence for builds."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

PROGRESS_VARIABLE = "BOOK_PROGRESS"  # "0" turns bars off: set by `make book` and `make test`


@dataclass
class History:
    """What `train` measured: losses per mini-batch and per epoch, validation per epoch."""

    step_loss: list[float] = field(default_factory=list)  # every mini-batch
    train_loss: list[float] = field(default_factory=list)  # mean over each epoch
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)


def _progress(total: int, desc: str):
    """A tqdm bar in a notebook front end or terminal, or None when BOOK_PROGRESS=0."""
    if os.environ.get(PROGRESS_VARIABLE, "1") == "0":
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def _model_device(model: torch.nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor,
             loss_fn: Callable = F.cross_entropy) -> tuple[float, float]:
    """Loss and accuracy of `model` on (X (n, ...), y (n,)), in eval mode, restoring the mode after."""
    was_training = model.training
    model.eval()
    dev = _model_device(model)
    out = model(X.to(dev))
    loss = loss_fn(out, y.to(dev)).item()
    classify = out.dim() > 1 and not y.is_floating_point()
    acc = (out.argmax(-1) == y.to(dev)).float().mean().item() if classify else float("nan")
    model.train(was_training)
    return loss, acc


def accuracy(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of X (n, ...) whose arg-max output equals the label y (n,)."""
    return evaluate(model, X, y)[1]


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable = F.cross_entropy,
    epochs: int = 10,
    batch_size: int = 64,
    X_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    seed: int = 0,
    scheduler=None,
    drop_last: bool = False,
) -> History:
    """Train `model` by mini-batch steps over (X (n, ...), y (n,)) and return its History.

    Batches are reshuffled each epoch by a generator seeded with `seed`, and moved to the model's
    device. `scheduler`, if given, steps once per mini-batch. `drop_last` skips each epoch's final
    short batch (batch norm cannot normalise a batch of one).
    """
    dev = _model_device(model)
    X, y = X.to(dev), y.to(dev)
    order = torch.Generator().manual_seed(seed)
    steps = len(X) // batch_size if drop_last else (len(X) + batch_size - 1) // batch_size
    history, bar = History(), _progress(epochs * steps, type(optimizer).__name__)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=order).to(dev)
        total = torch.zeros((), device=dev)
        for i in range(steps):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            loss = loss_fn(model(X[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            history.step_loss.append(loss.item())
            total += loss.detach() * len(idx)
            if bar is not None:
                bar.update(1)
        history.train_loss.append(total.item() / min(len(X), steps * batch_size))
        if X_val is not None and y_val is not None:
            v_loss, v_acc = evaluate(model, X_val, y_val, loss_fn)
            history.val_loss.append(v_loss)
            history.val_acc.append(v_acc)
    if bar is not None:
        bar.close()
    return history
