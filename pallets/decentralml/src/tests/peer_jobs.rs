//! Peer jobs: creation and its bounds, the round clock, joining and leaving, updates and
//! aggregates with their phases, and the majority that fixes a round's agreed model.

use super::*;
use crate::pallet::{
	AggregateVotes, AgreedModels, NextPeerJobId, PeerJobs, Peers, RoundAggregates,
	RoundUpdateCount, RoundUpdates,
};
use frame_support::{traits::ConstU32, BoundedVec};

const UPDATE: u32 = 3;
const AGGREGATE: u32 = 2;
/// Blocks per round.
const ROUND: u32 = UPDATE + AGGREGATE;

fn try_create_job(rounds: u32, update: u32, aggregate: u32, max_peers: u32) -> DispatchResult {
	Pallet::create_peer_job(
		origin(ALICE),
		b"bafyjob".to_vec(),
		StorageType::Ipfs,
		rounds,
		update,
		aggregate,
		max_peers,
	)
}

/// A job created now by Alice: `rounds` rounds of 3 update and 2 aggregate blocks.
fn create_job(rounds: u32, max_peers: u32) -> PeerJobId {
	let id = NextPeerJobId::<Test>::get();
	assert_ok!(try_create_job(rounds, UPDATE, AGGREGATE, max_peers));
	id
}

fn join(who: AccountId, job: PeerJobId) {
	assert_ok!(Pallet::join_peer_job(origin(who), job));
}

fn update(who: AccountId, job: PeerJobId, round: u32, cid: &[u8]) -> DispatchResult {
	Pallet::post_update(origin(who), job, round, cid.to_vec())
}

fn aggregate(who: AccountId, job: PeerJobId, round: u32, cid: &[u8]) -> DispatchResult {
	Pallet::post_aggregate(origin(who), job, round, cid.to_vec())
}

/// Move to block `offset` of round `round` of a job that started at block 1.
fn goto(round: u32, offset: u32) {
	System::set_block_number(1 + round * ROUND + offset);
}

fn cid(bytes: &[u8]) -> BoundedVec<u8, ConstU32<128>> {
	bytes.to_vec().try_into().unwrap()
}

fn agreed(job: PeerJobId, round: u32) -> Option<Vec<u8>> {
	AgreedModels::<Test>::get((job, round)).map(|c| c.into_inner())
}

// -- wire format -------------------------------------------------------------------------------

#[test]
fn peer_job_calls_are_8_to_12() {
	let job = |index: u8| {
		let mut v = vec![8u8, index];
		v.extend(4u32.to_le_bytes());
		v
	};
	let create = RuntimeCall::DecentralML(Call::create_peer_job {
		assets_cid: b"c".to_vec(),
		assets_storage: StorageType::Local,
		rounds: 2,
		update_blocks: 3,
		aggregate_blocks: 4,
		max_peers: 5,
	});
	let mut expected = vec![8u8, 8, 4, b'c', 1];
	for n in [2u32, 3, 4, 5] {
		expected.extend(n.to_le_bytes());
	}
	assert_eq!(create.encode(), expected);
	assert_eq!(RuntimeCall::DecentralML(Call::join_peer_job { job_id: 4 }).encode(), job(9));
	assert_eq!(RuntimeCall::DecentralML(Call::leave_peer_job { job_id: 4 }).encode(), job(10));
	let mut posted = job(11);
	posted.extend(6u32.to_le_bytes());
	posted.extend([4, b'u']);
	assert_eq!(
		RuntimeCall::DecentralML(Call::post_update {
			job_id: 4,
			round: 6,
			update_cid: b"u".to_vec()
		})
		.encode(),
		posted
	);
	posted[1] = 12;
	assert_eq!(
		RuntimeCall::DecentralML(Call::post_aggregate {
			job_id: 4,
			round: 6,
			aggregate_cid: b"u".to_vec()
		})
		.encode(),
		posted
	);
}

