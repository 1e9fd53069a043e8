//! `settle_contributions`: the payout arithmetic to the planck, the escrow around it, every error
//! in the documented order, and the pure payout function as a property.

use super::{
	terms::{terms, try_create_terms},
	*,
};
use crate::{pallet::Scores, payout};

/// A ManualAccept task of Alice's paid by contribution with `floor`.
fn create_by_contribution(max_assignments: u32, floor: Balance) -> TaskId {
	try_create_terms(
		ALICE,
		REWARD,
		max_assignments,
		ValidationStrategy::ManualAccept,
		terms(0, PayoutMode::ByContribution, floor),
	)
	.unwrap()
}

/// `workers` each take a slot of `task_id` and send a result; their submission ids.
fn pending(task_id: TaskId, workers: &[AccountId]) -> Vec<SubmissionId> {
	workers
		.iter()
		.map(|w| {
			let s = accept(w.clone(), task_id);
			send(w.clone(), s);
			s
		})
		.collect()
}

fn settle(task_id: TaskId, scores: &[(SubmissionId, u32)]) -> DispatchResult {
	Pallet::settle_contributions(origin(ALICE), task_id, scores.to_vec())
}

fn balances(who: &[AccountId]) -> Vec<Balance> {
	who.iter().map(free).collect()
}

// -- wire format -------------------------------------------------------------------------------

#[test]
fn settle_contributions_is_call_7() {
	let call = RuntimeCall::DecentralML(Call::settle_contributions {
		task_id: 3,
		scores: vec![(1, 500_000), (2, 0)],
	});
	let mut expected = vec![8u8, 7];
	expected.extend(3u32.to_le_bytes());
	expected.push(8); // Compact(2)
	expected.extend(1u32.to_le_bytes());
	expected.extend(500_000u32.to_le_bytes());
	expected.extend(2u32.to_le_bytes());
	expected.extend(0u32.to_le_bytes());
	assert_eq!(call.encode(), expected);
}

#[test]
fn contributions_settled_is_event_8() {
	let mut expected = vec![8u8];
	expected.extend(1u32.to_le_bytes());
	expected.extend(3u32.to_le_bytes());
	expected.extend(30u128.to_le_bytes());
	expected.extend(29u128.to_le_bytes());
	expected.extend(1u128.to_le_bytes());
	let e =
		Event::<Test>::ContributionsSettled { task_id: 1, results: 3, pool: 30, paid: 29, dust: 1 };
	assert_eq!(e.encode(), expected);
}

// -- the payout ----------------------------------------------------------------------------------

#[test]
fn settle_pays_each_result_its_share_of_the_pool() {
	new_test_ext().execute_with(|| {
		let t = create_by_contribution(4, 0);
		let subs = pending(t, &[BOB, CHARLIE, DAVE]);
		let workers = [BOB, CHARLIE, DAVE];
		let before = balances(&workers);
		System::reset_events();
		System::set_block_number(7);
		let scores = [(subs[0], 500_000), (subs[1], 300_000), (subs[2], 200_000)];
		assert_ok!(settle(t, &scores));
		// pool = 3 * REWARD = 300 ED split 5:3:2, exactly
		let paid: Vec<Balance> =
			balances(&workers).iter().zip(&before).map(|(a, b)| a - b).collect();
		assert_eq!(paid, vec![15 * ED, 9 * ED, 6 * ED]);
		for ((s, score), w) in scores.iter().zip(&workers) {
			let sub = Submissions::<Test>::get(s).unwrap();
			assert_eq!(sub.status, SubmissionStatus::Accepted);
			assert_eq!(sub.validated_block, Some(7));
			assert_eq!(Scores::<Test>::get(s), Some(*score));
			assert_eq!(TaskWorkers::<Test>::get(t, w), Some(*s));
		}
		let info = task(t);
		assert_eq!((info.active_assignments, info.accepted_results), (0, 3));
		assert_eq!(free(&escrow(t)), REWARD);
		assert_eq!(
			pallet_events(),
			vec![
				Event::ResultAccepted {
					task_id: t,
					submission_id: subs[0],
					worker: BOB,
					reward: 15 * ED
				},
				Event::ResultAccepted {
					task_id: t,
					submission_id: subs[1],
					worker: CHARLIE,
					reward: 9 * ED
				},
				Event::ResultAccepted {
					task_id: t,
					submission_id: subs[2],
					worker: DAVE,
					reward: 6 * ED
				},
				Event::ContributionsSettled {
					task_id: t,
					results: 3,
					pool: 3 * REWARD,
					paid: 3 * REWARD,
					dust: 0
				},
			]
		);
	});
}

