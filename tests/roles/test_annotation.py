from __future__ import annotations

import pytest

from decentralml.errors import InvalidInput
from decentralml.roles.annotation import merge_annotations


def test_majority_vote_and_agreement() -> None:
    merged = merge_annotations([
        {"annotations": {"a": "cat", "b": "dog", "c": [1, 2]}},
        {"annotations": {"a": "cat", "b": "cat", "c": [1, 2]}},
        {"annotations": {"a": "dog", "b": "dog"}},
    ])
    assert merged.as_dict() == {"a": "cat", "b": "dog", "c": [1, 2]}
    assert merged.labels["a"].agreement == pytest.approx(2 / 3)
    assert merged.labels["c"].agreement == 1.0
    assert merged.annotators == 3
    assert merged.ties == []


def test_ties_are_reported_not_broken() -> None:
    merged = merge_annotations([{"annotations": {"x": 1}}, {"annotations": {"x": 2}}])
    assert merged.ties == ["x"]
    assert merged.labels["x"].label is None
    assert merged.as_dict() == {}


def test_min_votes_drops_thin_samples() -> None:
    merged = merge_annotations([{"annotations": {"x": 1, "y": 1}}, {"annotations": {"x": 1}}],
                               min_votes=2)
    assert list(merged.labels) == ["x"]


def test_bad_shapes_name_the_field() -> None:
    with pytest.raises(InvalidInput, match="results"):
        merge_annotations([])
    with pytest.raises(InvalidInput, match=r"results\[1\].annotations"):
        merge_annotations([{"annotations": {}}, {"annotations": ["x"]}])
