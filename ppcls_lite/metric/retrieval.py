"""Retrieval metrics (`Global.eval_mode: retrieval`): each query's gallery ranking scored by Recall@k, mAP, mINP
and Precision@k, with PaddleClas's names and result keys (`recall1`, `mAP`, `mINP`, `precision@1`).

The engine (engine/retrieval.py) ranks the gallery for a block of queries at a time and hands every metric the
same `ranked` array: bool [queries, gallery], True where the gallery image at that rank has the query's identity
(gallery images excluded for a query - the query image itself, the same identity seen by the same camera - are
ranked last and never relevant). Each metric keeps sums and counts, so the result does not depend on the block
size, and ranks split over processes add up exactly (`state` / `result_from_state`, as TopkAcc).

Queries without any relevant gallery image are left out of Recall@k, mAP and mINP (PaddleClas's rule); their
number is still counted by Precision@k, which averages over every query as PaddleClas's Precisionk does.
Differences from PaddleClas: it averages the per-block values weighted by block size (its Recall@k is then not
exact when some queries have no match), and its mINP divides by the 0-based position of the hardest match (a
query whose only match is ranked first gives infinity); here the sums are exact and mINP uses the rank
(1-based), as in Ye et al. 2021, "Deep Learning for Person Re-identification", eq. 9.
"""
from typing import Any, Dict, List

import numpy as np

from .topk import METRICS


class RetrievalMetric:
    """Common part: sums kept as named numpy arrays (`fields`: name -> (length, dtype)), their state for the
    all-reduce, the best-model direction, and the refusal of classification batches. Subclasses add
    `update_ranked(ranked)` (adding to `self.sums`) and `values(sums)` (the results)."""

    retrieval = True  # scored on gallery rankings (engine/retrieval.py), not on classification batches
    higher_is_better = True
    name = "retrieval metric"
    keys: List[str] = []

    @property
    def primary_key(self) -> str:
        """The result that ranks models when this metric comes first in Metric.Eval."""
        return self.keys[0]

    def fields(self) -> Dict[str, tuple]:
        raise NotImplementedError

    def values(self, sums: Dict[str, np.ndarray]) -> Dict[str, float]:
        raise NotImplementedError

    def reset(self) -> None:
        """Zero the sums."""
        self.sums = {key: np.zeros(length, dtype) for key, (length, dtype) in self.fields().items()}

    def update(self, outputs: Any, labels: Any) -> Dict[str, float]:
        """Not a classification metric: say how to use it."""
        raise ValueError(f"{self.name} is a retrieval metric: it needs Global.eval_mode: retrieval (query and "
                         f"gallery features), not a classification batch; use TopkAcc in Metric.Train")

    def state(self) -> Dict[str, np.ndarray]:
        """A copy of the sums, keyed `<name>/<field>` (summed over ranks by the engine)."""
        return {f"{self.name}/{key}": value.copy() for key, value in self.sums.items()}

    def _from_state(self, state: Dict[str, Any]) -> Dict[str, np.ndarray]:
        return {key: np.asarray(state[f"{self.name}/{key}"], dtype).reshape(length).copy()
                for key, (length, dtype) in self.fields().items()}

    def set_state(self, state: Dict[str, Any]) -> None:
        """Replace the sums with those of `state`."""
        self.sums = self._from_state(state)

    def result_from_state(self, state: Dict[str, Any]) -> Dict[str, float]:
        """The results from the sums in `state`, leaving this metric's own alone."""
        return self.values(self._from_state(state))

    def accumulate(self) -> Dict[str, float]:
        """The metric over every query ranked since the last reset."""
        return self.values(self.sums)


def _valid(ranked: np.ndarray) -> np.ndarray:
    """Queries with at least one relevant gallery image."""
    return ranked.any(axis=1)


def _ratio(total: float, count: int) -> float:
    return float(total) / count if count else float("nan")


class _PerK(RetrievalMetric):
    """A value for each k of `topk` (keys `key_format.format(k)`): a sum per k (`sum_dtype`) and a query count.
    Only `descending: True` (the gallery is ranked by similarity)."""

    key_format, sum_dtype = "{}", np.float64

    def __init__(self, topk=(1, 5), descending: bool = True, class_num=None):
        self.topk = _checked_topk(topk, descending, self.name)
        self.keys = [self.key_format.format(k) for k in self.topk]
        self.reset()

    def fields(self) -> Dict[str, tuple]:
        """a sum per k, queries."""
        return {"sum": (len(self.topk), self.sum_dtype), "queries": (1, np.int64)}

    def values(self, sums: Dict[str, np.ndarray]) -> Dict[str, float]:
        """{key of k: sum of k / queries}."""
        return {key: _ratio(total, int(sums["queries"][0])) for key, total in zip(self.keys, sums["sum"])}