#[test]
fn the_rounding_dust_stays_in_the_escrow_and_close_refunds_it() {
	new_test_ext().execute_with(|| {
		let t = create_by_contribution(3, 0);
		let subs = pending(t, &[BOB, CHARLIE]);
		let before = balances(&[BOB, CHARLIE]);
		// 2 * REWARD split 1:2 is 20e9 / 3 and 40e9 / 3: one planck of dust
		assert_ok!(settle(t, &[(subs[0], 1), (subs[1], 2)]));
		let got: Vec<_> =
			balances(&[BOB, CHARLIE]).iter().zip(&before).map(|(a, b)| a - b).collect();
		assert_eq!(got, vec![2 * REWARD / 3, 4 * REWARD / 3]);
		assert_eq!(got.iter().sum::<Balance>() + 1, 2 * REWARD);
		assert_eq!(
			last_event(),
			Event::ContributionsSettled {
				task_id: t,
				results: 2,
				pool: 2 * REWARD,
				paid: 2 * REWARD - 1,
				dust: 1
			}
		);
		// the unspent slot and the dust
		assert_eq!(free(&escrow(t)), REWARD + 1);
		let alice = free(&ALICE);
		assert_ok!(Pallet::close_task(origin(ALICE), t));
		assert_eq!(free(&ALICE), alice + REWARD + 1);
	});
}

#[test]
fn dust_that_would_be_stranded_below_the_existential_deposit_goes_to_the_creator() {
	new_test_ext().execute_with(|| {
		let t = create_by_contribution(2, 0);
		let subs = pending(t, &[BOB, CHARLIE]);
		let issuance = Balances::total_issuance();
		let alice = free(&ALICE);
		assert_ok!(settle(t, &[(subs[0], 1), (subs[1], 2)]));
		// the escrow would keep 1 planck, below ED: it is reaped with nothing destroyed
		assert_eq!(free(&escrow(t)), 0);
		assert_eq!(free(&ALICE), alice + 1);
		assert_eq!(Balances::total_issuance(), issuance);
		assert!(matches!(last_event(), Event::ContributionsSettled { dust: 1, .. }));
		assert_ok!(Pallet::close_task(origin(ALICE), t));
		assert!(matches!(last_event(), Event::TaskClosed { refund: 0, .. }));
	});
}

#[test]
fn payouts_below_the_existential_deposit_never_strand_the_rest() {
	new_test_ext().execute_with(|| {
		// 3 slots, all settled at once: two payouts of about 30_000 planck (far below ED) and
		// one of almost the whole pool. Paid in list order, the escrow would hold only the
		// small payouts after the big one and be reaped with them.
		let t = create_by_contribution(3, 0);
		let workers = [BOB, CHARLIE, DAVE];
		let subs = pending(t, &workers);
		let before = balances(&workers);
		let issuance = Balances::total_issuance();
		System::reset_events();
		assert_ok!(settle(t, &[(subs[0], 1), (subs[1], 1_000_000), (subs[2], 1)]));
		let small = 3 * REWARD / 1_000_002;
		let big = 3 * REWARD * 1_000_000 / 1_000_002;
		let got: Vec<_> = balances(&workers).iter().zip(&before).map(|(a, b)| a - b).collect();
		assert_eq!(got, vec![small, big, small]);
		assert!(small < ED);
		let dust = 3 * REWARD - big - 2 * small;
		assert_eq!(free(&escrow(t)), 0);
		assert_eq!(Balances::total_issuance(), issuance);
		// the ResultAccepted events still come in list order
		let accepted: Vec<_> = pallet_events()
			.into_iter()
			.filter_map(|e| match e {
				Event::ResultAccepted { submission_id, reward, .. } => {
					Some((submission_id, reward))
				},
				_ => None,
			})
			.collect();
		assert_eq!(accepted, vec![(subs[0], small), (subs[1], big), (subs[2], small)]);
		assert_eq!(
			last_event(),
			Event::ContributionsSettled {
				task_id: t,
				results: 3,
				pool: 3 * REWARD,
				paid: 3 * REWARD - dust,
				dust
			}
		);
	});
}

