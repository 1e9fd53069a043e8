"""Merging data annotators' labels: majority vote per sample, with agreement statistics.

Annotators return JSON results ``{"annotations": {sample_id: label, ...}}``. The creator merges
several of them; ties are reported rather than broken silently, so a reviewer sees where the
annotators disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from decentralml.errors import InvalidInput


class MergedLabel(BaseModel):
    """The vote on one sample."""

    sample_id: str
    label: Any | None
    votes: dict[str, int]
    agreement: float
    tie: bool


class MergedAnnotations(BaseModel):
    """All samples' votes, plus how much the annotators agreed overall."""

    labels: dict[str, MergedLabel]
    annotators: int
    mean_agreement: float
    ties: list[str]

    def as_dict(self) -> dict[str, Any]:
        """sample id -> winning label (ties left out)."""
        return {k: v.label for k, v in self.labels.items() if not v.tie}


def annotations_of(result: Mapping[str, Any], *, index: int = 0) -> dict[str, Any]:
    """Pull the ``annotations`` mapping out of one annotator's JSON result, checking its shape."""
    ann = result.get("annotations")
    if not isinstance(ann, Mapping):
        raise InvalidInput(f"results[{index}].annotations", "must be an object of sample -> label")
    return {str(k): v for k, v in ann.items()}


def merge_annotations(results: Sequence[Mapping[str, Any]],
                      *, min_votes: int = 1) -> MergedAnnotations:
    """Majority vote over annotators' results; samples with fewer than ``min_votes`` are dropped."""
    if not results:
        raise InvalidInput("results", "needs at least one annotator's result")
    per_sample: dict[str, Counter[str]] = {}
    raw_label: dict[str, Any] = {}
    for i, result in enumerate(results):
        for sample, label in annotations_of(result, index=i).items():
            key = repr(label)  # labels may be unhashable (lists): vote on their repr
            raw_label[key] = label
            per_sample.setdefault(sample, Counter())[key] += 1
    labels: dict[str, MergedLabel] = {}
    for sample, counts in sorted(per_sample.items()):
        total = sum(counts.values())
        if total < min_votes:
            continue
        (top, top_n), *rest = counts.most_common()
        tie = bool(rest) and rest[0][1] == top_n
        labels[sample] = MergedLabel(
            sample_id=sample, label=None if tie else raw_label[top],
            votes={k: n for k, n in counts.items()}, agreement=top_n / total, tie=tie)
    mean = sum(m.agreement for m in labels.values()) / len(labels) if labels else 0.0
    return MergedAnnotations(labels=labels, annotators=len(results), mean_agreement=mean,
                             ties=[s for s, m in labels.items() if m.tie])