@METRICS.register()
class Recallk(_PerK):
    """Fraction of the queries (with a match) whose first match is within the top k, for each k in `topk`
    (PaddleClas's CMC top-k, keys `recall1`, `recall5`, ...)."""

    name, key_format, sum_dtype = "Recallk", "recall{}", np.int64

    def update_ranked(self, ranked: np.ndarray) -> None:
        """Count one block of ranked queries."""
        valid = _valid(ranked)
        first = np.where(valid, ranked.argmax(axis=1), ranked.shape[1])
        self.sums["sum"] += np.array([(first[valid] < k).sum() for k in self.topk], dtype=np.int64)
        self.sums["queries"] += int(valid.sum())


class _MeanOverQueries(RetrievalMetric):
    """A per-query value averaged over the queries with a match: `per_query(ranked rows with a match)`."""

    def __init__(self, descending: bool = True, class_num=None):
        _check_descending(descending, self.name)
        self.keys = [self.name]
        self.reset()

    def fields(self) -> Dict[str, tuple]:
        """the per-query values' sum, queries with a match."""
        return {"sum": (1, np.float64), "queries": (1, np.int64)}

    def update_ranked(self, ranked: np.ndarray) -> None:
        """Add one block of ranked queries."""
        rows = ranked[_valid(ranked)]
        if len(rows):
            self.sums["sum"] += float(self.per_query(rows).sum())
            self.sums["queries"] += len(rows)

    def per_query(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def values(self, sums: Dict[str, np.ndarray]) -> Dict[str, float]:
        """{name: the mean} (nan when no query has a match)."""
        return {self.name: _ratio(sums["sum"][0], int(sums["queries"][0]))}


@METRICS.register()
class mAP(_MeanOverQueries):  # noqa: N801 (PaddleClas's name)
    """Mean average precision: per query, the precision at each match's rank, averaged over its matches."""

    name = "mAP"

    def per_query(self, rows: np.ndarray) -> np.ndarray:
        """Average precision of each row."""
        ranks = np.arange(1, rows.shape[1] + 1)
        precision_at_hits = np.cumsum(rows, axis=1) / ranks * rows
        return precision_at_hits.sum(axis=1) / rows.sum(axis=1)


@METRICS.register()
class mINP(_MeanOverQueries):  # noqa: N801 (PaddleClas's name)
    """Mean inverse negative penalty: per query, matches / rank of its hardest (last-ranked) match."""

    name = "mINP"

    def per_query(self, rows: np.ndarray) -> np.ndarray:
        """Inverse negative penalty of each row."""
        last = rows.shape[1] - np.argmax(rows[:, ::-1], axis=1)  # 1-based rank of the last match
        return rows.sum(axis=1) / last


@METRICS.register()
class Precisionk(_PerK):
    """Matches among the top k divided by k, averaged over every query (PaddleClas: keys `precision@1`, ...)."""

    name, key_format = "Precisionk", "precision@{}"

    def update_ranked(self, ranked: np.ndarray) -> None:
        """Add one block of ranked queries."""
        self.sums["sum"] += np.array([ranked[:, :k].sum() / k for k in self.topk], dtype=np.float64)
        self.sums["queries"] += ranked.shape[0]


def _checked_topk(topk: Any, descending: Any, name: str) -> List[int]:
    """`topk` (an int or a list) as a list of whole numbers >= 1; refuse `descending: False`."""
    ks = [topk] if isinstance(topk, int) else list(topk)
    if not ks or any(isinstance(k, bool) or int(k) < 1 for k in ks):
        raise ValueError(f"{name}.topk must be whole numbers >= 1, got {topk!r} (Metric.Eval.{name}.topk)")
    _check_descending(descending, name)
    return [int(k) for k in ks]


def _check_descending(descending: Any, name: str) -> None:
    if descending is not True:
        raise ValueError(f"{name}.descending={descending!r} is not supported: the gallery is ranked by similarity, "
                         f"highest first; remove the key")


RETRIEVAL_METRICS: List[str] = ["Recallk", "mAP", "mINP", "Precisionk"]


def is_retrieval_metric(name: str) -> bool:
    """True for a metric scored on gallery rankings (Global.eval_mode: retrieval)."""
    return name in RETRIEVAL_METRICS
