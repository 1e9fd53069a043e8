"""Validation policies: how a task's creator decides about each pending submission.

The chain only records accept/reject; *how* to decide is the reviewer's business and lives here as
a tiny protocol, ``decide(submission) -> Decision``. ``Decision.accept`` is True (accept and pay),
False (reject, reopening the slot) or None (skip for now: leave it pending). The client gathers
every decision first and sends them in one ``Utility.batch_all``, so a policy that raises half-way
sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from decentralml.chain.types import Submission
from decentralml.errors import InvalidInput


class Decision(BaseModel):
    """One verdict. ``score`` is whatever the policy measured (e.g. holdout accuracy)."""

    model_config = ConfigDict(frozen=True)

    accept: bool | None
    reason: str = ""
    score: float | None = None


@runtime_checkable
class ValidationPolicy(Protocol):
    def decide(self, submission: Submission) -> Decision: ...


#: The name the roles use for any policy.
Policy = ValidationPolicy


class AutoAccept:
    """Accept everything pending (the creator vouches for every worker)."""

    def decide(self, submission: Submission) -> Decision:
        return Decision(accept=True, reason="auto-accept")

    def __repr__(self) -> str:
        return "AutoAccept()"


#: What a manual decider may return: a bare verdict or a full Decision.
Verdict = bool | None | Decision


def _as_decision(value: Verdict, reason: str) -> Decision:
    if isinstance(value, Decision):
        return value
    if value is None or isinstance(value, bool):
        return Decision(accept=value, reason=reason)
    raise InvalidInput("policy", f"a decider returned {type(value).__name__}",
                       "True, False, None or a Decision")


class Manual:
    """A person (or any callable standing in for one) decides per submission.

    The CLI passes an interactive prompt; notebooks pass a function or a dict lookup. The callable
    returns True/False/None or a :class:`Decision`.
    """

    def __init__(self, decide: Callable[[Submission], Verdict]) -> None:
        self._decide = decide

    def decide(self, submission: Submission) -> Decision:
        return _as_decision(self._decide(submission), "manual")

    def __repr__(self) -> str:
        return f"Manual({self._decide!r})"


class Threshold:
    """Score each submission (e.g. evaluate the contributed model on a holdout set) and accept
    when the score clears ``threshold``.

    ``higher_is_better=False`` for losses. A ``None`` score (could not evaluate) skips the
    submission, leaving it pending, rather than punishing the worker for the reviewer's problem.
    """

    def __init__(self, score: Callable[[Submission], float | None], threshold: float, *,
                 higher_is_better: bool = True) -> None:
        self._score = score
        self.threshold = threshold
        self.higher_is_better = higher_is_better

    def decide(self, submission: Submission) -> Decision:
        value = self._score(submission)
        if value is None:
            return Decision(accept=None, reason="could not be scored")
        score = float(value)
        ok = score >= self.threshold if self.higher_is_better else score <= self.threshold
        op = (">=" if ok else "<") if self.higher_is_better else ("<=" if ok else ">")
        return Decision(accept=ok, score=score, reason=f"score {score:g} {op} {self.threshold:g}")

    def __repr__(self) -> str:
        return f"Threshold({self._score!r}, {self.threshold!r})"


class Custom:
    """Any callable returning a full :class:`Decision`, for policies that need more than a
    score (several metrics, a reason to show the worker)."""

    def __init__(self, decide: Callable[[Submission], Decision]) -> None:
        self._decide = decide

    def decide(self, submission: Submission) -> Decision:
        return _as_decision(self._decide(submission), "custom")

    def __repr__(self) -> str:
        return f"Custom({self._decide!r})"


def as_policy(policy: ValidationPolicy | Callable[[Submission], Verdict]) -> ValidationPolicy:
    """Accept a policy object or a plain callable (treated as :class:`Manual`)."""
    if isinstance(policy, ValidationPolicy):
        return policy
    if callable(policy):
        return Manual(policy)
    raise InvalidInput("policy", f"{policy!r} is not a policy",
                       "AutoAccept(), Manual(fn), Threshold(score, t), Custom(fn) or a callable")
