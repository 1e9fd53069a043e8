"""Every bound of docs/protocol.md, both sides of each limit, enforced before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest

from decentralml.chain.types import (
    DEFAULT_LIMITS,
    MAX_ASSIGNMENTS,
    MAX_CID_LENGTH,
    MAX_QUESTION_LENGTH,
    MAX_RESULT_LENGTH,
    U32_MAX,
    U128_MAX,
    AcceptTaskArgs,
    CreateTaskArgs,
    ProtocolLimits,
    SendTaskResultArgs,
    Submission,
    TaskInfo,
    TaskStatus,
    ValidateTaskResultArgs,
    build,
    escrow_account_id,
)
from decentralml.errors import InvalidInput


def create(**overrides: Any) -> CreateTaskArgs:
    args: dict[str, Any] = dict(task_type="ModelContributor", question="q", reward=10,
                                max_assignments=1, validation_strategy="AutoAccept",
                                assets_cid="bafk", assets_storage="Ipfs", expiration_block=10)
    args.update(overrides)
    return build(CreateTaskArgs, **args)


@pytest.mark.parametrize(
    ("field", "ok", "bad"),
    [
        ("question", "x" * MAX_QUESTION_LENGTH, "x" * (MAX_QUESTION_LENGTH + 1)),
        ("question", "x", ""),
        ("question", "é" * (MAX_QUESTION_LENGTH // 2), "é" * (MAX_QUESTION_LENGTH // 2) + "x"),
        ("reward", 1, 0),
        ("reward", U128_MAX, U128_MAX + 1),
        ("reward", 1, -5),
        ("max_assignments", 1, 0),
        ("max_assignments", MAX_ASSIGNMENTS, MAX_ASSIGNMENTS + 1),
        ("assets_cid", "b" * MAX_CID_LENGTH, "b" * (MAX_CID_LENGTH + 1)),
        ("assets_cid", "b", ""),
        ("expiration_block", 1, 0),
        ("expiration_block", U32_MAX, U32_MAX + 1),
        ("task_type", "DataAnnotator", "Painter"),
        ("assets_storage", "Http", "Dropbox"),
        ("validation_strategy", "CustomAccept", "Whatever"),
    ],
)
def test_create_task_bounds(field: str, ok: Any, bad: Any) -> None:
    assert getattr(create(**{field: ok}), field) is not None
    with pytest.raises(InvalidInput) as info:
        create(**{field: bad})
    assert info.value.field == field
    assert field in str(info.value)


def test_the_limits_given_to_build_replace_the_offline_defaults() -> None:
    """A chain configured with other bounds is checked against its own, both ways: tighter bounds
    refuse what the defaults allow, looser ones allow what the defaults refuse."""
    tight = ProtocolLimits(max_assignments=2, max_question_length=4, max_cid_length=3,
                           max_result_length=5)
    loose = ProtocolLimits(**{name: getattr(DEFAULT_LIMITS, name) + 1
                              for name in ProtocolLimits.CONSTANTS})
    base: dict[type[Any], dict[str, Any]] = {
        CreateTaskArgs: dict(task_type="ModelContributor", question="q", reward=10,
                             max_assignments=1, assets_cid="b", assets_storage="Ipfs",
                             expiration_block=10),
        SendTaskResultArgs: dict(submission_id=1, result="r", result_cid="c",
                                 result_storage="Ipfs")}
    # (model, field, the limit that bounds it, one unit of the field's value)
    cases: list[tuple[type[Any], str, str, Any]] = [
        (CreateTaskArgs, "question", "max_question_length", "x"),
        (CreateTaskArgs, "max_assignments", "max_assignments", 1),
        (CreateTaskArgs, "assets_cid", "max_cid_length", "b"),
        (SendTaskResultArgs, "result", "max_result_length", "r"),
        (SendTaskResultArgs, "result_cid", "max_cid_length", "c"),
    ]
    for model, field, limit, unit in cases:
        def with_size(n: int, model: type[Any] = model, field: str = field,
                      unit: Any = unit) -> dict[str, Any]:
            return {**base[model], field: n * unit}
        bound = getattr(tight, limit)
        build(model, limits=tight, **with_size(bound))
        with pytest.raises(InvalidInput) as info:
            build(model, limits=tight, **with_size(bound + 1))
        assert info.value.field == field and f"{bound}" in str(info.value)
        build(model, **with_size(bound + 1))  # the defaults allow it
        default = getattr(DEFAULT_LIMITS, limit)
        with pytest.raises(InvalidInput):
            build(model, **with_size(default + 1))
        build(model, limits=loose, **with_size(default + 1))


def test_escrow_overflow_is_rejected_on_the_reward_product() -> None:
    create(reward=U128_MAX // MAX_ASSIGNMENTS, max_assignments=MAX_ASSIGNMENTS)
    with pytest.raises(InvalidInput, match="overflows"):
        create(reward=U128_MAX // 2 + 1, max_assignments=2)


def test_reward_must_be_an_int_not_a_float() -> None:
    with pytest.raises(InvalidInput) as info:
        create(reward=1.5)
    assert info.value.field == "reward"


def test_expiration_checked_against_current_block() -> None:
    args = create(expiration_block=101)
    args.check_against(current_block=100)
    with pytest.raises(InvalidInput) as info:
        args.check_against(current_block=101)
    assert info.value.field == "expiration_block"
    assert "> 101" in str(info.value)


def test_reward_checked_against_min_reward() -> None:
    args = create(reward=1000)
    args.check_against(current_block=0, min_reward=1000)
    with pytest.raises(InvalidInput) as info:
        args.check_against(current_block=0, min_reward=1001)
    assert info.value.field == "reward"


def test_unknown_argument_is_named() -> None:
    with pytest.raises(InvalidInput) as info:
        create(password="hunter2")
    assert info.value.field == "password"


def test_call_params_encode_text_as_bytes() -> None:
    params = create(question="héllo").call_params()
    assert params["question"] == "héllo".encode()
    assert params["assets_storage"] == "Ipfs"
    assert create(reward=7, max_assignments=3).escrow == 21


@pytest.mark.parametrize("field", ["task_id"])
def test_ids_are_u32(field: str) -> None:
    assert build(AcceptTaskArgs, task_id=U32_MAX).task_id == U32_MAX
    assert build(AcceptTaskArgs, task_id=0).task_id == 0
    for bad in (-1, U32_MAX + 1):
        with pytest.raises(InvalidInput) as info:
            build(AcceptTaskArgs, task_id=bad)
        assert info.value.field == field


def test_send_result_bounds() -> None:
    ok = build(SendTaskResultArgs, submission_id=1, result="r" * MAX_RESULT_LENGTH)
    assert len(ok.result) == MAX_RESULT_LENGTH
    for bad in ("", "r" * (MAX_RESULT_LENGTH + 1), b""):
        with pytest.raises(InvalidInput) as info:
            build(SendTaskResultArgs, submission_id=1, result=bad)
        assert info.value.field == "result"


def test_send_result_dict_is_compact_json() -> None:
    args = build(SendTaskResultArgs, submission_id=1, result={"num_examples": 3, "a": 1.5})
    assert args.result == b'{"a":1.5,"num_examples":3}'


def test_send_result_cid_bounds_and_pairing() -> None:
    build(SendTaskResultArgs, submission_id=1, result="r", result_cid="c" * MAX_CID_LENGTH,
          result_storage="Ipfs")
    for cid in ("", "c" * (MAX_CID_LENGTH + 1)):
        with pytest.raises(InvalidInput) as info:
            build(SendTaskResultArgs, submission_id=1, result="r", result_cid=cid,
                  result_storage="Ipfs")
        assert info.value.field == "result_cid"
    with pytest.raises(InvalidInput, match="together"):
        build(SendTaskResultArgs, submission_id=1, result="r", result_cid="c")
    with pytest.raises(InvalidInput, match="together"):
        build(SendTaskResultArgs, submission_id=1, result="r", result_storage="Local")
    with pytest.raises(InvalidInput) as info:
        build(SendTaskResultArgs, submission_id=U32_MAX + 1, result="r")
    assert info.value.field == "submission_id"


def test_validate_args_need_a_real_bool() -> None:
    assert build(ValidateTaskResultArgs, submission_id=0, accept=False).accept is False
    with pytest.raises(InvalidInput) as info:
        build(ValidateTaskResultArgs, submission_id=0, accept="yes")
    assert info.value.field == "accept"


def test_escrow_account_matches_frame_derivation() -> None:
    acct = escrow_account_id(0)
    assert acct == b"modldecentml" + b"\x00" * 20
    assert escrow_account_id(258)[12:16] == (258).to_bytes(4, "little")
    assert len(escrow_account_id(U32_MAX)) == 32
    with pytest.raises(InvalidInput):
        escrow_account_id(-1)


def test_task_info_from_chain_and_derived_numbers() -> None:
    value = {
        "creator": "5Grw", "task_type": "ModelContributor", "question": "0x" + b"hi".hex(),
        "reward": 5, "max_assignments": 4, "active_assignments": 1, "accepted_results": 2,
        "validation_strategy": {"ManualAccept": None}, "assets_cid": "0x" + b"bafy".hex(),
        "assets_storage": "Ipfs", "created_block": 1, "expiration_block": 9, "status": "Open",
    }
    task = TaskInfo.from_chain(3, value)
    assert (task.question, task.assets_cid, task.open_slots, task.unpaid_escrow) == \
        ("hi", "bafy", 1, 10)
    closed = task.model_copy(update={"status": TaskStatus.Closed})
    assert closed.unpaid_escrow == 0


def test_submission_from_chain_parses_result_json() -> None:
    value = {
        "task_id": 1, "worker": "5F", "status": "PendingValidation",
        "result": "0x" + b'{"num_examples": 12}'.hex(), "result_cid": None,
        "result_storage": None, "assigned_block": 2, "submitted_block": 3,
        "validated_block": None,
    }
    sub = Submission.from_chain(7, value)
    assert sub.num_examples == 12
    assert sub.result_cid is None
    garbage = Submission.from_chain(7, {**value, "result": "0xff"})
    assert garbage.num_examples is None


# -- protocol 2 -------------------------------------------------------------------------------


def test_task_terms_bounds_name_the_field() -> None:
    from decentralml.chain.types import PayoutMode, TaskTerms

    digest = bytes(range(32))
    assert TaskTerms(holdout_commitment=digest.hex()).holdout_commitment == digest
    assert TaskTerms(scoring_commitment="0x" + digest.hex()).scoring_commitment == digest
    for kwargs, field in [({"holdout_commitment": digest[:31]}, "terms.holdout_commitment"),
                          ({"scoring_commitment": "xyz"}, "terms.scoring_commitment"),
                          ({"shards": -1}, "terms.shards"),
                          ({"shards": U32_MAX + 1}, "terms.shards"),
                          ({"floor": U128_MAX + 1}, "terms.floor"), ({"floor": 1.0}, "terms.floor"),
                          ({"payout": "Tips"}, "terms.payout"), ({"bonus": 1}, "terms.bonus")]:
        with pytest.raises(InvalidInput) as caught:
            TaskTerms(**kwargs)
        assert caught.value.field == field, (kwargs, str(caught.value))
    with pytest.raises(InvalidInput, match=r"31 bytes.*32"):
        TaskTerms(payout=PayoutMode.ByContribution, holdout_commitment=digest[:31])


@pytest.mark.parametrize(("overrides", "field", "words"), [
    ({"max_assignments": 2, "terms": {"shards": 1}}, "terms.shards", "max_assignments = 2"),
    ({"max_assignments": 2, "terms": {"shards": 3}}, "terms.shards", "max_assignments = 2"),
    ({"terms": {"payout": "ByContribution"}}, "terms.payout", "AutoAccept"),
    ({"validation_strategy": "ManualAccept",
      "terms": {"payout": "ByContribution", "floor": 11}}, "terms.floor", "reward = 10"),
    ({"validation_strategy": "ManualAccept", "terms": {"floor": 1}}, "terms.floor", "Flat"),
])
def test_terms_checked_against_the_task(overrides: dict[str, Any], field: str,
                                        words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        create(**overrides)
    assert caught.value.field == field and words in str(caught.value)


def test_terms_select_create_task_with_terms() -> None:
    plain = create()
    assert plain.call_name == "create_task" and "terms" not in plain.call_params()
    termed = create(max_assignments=2, validation_strategy="ManualAccept",
                    terms={"shards": 2, "payout": "ByContribution", "floor": 10})
    assert termed.call_name == "create_task_with_terms"
    assert termed.call_params()["terms"] == {"shards": 2, "payout": "ByContribution",
                                             "floor": 10, "holdout_commitment": None,
                                             "scoring_commitment": None}


def test_settle_args_bounds() -> None:
    from decentralml.chain.types import SettleContributionsArgs

    ok = build(SettleContributionsArgs, task_id=1, scores={7: 1_000_000, 3: 0})
    assert ok.call_params() == {"task_id": 1, "scores": [(7, 1_000_000), (3, 0)]}
    for scores, words in [({}, "at least one"), ({1: 1_000_001}, "1000000"),
                          ({i: 1 for i in range(MAX_ASSIGNMENTS + 1)}, f"{MAX_ASSIGNMENTS}"),
                          ({1: -1}, "greater than or equal"), ({-1: 5}, "greater than")]:
        with pytest.raises(InvalidInput) as caught:
            build(SettleContributionsArgs, task_id=1, scores=scores)
        assert caught.value.field.startswith("scores") and words in str(caught.value), scores
    tight = ProtocolLimits(max_score=10)
    with pytest.raises(InvalidInput, match=r"limit: 0\.\.=10"):
        build(SettleContributionsArgs, limits=tight, task_id=1, scores={1: 11})


@pytest.mark.parametrize(("field", "bad"), [
    ("assets_cid", ""), ("assets_cid", "c" * (MAX_CID_LENGTH + 1)), ("rounds", 0),
    ("rounds", 10_001), ("update_blocks", 0), ("aggregate_blocks", 0), ("max_peers", 0),
    ("max_peers", 65), ("rounds", 1.0)])
def test_create_peer_job_bounds(field: str, bad: Any) -> None:
    from decentralml.chain.types import CreatePeerJobArgs

    good: dict[str, Any] = dict(assets_cid="bafy", rounds=3, update_blocks=5,
                                aggregate_blocks=5, max_peers=4)
    CreatePeerJobArgs(**good)
    with pytest.raises(InvalidInput) as caught:
        CreatePeerJobArgs(**{**good, field: bad})
    assert caught.value.field == field, str(caught.value)


def test_create_peer_job_length_must_fit_a_u32() -> None:
    from decentralml.chain.types import CreatePeerJobArgs

    fits = CreatePeerJobArgs(assets_cid="c", rounds=1, update_blocks=U32_MAX - 1,
                             aggregate_blocks=1, max_peers=1)
    assert fits.rounds == 1
    with pytest.raises(InvalidInput, match=r"rounds.*u32"):
        CreatePeerJobArgs(assets_cid="c", rounds=2, update_blocks=U32_MAX // 2,
                          aggregate_blocks=1, max_peers=1)


def test_peer_job_clock() -> None:
    from decentralml.chain.types import PeerJob

    job = PeerJob(job_id=0, creator="x", assets_cid="c", assets_storage="Ipfs", start_block=100,
                  rounds=2, update_blocks=3, aggregate_blocks=2, max_peers=4, peers=0)
    assert (job.round_length, job.end_block) == (5, 110)
    phases = [(b, job.round_at(b), job.phase_at(b)) for b in range(100, 111)]
    assert phases == [
        (100, 0, "update"), (101, 0, "update"), (102, 0, "update"), (103, 0, "aggregate"),
        (104, 0, "aggregate"), (105, 1, "update"), (106, 1, "update"), (107, 1, "update"),
        (108, 1, "aggregate"), (109, 1, "aggregate"), (110, None, "ended")]
    assert (job.update_deadline(0), job.round_end(0)) == (103, 105)
    assert (job.update_deadline(1), job.round_end(1)) == (108, 110)


def test_contribution_payouts_are_floor_divisions() -> None:
    from decentralml.chain.types import contribution_payouts

    # reward 50, floor 10, k = 3: pool 150, split 120; S = 7
    assert contribution_payouts(50, 10, [4, 2, 1]) == [10 + 480 // 7, 10 + 240 // 7, 10 + 120 // 7]
    assert sum(contribution_payouts(50, 10, [4, 2, 1])) == 150 - 1  # 78 + 44 + 27, dust 1
    assert contribution_payouts(50, 10, [0, 0, 0]) == [50, 50, 50]
    assert contribution_payouts(7, 0, [1, 0]) == [14, 0]
    huge = 2**127
    assert contribution_payouts(huge, 0, [1_000_000, 1]) == [2 * huge * 1_000_000 // 1_000_001,
                                                              2 * huge // 1_000_001]
