//! FRAME tests of the pallet against docs/protocol.md: every call's success path, every reachable
//! error (and the order in which errors are checked), events, escrow accounts, the third-party
//! deposit rule, the wire format (indices, key hashing), and the escrow invariant as a property
//! test over random call sequences.

mod contributions;
mod peer_jobs;
mod terms;

use crate::{
	mock::*,
	pallet::{
		Error, Event, NextSubmissionId, NextTaskId, OpenTasks, Submissions, TaskSubmissions,
		TaskWorkers, Tasks, WorkerSubmissions,
	},
	types::*,
	weights::WeightInfo,
	Call,
};
use codec::Encode;
use frame_support::{
	assert_noop, assert_ok,
	dispatch::GetDispatchInfo,
	traits::{fungible::Inspect, Get},
};
use sp_runtime::{traits::AccountIdConversion, DispatchError, DispatchResult};

const REWARD: Balance = 10 * ED;
const EXPIRATION: u32 = 100;

type Pallet = crate::Pallet<Test>;

fn origin(who: AccountId) -> RuntimeOrigin {
	RuntimeOrigin::signed(who)
}

fn free(who: &AccountId) -> Balance {
	Balances::free_balance(who)
}

fn escrow(task_id: TaskId) -> AccountId {
	Pallet::escrow_account_id(task_id)
}

/// `create_task` with everything but the money defaulted.
fn create_with(
	who: AccountId,
	reward: Balance,
	max_assignments: u32,
	strategy: ValidationStrategy,
) -> Result<TaskId, DispatchError> {
	let task_id = NextTaskId::<Test>::get();
	Pallet::create_task(
		origin(who),
		TaskType::ModelContributor,
		b"train the model".to_vec(),
		reward,
		max_assignments,
		strategy,
		b"bafybeigdyrzt".to_vec(),
		StorageType::Ipfs,
		EXPIRATION,
	)?;
	Ok(task_id)
}

fn create(max_assignments: u32, strategy: ValidationStrategy) -> TaskId {
	create_with(ALICE, REWARD, max_assignments, strategy).unwrap()
}

fn accept(who: AccountId, task_id: TaskId) -> SubmissionId {
	let id = NextSubmissionId::<Test>::get();
	assert_ok!(Pallet::accept_task(origin(who), task_id));
	id
}

fn send(who: AccountId, submission_id: SubmissionId) {
	assert_ok!(Pallet::send_task_result(
		origin(who),
		submission_id,
		br#"{"num_examples": 450}"#.to_vec(),
		Some(b"bafyresult".to_vec()),
		Some(StorageType::Ipfs),
	));
}

fn status(submission_id: SubmissionId) -> SubmissionStatus {
	Submissions::<Test>::get(submission_id).unwrap().status
}

fn task(task_id: TaskId) -> crate::TaskInfoOf<Test> {
	Tasks::<Test>::get(task_id).unwrap()
}

fn pallet_events() -> Vec<Event<Test>> {
	System::events()
		.into_iter()
		.filter_map(|r| match r.event {
			RuntimeEvent::DecentralML(e) => Some(e),
			_ => None,
		})
		.collect()
}

fn last_event() -> Event<Test> {
	pallet_events().pop().expect("an event")
}

// -- wire format -------------------------------------------------------------------------------

#[test]
fn escrow_account_is_the_documented_derivation() {
	// (b"modl" ++ b"decentml" ++ SCALE_u32_le(N)) zero-padded to 32 bytes.
	for task_id in [0u32, 1, 258, u32::MAX] {
		let mut expected = [0u8; 32];
		expected[..4].copy_from_slice(b"modl");
		expected[4..12].copy_from_slice(b"decentml");
		expected[12..16].copy_from_slice(&task_id.to_le_bytes());
		assert_eq!(escrow(task_id), AccountId::new(expected));
		let via_pallet_id: AccountId =
			frame_support::PalletId(*b"decentml").into_sub_account_truncating(task_id);
		assert_eq!(escrow(task_id), via_pallet_id);
	}
	let task0 = escrow(0);
	let task0: &[u8] = task0.as_ref();
	assert_eq!(&task0[..16], b"modldecentml\0\0\0\0");
	assert_eq!(&task0[16..], &[0u8; 16]);
}

#[test]
fn constants_have_the_protocol_values() {
	assert_eq!(<Test as crate::Config>::PalletId::get().0, *b"decentml");
	assert_eq!(<<Test as crate::Config>::MaxAssignments as Get<u32>>::get(), 64);
	assert_eq!(<<Test as crate::Config>::MaxQuestionLength as Get<u32>>::get(), 2048);
	assert_eq!(<<Test as crate::Config>::MaxCidLength as Get<u32>>::get(), 128);
	assert_eq!(<<Test as crate::Config>::MaxResultLength as Get<u32>>::get(), 2048);
	assert_eq!(<Test as crate::Config>::MinReward::get(), Balances::minimum_balance());
	// and they are the ones exposed in metadata, in this order
	let names: Vec<_> = Pallet::pallet_constants_metadata().into_iter().map(|c| c.name).collect();
	assert_eq!(
		names,
		[
			"PalletId",
			"MaxAssignments",
			"MaxQuestionLength",
			"MaxCidLength",
			"MaxResultLength",
			"MinReward",
			"MaxScore",
			"MaxPeers",
			"MaxPeerRounds"
		]
	);
	let values: Vec<Vec<u8>> =
		Pallet::pallet_constants_metadata().into_iter().map(|c| c.value).collect();
	assert_eq!(values[0], b"decentml".to_vec());
	assert_eq!(values[1], 64u32.encode());
	assert_eq!(values[5], ED.encode());
	assert_eq!(values[6], 1_000_000u32.encode());
	assert_eq!(values[7], 64u32.encode());
	assert_eq!(values[8], 10_000u32.encode());
}

#[test]
fn call_indices_and_argument_encoding() {
	let create = RuntimeCall::DecentralML(Call::create_task {
		task_type: TaskType::ModelEngineer,
		question: b"q?".to_vec(),
		reward: 5,
		max_assignments: 3,
		validation_strategy: ValidationStrategy::CustomAccept,
		assets_cid: b"c".to_vec(),
		assets_storage: StorageType::Http,
		expiration_block: 9,
	});
	let mut expected = vec![8u8, 0, 2, 8, b'q', b'?'];
	expected.extend(5u128.to_le_bytes());
	expected.extend(3u32.to_le_bytes());
	expected.extend([2, 4, b'c', 2]);
	expected.extend(9u32.to_le_bytes());
	assert_eq!(create.encode(), expected);

	let cases: Vec<(Call<Test>, Vec<u8>)> = vec![
		(Call::accept_task { task_id: 7 }, vec![1, 7, 0, 0, 0]),
		(
			Call::send_task_result {
				submission_id: 1,
				result: b"r".to_vec(),
				result_cid: Some(b"x".to_vec()),
				result_storage: Some(StorageType::Local),
			},
			vec![2, 1, 0, 0, 0, 4, b'r', 1, 4, b'x', 1, 1],
		),
		(
			Call::send_task_result {
				submission_id: 1,
				result: b"r".to_vec(),
				result_cid: None,
				result_storage: None,
			},
			vec![2, 1, 0, 0, 0, 4, b'r', 0, 0],
		),
		(Call::validate_task_result { submission_id: 2, accept: true }, vec![3, 2, 0, 0, 0, 1]),
		(Call::close_task { task_id: 3 }, vec![4, 3, 0, 0, 0]),
		(Call::abandon_task { submission_id: 4 }, vec![5, 4, 0, 0, 0]),
	];
	for (call, bytes) in cases {
		assert_eq!(call.encode(), bytes);
	}
}