#[test]
fn all_zero_scores_split_the_pool_equally() {
	new_test_ext().execute_with(|| {
		let t = create_by_contribution(3, 2 * ED);
		let workers = [BOB, CHARLIE, DAVE];
		let subs = pending(t, &workers);
		let before = balances(&workers);
		assert_ok!(settle(t, &[(subs[0], 0), (subs[1], 0), (subs[2], 0)]));
		let got: Vec<_> = balances(&workers).iter().zip(&before).map(|(a, b)| a - b).collect();
		assert_eq!(got, vec![REWARD; 3]);
		assert_eq!(free(&escrow(t)), 0);
	});
}

#[test]
fn the_floor_is_paid_first_and_a_zero_payout_moves_nothing() {
	new_test_ext().execute_with(|| {
		// floor 2 ED: the split is 2 * (10 - 2) ED = 16 ED, all to the one with a score
		let t = create_by_contribution(2, 2 * ED);
		let subs = pending(t, &[BOB, CHARLIE]);
		let before = balances(&[BOB, CHARLIE]);
		assert_ok!(settle(t, &[(subs[0], 1_000_000), (subs[1], 0)]));
		let got: Vec<_> =
			balances(&[BOB, CHARLIE]).iter().zip(&before).map(|(a, b)| a - b).collect();
		assert_eq!(got, vec![18 * ED, 2 * ED]);

		// without a floor, a score of 0 is paid 0: recorded, no transfer
		let t = create_by_contribution(2, 0);
		let subs = pending(t, &[BOB, CHARLIE]);
		let charlie = free(&CHARLIE);
		System::reset_events();
		assert_ok!(settle(t, &[(subs[0], 7), (subs[1], 0)]));
		assert_eq!(free(&CHARLIE), charlie);
		assert_eq!(status(subs[1]), SubmissionStatus::Accepted);
		assert_eq!(Scores::<Test>::get(subs[1]), Some(0));
		assert!(pallet_events().contains(&Event::ResultAccepted {
			task_id: t,
			submission_id: subs[1],
			worker: CHARLIE,
			reward: 0
		}));
		// no Balances transfer to Charlie
		let to_charlie = System::events().into_iter().any(|r| {
			matches!(
				r.event,
				RuntimeEvent::Balances(pallet_balances::Event::Transfer { ref to, .. }) if *to == CHARLIE
			)
		});
		assert!(!to_charlie);
	});
}

#[test]
fn settle_in_several_calls_and_after_expiry_then_close() {
	new_test_ext().execute_with(|| {
		let t = create_by_contribution(4, 0);
		let subs = pending(t, &[BOB, CHARLIE, DAVE, EVE]);
		assert_ok!(settle(t, &[(subs[2], 3)]));
		// one pending result blocks close_task, as with flat pay
		assert_ok!(Pallet::validate_task_result(origin(ALICE), subs[3], false));
		System::set_block_number(EXPIRATION + 5);
		assert_ok!(settle(t, &[(subs[0], 1), (subs[1], 1)]));
		assert_eq!(task(t).accepted_results, 3);
		assert_eq!(task(t).active_assignments, 0);
		let alice = free(&ALICE);
		assert_ok!(Pallet::close_task(origin(ALICE), t));
		assert_eq!(free(&ALICE), alice + REWARD);
	});
}