#[test]
fn peer_job_events_are_9_to_14() {
	let mut created = vec![9u8];
	created.extend(1u32.to_le_bytes());
	created.extend([1u8; 32]);
	for n in [2u32, 3, 4, 5] {
		created.extend(n.to_le_bytes());
	}
	assert_eq!(
		Event::<Test>::PeerJobCreated {
			job_id: 1,
			creator: ALICE,
			rounds: 2,
			update_blocks: 3,
			aggregate_blocks: 4,
			max_peers: 5
		}
		.encode(),
		created
	);
	let peer_round = |index: u8| {
		let mut v = vec![index];
		v.extend(1u32.to_le_bytes());
		v.extend([2u8; 32]);
		v.extend(3u32.to_le_bytes());
		v
	};
	assert_eq!(
		Event::<Test>::PeerJoined { job_id: 1, peer: BOB, round: 3 }.encode(),
		peer_round(10)
	);
	assert_eq!(Event::<Test>::PeerLeft { job_id: 1, peer: BOB, round: 3 }.encode(), peer_round(11));
	let round_peer = |index: u8| {
		let mut v = vec![index];
		v.extend(1u32.to_le_bytes());
		v.extend(3u32.to_le_bytes());
		v.extend([2u8; 32]);
		v
	};
	assert_eq!(
		Event::<Test>::UpdatePosted { job_id: 1, round: 3, peer: BOB }.encode(),
		round_peer(12)
	);
	assert_eq!(
		Event::<Test>::AggregatePosted { job_id: 1, round: 3, peer: BOB }.encode(),
		round_peer(13)
	);
	let mut agreed = vec![14u8];
	agreed.extend(1u32.to_le_bytes());
	agreed.extend(3u32.to_le_bytes());
	agreed.extend([8, b'a', b'g']);
	assert_eq!(
		Event::<Test>::RoundAgreed { job_id: 1, round: 3, model_cid: cid(b"ag") }.encode(),
		agreed
	);
}

#[test]
fn round_keys_are_the_encoded_job_and_round() {
	use sp_io::hashing::{blake2_128, twox_128};
	let prefix = |item: &str| [twox_128(b"DecentralML"), twox_128(item.as_bytes())].concat();
	let b2 = |k: &[u8]| [blake2_128(k).as_slice(), k].concat();
	let round = (4u32, 6u32).encode();
	assert_eq!(round, [4u32.to_le_bytes(), 6u32.to_le_bytes()].concat());
	let who = BOB.encode();
	assert_eq!(
		PeerJobs::<Test>::hashed_key_for(4),
		[prefix("PeerJobs"), b2(&4u32.encode())].concat()
	);
	assert_eq!(NextPeerJobId::<Test>::hashed_key().to_vec(), prefix("NextPeerJobId"));
	assert_eq!(
		Peers::<Test>::hashed_key_for(4, BOB),
		[prefix("Peers"), b2(&4u32.encode()), b2(&who)].concat()
	);
	assert_eq!(
		RoundUpdates::<Test>::hashed_key_for((4, 6), BOB),
		[prefix("RoundUpdates"), b2(&round), b2(&who)].concat()
	);
	assert_eq!(
		RoundUpdateCount::<Test>::hashed_key_for((4, 6)),
		[prefix("RoundUpdateCount"), b2(&round)].concat()
	);
	assert_eq!(
		RoundAggregates::<Test>::hashed_key_for((4, 6), BOB),
		[prefix("RoundAggregates"), b2(&round), b2(&who)].concat()
	);
	assert_eq!(
		AggregateVotes::<Test>::hashed_key_for((4, 6), cid(b"ag")),
		[prefix("AggregateVotes"), b2(&round), b2(&cid(b"ag").encode())].concat()
	);
	assert_eq!(
		AgreedModels::<Test>::hashed_key_for((4, 6)),
		[prefix("AgreedModels"), b2(&round)].concat()
	);
}