#[test]
fn event_indices_and_field_order() {
	let e = Event::<Test>::TaskCreated {
		task_id: 1,
		creator: ALICE,
		task_type: TaskType::DataAnnotator,
		reward: 2,
		max_assignments: 3,
		escrow: 6,
		expiration_block: 4,
	};
	let mut expected = vec![0u8];
	expected.extend(1u32.to_le_bytes());
	expected.extend([1u8; 32]);
	expected.push(0);
	expected.extend(2u128.to_le_bytes());
	expected.extend(3u32.to_le_bytes());
	expected.extend(6u128.to_le_bytes());
	expected.extend(4u32.to_le_bytes());
	assert_eq!(e.encode(), expected);

	let id_worker = |index: u8| {
		let mut v = vec![index];
		v.extend(1u32.to_le_bytes());
		v.extend(2u32.to_le_bytes());
		v.extend([3u8; 32]);
		v
	};
	assert_eq!(
		Event::<Test>::TaskAccepted { task_id: 1, submission_id: 2, worker: CHARLIE }.encode(),
		id_worker(1)
	);
	assert_eq!(
		Event::<Test>::ResultSubmitted { task_id: 1, submission_id: 2, worker: CHARLIE }.encode(),
		id_worker(2)
	);
	let mut accepted = id_worker(3);
	accepted.extend(9u128.to_le_bytes());
	assert_eq!(
		Event::<Test>::ResultAccepted { task_id: 1, submission_id: 2, worker: CHARLIE, reward: 9 }
			.encode(),
		accepted
	);
	assert_eq!(
		Event::<Test>::ResultRejected { task_id: 1, submission_id: 2, worker: CHARLIE }.encode(),
		id_worker(4)
	);
	let mut closed = vec![5u8];
	closed.extend(1u32.to_le_bytes());
	closed.extend(7u128.to_le_bytes());
	closed.extend(2u32.to_le_bytes());
	assert_eq!(Event::<Test>::TaskClosed { task_id: 1, refund: 7, abandoned: 2 }.encode(), closed);
	assert_eq!(
		Event::<Test>::SubmissionAbandoned { task_id: 1, submission_id: 2, worker: CHARLIE }
			.encode(),
		id_worker(6)
	);
}

#[test]
fn error_indices_follow_the_protocol_order() {
	use Error::*;
	let errors: [Error<Test>; 43] = [
		TaskNotFound,
		SubmissionNotFound,
		TaskClosed,
		TaskExpired,
		NoSlotsLeft,
		AlreadyAccepted,
		CreatorCannotAccept,
		NotTaskCreator,
		NotSubmissionWorker,
		InvalidStatus,
		PendingValidations,
		ZeroReward,
		RewardTooLow,
		InvalidQuestion,
		InvalidMaxAssignments,
		ExpirationInPast,
		EmptyAssets,
		AssetsCidTooLong,
		EmptyResult,
		ResultTooLong,
		InvalidResultCid,
		MissingStorageType,
		Overflow,
		InsufficientBalance,
		InvalidShards,
		InvalidTerms,
		PaidByContribution,
		NotPaidByContribution,
		NoScores,
		TooManyScores,
		ScoreTooHigh,
		DuplicateScore,
		NotPendingOnTask,
		InvalidPeerJob,
		PeerJobNotFound,
		PeerJobEnded,
		AlreadyJoined,
		PeerJobFull,
		NotAPeer,
		WrongRound,
		WrongPhase,
		AlreadyPosted,
		NoUpdateThisRound,
	];
	for (index, error) in errors.into_iter().enumerate() {
		let DispatchError::Module(module) = DispatchError::from(error) else {
			panic!("a module error")
		};
		assert_eq!(module.index, 8);
		assert_eq!(module.error[0] as usize, index);
	}
}

#[test]
fn enums_encode_as_their_protocol_index() {
	assert_eq!(TaskType::ModelEngineer.encode(), [2]);
	assert_eq!(ValidationStrategy::CustomAccept.encode(), [2]);
	assert_eq!(StorageType::Http.encode(), [2]);
	assert_eq!(TaskStatus::Closed.encode(), [1]);
	assert_eq!(SubmissionStatus::Abandoned.encode(), [4]);
	assert_eq!(PayoutMode::Flat.encode(), [0]);
	assert_eq!(PayoutMode::ByContribution.encode(), [1]);
}

#[test]
fn storage_keys_use_blake2_128_concat_under_the_pallet_prefix() {
	use sp_io::hashing::{blake2_128, twox_128};
	let prefix = |item: &str| [twox_128(b"DecentralML"), twox_128(item.as_bytes())].concat();
	let b2 = |k: &[u8]| [blake2_128(k).as_slice(), k].concat();
	let (task, sub) = (5u32.encode(), 6u32.encode());
	let who = ALICE.encode();
	assert_eq!(Tasks::<Test>::hashed_key_for(5), [prefix("Tasks"), b2(&task)].concat());
	assert_eq!(Submissions::<Test>::hashed_key_for(6), [prefix("Submissions"), b2(&sub)].concat());
	assert_eq!(
		TaskSubmissions::<Test>::hashed_key_for(5, 6),
		[prefix("TaskSubmissions"), b2(&task), b2(&sub)].concat()
	);
	assert_eq!(
		WorkerSubmissions::<Test>::hashed_key_for(ALICE, 6),
		[prefix("WorkerSubmissions"), b2(&who), b2(&sub)].concat()
	);
	assert_eq!(
		TaskWorkers::<Test>::hashed_key_for(5, ALICE),
		[prefix("TaskWorkers"), b2(&task), b2(&who)].concat()
	);
	assert_eq!(OpenTasks::<Test>::hashed_key_for(5), [prefix("OpenTasks"), b2(&task)].concat());
	assert_eq!(NextTaskId::<Test>::hashed_key().to_vec(), prefix("NextTaskId"));
	assert_eq!(NextSubmissionId::<Test>::hashed_key().to_vec(), prefix("NextSubmissionId"));
	let names: Vec<_> =
		Pallet::storage_metadata().entries.into_iter().map(|entry| entry.name).collect();
	assert_eq!(
		names,
		[
			"Tasks",
			"NextTaskId",
			"Submissions",
			"NextSubmissionId",
			"TaskSubmissions",
			"WorkerSubmissions",
			"TaskWorkers",
			"OpenTasks",
			"Terms",
			"ShardHolders",
			"SubmissionShards",
			"Scores",
			"PeerJobs",
			"NextPeerJobId",
			"Peers",
			"RoundUpdates",
			"RoundUpdateCount",
			"RoundAggregates",
			"AggregateVotes",
			"AgreedModels"
		]
	);
}

// -- create_task --------------------------------------------------------------------------------

#[test]
fn create_task_escrows_reward_times_slots() {
	new_test_ext().execute_with(|| {
		let before = free(&ALICE);
		let task_id = create(3, ValidationStrategy::ManualAccept);
		assert_eq!(task_id, 0);
		assert_eq!(free(&ALICE), before - 3 * REWARD);
		assert_eq!(free(&escrow(0)), 3 * REWARD);
		assert_eq!(NextTaskId::<Test>::get(), 1);
		assert!(OpenTasks::<Test>::contains_key(0));
		let t = task(0);
		assert_eq!(t.creator, ALICE);
		assert_eq!(t.task_type, TaskType::ModelContributor);
		assert_eq!(t.question.to_vec(), b"train the model".to_vec());
		assert_eq!(t.reward, REWARD);
		assert_eq!((t.max_assignments, t.active_assignments, t.accepted_results), (3, 0, 0));
		assert_eq!(t.validation_strategy, ValidationStrategy::ManualAccept);
		assert_eq!(t.assets_cid.to_vec(), b"bafybeigdyrzt".to_vec());
		assert_eq!(t.assets_storage, StorageType::Ipfs);
		assert_eq!((t.created_block, t.expiration_block), (1, EXPIRATION));
		assert_eq!(t.status, TaskStatus::Open);
		assert_eq!(
			last_event(),
			Event::TaskCreated {
				task_id: 0,
				creator: ALICE,
				task_type: TaskType::ModelContributor,
				reward: REWARD,
				max_assignments: 3,
				escrow: 3 * REWARD,
				expiration_block: EXPIRATION,
			}
		);
		// ids are allocated in order, each task has its own escrow
		assert_eq!(create(1, ValidationStrategy::AutoAccept), 1);
		assert_eq!(free(&escrow(1)), REWARD);
		assert_eq!(free(&escrow(0)), 3 * REWARD);
	});
}

