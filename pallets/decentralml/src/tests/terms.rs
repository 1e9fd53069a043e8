//! Protocol 2 task terms: `create_task_with_terms`, shard assignment in `accept_task` and its
//! release on reject, abandon and close, and `validate_task_result` on a task paid by
//! contribution.

use super::*;
use crate::pallet::{ShardHolders, SubmissionShards, Terms};

pub(super) fn terms(shards: u32, payout: PayoutMode, floor: Balance) -> TaskTerms<Balance> {
	TaskTerms { shards, payout, floor, holdout_commitment: None, scoring_commitment: None }
}

/// `create_task_with_terms` by `who` with everything but the money and terms defaulted.
pub(super) fn try_create_terms(
	who: AccountId,
	reward: Balance,
	max_assignments: u32,
	strategy: ValidationStrategy,
	terms: TaskTerms<Balance>,
) -> Result<TaskId, DispatchError> {
	let task_id = NextTaskId::<Test>::get();
	Pallet::create_task_with_terms(
		origin(who),
		TaskType::ModelContributor,
		b"train the model".to_vec(),
		reward,
		max_assignments,
		strategy,
		b"bafybeigdyrzt".to_vec(),
		StorageType::Ipfs,
		EXPIRATION,
		terms,
	)?;
	Ok(task_id)
}

/// A Flat, ManualAccept task of Alice's with one shard per slot.
fn create_sharded(max_assignments: u32) -> TaskId {
	try_create_terms(
		ALICE,
		REWARD,
		max_assignments,
		ValidationStrategy::ManualAccept,
		terms(max_assignments, PayoutMode::Flat, 0),
	)
	.unwrap()
}

fn shard_of(submission_id: SubmissionId) -> Option<u32> {
	SubmissionShards::<Test>::get(submission_id)
}

fn holders(task_id: TaskId) -> Vec<(u32, SubmissionId)> {
	let mut held: Vec<_> = ShardHolders::<Test>::iter_prefix(task_id).collect();
	held.sort();
	held
}

// -- wire format -------------------------------------------------------------------------------

#[test]
fn task_terms_encode_in_field_order() {
	let t = TaskTerms::<Balance> {
		shards: 3,
		payout: PayoutMode::ByContribution,
		floor: 7,
		holdout_commitment: Some([0xaa; 32]),
		scoring_commitment: None,
	};
	let mut expected = 3u32.to_le_bytes().to_vec();
	expected.push(1);
	expected.extend(7u128.to_le_bytes());
	expected.push(1);
	expected.extend([0xaa; 32]);
	expected.push(0);
	assert_eq!(t.encode(), expected);
	assert_eq!(TaskTerms::<Balance>::default(), terms(0, PayoutMode::Flat, 0));
}

#[test]
fn create_task_with_terms_is_call_6_with_the_terms_last() {
	let t = terms(2, PayoutMode::Flat, 0);
	let call = RuntimeCall::DecentralML(Call::create_task_with_terms {
		task_type: TaskType::ModelEngineer,
		question: b"q?".to_vec(),
		reward: 5,
		max_assignments: 2,
		validation_strategy: ValidationStrategy::CustomAccept,
		assets_cid: b"c".to_vec(),
		assets_storage: StorageType::Http,
		expiration_block: 9,
		terms: t.clone(),
	});
	let mut expected = vec![8u8, 6, 2, 8, b'q', b'?'];
	expected.extend(5u128.to_le_bytes());
	expected.extend(2u32.to_le_bytes());
	expected.extend([2, 4, b'c', 2]);
	expected.extend(9u32.to_le_bytes());
	expected.extend(t.encode());
	assert_eq!(call.encode(), expected);
}

#[test]
fn shard_assigned_is_event_7() {
	let mut expected = vec![7u8];
	expected.extend(1u32.to_le_bytes());
	expected.extend(2u32.to_le_bytes());
	expected.extend(3u32.to_le_bytes());
	assert_eq!(
		Event::<Test>::ShardAssigned { task_id: 1, submission_id: 2, shard: 3 }.encode(),
		expected
	);
}