#[test]
fn settle_contributions_errors() {
	new_test_ext().execute_with(|| {
		let t = create_by_contribution(3, 0);
		let flat = create(2, ValidationStrategy::ManualAccept);
		let subs = pending(t, &[BOB, CHARLIE]);
		let other = pending(flat, &[DAVE]);
		let assigned = accept(EVE, t);
		let e = |r: DispatchResult| r.unwrap_err();
		assert_eq!(e(settle(99, &[(subs[0], 1)])), Error::<Test>::TaskNotFound.into());
		assert_eq!(
			e(Pallet::settle_contributions(origin(BOB), t, vec![(subs[0], 1)])),
			Error::<Test>::NotTaskCreator.into()
		);
		assert_eq!(e(settle(flat, &[(other[0], 1)])), Error::<Test>::NotPaidByContribution.into());
		assert_eq!(e(settle(t, &[])), Error::<Test>::NoScores.into());
		let too_many: Vec<_> = (0..65).map(|i| (1000 + i, 1)).collect();
		assert_eq!(e(settle(t, &too_many)), Error::<Test>::TooManyScores.into());
		assert_eq!(e(settle(t, &[(subs[0], 1_000_001)])), Error::<Test>::ScoreTooHigh.into());
		assert_eq!(
			e(settle(t, &[(subs[0], 1), (subs[1], 2), (subs[0], 3)])),
			Error::<Test>::DuplicateScore.into()
		);
		assert_eq!(
			e(settle(t, &[(subs[0], 1), (999, 1)])),
			Error::<Test>::SubmissionNotFound.into()
		);
		assert_eq!(
			e(settle(t, &[(subs[0], 1), (other[0], 1)])),
			Error::<Test>::NotPendingOnTask.into()
		);
		assert_eq!(e(settle(t, &[(assigned, 1)])), Error::<Test>::NotPendingOnTask.into());
		// a failed settlement changed nothing
		assert_eq!(status(subs[0]), SubmissionStatus::PendingValidation);
		assert_eq!(free(&escrow(t)), 3 * REWARD);
		// already accepted: no longer pending
		assert_ok!(settle(t, &[(subs[0], 1_000_000)]));
		assert_eq!(e(settle(t, &[(subs[0], 1)])), Error::<Test>::NotPendingOnTask.into());
		// closed
		assert_ok!(settle(t, &[(subs[1], 0)]));
		assert_ok!(Pallet::close_task(origin(ALICE), t));
		assert_eq!(e(settle(t, &[(subs[1], 1)])), Error::<Test>::TaskClosed.into());
		assert_noop!(
			Pallet::settle_contributions(RuntimeOrigin::none(), t, vec![(subs[1], 1)]),
			DispatchError::BadOrigin
		);
	});
}

#[test]
fn settle_contributions_checks_errors_in_the_documented_order() {
	new_test_ext().execute_with(|| {
		let t = create_by_contribution(3, 0);
		let flat = create(2, ValidationStrategy::ManualAccept);
		let subs = pending(t, &[BOB, CHARLIE]);
		let other = pending(flat, &[DAVE]);
		let err = |who: AccountId, task_id: TaskId, scores: Vec<(SubmissionId, u32)>| {
			Pallet::settle_contributions(origin(who), task_id, scores).unwrap_err()
		};
		let bad = vec![(999, 2_000_000)];
		// TaskNotFound, NotTaskCreator, (TaskClosed below), NotPaidByContribution
		assert_eq!(err(BOB, 99, bad.clone()), Error::<Test>::TaskNotFound.into());
		assert_eq!(err(BOB, t, bad.clone()), Error::<Test>::NotTaskCreator.into());
		assert_eq!(err(ALICE, flat, vec![]), Error::<Test>::NotPaidByContribution.into());
		// NoScores, TooManyScores before the scores' contents
		assert_eq!(err(ALICE, t, vec![]), Error::<Test>::NoScores.into());
		let too_many: Vec<_> = (0..65).map(|_| (999, 2_000_000)).collect();
		assert_eq!(err(ALICE, t, too_many), Error::<Test>::TooManyScores.into());
		// ScoreTooHigh anywhere before DuplicateScore anywhere
		let dup_then_high = vec![(subs[0], 1), (subs[0], 1), (subs[1], 1_000_001)];
		assert_eq!(err(ALICE, t, dup_then_high), Error::<Test>::ScoreTooHigh.into());
		// DuplicateScore before SubmissionNotFound
		let missing_then_dup = vec![(999, 1), (subs[0], 1), (subs[0], 1)];
		assert_eq!(err(ALICE, t, missing_then_dup), Error::<Test>::DuplicateScore.into());
		// SubmissionNotFound anywhere before NotPendingOnTask anywhere
		let foreign_then_missing = vec![(other[0], 1), (999, 1)];
		assert_eq!(err(ALICE, t, foreign_then_missing), Error::<Test>::SubmissionNotFound.into());
		// TaskClosed before the rest
		let closed = create_by_contribution(1, 0);
		assert_ok!(Pallet::close_task(origin(ALICE), closed));
		assert_eq!(err(ALICE, closed, vec![]), Error::<Test>::TaskClosed.into());
		assert_eq!(err(BOB, closed, vec![]), Error::<Test>::NotTaskCreator.into());
	});
}

#[test]
fn settle_weight_grows_with_the_scores_and_stops_at_max_assignments() {
	let weight = |n: u32| {
		Call::<Test>::settle_contributions { task_id: 0, scores: (0..n).map(|i| (i, 1)).collect() }
			.get_dispatch_info()
			.call_weight
	};
	assert_eq!(weight(3), <() as WeightInfo>::settle_contributions(3));
	assert!(weight(1).all_lte(weight(64)));
	assert_eq!(weight(64), weight(1_000));
}