// -- the clock -------------------------------------------------------------------------------------

#[test]
fn the_clock_walks_rounds_and_phases_then_ends() {
	let job = PeerJob::<AccountId, u32, ConstU32<128>> {
		creator: ALICE,
		assets_cid: cid(b"c"),
		assets_storage: StorageType::Ipfs,
		start_block: 10,
		rounds: 2,
		update_blocks: 3,
		aggregate_blocks: 2,
		max_peers: 4,
		peers: 0,
	};
	let walk: Vec<_> = (0..11).map(|elapsed| job.clock(elapsed)).collect();
	use PeerJobClock::*;
	assert_eq!(
		walk,
		vec![
			Update(0),
			Update(0),
			Update(0),
			Aggregate(0),
			Aggregate(0),
			Update(1),
			Update(1),
			Update(1),
			Aggregate(1),
			Aggregate(1),
			Ended
		]
	);
	assert_eq!(job.clock(u64::MAX), Ended);
	assert_eq!(job.round_length(), 5);
}

// -- create_peer_job --------------------------------------------------------------------------------

#[test]
fn create_peer_job_stores_the_job_from_the_current_block() {
	new_test_ext().execute_with(|| {
		System::set_block_number(5);
		let before = free(&ALICE);
		let id = create_job(3, 4);
		assert_eq!(id, 0);
		assert_eq!(NextPeerJobId::<Test>::get(), 1);
		let job = PeerJobs::<Test>::get(id).unwrap();
		assert_eq!(
			(
				job.creator.clone(),
				job.start_block,
				job.rounds,
				job.update_blocks,
				job.aggregate_blocks
			),
			(ALICE, 5, 3, UPDATE, AGGREGATE)
		);
		assert_eq!((job.max_peers, job.peers), (4, 0));
		assert_eq!(job.assets_cid.into_inner(), b"bafyjob".to_vec());
		assert_eq!(job.assets_storage, StorageType::Ipfs);
		// no balance moves and the creator is not a peer
		assert_eq!(free(&ALICE), before);
		assert!(!Peers::<Test>::contains_key(id, ALICE));
		assert_eq!(
			last_event(),
			Event::PeerJobCreated {
				job_id: id,
				creator: ALICE,
				rounds: 3,
				update_blocks: UPDATE,
				aggregate_blocks: AGGREGATE,
				max_peers: 4
			}
		);
		assert_eq!(create_job(1, 1), 1);
	});
}

#[test]
fn create_peer_job_accepts_its_bounds_inclusive() {
	new_test_ext().execute_with(|| {
		assert_ok!(try_create_job(10_000, 1, 1, 64));
		assert_ok!(try_create_job(1, u32::MAX / 2, u32::MAX / 2 + 1, 1));
		assert_ok!(Pallet::create_peer_job(
			origin(BOB),
			vec![b'c'; 128],
			StorageType::Http,
			1,
			1,
			1,
			1
		));
	});
}

