"""Seeded random streams.

Every component draws from its own named stream, derived from the world seed and a label, so that
changing one part of the world (say, the campaigns of another profile) never shifts the draws of
another part (the legitimate population stays the same for a given seed).
"""

from __future__ import annotations

import hashlib
import math
import random

import numpy as np


def label_key(*labels: object) -> int:
    """A stable 64-bit integer for a tuple of labels (Python's hash() is salted per process)."""
    raw = "\x1f".join(str(x) for x in labels).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")


def np_stream(seed: int, *labels: object) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, label_key(*labels)]))


def py_stream(seed: int, *labels: object) -> random.Random:
    return random.Random(label_key(seed, *labels))


def loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def hexid(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def weighted(rng: random.Random, items: list, weights: list[float]):
    return rng.choices(items, weights)[0]


def probs(weights) -> np.ndarray:
    """Weights as a probability vector (world.json keeps them rounded, numpy wants an exact sum)."""
    a = np.asarray(weights, dtype=float)
    return a / a.sum()