// -- the payout function ----------------------------------------------------------------------------

#[test]
fn payout_examples() {
	let s = payout::settle(10, 0, &[1, 2]).unwrap();
	assert_eq!((s.pool, s.payouts.clone(), s.paid, s.dust), (20, vec![6, 13], 19, 1));
	let s = payout::settle(10, 4, &[1, 2]).unwrap();
	// split = 20 - 8 = 12: 4 + 4, 4 + 8
	assert_eq!((s.payouts.clone(), s.dust), (vec![8, 12], 0));
	let s = payout::settle(10, 3, &[0, 0, 0]).unwrap();
	assert_eq!((s.payouts.clone(), s.dust), (vec![10, 10, 10], 0));
	let s = payout::settle(7, 0, &[0, 0, 0, 0]).unwrap();
	// 28 / 4 = 7 each
	assert_eq!(s.payouts, vec![7; 4]);
	let s = payout::settle(5, 0, &[0, 0, 0]).unwrap();
	assert_eq!((s.payouts.clone(), s.dust), (vec![5, 5, 5], 0));
	let s = payout::settle(10, 10, &[1_000_000, 0]).unwrap();
	assert_eq!((s.payouts.clone(), s.dust), (vec![10, 10], 0));
	// equal shares never leave dust: the split is k * (reward - floor)
	let s = payout::settle(3, 1, &[0, 0]).unwrap();
	assert_eq!((s.payouts.clone(), s.dust), (vec![3, 3], 0));
	// a pool of 3 planck scored 1:1:2: 3/4, 3/4 and 6/4 round down to 0, 0 and 1
	let s = payout::settle(1, 0, &[1, 1, 2]).unwrap();
	assert_eq!((s.payouts.clone(), s.paid, s.dust), (vec![0, 0, 1], 1, 2));
}

#[test]
fn payout_refuses_what_the_pallet_rules_out() {
	assert_eq!(payout::settle(10, 0, &[]), None);
	assert_eq!(payout::settle(10, 11, &[1]), None);
	assert_eq!(payout::settle(u128::MAX, 0, &[1, 1]), None);
	// the largest pool that fits is split without overflow in `split * score`
	let s = payout::settle(u128::MAX / 64, 0, &[1_000_000; 64]).unwrap();
	assert_eq!(s.paid + s.dust, s.pool);
}

mod payout_property {
	use super::payout;
	use proptest::prelude::*;

	proptest! {
		#![proptest_config(ProptestConfig::with_cases(2000))]

		#[test]
		fn payouts_and_dust_sum_to_the_pool(
			reward in 1u128..=u128::MAX / 64,
			floor_ppm in 0u128..=1_000_000,
			scores in proptest::collection::vec(prop_oneof![Just(0u32), 0u32..=1_000_000], 1..=64),
		) {
			let floor = reward / 1_000_000 * floor_ppm;
			let s = payout::settle(reward, floor, &scores).expect("within the pallet's bounds");
			let k = scores.len() as u128;
			prop_assert_eq!(s.pool, reward * k);
			prop_assert_eq!(s.payouts.iter().sum::<u128>(), s.paid);
			prop_assert_eq!(s.paid + s.dust, reward * k);
			prop_assert!(s.dust < k);
			let total: u128 = scores.iter().map(|x| u128::from(*x)).sum();
			for (p, score) in s.payouts.iter().zip(&scores) {
				prop_assert!(*p >= floor);
				// exactly floor + floor_div(split * score, S) (or the equal share)
				let split = reward * k - floor * k;
				let share = if total == 0 { split / k } else {
					// split * score may not fit a u128: compare through the remainder
					let q = *p - floor;
					prop_assert!(mul_le(q, total, split, u128::from(*score)));
					prop_assert!(!mul_le(q + 1, total, split, u128::from(*score)));
					q
				};
				prop_assert_eq!(*p, floor + share);
			}
			// a higher score is never paid less
			for (i, a) in scores.iter().enumerate() {
				for (j, b) in scores.iter().enumerate() {
					if a > b {
						prop_assert!(s.payouts[i] >= s.payouts[j]);
					}
				}
			}
		}
	}

	/// `a * b <= c * d` without overflow (256-bit via u128 halves).
	fn mul_le(a: u128, b: u128, c: u128, d: u128) -> bool {
		wide(a, b) <= wide(c, d)
	}