#[test]
fn create_peer_job_errors_in_the_documented_order() {
	new_test_ext().execute_with(|| {
		let attempt = |c: Vec<u8>, rounds: u32, update: u32, aggregate: u32, peers: u32| {
			Pallet::create_peer_job(
				origin(ALICE),
				c,
				StorageType::Ipfs,
				rounds,
				update,
				aggregate,
				peers,
			)
		};
		let c = || b"c".to_vec();
		assert_noop!(attempt(vec![], 0, 0, 0, 0), Error::<Test>::EmptyAssets);
		assert_noop!(attempt(vec![0; 129], 0, 0, 0, 0), Error::<Test>::AssetsCidTooLong);
		assert_noop!(attempt(c(), 0, 1, 1, 1), Error::<Test>::InvalidPeerJob);
		assert_noop!(attempt(c(), 10_001, 1, 1, 1), Error::<Test>::InvalidPeerJob);
		assert_noop!(attempt(c(), 1, 0, 1, 1), Error::<Test>::InvalidPeerJob);
		assert_noop!(attempt(c(), 1, 1, 0, 1), Error::<Test>::InvalidPeerJob);
		assert_noop!(attempt(c(), 1, 1, 1, 0), Error::<Test>::InvalidPeerJob);
		assert_noop!(attempt(c(), 1, 1, 1, 65), Error::<Test>::InvalidPeerJob);
		// InvalidPeerJob before Overflow
		assert_noop!(attempt(c(), 10_001, u32::MAX, 1, 1), Error::<Test>::InvalidPeerJob);
		// update + aggregate, and rounds * (update + aggregate), must fit a u32
		assert_noop!(attempt(c(), 1, u32::MAX, 1, 1), Error::<Test>::Overflow);
		assert_noop!(attempt(c(), 2, u32::MAX / 2, u32::MAX / 2, 1), Error::<Test>::Overflow);
		NextPeerJobId::<Test>::put(u32::MAX);
		assert_noop!(attempt(c(), 1, 1, 1, 1), Error::<Test>::Overflow);
		assert_noop!(
			Pallet::create_peer_job(RuntimeOrigin::none(), c(), StorageType::Ipfs, 1, 1, 1, 1),
			DispatchError::BadOrigin
		);
	});
}

// -- join and leave ----------------------------------------------------------------------------------

#[test]
fn joining_records_the_current_round() {
	new_test_ext().execute_with(|| {
		let job = create_job(3, 4);
		join(BOB, job);
		assert_eq!(Peers::<Test>::get(job, BOB), Some(0));
		assert_eq!(last_event(), Event::PeerJoined { job_id: job, peer: BOB, round: 0 });
		// a peer that joins in round 1's aggregate phase is recorded in round 1
		goto(1, UPDATE);
		join(CHARLIE, job);
		assert_eq!(Peers::<Test>::get(job, CHARLIE), Some(1));
		assert_eq!(PeerJobs::<Test>::get(job).unwrap().peers, 2);
		// and the creator may join its own job
		join(ALICE, job);
	});
}

#[test]
fn join_peer_job_errors_in_the_documented_order() {
	new_test_ext().execute_with(|| {
		let job = create_job(2, 2);
		assert_noop!(Pallet::join_peer_job(origin(BOB), 9), Error::<Test>::PeerJobNotFound);
		join(BOB, job);
		assert_noop!(Pallet::join_peer_job(origin(BOB), job), Error::<Test>::AlreadyJoined);
		join(CHARLIE, job);
		// AlreadyJoined before PeerJobFull
		assert_noop!(Pallet::join_peer_job(origin(BOB), job), Error::<Test>::AlreadyJoined);
		assert_noop!(Pallet::join_peer_job(origin(DAVE), job), Error::<Test>::PeerJobFull);
		// the last block of the last round still counts; the next one is the end
		goto(1, ROUND - 1);
		assert_ok!(Pallet::leave_peer_job(origin(CHARLIE), job));
		join(DAVE, job);
		goto(2, 0);
		assert_noop!(Pallet::join_peer_job(origin(BOB), job), Error::<Test>::PeerJobEnded);
		assert_noop!(Pallet::join_peer_job(origin(EVE), job), Error::<Test>::PeerJobEnded);
	});
}

