"""pipelines/minhash.py gives the sketches and the LSH banding datasketch gives (the library is the reference)."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from pipelines.minhash import lsh_bands, similarity, sketch


@pytest.mark.parametrize("size", [1, 2, 7, 300, 5000])
def test_sketch_equals_datasketch_affine32(size: int) -> None:
    hashes = np.random.default_rng(size).integers(0, 2**32, size, dtype=np.uint64)
    reference = MinHash(num_perm=64, hashfunc=int)
    reference.update_batch(hashes.tolist())
    ours = sketch(hashes)
    assert ours is not None and ours.dtype == reference.hashvalues.dtype
    assert np.array_equal(ours, reference.hashvalues)


def test_similarity_equals_datasketch_jaccard() -> None:
    rng = np.random.default_rng(1)
    shared = rng.integers(0, 2**32, 400, dtype=np.uint64)
    a = np.concatenate((shared, rng.integers(0, 2**32, 100, dtype=np.uint64)))
    b = np.concatenate((shared, rng.integers(0, 2**32, 100, dtype=np.uint64)))
    ma, mb = MinHash(num_perm=64, hashfunc=int), MinHash(num_perm=64, hashfunc=int)
    ma.update_batch(a.tolist())
    mb.update_batch(b.tolist())
    sa, sb = sketch(a), sketch(b)
    assert sa is not None and sb is not None
    assert similarity(sa, sb) == ma.jaccard(mb)


def test_an_empty_set_has_no_sketch() -> None:
    assert sketch(np.empty(0, dtype=np.uint64)) is None


@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.1, 0.9), (0.9, 0.1)])
@pytest.mark.parametrize("num_perm", [64, 128])
def test_bands_equal_datasketch_lsh_wherever_it_accepts_the_threshold(weights: tuple[float, float], num_perm: int) -> None:
    compared = 0
    for threshold in (round(t, 2) for t in np.arange(0.05, 1.0, 0.05)):
        try:
            reference = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
        except ValueError:
            # datasketch refuses a single band (very high thresholds); one band of rows works here.
            assert lsh_bands(threshold, num_perm, weights)[0] == 1
            continue
        assert lsh_bands(threshold, num_perm, weights) == (reference.b, reference.r), threshold
        compared += 1
    assert compared >= 15


def test_a_threshold_outside_zero_one_is_refused() -> None:
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            lsh_bands(bad)
