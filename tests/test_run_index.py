"""The dedupe pipeline's on-disk run index."""

from __future__ import annotations

from pipelines.dedupe import DedupePipeline, minhash
from pipelines.run_index import RunIndex

BASE = " ".join(f"word{i}" for i in range(400))


def test_keys_digests_and_nearest_sketch() -> None:
    index = RunIndex(bands=5, rows=11)
    try:
        assert index.add_key("article", "http://a/1") and not index.add_key("article", "http://a/1")
        assert index.add_key("discussion", "http://a/1")  # kinds are separate
        index.add_digest("d1", "http://a/1")
        assert index.url_with_digest("d1") == "http://a/1" and index.url_with_digest("d2") is None
        original = minhash(BASE)
        near = minhash(BASE.replace("word7 ", "changed ", 1))
        other = minhash(" ".join(f"other{i}" for i in range(400)))
        assert original is not None and near is not None and other is not None
        index.add_sketch("http://a/1", original)
        assert index.nearest(near, 0.8) == "http://a/1"
        assert index.nearest(other, 0.8) is None
    finally:
        index.close()
    assert not index.path.exists()


def test_pipeline_removes_its_index_when_the_spider_closes() -> None:
    pipeline = DedupePipeline()
    path = pipeline._index.path
    assert path.exists()
    pipeline.close_spider()
    assert not path.exists()