#[test]
fn leaving_keeps_what_was_posted_and_allows_joining_again() {
	new_test_ext().execute_with(|| {
		let job = create_job(3, 4);
		join(BOB, job);
		assert_ok!(update(BOB, job, 0, b"u-bob"));
		assert_ok!(Pallet::leave_peer_job(origin(BOB), job));
		assert_eq!(last_event(), Event::PeerLeft { job_id: job, peer: BOB, round: 0 });
		assert!(!Peers::<Test>::contains_key(job, BOB));
		assert_eq!(PeerJobs::<Test>::get(job).unwrap().peers, 0);
		assert_eq!(RoundUpdates::<Test>::get((job, 0), BOB), Some(cid(b"u-bob")));
		assert_eq!(RoundUpdateCount::<Test>::get((job, 0)), 1);
		// a peer that left cannot post, not even the aggregate of a round it updated in
		goto(0, UPDATE);
		assert_noop!(aggregate(BOB, job, 0, b"ag"), Error::<Test>::NotAPeer);
		assert_noop!(Pallet::leave_peer_job(origin(BOB), job), Error::<Test>::NotAPeer);
		goto(1, 0);
		join(BOB, job);
		assert_eq!(Peers::<Test>::get(job, BOB), Some(1));
		assert_ok!(update(BOB, job, 1, b"u-bob-1"));
		// after the end, leaving reports `rounds`
		goto(3, 0);
		assert_ok!(Pallet::leave_peer_job(origin(BOB), job));
		assert_eq!(last_event(), Event::PeerLeft { job_id: job, peer: BOB, round: 3 });
		assert_noop!(Pallet::leave_peer_job(origin(BOB), 9), Error::<Test>::PeerJobNotFound);
	});
}

// -- updates and aggregates -----------------------------------------------------------------------------

#[test]
fn post_update_records_the_cid_and_counts_participants() {
	new_test_ext().execute_with(|| {
		let job = create_job(2, 4);
		join(BOB, job);
		join(CHARLIE, job);
		assert_ok!(update(BOB, job, 0, b"u-bob"));
		assert_eq!(last_event(), Event::UpdatePosted { job_id: job, round: 0, peer: BOB });
		goto(0, UPDATE - 1);
		assert_ok!(update(CHARLIE, job, 0, &[b'c'; 128]));
		assert_eq!(RoundUpdateCount::<Test>::get((job, 0)), 2);
		assert_eq!(RoundUpdates::<Test>::get((job, 0), CHARLIE), Some(cid(&[b'c'; 128])));
		assert_eq!(RoundUpdateCount::<Test>::get((job, 1)), 0);
	});
}

#[test]
fn post_update_errors_in_the_documented_order() {
	new_test_ext().execute_with(|| {
		let job = create_job(2, 4);
		assert_noop!(update(BOB, 9, 0, b""), Error::<Test>::PeerJobNotFound);
		assert_noop!(update(BOB, job, 5, b""), Error::<Test>::NotAPeer);
		join(BOB, job);
		assert_noop!(update(BOB, job, 1, b""), Error::<Test>::WrongRound);
		assert_noop!(update(BOB, job, 0, b""), Error::<Test>::InvalidResultCid);
		assert_noop!(update(BOB, job, 0, &[0; 129]), Error::<Test>::InvalidResultCid);
		assert_ok!(update(BOB, job, 0, b"u"));
		assert_noop!(update(BOB, job, 0, b"u2"), Error::<Test>::AlreadyPosted);
		goto(0, UPDATE);
		// WrongPhase before the CID and AlreadyPosted
		assert_noop!(update(BOB, job, 0, b""), Error::<Test>::WrongPhase);
		assert_noop!(update(BOB, job, 0, b"u2"), Error::<Test>::WrongPhase);
		// WrongRound before WrongPhase
		assert_noop!(update(BOB, job, 1, b"u"), Error::<Test>::WrongRound);
		goto(2, 0);
		// PeerJobEnded before NotAPeer
		assert_noop!(update(CHARLIE, job, 2, b"u"), Error::<Test>::PeerJobEnded);
		assert_noop!(update(BOB, job, 2, b"u"), Error::<Test>::PeerJobEnded);
	});
}