#[test]
fn create_task_accepts_every_bound_inclusive() {
	new_test_ext().execute_with(|| {
		assert_ok!(Pallet::create_task(
			origin(ALICE),
			TaskType::DataAnnotator,
			vec![b'q'; 2048],
			ED,
			64,
			ValidationStrategy::AutoAccept,
			vec![b'c'; 128],
			StorageType::Local,
			2,
		));
		assert_eq!(task(0).question.len(), 2048);
		assert_eq!(free(&escrow(0)), 64 * ED);
	});
}

#[test]
fn create_task_can_spend_all_but_the_existential_deposit() {
	new_test_ext().execute_with(|| {
		// BOB keeps exactly ED: allowed (KeepAlive). One planck more is InsufficientBalance.
		let spendable = free(&BOB) - ED;
		assert_noop!(
			create_with(BOB, spendable + 1, 1, ValidationStrategy::ManualAccept),
			Error::<Test>::InsufficientBalance
		);
		assert_ok!(create_with(BOB, spendable, 1, ValidationStrategy::ManualAccept));
		assert_eq!(free(&BOB), ED);
		assert_noop!(
			create_with(NOBODY, ED, 1, ValidationStrategy::ManualAccept),
			Error::<Test>::InsufficientBalance
		);
	});
}

/// `create_task` by Alice with the given values (task type, strategy and storage fixed).
fn try_create(
	question: Vec<u8>,
	reward: Balance,
	max_assignments: u32,
	assets_cid: Vec<u8>,
	expiration_block: u32,
) -> Result<(), DispatchError> {
	Pallet::create_task(
		origin(ALICE),
		TaskType::ModelContributor,
		question,
		reward,
		max_assignments,
		ValidationStrategy::ManualAccept,
		assets_cid,
		StorageType::Ipfs,
		expiration_block,
	)
}

#[test]
fn create_task_errors() {
	new_test_ext().execute_with(|| {
		System::set_block_number(10);
		let q = || b"q".to_vec();
		let c = || b"c".to_vec();
		assert_noop!(try_create(vec![], ED, 1, c(), 20), Error::<Test>::InvalidQuestion);
		assert_noop!(try_create(vec![0; 2049], ED, 1, c(), 20), Error::<Test>::InvalidQuestion);
		assert_noop!(try_create(q(), 0, 1, c(), 20), Error::<Test>::ZeroReward);
		assert_noop!(try_create(q(), ED - 1, 1, c(), 20), Error::<Test>::RewardTooLow);
		assert_noop!(try_create(q(), ED, 0, c(), 20), Error::<Test>::InvalidMaxAssignments);
		assert_noop!(try_create(q(), ED, 65, c(), 20), Error::<Test>::InvalidMaxAssignments);
		assert_noop!(try_create(q(), ED, 1, vec![], 20), Error::<Test>::EmptyAssets);
		assert_noop!(try_create(q(), ED, 1, vec![0; 129], 20), Error::<Test>::AssetsCidTooLong);
		assert_noop!(try_create(q(), ED, 1, c(), 10), Error::<Test>::ExpirationInPast);
		assert_noop!(try_create(q(), ED, 1, c(), 9), Error::<Test>::ExpirationInPast);
		assert_noop!(try_create(q(), u128::MAX, 2, c(), 20), Error::<Test>::Overflow);
		NextTaskId::<Test>::put(u32::MAX);
		assert_noop!(try_create(q(), ED, 1, c(), 20), Error::<Test>::Overflow);
		NextTaskId::<Test>::put(0);
		assert_noop!(try_create(q(), ENDOWMENT, 1, c(), 20), Error::<Test>::InsufficientBalance);
		assert_ok!(try_create(q(), ED, 1, c(), 11));
	});
}

#[test]
fn create_task_checks_errors_in_the_documented_order() {
	new_test_ext().execute_with(|| {
		System::set_block_number(10);
		// each line breaks every rule from its error on: the first one listed wins
		assert_noop!(try_create(vec![], 0, 0, vec![], 1), Error::<Test>::InvalidQuestion);
		assert_noop!(try_create(b"q".to_vec(), 0, 0, vec![], 1), Error::<Test>::ZeroReward);
		assert_noop!(try_create(b"q".to_vec(), ED - 1, 0, vec![], 1), Error::<Test>::RewardTooLow);
		assert_noop!(
			try_create(b"q".to_vec(), u128::MAX, 0, vec![], 1),
			Error::<Test>::InvalidMaxAssignments
		);
		assert_noop!(
			try_create(b"q".to_vec(), u128::MAX, 2, vec![], 1),
			Error::<Test>::EmptyAssets
		);
		assert_noop!(
			try_create(b"q".to_vec(), u128::MAX, 2, vec![0; 129], 1),
			Error::<Test>::AssetsCidTooLong
		);
		assert_noop!(
			try_create(b"q".to_vec(), u128::MAX, 2, b"c".to_vec(), 1),
			Error::<Test>::ExpirationInPast
		);
		assert_noop!(
			try_create(b"q".to_vec(), u128::MAX, 2, b"c".to_vec(), 11),
			Error::<Test>::Overflow
		);
	});
}

#[test]
fn create_task_needs_a_signed_origin() {
	new_test_ext().execute_with(|| {
		assert_noop!(
			Pallet::create_task(
				RuntimeOrigin::none(),
				TaskType::ModelContributor,
				b"q".to_vec(),
				ED,
				1,
				ValidationStrategy::ManualAccept,
				b"c".to_vec(),
				StorageType::Ipfs,
				10,
			),
			DispatchError::BadOrigin
		);
	});
}

// -- accept_task --------------------------------------------------------------------------------

#[test]
fn accept_task_creates_an_assigned_submission() {
	new_test_ext().execute_with(|| {
		let t = create(2, ValidationStrategy::ManualAccept);
		System::set_block_number(5);
		let s = accept(BOB, t);
		assert_eq!(s, 0);
		let sub = Submissions::<Test>::get(s).unwrap();
		assert_eq!(sub.task_id, t);
		assert_eq!(sub.worker, BOB);
		assert_eq!(sub.status, SubmissionStatus::Assigned);
		assert!(sub.result.is_empty());
		assert_eq!((sub.result_cid, sub.result_storage), (None, None));
		assert_eq!(sub.assigned_block, 5);
		assert_eq!((sub.submitted_block, sub.validated_block), (None, None));
		assert!(TaskSubmissions::<Test>::contains_key(t, s));
		assert!(WorkerSubmissions::<Test>::contains_key(BOB, s));
		assert_eq!(TaskWorkers::<Test>::get(t, BOB), Some(s));
		assert_eq!(task(t).active_assignments, 1);
		assert_eq!(NextSubmissionId::<Test>::get(), 1);
		assert_eq!(last_event(), Event::TaskAccepted { task_id: t, submission_id: s, worker: BOB });
		// no balance moves
		assert_eq!(free(&escrow(t)), 2 * REWARD);
	});
}