#[test]
fn terms_and_shard_storage_keys() {
	use sp_io::hashing::{blake2_128, twox_128};
	let prefix = |item: &str| [twox_128(b"DecentralML"), twox_128(item.as_bytes())].concat();
	let b2 = |k: &[u8]| [blake2_128(k).as_slice(), k].concat();
	let (five, six) = (5u32.encode(), 6u32.encode());
	assert_eq!(Terms::<Test>::hashed_key_for(5), [prefix("Terms"), b2(&five)].concat());
	assert_eq!(
		ShardHolders::<Test>::hashed_key_for(5, 6),
		[prefix("ShardHolders"), b2(&five), b2(&six)].concat()
	);
	assert_eq!(
		SubmissionShards::<Test>::hashed_key_for(6),
		[prefix("SubmissionShards"), b2(&six)].concat()
	);
}

// -- create_task_with_terms -----------------------------------------------------------------------

#[test]
fn create_task_with_terms_escrows_and_stores_the_terms() {
	new_test_ext().execute_with(|| {
		let before = free(&ALICE);
		let mut t = terms(3, PayoutMode::ByContribution, ED);
		t.holdout_commitment = Some([1; 32]);
		t.scoring_commitment = Some([2; 32]);
		let id = try_create_terms(ALICE, REWARD, 3, ValidationStrategy::ManualAccept, t.clone())
			.unwrap();
		assert_eq!(Terms::<Test>::get(id), Some(t.clone()));
		assert_eq!(Pallet::terms(id), t);
		assert_eq!(free(&escrow(id)), 3 * REWARD);
		assert_eq!(free(&ALICE), before - 3 * REWARD);
		assert!(OpenTasks::<Test>::contains_key(id));
		assert_eq!(NextTaskId::<Test>::get(), id + 1);
		assert_eq!(
			pallet_events(),
			vec![Event::TaskCreated {
				task_id: id,
				creator: ALICE,
				task_type: TaskType::ModelContributor,
				reward: REWARD,
				max_assignments: 3,
				escrow: 3 * REWARD,
				expiration_block: EXPIRATION,
			}]
		);
	});
}

#[test]
fn create_task_has_the_default_terms() {
	new_test_ext().execute_with(|| {
		let id = create(2, ValidationStrategy::ManualAccept);
		assert_eq!(Terms::<Test>::get(id), None);
		assert_eq!(Pallet::terms(id), TaskTerms::default());
	});
}

#[test]
fn create_task_with_terms_accepts_the_boundary_terms() {
	new_test_ext().execute_with(|| {
		let manual = ValidationStrategy::ManualAccept;
		// floor == reward, no shards, CustomAccept
		assert_ok!(try_create_terms(
			ALICE,
			REWARD,
			2,
			ValidationStrategy::CustomAccept,
			terms(0, PayoutMode::ByContribution, REWARD)
		));
		// shards == max_assignments at the bound
		assert_ok!(try_create_terms(ALICE, ED, 64, manual, terms(64, PayoutMode::Flat, 0)));
		// Flat with shards on an AutoAccept task
		assert_ok!(try_create_terms(
			ALICE,
			REWARD,
			1,
			ValidationStrategy::AutoAccept,
			terms(1, PayoutMode::Flat, 0)
		));
	});
}

#[test]
fn create_task_with_terms_errors() {
	new_test_ext().execute_with(|| {
		let manual = ValidationStrategy::ManualAccept;
		let auto = ValidationStrategy::AutoAccept;
		let flat = PayoutMode::Flat;
		let by = PayoutMode::ByContribution;
		let err = |t: TaskTerms<Balance>, s: ValidationStrategy| {
			try_create_terms(ALICE, REWARD, 3, s, t).unwrap_err()
		};
		assert_eq!(err(terms(1, flat, 0), manual), Error::<Test>::InvalidShards.into());
		assert_eq!(err(terms(2, flat, 0), manual), Error::<Test>::InvalidShards.into());
		assert_eq!(err(terms(4, flat, 0), manual), Error::<Test>::InvalidShards.into());
		assert_eq!(err(terms(0, by, 0), auto), Error::<Test>::InvalidTerms.into());
		assert_eq!(err(terms(0, by, REWARD + 1), manual), Error::<Test>::InvalidTerms.into());
		assert_eq!(err(terms(0, flat, 1), manual), Error::<Test>::InvalidTerms.into());
		assert_eq!(NextTaskId::<Test>::get(), 0);
		assert_eq!(Terms::<Test>::iter().count(), 0);
	});
}