	fn wide(a: u128, b: u128) -> (u128, u128) {
		let (a1, a0) = (a >> 64, a & u128::from(u64::MAX));
		let (b1, b0) = (b >> 64, b & u128::from(u64::MAX));
		let lo = a0 * b0;
		let mid1 = a1 * b0;
		let mid2 = a0 * b1;
		let hi = a1 * b1;
		let (mid, carry_mid) = mid1.overflowing_add(mid2);
		let (lo, carry_lo) = lo.overflowing_add(mid << 64);
		let hi = hi + (mid >> 64) + (u128::from(carry_mid) << 64) + u128::from(carry_lo);
		(hi, lo)
	}
}

mod settlement_property {
	use super::*;
	use frame_support::traits::fungible::Mutate;
	use proptest::prelude::*;

	/// A worker account of its own (the named ones would run out), funded so that any payout,
	/// however small, can be received.
	fn worker(index: u8) -> AccountId {
		let who = AccountId::new([100 + index; 32]);
		Balances::set_balance(&who, ED);
		who
	}

	fn escrow_balance(task_id: TaskId) -> Balance {
		free(&escrow(task_id))
	}

	proptest! {
		#![proptest_config(ProptestConfig::with_cases(200))]

		/// Every slot of a task paid by contribution is filled and settled in random batches
		/// with random scores (some results rejected instead): after each call the escrow is
		/// empty or at least the existential deposit, the payouts and dust of the settlement
		/// sum to `reward * k`, nothing is created or destroyed, and `close_task` refunds the
		/// rest.
		#[test]
		fn settlements_conserve_the_escrow(
			reward_planck in ED..=4 * ED + 999,
			floor_pct in 0u128..=100,
			max in 1u32..=8,
			batches in prop::collection::vec(
				(1usize..=4, prop::collection::vec(prop_oneof![Just(0u32), 0u32..=1_000_000], 4), any::<bool>()),
				1..6,
			),
		) {
			new_test_ext().execute_with(|| {
				let floor = reward_planck * floor_pct / 100;
				let t = try_create_terms(
					ALICE,
					reward_planck,
					max,
					ValidationStrategy::ManualAccept,
					terms(0, PayoutMode::ByContribution, floor),
				)
				.unwrap();
				let mut pending: Vec<SubmissionId> = (0..max as u8)
					.map(|i| {
						let w = worker(i);
						let s = accept(w.clone(), t);
						send(w, s);
						s
					})
					.collect();
				let issuance = Balances::total_issuance();
				let alice = free(&ALICE);
				let mut paid_out = 0;
				for (size, scores, reject) in batches {
					if pending.is_empty() {
						break;
					}
					let batch: Vec<SubmissionId> =
						pending.drain(..size.min(pending.len())).collect();
					if reject {
						for s in &batch {
							assert_ok!(Pallet::validate_task_result(origin(ALICE), *s, false));
						}
						continue;
					}
					let listed: Vec<_> = batch.iter().copied().zip(scores).collect();
					let before: Vec<_> =
						listed.iter().map(|(s, _)| free(&Submissions::<Test>::get(s).unwrap().worker)).collect();
					System::reset_events();
					assert_ok!(settle(t, &listed));
					let got: Vec<Balance> = listed
						.iter()
						.zip(&before)
						.map(|((s, _), b)| free(&Submissions::<Test>::get(s).unwrap().worker) - b)
						.collect();
					let k = listed.len() as Balance;
					let Event::ContributionsSettled { pool, paid, dust, .. } = last_event() else {
						panic!("settled")
					};
					prop_assert_eq!(pool, reward_planck * k);
					prop_assert_eq!(got.iter().sum::<Balance>(), paid);
					prop_assert_eq!(paid + dust, pool);
					prop_assert!(dust < k);
					prop_assert!(got.iter().all(|g| *g >= floor));
					paid_out += paid;
					let balance = escrow_balance(t);
					prop_assert!(balance == 0 || balance >= ED);
					prop_assert_eq!(Balances::total_issuance(), issuance);
				}
				// what the batches left pending is rejected, so the task can close
				for s in pending {
					assert_ok!(Pallet::validate_task_result(origin(ALICE), s, false));
				}
				assert_ok!(Pallet::close_task(origin(ALICE), t));
				prop_assert_eq!(escrow_balance(t), 0);
				// everything not paid to a worker went back to the creator, to the planck
				prop_assert_eq!(paid_out + (free(&ALICE) - alice), reward_planck * Balance::from(max));
				prop_assert_eq!(Balances::total_issuance(), issuance);
				Ok(())
			})?;
		}
	}
}