#[test]
fn accept_task_errors() {
	new_test_ext().execute_with(|| {
		assert_noop!(Pallet::accept_task(origin(BOB), 0), Error::<Test>::TaskNotFound);
		let t = create(1, ValidationStrategy::ManualAccept);
		assert_noop!(Pallet::accept_task(origin(ALICE), t), Error::<Test>::CreatorCannotAccept);
		accept(BOB, t);
		assert_noop!(Pallet::accept_task(origin(BOB), t), Error::<Test>::AlreadyAccepted);
		assert_noop!(Pallet::accept_task(origin(CHARLIE), t), Error::<Test>::NoSlotsLeft);
		let t2 = create(1, ValidationStrategy::ManualAccept);
		NextSubmissionId::<Test>::put(u32::MAX);
		assert_noop!(Pallet::accept_task(origin(CHARLIE), t2), Error::<Test>::Overflow);
		NextSubmissionId::<Test>::put(1);
		System::set_block_number(EXPIRATION);
		assert_noop!(Pallet::accept_task(origin(CHARLIE), t2), Error::<Test>::TaskExpired);
		System::set_block_number(EXPIRATION - 1);
		assert_ok!(Pallet::accept_task(origin(CHARLIE), t2));
		assert_ok!(Pallet::abandon_task(origin(CHARLIE), 1));
		assert_ok!(Pallet::close_task(origin(ALICE), t2));
		assert_noop!(Pallet::accept_task(origin(CHARLIE), t2), Error::<Test>::TaskClosed);
	});
}

#[test]
fn accept_task_checks_errors_in_the_documented_order() {
	new_test_ext().execute_with(|| {
		let t = create(1, ValidationStrategy::ManualAccept);
		accept(BOB, t);
		// closed and expired: TaskClosed
		let closed = create(1, ValidationStrategy::ManualAccept);
		assert_ok!(Pallet::close_task(origin(ALICE), closed));
		System::set_block_number(EXPIRATION);
		assert_noop!(Pallet::accept_task(origin(ALICE), closed), Error::<Test>::TaskClosed);
		// expired, the creator, already accepted, no slots: TaskExpired
		assert_noop!(Pallet::accept_task(origin(ALICE), t), Error::<Test>::TaskExpired);
		assert_noop!(Pallet::accept_task(origin(BOB), t), Error::<Test>::TaskExpired);
		System::set_block_number(2);
		// the creator on a full task: CreatorCannotAccept
		assert_noop!(Pallet::accept_task(origin(ALICE), t), Error::<Test>::CreatorCannotAccept);
		// holding the only slot: AlreadyAccepted (not NoSlotsLeft)
		assert_noop!(Pallet::accept_task(origin(BOB), t), Error::<Test>::AlreadyAccepted);
		// a full task with an exhausted id counter: NoSlotsLeft
		NextSubmissionId::<Test>::put(u32::MAX);
		assert_noop!(Pallet::accept_task(origin(CHARLIE), t), Error::<Test>::NoSlotsLeft);
	});
}

// -- send_task_result ---------------------------------------------------------------------------