#[test]
fn create_task_with_terms_checks_errors_in_the_documented_order() {
	new_test_ext().execute_with(|| {
		System::set_block_number(10);
		let manual = ValidationStrategy::ManualAccept;
		let bad_shards = terms(5, PayoutMode::ByContribution, 0);
		let bad_terms = terms(0, PayoutMode::Flat, 1);
		let attempt = |question: Vec<u8>, reward: Balance, expiration: u32, t| {
			Pallet::create_task_with_terms(
				origin(ALICE),
				TaskType::ModelContributor,
				question,
				reward,
				2,
				manual,
				b"c".to_vec(),
				StorageType::Ipfs,
				expiration,
				t,
			)
		};
		// every create_task error comes before the terms
		assert_noop!(attempt(vec![], ED, 20, bad_shards.clone()), Error::<Test>::InvalidQuestion);
		assert_noop!(
			attempt(b"q".to_vec(), ED, 10, bad_shards.clone()),
			Error::<Test>::ExpirationInPast
		);
		// InvalidShards before InvalidTerms
		let both = terms(1, PayoutMode::Flat, 1);
		assert_noop!(attempt(b"q".to_vec(), ED, 20, both), Error::<Test>::InvalidShards);
		// the terms before Overflow and InsufficientBalance
		assert_noop!(
			attempt(b"q".to_vec(), u128::MAX, 20, bad_terms.clone()),
			Error::<Test>::InvalidTerms
		);
		assert_noop!(
			attempt(b"q".to_vec(), u128::MAX, 20, TaskTerms::default()),
			Error::<Test>::Overflow
		);
		assert_noop!(attempt(b"q".to_vec(), ENDOWMENT, 20, bad_terms), Error::<Test>::InvalidTerms);
		assert_noop!(
			attempt(b"q".to_vec(), ENDOWMENT, 20, TaskTerms::default()),
			Error::<Test>::InsufficientBalance
		);
		NextTaskId::<Test>::put(u32::MAX);
		assert_noop!(attempt(b"q".to_vec(), ED, 20, bad_shards), Error::<Test>::InvalidShards);
		assert_noop!(attempt(b"q".to_vec(), ED, 20, TaskTerms::default()), Error::<Test>::Overflow);
	});
}

#[test]
fn create_task_with_terms_needs_a_signed_origin() {
	new_test_ext().execute_with(|| {
		assert_noop!(
			Pallet::create_task_with_terms(
				RuntimeOrigin::none(),
				TaskType::ModelContributor,
				b"q".to_vec(),
				ED,
				1,
				ValidationStrategy::ManualAccept,
				b"c".to_vec(),
				StorageType::Ipfs,
				EXPIRATION,
				TaskTerms::default(),
			),
			DispatchError::BadOrigin
		);
	});
}

// -- shards ---------------------------------------------------------------------------------------

#[test]
fn accept_task_assigns_the_lowest_free_shard() {
	new_test_ext().execute_with(|| {
		let t = create_sharded(3);
		System::reset_events();
		let (b, c, d) = (accept(BOB, t), accept(CHARLIE, t), accept(DAVE, t));
		assert_eq!((shard_of(b), shard_of(c), shard_of(d)), (Some(0), Some(1), Some(2)));
		assert_eq!(holders(t), vec![(0, b), (1, c), (2, d)]);
		assert_eq!(
			pallet_events()[..2],
			[
				Event::TaskAccepted { task_id: t, submission_id: b, worker: BOB },
				Event::ShardAssigned { task_id: t, submission_id: b, shard: 0 },
			]
		);
		assert_eq!(last_event(), Event::ShardAssigned { task_id: t, submission_id: d, shard: 2 });
		assert_noop!(Pallet::accept_task(origin(EVE), t), Error::<Test>::NoSlotsLeft);
	});
}

#[test]
fn a_task_without_shards_assigns_none() {
	new_test_ext().execute_with(|| {
		let t = create(2, ValidationStrategy::ManualAccept);
		System::reset_events();
		let s = accept(BOB, t);
		assert_eq!(shard_of(s), None);
		assert_eq!(holders(t), vec![]);
		assert_eq!(
			pallet_events(),
			vec![Event::TaskAccepted { task_id: t, submission_id: s, worker: BOB }]
		);
	});
}

#[test]
fn abandon_releases_the_shard_for_the_next_worker() {
	new_test_ext().execute_with(|| {
		let t = create_sharded(3);
		let (b, c, _d) = (accept(BOB, t), accept(CHARLIE, t), accept(DAVE, t));
		assert_ok!(Pallet::abandon_task(origin(CHARLIE), c));
		assert_eq!(holders(t).iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![0, 2]);
		// the abandoned submission keeps its shard on record
		assert_eq!(shard_of(c), Some(1));
		let e = accept(EVE, t);
		assert_eq!(shard_of(e), Some(1));
		assert_eq!(ShardHolders::<Test>::get(t, 1), Some(e));
		// and the same worker may come back for whatever is free next
		assert_ok!(Pallet::abandon_task(origin(BOB), b));
		let again = accept(CHARLIE, t);
		assert_eq!(shard_of(again), Some(0));
	});
}

