"""Validation policies decide per submission, without a chain."""

from __future__ import annotations

import json

import pytest

from decentralml.chain.policies import (
    AutoAccept,
    Custom,
    Decision,
    Manual,
    Threshold,
    ValidationPolicy,
    as_policy,
)
from decentralml.chain.types import Submission, SubmissionStatus
from decentralml.errors import InvalidInput


def sub(sid: int, accuracy: float | None = None) -> Submission:
    result = b"" if accuracy is None else json.dumps({"metrics": {"accuracy": accuracy}}).encode()
    return Submission(submission_id=sid, task_id=1, worker="5Grw", result=result,
                      status=SubmissionStatus.PendingValidation, result_cid=None,
                      result_storage=None, assigned_block=1, submitted_block=2,
                      validated_block=None)


def test_auto_accept() -> None:
    assert AutoAccept().decide(sub(1)).accept is True
    assert isinstance(AutoAccept(), ValidationPolicy)


def test_manual_accepts_bools_none_and_decisions() -> None:
    verdicts = {1: True, 2: False, 3: None, 4: Decision(accept=False, reason="spam")}
    policy = Manual(lambda s: verdicts[s.submission_id])
    assert [policy.decide(sub(i)).accept for i in (1, 2, 3, 4)] == [True, False, None, False]
    assert policy.decide(sub(4)).reason == "spam"
    with pytest.raises(InvalidInput):
        Manual(lambda s: "yes").decide(sub(1))  # type: ignore[arg-type,return-value]


def test_threshold_scores() -> None:
    def score(s: Submission) -> float | None:
        return s.result_json().get("metrics", {}).get("accuracy")

    policy = Threshold(score, 0.9)
    good, bad, unknown = policy.decide(sub(1, 0.95)), policy.decide(sub(2, 0.5)), \
        policy.decide(sub(3))
    assert (good.accept, good.score) == (True, 0.95)
    assert (bad.accept, bad.score) == (False, 0.5)
    assert unknown.accept is None  # could not be scored: left pending, not punished
    loss = Threshold(lambda s: 0.2, 0.3, higher_is_better=False)
    assert loss.decide(sub(1)).accept is True


def test_custom_and_plain_callables() -> None:
    policy = Custom(lambda s: Decision(accept=s.submission_id % 2 == 0, reason="parity"))
    assert policy.decide(sub(2)).accept is True and policy.decide(sub(3)).accept is False
    assert as_policy(lambda s: True).decide(sub(1)).accept is True
    assert as_policy(AutoAccept()).decide(sub(1)).accept is True
    with pytest.raises(InvalidInput):
        as_policy(42)  # type: ignore[arg-type]
