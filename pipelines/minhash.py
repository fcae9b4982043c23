"""MinHash sketches and LSH banding for the dedupe stage, on numpy alone.

The same sketches and the same bands x rows choice as datasketch's
``MinHash`` (its default "affine32" scheme, seed 1) and ``MinHashLSH``
(tests/test_minhash.py checks both against datasketch). The dedupe stage
used datasketch itself, but importing it imports scipy (for the banding's
integrals): about a second of CPU in every sidecar process, that is, in
every crawl, for a step that is three array operations here.
"""

from __future__ import annotations

import functools

import numpy as np

NUM_PERM = 64
SEED = 1

# MurmurHash3's 32-bit finaliser: a fixed bijection that spreads the input
# hashes before the affine permutations (as datasketch's "affine32" does).
_FMIX_1, _FMIX_2 = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35)
_SHIFT_16, _SHIFT_13 = np.uint32(16), np.uint32(13)


@functools.cache
def permutations(num_perm: int = NUM_PERM, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of the affine maps h -> a*h + b mod 2**32; an odd ``a`` makes each a bijection."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def sketch(hashes: np.ndarray, num_perm: int = NUM_PERM) -> np.ndarray | None:
    """The MinHash (``num_perm`` uint32 minima) of a set given as 32-bit hashes; None for an empty set."""
    if not len(hashes):
        return None
    a, b = _columns(num_perm)
    hv = hashes.astype(np.uint32)
    hv ^= hv >> _SHIFT_16
    hv *= _FMIX_1
    hv ^= hv >> _SHIFT_13
    hv *= _FMIX_2
    hv ^= hv >> _SHIFT_16
    # One row per permutation, so each minimum runs along contiguous memory;
    # uint32 arithmetic wraps: the modulo 2**32 comes free.
    values = hv * a
    values += b
    result: np.ndarray = values.min(axis=1)
    return result


@functools.cache
def _columns(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """The permutations' (a, b) as column vectors."""
    a, b = permutations(num_perm)
    return a.reshape(-1, 1), b.reshape(-1, 1)


def similarity(first: np.ndarray, second: np.ndarray) -> float:
    """The estimated Jaccard similarity of two sketches: the share of equal minima."""
    return float(np.mean(first == second))


@functools.cache
def lsh_bands(threshold: float, num_perm: int = NUM_PERM, weights: tuple[float, float] = (0.5, 0.5)) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive and false negative areas at ``threshold``.

    A pair of similarity s becomes a candidate with probability
    1 - (1 - s**r)**b. False positives are its integral over [0, threshold],
    false negatives that of its complement over [threshold, 1]. Both
    integrands are polynomials of degree at most ``num_perm``, so Gauss-Legendre
    quadrature with ``num_perm // 2 + 1`` nodes gives them exactly.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"LSH threshold must be in (0, 1], got {threshold!r}")
    fp_weight, fn_weight = weights
    nodes, node_weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    low = (nodes + 1) * threshold / 2  # [-1, 1] -> [0, threshold]
    high = threshold + (nodes + 1) * (1 - threshold) / 2  # -> [threshold, 1]
    best, choice = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            false_positive = threshold / 2 * float(np.dot(node_weights, 1 - (1 - low**r) ** b))
            false_negative = (1 - threshold) / 2 * float(np.dot(node_weights, (1 - high**r) ** b))
            error = false_positive * fp_weight + false_negative * fn_weight
            if error < best:
                best, choice = error, (b, r)
    return choice