#[test]
fn post_aggregate_errors_in_the_documented_order() {
	new_test_ext().execute_with(|| {
		let job = create_job(2, 4);
		join(BOB, job);
		join(CHARLIE, job);
		assert_ok!(update(BOB, job, 0, b"u"));
		// WrongPhase: still the update phase
		assert_noop!(aggregate(BOB, job, 0, b"ag"), Error::<Test>::WrongPhase);
		goto(0, UPDATE);
		assert_noop!(aggregate(BOB, 9, 0, b""), Error::<Test>::PeerJobNotFound);
		assert_noop!(aggregate(DAVE, job, 7, b""), Error::<Test>::NotAPeer);
		assert_noop!(aggregate(BOB, job, 1, b""), Error::<Test>::WrongRound);
		// a peer with no update this round, even with a bad CID
		assert_noop!(aggregate(CHARLIE, job, 0, b""), Error::<Test>::NoUpdateThisRound);
		assert_noop!(aggregate(BOB, job, 0, b""), Error::<Test>::InvalidResultCid);
		assert_noop!(aggregate(BOB, job, 0, &[0; 129]), Error::<Test>::InvalidResultCid);
		assert_ok!(aggregate(BOB, job, 0, b"ag"));
		assert_noop!(aggregate(BOB, job, 0, b"ag"), Error::<Test>::AlreadyPosted);
		assert_noop!(aggregate(BOB, job, 0, b""), Error::<Test>::InvalidResultCid);
		goto(2, 0);
		assert_noop!(aggregate(DAVE, job, 1, b"ag"), Error::<Test>::PeerJobEnded);
	});
}

#[test]
fn the_majority_of_participants_fixes_the_agreed_model_once() {
	new_test_ext().execute_with(|| {
		let job = create_job(1, 8);
		let peers = [BOB, CHARLIE, DAVE, EVE];
		for p in &peers {
			join(p.clone(), job);
			assert_ok!(update(p.clone(), job, 0, b"u"));
		}
		// a peer that did not update is a peer but not a participant
		join(FERDIE, job);
		goto(0, UPDATE);
		System::reset_events();
		assert_ok!(aggregate(BOB, job, 0, b"good"));
		assert_ok!(aggregate(CHARLIE, job, 0, b"good"));
		// 2 of 4 is not more than half
		assert_eq!(agreed(job, 0), None);
		assert_ok!(aggregate(DAVE, job, 0, b"liar"));
		assert_eq!(agreed(job, 0), None);
		assert_ok!(aggregate(EVE, job, 0, b"good"));
		assert_eq!(agreed(job, 0), Some(b"good".to_vec()));
		assert_eq!(AggregateVotes::<Test>::get((job, 0), cid(b"good")), 3);
		assert_eq!(AggregateVotes::<Test>::get((job, 0), cid(b"liar")), 1);
		// the minority stays visible
		assert_eq!(RoundAggregates::<Test>::get((job, 0), DAVE), Some(cid(b"liar")));
		let agreements: Vec<_> = pallet_events()
			.into_iter()
			.filter(|e| matches!(e, Event::RoundAgreed { .. }))
			.collect();
		assert_eq!(
			agreements,
			vec![Event::RoundAgreed { job_id: job, round: 0, model_cid: cid(b"good") }]
		);
		assert_eq!(
			pallet_events()[pallet_events().len() - 2..],
			[
				Event::AggregatePosted { job_id: job, round: 0, peer: EVE },
				Event::RoundAgreed { job_id: job, round: 0, model_cid: cid(b"good") },
			]
		);
		assert_noop!(aggregate(FERDIE, job, 0, b"good"), Error::<Test>::NoUpdateThisRound);
	});
}

#[test]
fn an_agreed_model_never_changes_and_is_announced_once() {
	new_test_ext().execute_with(|| {
		let job = create_job(1, 8);
		for p in [BOB, CHARLIE, DAVE] {
			join(p.clone(), job);
			assert_ok!(update(p, job, 0, b"u"));
		}
		goto(0, UPDATE);
		System::reset_events();
		assert_ok!(aggregate(BOB, job, 0, b"x"));
		assert_ok!(aggregate(CHARLIE, job, 0, b"x"));
		assert_eq!(agreed(job, 0), Some(b"x".to_vec()));
		// a third vote for the same CID adds a vote, no second announcement
		assert_ok!(aggregate(DAVE, job, 0, b"x"));
		assert_eq!(AggregateVotes::<Test>::get((job, 0), cid(b"x")), 3);
		let agreements =
			pallet_events().iter().filter(|e| matches!(e, Event::RoundAgreed { .. })).count();
		assert_eq!(agreements, 1);
		assert_eq!(agreed(job, 0), Some(b"x".to_vec()));
	});
}

