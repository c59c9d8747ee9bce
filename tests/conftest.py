"""Shared pytest set-up: one torch thread, so that tests on a shared machine stay fast and
their timings comparable."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
