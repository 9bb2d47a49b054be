"""Reproducibility and hardware: one seed for every generator, one device for every tensor."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_VARIABLE = "BOOK_DEVICE"


def seed(n: int) -> None:
    """Seed Python's `random`, NumPy and torch (CPU and every CUDA device) with `n`."""
    random.seed(n)
    np.random.seed(n)
    torch.manual_seed(n)  # also seeds all CUDA devices


def device() -> torch.device:
    """The device chapters compute on: CUDA when present, else CPU.

    Set the environment variable BOOK_DEVICE (``cpu``, ``cuda``, ``cuda:1``) to override,
    e.g. to run a GPU machine's notebooks on the CPU for comparison.
    """
    choice = os.environ.get(DEVICE_VARIABLE, "").strip()
    if choice:
        wanted = torch.device(choice)
        if wanted.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{DEVICE_VARIABLE}={choice} but torch sees no CUDA device")
        return wanted
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