#[test]
fn send_task_result_moves_to_pending_validation() {
	new_test_ext().execute_with(|| {
		let t = create(2, ValidationStrategy::ManualAccept);
		let s = accept(BOB, t);
		System::set_block_number(7);
		send(BOB, s);
		let sub = Submissions::<Test>::get(s).unwrap();
		assert_eq!(sub.status, SubmissionStatus::PendingValidation);
		assert_eq!(sub.result.to_vec(), br#"{"num_examples": 450}"#.to_vec());
		assert_eq!(sub.result_cid.unwrap().to_vec(), b"bafyresult".to_vec());
		assert_eq!(sub.result_storage, Some(StorageType::Ipfs));
		assert_eq!((sub.submitted_block, sub.validated_block), (Some(7), None));
		assert_eq!(task(t).active_assignments, 1);
		assert_eq!(
			last_event(),
			Event::ResultSubmitted { task_id: t, submission_id: s, worker: BOB }
		);
		assert_eq!(free(&escrow(t)), 2 * REWARD);
		// inline result only, at the bounds
		let s2 = accept(CHARLIE, t);
		assert_ok!(Pallet::send_task_result(
			origin(CHARLIE),
			s2,
			vec![b'r'; 2048],
			Some(vec![b'c'; 128]),
			Some(StorageType::Http)
		));
		let s3 = {
			let t2 = create(1, ValidationStrategy::CustomAccept);
			accept(DAVE, t2)
		};
		assert_ok!(Pallet::send_task_result(origin(DAVE), s3, b"{}".to_vec(), None, None));
		assert_eq!(Submissions::<Test>::get(s3).unwrap().result_cid, None);
	});
}

#[test]
fn send_task_result_auto_accepts_and_pays() {
	new_test_ext().execute_with(|| {
		let t = create(2, ValidationStrategy::AutoAccept);
		let s = accept(BOB, t);
		let before = free(&BOB);
		System::set_block_number(3);
		send(BOB, s);
		assert_eq!(free(&BOB), before + REWARD);
		assert_eq!(free(&escrow(t)), REWARD);
		let sub = Submissions::<Test>::get(s).unwrap();
		assert_eq!(sub.status, SubmissionStatus::Accepted);
		assert_eq!((sub.submitted_block, sub.validated_block), (Some(3), Some(3)));
		let tk = task(t);
		assert_eq!((tk.active_assignments, tk.accepted_results), (0, 1));
		assert_eq!(TaskWorkers::<Test>::get(t, BOB), Some(s));
		let events = pallet_events();
		assert_eq!(
			events[events.len() - 2..],
			[
				Event::ResultSubmitted { task_id: t, submission_id: s, worker: BOB },
				Event::ResultAccepted { task_id: t, submission_id: s, worker: BOB, reward: REWARD },
			]
		);
		// the last payout empties (and reaps) the escrow account
		let s2 = accept(CHARLIE, t);
		send(CHARLIE, s2);
		assert_eq!(free(&escrow(t)), 0);
		assert!(!System::account_exists(&escrow(t)));
	});
}

#[test]
fn send_task_result_errors() {
	new_test_ext().execute_with(|| {
		let t = create(2, ValidationStrategy::ManualAccept);
		let s = accept(BOB, t);
		let r = || b"{}".to_vec();
		let ipfs = Some(StorageType::Ipfs);
		assert_noop!(
			Pallet::send_task_result(origin(BOB), 9, r(), None, None),
			Error::<Test>::SubmissionNotFound
		);
		assert_noop!(
			Pallet::send_task_result(origin(CHARLIE), s, r(), None, None),
			Error::<Test>::NotSubmissionWorker
		);
		assert_noop!(
			Pallet::send_task_result(origin(BOB), s, vec![], None, None),
			Error::<Test>::EmptyResult
		);
		assert_noop!(
			Pallet::send_task_result(origin(BOB), s, vec![0; 2049], None, None),
			Error::<Test>::ResultTooLong
		);
		assert_noop!(
			Pallet::send_task_result(origin(BOB), s, r(), Some(vec![]), ipfs),
			Error::<Test>::InvalidResultCid
		);
		assert_noop!(
			Pallet::send_task_result(origin(BOB), s, r(), Some(vec![0; 129]), ipfs),
			Error::<Test>::InvalidResultCid
		);
		assert_noop!(
			Pallet::send_task_result(origin(BOB), s, r(), Some(b"c".to_vec()), None),
			Error::<Test>::MissingStorageType
		);
		assert_noop!(
			Pallet::send_task_result(origin(BOB), s, r(), None, ipfs),
			Error::<Test>::MissingStorageType
		);
		System::set_block_number(EXPIRATION);
		assert_noop!(
			Pallet::send_task_result(origin(BOB), s, r(), None, None),
			Error::<Test>::TaskExpired
		);
		System::set_block_number(2);
		send(BOB, s);
		assert_noop!(
			Pallet::send_task_result(origin(BOB), s, r(), None, None),
			Error::<Test>::InvalidStatus
		);
	});
}

#[test]
fn send_task_result_on_a_closed_task_is_invalid_status() {
	// `TaskClosed` and `TaskNotFound` are listed for send_task_result but unreachable: a task
	// always exists for its submissions, and closing abandons every Assigned submission, so the
	// earlier `InvalidStatus` check fires first.
	new_test_ext().execute_with(|| {
		let t = create(1, ValidationStrategy::ManualAccept);
		let s = accept(BOB, t);
		assert_ok!(Pallet::close_task(origin(ALICE), t));
		assert_eq!(status(s), SubmissionStatus::Abandoned);
		assert_noop!(
			Pallet::send_task_result(origin(BOB), s, b"{}".to_vec(), None, None),
			Error::<Test>::InvalidStatus
		);
	});
}

#[test]
fn send_task_result_checks_errors_in_the_documented_order() {
	new_test_ext().execute_with(|| {
		let t = create(1, ValidationStrategy::ManualAccept);
		let s = accept(BOB, t);
		System::set_block_number(EXPIRATION);
		let bad = || Pallet::send_task_result(origin(BOB), s, vec![], Some(vec![]), None);
		// not the worker beats everything after it
		assert_noop!(
			Pallet::send_task_result(origin(CHARLIE), s, vec![], Some(vec![]), None),
			Error::<Test>::NotSubmissionWorker
		);
		assert_noop!(bad(), Error::<Test>::TaskExpired);
		System::set_block_number(2);
		assert_noop!(bad(), Error::<Test>::EmptyResult);
		assert_noop!(
			Pallet::send_task_result(origin(BOB), s, vec![0; 2049], Some(vec![]), None),
			Error::<Test>::ResultTooLong
		);
		assert_noop!(
			Pallet::send_task_result(origin(BOB), s, b"r".to_vec(), Some(vec![]), None),
			Error::<Test>::InvalidResultCid
		);
	});
}

// -- validate_task_result -----------------------------------------------------------------------

#[test]
fn validate_accept_pays_the_worker() {
	new_test_ext().execute_with(|| {
		let t = create(2, ValidationStrategy::ManualAccept);
		let s = accept(BOB, t);
		send(BOB, s);
		let before = free(&BOB);
		System::set_block_number(9);
		assert_ok!(Pallet::validate_task_result(origin(ALICE), s, true));
		assert_eq!(free(&BOB), before + REWARD);
		assert_eq!(free(&escrow(t)), REWARD);
		assert_eq!(status(s), SubmissionStatus::Accepted);
		assert_eq!(Submissions::<Test>::get(s).unwrap().validated_block, Some(9));
		let tk = task(t);
		assert_eq!((tk.active_assignments, tk.accepted_results), (0, 1));
		assert_eq!(TaskWorkers::<Test>::get(t, BOB), Some(s));
		assert_eq!(
			last_event(),
			Event::ResultAccepted { task_id: t, submission_id: s, worker: BOB, reward: REWARD }
		);
		// an accepted worker cannot take a second slot of the same task
		assert_noop!(Pallet::accept_task(origin(BOB), t), Error::<Test>::AlreadyAccepted);
	});
}

#[test]
fn validate_reject_reopens_the_slot() {
	new_test_ext().execute_with(|| {
		let t = create(1, ValidationStrategy::ManualAccept);
		let s = accept(BOB, t);
		send(BOB, s);
		assert_noop!(Pallet::accept_task(origin(CHARLIE), t), Error::<Test>::NoSlotsLeft);
		System::set_block_number(4);
		assert_ok!(Pallet::validate_task_result(origin(ALICE), s, false));
		assert_eq!(status(s), SubmissionStatus::Rejected);
		assert_eq!(Submissions::<Test>::get(s).unwrap().validated_block, Some(4));
		assert_eq!(task(t).active_assignments, 0);
		assert_eq!(TaskWorkers::<Test>::get(t, BOB), None);
		assert!(TaskSubmissions::<Test>::contains_key(t, s));
		assert_eq!(
			last_event(),
			Event::ResultRejected { task_id: t, submission_id: s, worker: BOB }
		);
		assert_eq!(free(&escrow(t)), REWARD);
		// the rejected worker may try again
		let again = accept(BOB, t);
		assert_eq!(again, s + 1);
	});
}

#[test]
fn validate_task_result_errors() {
	new_test_ext().execute_with(|| {
		let t = create(1, ValidationStrategy::ManualAccept);
		let s = accept(BOB, t);
		assert_noop!(
			Pallet::validate_task_result(origin(ALICE), 5, true),
			Error::<Test>::SubmissionNotFound
		);
		// not the creator beats the wrong status
		assert_noop!(
			Pallet::validate_task_result(origin(BOB), s, true),
			Error::<Test>::NotTaskCreator
		);
		assert_noop!(
			Pallet::validate_task_result(origin(ALICE), s, true),
			Error::<Test>::InvalidStatus
		);
		send(BOB, s);
		assert_ok!(Pallet::validate_task_result(origin(ALICE), s, true));
		assert_noop!(
			Pallet::validate_task_result(origin(ALICE), s, false),
			Error::<Test>::InvalidStatus
		);
	});
}

#[test]
fn validation_still_works_after_expiry() {
	new_test_ext().execute_with(|| {
		let t = create(1, ValidationStrategy::ManualAccept);
		let s = accept(BOB, t);
		send(BOB, s);
		System::set_block_number(EXPIRATION + 10);
		assert_ok!(Pallet::validate_task_result(origin(ALICE), s, true));
	});
}

// -- close_task ---------------------------------------------------------------------------------

#[test]
fn close_task_abandons_assigned_and_refunds_the_rest() {
	new_test_ext().execute_with(|| {
		let t = create(4, ValidationStrategy::ManualAccept);
		let paid = accept(BOB, t);
		send(BOB, paid);
		assert_ok!(Pallet::validate_task_result(origin(ALICE), paid, true));
		let rejected = accept(CHARLIE, t);
		send(CHARLIE, rejected);
		assert_ok!(Pallet::validate_task_result(origin(ALICE), rejected, false));
		let assigned = accept(DAVE, t);
		let before = free(&ALICE);
		assert_ok!(Pallet::close_task(origin(ALICE), t));
		assert_eq!(free(&ALICE), before + 3 * REWARD);
		assert_eq!(free(&escrow(t)), 0);
		assert!(!System::account_exists(&escrow(t)));
		assert_eq!(status(assigned), SubmissionStatus::Abandoned);
		assert_eq!(status(rejected), SubmissionStatus::Rejected);
		assert_eq!(status(paid), SubmissionStatus::Accepted);
		assert_eq!(TaskWorkers::<Test>::get(t, DAVE), None);
		assert_eq!(TaskWorkers::<Test>::get(t, BOB), Some(paid));
		let tk = task(t);
		assert_eq!(tk.status, TaskStatus::Closed);
		assert_eq!((tk.active_assignments, tk.accepted_results), (0, 1));
		assert!(!OpenTasks::<Test>::contains_key(t));
		assert_eq!(
			last_event(),
			Event::TaskClosed { task_id: t, refund: 3 * REWARD, abandoned: 1 }
		);
	});
}

#[test]
fn close_task_of_a_fully_paid_task_refunds_nothing() {
	new_test_ext().execute_with(|| {
		let t = create(1, ValidationStrategy::AutoAccept);
		let s = accept(BOB, t);
		send(BOB, s);
		let before = free(&ALICE);
		let events_before = System::events().len();
		assert_ok!(Pallet::close_task(origin(ALICE), t));
		assert_eq!(free(&ALICE), before);
		// only TaskClosed: no zero-value transfer
		assert_eq!(System::events().len(), events_before + 1);
		assert_eq!(last_event(), Event::TaskClosed { task_id: t, refund: 0, abandoned: 0 });
	});
}

#[test]
fn close_task_errors() {
	new_test_ext().execute_with(|| {
		assert_noop!(Pallet::close_task(origin(ALICE), 0), Error::<Test>::TaskNotFound);
		let t = create(2, ValidationStrategy::ManualAccept);
		let s = accept(BOB, t);
		send(BOB, s);
		assert_noop!(Pallet::close_task(origin(BOB), t), Error::<Test>::NotTaskCreator);
		assert_noop!(Pallet::close_task(origin(ALICE), t), Error::<Test>::PendingValidations);
		assert_ok!(Pallet::validate_task_result(origin(ALICE), s, false));
		// closing before and after the expiration are both allowed
		System::set_block_number(EXPIRATION + 1);
		assert_ok!(Pallet::close_task(origin(ALICE), t));
		assert_noop!(Pallet::close_task(origin(BOB), t), Error::<Test>::NotTaskCreator);
		assert_noop!(Pallet::close_task(origin(ALICE), t), Error::<Test>::TaskClosed);
	});
}

#[test]
fn close_task_weight_is_bounded_by_max_assignments_not_by_history() {
	new_test_ext().execute_with(|| {
		let t = create(1, ValidationStrategy::ManualAccept);
		// 20 submissions come and go through one slot
		for _ in 0..10 {
			let s = accept(BOB, t);
			assert_ok!(Pallet::abandon_task(origin(BOB), s));
			let s = accept(CHARLIE, t);
			send(CHARLIE, s);
			assert_ok!(Pallet::validate_task_result(origin(ALICE), s, false));
		}
		assert_eq!(TaskSubmissions::<Test>::iter_prefix(t).count(), 20);
		let s = accept(DAVE, t);
		let declared = Call::<Test>::close_task { task_id: t }.get_dispatch_info().call_weight;
		assert_eq!(declared, <() as WeightInfo>::close_task(64));
		let post = Pallet::close_task(origin(ALICE), t).unwrap();
		assert_eq!(post.actual_weight, Some(<() as WeightInfo>::close_task(1)));
		assert!(post.actual_weight.unwrap().all_lte(declared));
		assert_eq!(status(s), SubmissionStatus::Abandoned);
	});
}

// -- abandon_task -------------------------------------------------------------------------------

#[test]
fn abandon_task_gives_the_slot_back() {
	new_test_ext().execute_with(|| {
		let t = create(1, ValidationStrategy::ManualAccept);
		let s = accept(BOB, t);
		assert_noop!(Pallet::accept_task(origin(CHARLIE), t), Error::<Test>::NoSlotsLeft);
		let escrow_before = free(&escrow(t));
		assert_ok!(Pallet::abandon_task(origin(BOB), s));
		assert_eq!(status(s), SubmissionStatus::Abandoned);
		assert_eq!(TaskWorkers::<Test>::get(t, BOB), None);
		assert_eq!(task(t).active_assignments, 0);
		assert_eq!(free(&escrow(t)), escrow_before);
		assert_eq!(
			last_event(),
			Event::SubmissionAbandoned { task_id: t, submission_id: s, worker: BOB }
		);
		// the slot is free for someone else, and the worker may come back
		accept(CHARLIE, t);
		assert_ok!(Pallet::abandon_task(origin(CHARLIE), s + 1));
		accept(BOB, t);
	});
}

#[test]
fn abandon_task_after_expiry_is_allowed() {
	new_test_ext().execute_with(|| {
		let t = create(1, ValidationStrategy::ManualAccept);
		let s = accept(BOB, t);
		System::set_block_number(EXPIRATION + 5);
		assert_ok!(Pallet::abandon_task(origin(BOB), s));
	});
}

#[test]
fn abandon_task_errors() {
	// `TaskNotFound` is listed but unreachable (a submission's task always exists).
	new_test_ext().execute_with(|| {
		assert_noop!(Pallet::abandon_task(origin(BOB), 0), Error::<Test>::SubmissionNotFound);
		let t = create(2, ValidationStrategy::ManualAccept);
		let s = accept(BOB, t);
		assert_noop!(Pallet::abandon_task(origin(CHARLIE), s), Error::<Test>::NotSubmissionWorker);
		send(BOB, s);
		// a result already sent cannot be withdrawn
		assert_noop!(Pallet::abandon_task(origin(BOB), s), Error::<Test>::InvalidStatus);
		// an Assigned submission of a closed task is already Abandoned
		assert_ok!(Pallet::validate_task_result(origin(ALICE), s, false));
		let s2 = accept(CHARLIE, t);
		assert_ok!(Pallet::close_task(origin(ALICE), t));
		assert_noop!(Pallet::abandon_task(origin(CHARLIE), s2), Error::<Test>::InvalidStatus);
		assert_noop!(Pallet::abandon_task(origin(BOB), s), Error::<Test>::InvalidStatus);
	});
}

// -- third-party deposits -----------------------------------------------------------------------

#[test]
fn third_party_deposits_are_refunded_to_the_creator_on_close() {
	new_test_ext().execute_with(|| {
		let t = create(2, ValidationStrategy::ManualAccept);
		let deposit = 7 * ED;
		assert_ok!(Balances::transfer_allow_death(origin(DAVE), escrow(t), deposit));
		assert_eq!(free(&escrow(t)), 2 * REWARD + deposit);
		// payouts never exceed `reward`
		let s = accept(BOB, t);
		send(BOB, s);
		let bob = free(&BOB);
		assert_ok!(Pallet::validate_task_result(origin(ALICE), s, true));
		assert_eq!(free(&BOB), bob + REWARD);
		let alice = free(&ALICE);
		assert_ok!(Pallet::close_task(origin(ALICE), t));
		assert_eq!(free(&ALICE), alice + REWARD + deposit);
		assert_eq!(free(&escrow(t)), 0);
		assert_eq!(
			last_event(),
			Event::TaskClosed { task_id: t, refund: REWARD + deposit, abandoned: 0 }
		);
	});
}

#[test]
fn deposits_into_a_future_escrow_belong_to_its_task() {
	new_test_ext().execute_with(|| {
		// someone pays into task 0's escrow account before task 0 exists
		assert_ok!(Balances::transfer_allow_death(origin(DAVE), escrow(0), 3 * ED));
		let t = create(1, ValidationStrategy::ManualAccept);
		assert_eq!(free(&escrow(t)), REWARD + 3 * ED);
		let alice = free(&ALICE);
		assert_ok!(Pallet::close_task(origin(ALICE), t));
		assert_eq!(free(&ALICE), alice + REWARD + 3 * ED);
	});
}

#[test]
fn deposits_after_close_stay_in_the_escrow_account() {
	// Documented: the pallet does not recover money sent to a closed task's escrow.
	new_test_ext().execute_with(|| {
		let t = create(1, ValidationStrategy::ManualAccept);
		assert_ok!(Pallet::close_task(origin(ALICE), t));
		assert_ok!(Balances::transfer_allow_death(origin(DAVE), escrow(t), 2 * ED));
		assert_eq!(free(&escrow(t)), 2 * ED);
		assert_noop!(Pallet::close_task(origin(ALICE), t), Error::<Test>::TaskClosed);
	});
}

#[test]
fn a_sub_existential_deposit_is_lost_when_the_last_reward_empties_the_escrow() {
	// Known gap of the protocol as written (the devnode behaves the same): a third-party deposit
	// below the existential deposit, sent while the escrow exists, becomes dust when the last
	// reward is paid out with AllowDeath, and Balances burns it. Deposits >= ED are always
	// refunded (see the property test).
	new_test_ext().execute_with(|| {
		let t = create(1, ValidationStrategy::AutoAccept);
		assert_ok!(Balances::transfer_allow_death(origin(DAVE), escrow(t), 1));
		let issuance = Balances::total_issuance();
		let s = accept(BOB, t);
		send(BOB, s);
		assert!(!System::account_exists(&escrow(t)));
		assert_eq!(Balances::total_issuance(), issuance - 1);
	});
}

// -- weights ------------------------------------------------------------------------------------

#[test]
fn weights_never_shrink_with_input_sizes_and_stop_at_the_bounds() {
	let create_weight = |q: usize, c: usize| {
		Call::<Test>::create_task {
			task_type: TaskType::ModelContributor,
			question: vec![0; q],
			reward: ED,
			max_assignments: 1,
			validation_strategy: ValidationStrategy::ManualAccept,
			assets_cid: vec![0; c],
			assets_storage: StorageType::Ipfs,
			expiration_block: 10,
		}
		.get_dispatch_info()
		.call_weight
	};
	// the benchmarked byte slopes may be zero (below the measurement noise), never negative
	assert!(create_weight(1, 1).all_lte(create_weight(2048, 1)));
	assert!(create_weight(1, 1).all_lte(create_weight(1, 128)));
	assert!(create_weight(2048, 1).all_lte(create_weight(2048, 128)));
	assert_eq!(create_weight(2048, 128), create_weight(100_000, 1_000));
	let send_weight = |r: usize, c: Option<usize>| {
		Call::<Test>::send_task_result {
			submission_id: 0,
			result: vec![0; r],
			result_cid: c.map(|n| vec![0; n]),
			result_storage: c.map(|_| StorageType::Ipfs),
		}
		.get_dispatch_info()
		.call_weight
	};
	assert!(send_weight(1, None).all_lte(send_weight(2048, None)));
	assert!(send_weight(1, None).all_lte(send_weight(1, Some(128))));
	assert_eq!(send_weight(2048, Some(128)), send_weight(9_000, Some(500)));
	assert!(<() as WeightInfo>::close_task(1).all_lt(<() as WeightInfo>::close_task(64)));
}

// -- the escrow invariant, as a property over random call sequences -------------------------------

mod property {
	use super::*;
	use proptest::prelude::*;
	use std::collections::BTreeMap;

	const PEOPLE: [AccountId; 4] = [ALICE, BOB, CHARLIE, DAVE];

	#[derive(Debug, Clone)]
	enum Op {
		/// `terms`: 0 the default terms (`create_task`), 1 one shard per slot, 2 paid by
		/// contribution (with a floor of ED when the reward allows; never AutoAccept).
		Create {
			who: usize,
			reward_eds: u8,
			max: u8,
			auto: bool,
			terms: u8,
		},
		Accept {
			who: usize,
			task: u8,
		},
		Send {
			who: usize,
			sub: u8,
		},
		Validate {
			who: usize,
			sub: u8,
			accept: bool,
		},
		Close {
			who: usize,
			task: u8,
		},
		Abandon {
			who: usize,
			sub: u8,
		},
		/// A third-party transfer into a task's escrow (at least ED, see
		/// `a_sub_existential_deposit_is_lost_when_the_last_reward_empties_the_escrow`).
		Deposit {
			who: usize,
			task: u8,
			eds: u8,
		},
		Advance {
			blocks: u8,
		},
		/// `accept_task` then `send_task_result` by the same worker, in one step (so that
		/// results are pending often enough for `Settle`).
		Work {
			who: usize,
			task: u8,
		},
		/// `targeted`: by the task's creator, for its pending submissions at these positions
		/// (modulo their number); otherwise by `who`, for these submission ids.
		Settle {
			who: usize,
			task: u8,
			scores: Vec<(u8, u32)>,
			targeted: bool,
		},
	}

	fn op() -> impl Strategy<Value = Op> {
		let who = 0usize..4;
		prop_oneof![
			3 => (who.clone(), 1u8..4, 1u8..4, any::<bool>(), 0u8..3).prop_map(
				|(who, reward_eds, max, auto, terms)| Op::Create { who, reward_eds, max, auto, terms }
			),
			3 => (who.clone(), 0u8..5).prop_map(|(who, task)| Op::Accept { who, task }),
			3 => (who.clone(), 0u8..12).prop_map(|(who, sub)| Op::Send { who, sub }),
			3 => (who.clone(), 0u8..12, any::<bool>())
				.prop_map(|(who, sub, accept)| Op::Validate { who, sub, accept }),
			1 => (who.clone(), 0u8..5).prop_map(|(who, task)| Op::Close { who, task }),
			1 => (who.clone(), 0u8..12).prop_map(|(who, sub)| Op::Abandon { who, sub }),
			1 => (who.clone(), 0u8..5, 1u8..4)
				.prop_map(|(who, task, eds)| Op::Deposit { who, task, eds }),
			3 => (who.clone(), 0u8..3).prop_map(|(who, task)| Op::Work { who, task }),
			3 => (who, 0u8..3, prop::collection::vec((0u8..12, score()), 0..4), any::<bool>())
				.prop_map(|(who, task, scores, targeted)| Op::Settle { who, task, scores, targeted }),
			1 => (1u8..30).prop_map(|blocks| Op::Advance { blocks }),
		]
	}

	fn score() -> impl Strategy<Value = u32> {
		prop_oneof![Just(0u32), Just(1), Just(333_333), Just(1_000_000), 0u32..=1_000_000]
	}

	/// What the model knows about a task's money.
	#[derive(Default)]
	struct Books {
		deposits: Balance,
		paid_out: Balance,
		/// The rounding dust of its settlements.
		dust: Balance,
		/// Everything the escrow sent its creator: `close_task`'s refund and dust that would
		/// have been stranded below the existential deposit.
		to_creator: Balance,
		refund: Option<Balance>,
	}

	/// `create_task`, or `create_task_with_terms` with the terms `kind` stands for.
	fn create_kind(
		who: AccountId,
		reward: Balance,
		max: u32,
		auto: bool,
		kind: u8,
	) -> Result<TaskId, DispatchError> {
		let strategy = |auto| {
			if auto {
				ValidationStrategy::AutoAccept
			} else {
				ValidationStrategy::ManualAccept
			}
		};
		let (t, auto) = match kind {
			0 => return create_with(who, reward, max, strategy(auto)),
			1 => (terms::terms(max, PayoutMode::Flat, 0), auto),
			_ => {
				let floor = if reward > ED { ED } else { 0 };
				(terms::terms(0, PayoutMode::ByContribution, floor), false)
			},
		};
		terms::try_create_terms(who, reward, max, strategy(auto), t)
	}

	fn apply(op: &Op, books: &mut BTreeMap<TaskId, Books>) -> Result<(), DispatchError> {
		match *op {
			Op::Create { who, reward_eds, max, auto, terms } => {
				let id = NextTaskId::<Test>::get();
				// a deposit into a future escrow counts for the task that gets it
				let pre = free(&escrow(id));
				create_kind(
					PEOPLE[who].clone(),
					Balance::from(reward_eds) * ED,
					max.into(),
					auto,
					terms,
				)?;
				books.entry(id).or_default().deposits = pre;
				Ok(())
			},
			Op::Accept { who, task } => {
				Pallet::accept_task(origin(PEOPLE[who].clone()), task.into())
					.map(|_| ())
					.map_err(|e| e.error)
			},
			Op::Send { who, sub } => Pallet::send_task_result(
				origin(PEOPLE[who].clone()),
				sub.into(),
				b"{}".to_vec(),
				None,
				None,
			),
			Op::Validate { who, sub, accept } => {
				Pallet::validate_task_result(origin(PEOPLE[who].clone()), sub.into(), accept)
			},
			Op::Close { who, task } => Pallet::close_task(origin(PEOPLE[who].clone()), task.into())
				.map(|_| ())
				.map_err(|e| e.error),
			Op::Abandon { who, sub } => {
				Pallet::abandon_task(origin(PEOPLE[who].clone()), sub.into())
			},
			Op::Deposit { who, task, eds } => {
				let task_id = TaskId::from(task);
				let open =
					Tasks::<Test>::get(task_id).is_some_and(|t| t.status == TaskStatus::Open);
				if !open {
					// only deposits into open tasks are refundable; see the dedicated test
					return Ok(());
				}
				let amount = Balance::from(eds) * ED;
				Balances::transfer_allow_death(
					origin(PEOPLE[who].clone()),
					escrow(task_id),
					amount,
				)?;
				books.entry(task_id).or_default().deposits += amount;
				Ok(())
			},
			Op::Advance { blocks } => {
				System::set_block_number(System::block_number() + u32::from(blocks));
				Ok(())
			},
			Op::Work { who, task } => {
				let sub = NextSubmissionId::<Test>::get();
				Pallet::accept_task(origin(PEOPLE[who].clone()), task.into())
					.map_err(|e| e.error)?;
				Pallet::send_task_result(
					origin(PEOPLE[who].clone()),
					sub,
					b"{}".to_vec(),
					None,
					None,
				)
			},
			Op::Settle { who, task, ref scores, targeted } => {
				let task_id = TaskId::from(task);
				let (who, scores) = match Tasks::<Test>::get(task_id) {
					Some(t) if targeted => (t.creator, pending_scores(task_id, scores)),
					_ => (
						PEOPLE[who].clone(),
						scores
							.iter()
							.map(|(sub, score)| (SubmissionId::from(*sub), *score))
							.collect(),
					),
				};
				Pallet::settle_contributions(origin(who), task_id, scores)
			},
		}
	}

	/// The task's pending submissions at these positions (modulo their number), scored.
	fn pending_scores(task_id: TaskId, picks: &[(u8, u32)]) -> Vec<(SubmissionId, u32)> {
		let pending: Vec<SubmissionId> = TaskSubmissions::<Test>::iter_prefix(task_id)
			.map(|(id, ())| id)
			.filter(|id| status(*id) == SubmissionStatus::PendingValidation)
			.collect();
		if pending.is_empty() {
			return Vec::new();
		}
		picks.iter().map(|(i, score)| (pending[usize::from(*i) % pending.len()], *score)).collect()
	}

	fn record_events(books: &mut BTreeMap<TaskId, Books>) {
		for record in System::events() {
			match record.event {
				RuntimeEvent::DecentralML(event) => record_pallet_event(event, books),
				RuntimeEvent::Balances(pallet_balances::Event::Transfer { from, to, amount }) => {
					record_transfer(from, to, amount, books)
				},
				_ => {},
			}
		}
		System::reset_events();
	}

	fn record_pallet_event(event: Event<Test>, books: &mut BTreeMap<TaskId, Books>) {
		match event {
			Event::ResultAccepted { task_id, reward, .. } => {
				books.entry(task_id).or_default().paid_out += reward
			},
			Event::ContributionsSettled { task_id, dust, .. } => {
				books.entry(task_id).or_default().dust += dust
			},
			Event::TaskClosed { task_id, refund, .. } => {
				books.entry(task_id).or_default().refund = Some(refund)
			},
			_ => {},
		}
	}

	/// A transfer from a task's escrow to its creator.
	fn record_transfer(
		from: AccountId,
		to: AccountId,
		amount: Balance,
		books: &mut BTreeMap<TaskId, Books>,
	) {
		for (task_id, t) in Tasks::<Test>::iter() {
			if from == escrow(task_id) && to == t.creator {
				books.entry(task_id).or_default().to_creator += amount;
			}
		}
	}

	/// The shards of a task with shards are held by exactly its live submissions, one each.
	fn check_shards(task_id: TaskId, subs: &[(SubmissionId, crate::SubmissionOf<Test>)]) {
		let shards = crate::Pallet::<Test>::terms(task_id).shards;
		let mut live: Vec<_> = subs
			.iter()
			.filter(|(_, s)| {
				!matches!(s.status, SubmissionStatus::Rejected | SubmissionStatus::Abandoned)
			})
			.map(|(id, _)| {
				let shard = crate::SubmissionShards::<Test>::get(id);
				assert_eq!(shard.is_some(), shards > 0);
				(shard.unwrap_or(0), *id)
			})
			.filter(|_| shards > 0)
			.collect();
		let mut held: Vec<_> = crate::ShardHolders::<Test>::iter_prefix(task_id).collect();
		live.sort();
		held.sort();
		assert_eq!(live, held);
		assert!(held.iter().all(|(shard, _)| *shard < shards));
		assert!(held.windows(2).all(|w| w[0].0 != w[1].0));
	}

	fn check_invariants(books: &BTreeMap<TaskId, Books>, issuance: Balance) {
		// no call creates or destroys balance (the mock charges no fees)
		assert_eq!(Balances::total_issuance(), issuance);
		let accounts: Balance =
			frame_system::Account::<Test>::iter().map(|(_, a)| a.data.free).sum();
		assert_eq!(accounts, issuance);

		for (task_id, t) in Tasks::<Test>::iter() {
			let subs: Vec<_> = TaskSubmissions::<Test>::iter_prefix(task_id)
				.map(|(id, ())| (id, Submissions::<Test>::get(id).unwrap()))
				.collect();
			let count =
				|s: SubmissionStatus| subs.iter().filter(|(_, x)| x.status == s).count() as u32;
			let active =
				count(SubmissionStatus::Assigned) + count(SubmissionStatus::PendingValidation);
			assert_eq!(t.active_assignments, active);
			assert_eq!(t.accepted_results, count(SubmissionStatus::Accepted));
			assert!(t.active_assignments + t.accepted_results <= t.max_assignments);
			// TaskWorkers holds exactly the Assigned, PendingValidation and Accepted submissions
			let mut holders: Vec<_> = subs
				.iter()
				.filter(|(_, s)| {
					!matches!(s.status, SubmissionStatus::Rejected | SubmissionStatus::Abandoned)
				})
				.map(|(id, s)| (s.worker.clone(), *id))
				.collect();
			let mut workers: Vec<_> = TaskWorkers::<Test>::iter_prefix(task_id).collect();
			holders.sort();
			workers.sort();
			assert_eq!(holders, workers);
			for (id, s) in &subs {
				assert!(WorkerSubmissions::<Test>::contains_key(&s.worker, id));
				assert_eq!(s.task_id, task_id);
			}
			assert_eq!(OpenTasks::<Test>::contains_key(task_id), t.status == TaskStatus::Open);
			check_shards(task_id, &subs);

			let b = &books[&task_id];
			let unspent = crate::Pallet::<Test>::unspent_escrow(&t);
			let balance = free(&escrow(task_id));
			let accepted = Balance::from(t.accepted_results);
			// paid out + dust = reward * accepted (no dust under Flat pay)
			assert_eq!(b.paid_out + b.dust, t.reward * accepted);
			if !crate::Pallet::<Test>::terms(task_id).by_contribution() {
				assert_eq!(b.dust, 0);
			}
			let paid_in = t.reward * Balance::from(t.max_assignments) + b.deposits;
			match t.status {
				TaskStatus::Open => {
					assert!(balance >= unspent);
					assert_eq!(balance, paid_in - b.paid_out - b.to_creator);
					// only dust goes to the creator before close
					assert!(b.to_creator <= b.dust);
					assert_eq!(b.refund, None);
				},
				TaskStatus::Closed => {
					assert_eq!(balance, 0);
					assert_eq!(count(SubmissionStatus::Assigned), 0);
					assert_eq!(count(SubmissionStatus::PendingValidation), 0);
					// reward * max_assignments + deposits = paid out + refunds
					let refund = b.refund.expect("a closed task has a refund");
					assert!(refund <= b.to_creator);
					assert_eq!(paid_in, b.paid_out + b.to_creator);
				},
			}
		}
	}

	proptest! {
		#![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

		#[test]
		fn escrow_invariant_holds_over_random_call_sequences(ops in prop::collection::vec(op(), 1..60)) {
			new_test_ext().execute_with(|| {
				let issuance = Balances::total_issuance();
				let mut books = BTreeMap::new();
				for op in &ops {
					let root = sp_io::storage::root(sp_runtime::StateVersion::V1);
					let result = frame_support::storage::with_storage_layer(|| apply(op, &mut books));
					if result.is_err() {
						// a failing call changes no state
						assert_eq!(sp_io::storage::root(sp_runtime::StateVersion::V1), root);
					}
					record_events(&mut books);
					check_invariants(&books, issuance);
				}
			});
		}
	}
}
