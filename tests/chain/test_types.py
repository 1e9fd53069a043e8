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
