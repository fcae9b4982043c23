"""The extraction-quality metric of the extraction dev set (shingle precision/recall/F1)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

TOKEN = re.compile(r"\w+")
SHINGLE = 4


def shingles(text: str) -> Counter[tuple[str, ...]]:
    tokens = TOKEN.findall(text or "")
    return Counter(tuple(tokens[i : i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1))


def document_scores(predicted: str, expected: str) -> tuple[float, float]:
    """Precision and recall of one document (1.0 when a denominator is zero)."""
    pred, true = shingles(predicted), shingles(expected)
    tp = sum((pred & true).values())
    fp = sum(pred.values()) - tp
    fn = sum(true.values()) - tp
    total = tp + fp + fn
    if total == 0:
        return 1.0, 1.0
    tp_n, fp_n, fn_n = tp / total, fp / total, fn / total
    precision = tp_n / (tp_n + fp_n) if tp_n + fp_n else 1.0
    recall = tp_n / (tp_n + fn_n) if tp_n + fn_n else 1.0
    return precision, recall


def corpus_scores(predictions: Mapping[str, str], truth: Mapping[str, str]) -> dict[str, float]:
    """Precision and recall averaged over documents; F1 from the two averages."""
    pairs: Iterable[tuple[float, float]] = (
        document_scores(predictions.get(doc_id, ""), expected) for doc_id, expected in truth.items()
    )
    precisions, recalls = zip(*pairs)
    precision = sum(precisions) / len(precisions)
    recall = sum(recalls) / len(recalls)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "documents": len(precisions)}