#[test]
fn a_round_without_a_majority_has_no_agreed_model() {
	new_test_ext().execute_with(|| {
		let job = create_job(2, 8);
		for p in [BOB, CHARLIE] {
			join(p.clone(), job);
			assert_ok!(update(p, job, 0, b"u"));
		}
		goto(0, UPDATE);
		assert_ok!(aggregate(BOB, job, 0, b"x"));
		assert_ok!(aggregate(CHARLIE, job, 0, b"y"));
		assert_eq!(agreed(job, 0), None);
		// the deadline passes: round 1 goes on without it
		goto(1, 0);
		assert_ok!(update(BOB, job, 1, b"u1"));
		assert_noop!(aggregate(BOB, job, 0, b"x"), Error::<Test>::WrongRound);
		assert_eq!(agreed(job, 0), None);
	});
}

#[test]
fn four_peers_three_rounds_one_leaves_one_joins_late() {
	new_test_ext().execute_with(|| {
		let job = create_job(3, 4);
		for p in [BOB, CHARLIE, DAVE, EVE] {
			join(p, job);
		}
		assert_noop!(Pallet::join_peer_job(origin(FERDIE), job), Error::<Test>::PeerJobFull);
		let play = |round: u32, peers: &[AccountId], liar: Option<AccountId>| {
			goto(round, 0);
			for p in peers {
				assert_ok!(update(p.clone(), job, round, b"update"));
			}
			goto(round, UPDATE);
			for p in peers {
				let vote: &[u8] = if Some(p) == liar.as_ref() { b"wrong" } else { b"agg" };
				assert_ok!(aggregate(p.clone(), job, round, vote));
			}
		};
		play(0, &[BOB, CHARLIE, DAVE, EVE], None);
		play(1, &[BOB, CHARLIE, DAVE, EVE], Some(DAVE));
		// Eve leaves after round 1; Ferdie joins during round 2's update phase
		assert_ok!(Pallet::leave_peer_job(origin(EVE), job));
		goto(2, 0);
		join(FERDIE, job);
		assert_eq!(Peers::<Test>::get(job, FERDIE), Some(2));
		play(2, &[BOB, CHARLIE, DAVE, FERDIE], None);
		for round in 0..3 {
			assert_eq!(agreed(job, round), Some(b"agg".to_vec()));
		}
		assert_eq!(RoundUpdateCount::<Test>::get((job, 2)), 4);
		assert!(!RoundUpdates::<Test>::contains_key((job, 2), EVE));
		assert_eq!(RoundAggregates::<Test>::get((job, 1), DAVE), Some(cid(b"wrong")));
		goto(3, 0);
		assert_noop!(update(BOB, job, 3, b"u"), Error::<Test>::PeerJobEnded);
	});
}

#[test]
fn peer_job_weights_stop_at_the_cid_bound() {
	let post = |n: usize| {
		Call::<Test>::post_aggregate { job_id: 0, round: 0, aggregate_cid: vec![0; n] }
			.get_dispatch_info()
			.call_weight
	};
	assert!(post(1).all_lte(post(128)));
	assert_eq!(post(128), post(10_000));
	assert_eq!(post(46), <() as WeightInfo>::post_aggregate(46));
	let upd = |n: usize| {
		Call::<Test>::post_update { job_id: 0, round: 0, update_cid: vec![0; n] }
			.get_dispatch_info()
			.call_weight
	};
	assert_eq!(upd(500), <() as WeightInfo>::post_update(128));
}