#[test]
fn reject_releases_the_shard_and_accept_keeps_it() {
	new_test_ext().execute_with(|| {
		let t = create_sharded(2);
		let (b, c) = (accept(BOB, t), accept(CHARLIE, t));
		send(BOB, b);
		send(CHARLIE, c);
		assert_ok!(Pallet::validate_task_result(origin(ALICE), b, false));
		assert_ok!(Pallet::validate_task_result(origin(ALICE), c, true));
		assert_eq!(holders(t), vec![(1, c)]);
		let d = accept(DAVE, t);
		assert_eq!(shard_of(d), Some(0));
		assert_eq!(holders(t), vec![(0, d), (1, c)]);
	});
}

#[test]
fn close_task_releases_the_shards_it_abandons() {
	new_test_ext().execute_with(|| {
		let t = create_sharded(3);
		let (b, c) = (accept(BOB, t), accept(CHARLIE, t));
		send(CHARLIE, c);
		assert_ok!(Pallet::validate_task_result(origin(ALICE), c, true));
		assert_ok!(Pallet::close_task(origin(ALICE), t));
		assert_eq!(status(b), SubmissionStatus::Abandoned);
		// the accepted result keeps its shard, the abandoned one is free
		assert_eq!(holders(t), vec![(1, c)]);
		assert_eq!((shard_of(b), shard_of(c)), (Some(0), Some(1)));
	});
}

#[test]
fn accept_task_is_charged_for_every_shard_and_refunds_the_unvisited() {
	new_test_ext().execute_with(|| {
		let declared = Call::<Test>::accept_task { task_id: 0 }.get_dispatch_info().call_weight;
		assert_eq!(declared, <() as WeightInfo>::accept_task(64));
		let plain = create(1, ValidationStrategy::ManualAccept);
		let post = Pallet::accept_task(origin(BOB), plain).unwrap();
		assert_eq!(post.actual_weight, Some(<() as WeightInfo>::accept_task(0)));
		let t = create_sharded(3);
		let posts: Vec<_> = [BOB, CHARLIE, DAVE]
			.into_iter()
			.map(|w| Pallet::accept_task(origin(w), t).unwrap().actual_weight)
			.collect();
		let expected: Vec<_> =
			(1..=3).map(|visited| Some(<() as WeightInfo>::accept_task(visited))).collect();
		assert_eq!(posts, expected);
		assert!(<() as WeightInfo>::accept_task(3).all_lte(declared));
	});
}

// -- validate_task_result on a task paid by contribution ---------------------------------------------

#[test]
fn validate_refuses_to_accept_on_a_task_paid_by_contribution_but_rejects() {
	new_test_ext().execute_with(|| {
		let t = try_create_terms(
			ALICE,
			REWARD,
			2,
			ValidationStrategy::ManualAccept,
			terms(0, PayoutMode::ByContribution, 0),
		)
		.unwrap();
		let (b, c) = (accept(BOB, t), accept(CHARLIE, t));
		// InvalidStatus (still Assigned) and NotTaskCreator come first
		assert_noop!(
			Pallet::validate_task_result(origin(ALICE), b, true),
			Error::<Test>::InvalidStatus
		);
		send(BOB, b);
		send(CHARLIE, c);
		assert_noop!(
			Pallet::validate_task_result(origin(BOB), b, true),
			Error::<Test>::NotTaskCreator
		);
		assert_noop!(
			Pallet::validate_task_result(origin(ALICE), b, true),
			Error::<Test>::PaidByContribution
		);
		assert_ok!(Pallet::validate_task_result(origin(ALICE), c, false));
		assert_eq!(status(c), SubmissionStatus::Rejected);
		assert_eq!(free(&escrow(t)), 2 * REWARD);
	});
}

#[test]
fn a_flat_task_with_shards_pays_as_before() {
	new_test_ext().execute_with(|| {
		let t = create_sharded(1);
		let s = accept(BOB, t);
		send(BOB, s);
		let before = free(&BOB);
		assert_ok!(Pallet::validate_task_result(origin(ALICE), s, true));
		assert_eq!(free(&BOB), before + REWARD);
	});
}
