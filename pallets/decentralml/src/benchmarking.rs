//! FRAME benchmarks of every call, each on its most expensive path, with `Linear` components
//! for what grows: the bytes copied into storage (question, CIDs, result), the `TaskWorkers`
//! entries `close_task` visits, the shards `accept_task` looks at and the scores
//! `settle_contributions` pays. `weights.rs` is generated from them (the command is in
//! docs/runtime.md).

use super::{types::*, *};
use alloc::{vec, vec::Vec};
use frame_benchmarking::v2::*;
use frame_support::traits::{fungible::Mutate, Get};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use sp_runtime::traits::{Saturating, Zero};

/// A funded account: enough for any escrow a benchmark creates, plus the existential deposit.
/// (A million `MinReward`s, not a share of the balance type's range: a benchmark funds up to
/// `MaxAssignments + 1` accounts and the total issuance must not overflow, or the last ones
/// would silently not exist.)
fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
	let who: T::AccountId = account(name, index, 0);
	let amount = T::MinReward::get().saturating_mul(1_000_000u32.into());
	T::Currency::set_balance(&who, amount);
	who
}

fn far_future<T: Config>() -> BlockNumberFor<T> {
	frame_system::Pallet::<T>::block_number().saturating_add(1_000u32.into())
}

/// An open task of `creator` with every slot free, maximal question and CID, and `terms`.
fn open_task_with<T: Config>(
	creator: &T::AccountId,
	strategy: ValidationStrategy,
	terms: TermsOf<T>,
) -> TaskId {
	let task_id = NextTaskId::<T>::get();
	Pallet::<T>::create_task_with_terms(
		RawOrigin::Signed(creator.clone()).into(),
		TaskType::ModelContributor,
		vec![b'q'; T::MaxQuestionLength::get() as usize],
		T::MinReward::get(),
		T::MaxAssignments::get(),
		strategy,
		vec![b'c'; T::MaxCidLength::get() as usize],
		StorageType::Ipfs,
		far_future::<T>(),
		terms,
	)
	.expect("the benchmark's task is valid");
	task_id
}

/// Terms with one shard per slot (`MaxAssignments` of them), paid `payout`, with both
/// commitments: the largest terms, and shards make every slot's bookkeeping heavier.
fn sharded_terms<T: Config>(payout: PayoutMode) -> TermsOf<T> {
	TaskTerms {
		shards: T::MaxAssignments::get(),
		payout,
		floor: Zero::zero(),
		holdout_commitment: Some([1; 32]),
		scoring_commitment: Some([2; 32]),
	}
}

/// An open, sharded, flat-paid task: what the task benchmarks run on.
fn open_task<T: Config>(creator: &T::AccountId, strategy: ValidationStrategy) -> TaskId {
	open_task_with::<T>(creator, strategy, sharded_terms::<T>(PayoutMode::Flat))
}

/// `worker` takes a slot of `task_id`; returns its submission id.
fn take_slot<T: Config>(task_id: TaskId, worker: &T::AccountId) -> SubmissionId {
	let submission_id = NextSubmissionId::<T>::get();
	Pallet::<T>::accept_task(RawOrigin::Signed(worker.clone()).into(), task_id)
		.expect("a free slot");
	submission_id
}

/// `worker`'s result for `submission_id`, with the largest result and CID.
fn submit<T: Config>(worker: &T::AccountId, submission_id: SubmissionId) {
	Pallet::<T>::send_task_result(
		RawOrigin::Signed(worker.clone()).into(),
		submission_id,
		vec![b'r'; T::MaxResultLength::get() as usize],
		Some(vec![b'c'; T::MaxCidLength::get() as usize]),
		Some(StorageType::Ipfs),
	)
	.expect("an assigned submission");
}

/// The update phase of the benchmarks' peer jobs, in blocks.
const PEER_UPDATE_BLOCKS: u32 = 10;

/// A peer job with the largest bounds, in round 0's update phase.
fn peer_job<T: Config>() -> PeerJobId {
	let job_id = NextPeerJobId::<T>::get();
	Pallet::<T>::create_peer_job(
		RawOrigin::Signed(funded::<T>("creator", 0)).into(),
		vec![b'c'; T::MaxCidLength::get() as usize],
		StorageType::Ipfs,
		T::MaxPeerRounds::get(),
		PEER_UPDATE_BLOCKS,
		10,
		T::MaxPeers::get(),
	)
	.expect("the benchmark's peer job is valid");
	job_id
}

/// A peer that joined `job_id`.
fn joined<T: Config>(job_id: PeerJobId, index: u32) -> T::AccountId {
	let peer = funded::<T>("peer", index);
	Pallet::<T>::join_peer_job(RawOrigin::Signed(peer.clone()).into(), job_id)
		.expect("the job has room");
	peer
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn create_task(
		q: Linear<1, { T::MaxQuestionLength::get() }>,
		c: Linear<1, { T::MaxCidLength::get() }>,
	) {
		let creator = funded::<T>("creator", 0);
		let task_id = NextTaskId::<T>::get();

		#[extrinsic_call]
		_(
			RawOrigin::Signed(creator.clone()),
			TaskType::ModelContributor,
			vec![b'q'; q as usize],
			T::MinReward::get(),
			T::MaxAssignments::get(),
			ValidationStrategy::ManualAccept,
			vec![b'c'; c as usize],
			StorageType::Ipfs,
			far_future::<T>(),
		);

		assert!(OpenTasks::<T>::contains_key(task_id));
	}

	/// The worker is assigned shard `s - 1`: the `s - 1` below it are held, so `s` shards are
	/// looked at.
	#[benchmark]
	fn accept_task(s: Linear<1, { T::MaxAssignments::get() }>) {
		let creator = funded::<T>("creator", 0);
		let task_id = open_task::<T>(&creator, ValidationStrategy::ManualAccept);
		for i in 1..s {
			take_slot::<T>(task_id, &funded::<T>("holder", i));
		}
		let worker = funded::<T>("worker", 0);
		let submission_id = NextSubmissionId::<T>::get();

		#[extrinsic_call]
		_(RawOrigin::Signed(worker.clone()), task_id);

		assert_eq!(SubmissionShards::<T>::get(submission_id), Some(s - 1));
	}

	/// On an `AutoAccept` task, so the result is also paid out in the same call.
	#[benchmark]
	fn send_task_result(
		r: Linear<1, { T::MaxResultLength::get() }>,
		c: Linear<1, { T::MaxCidLength::get() }>,
	) {
		let creator = funded::<T>("creator", 0);
		let task_id = open_task::<T>(&creator, ValidationStrategy::AutoAccept);
		let worker = funded::<T>("worker", 0);
		let submission_id = take_slot::<T>(task_id, &worker);

		#[extrinsic_call]
		_(
			RawOrigin::Signed(worker.clone()),
			submission_id,
			vec![b'r'; r as usize],
			Some(vec![b'c'; c as usize]),
			Some(StorageType::Ipfs),
		);

		let sub = Submissions::<T>::get(submission_id).expect("stored");
		assert_eq!(sub.status, SubmissionStatus::Accepted);
	}

	/// Accepting (a payout) rather than rejecting: the accepting path writes two accounts.
	#[benchmark]
	fn validate_task_result() {
		let creator = funded::<T>("creator", 0);
		let task_id = open_task::<T>(&creator, ValidationStrategy::ManualAccept);
		let worker = funded::<T>("worker", 0);
		let submission_id = take_slot::<T>(task_id, &worker);
		submit::<T>(&worker, submission_id);

		#[extrinsic_call]
		_(RawOrigin::Signed(creator.clone()), submission_id, true);

		let sub = Submissions::<T>::get(submission_id).expect("stored");
		assert_eq!(sub.status, SubmissionStatus::Accepted);
	}

	/// `n` workers hold `Assigned` slots: all are visited and abandoned, then the escrow is
	/// refunded.
	#[benchmark]
	fn close_task(n: Linear<0, { T::MaxAssignments::get() }>) {
		let creator = funded::<T>("creator", 0);
		let task_id = open_task::<T>(&creator, ValidationStrategy::ManualAccept);
		let workers: Vec<T::AccountId> = (0..n).map(|i| funded::<T>("worker", i)).collect();
		for worker in &workers {
			take_slot::<T>(task_id, worker);
		}

		#[extrinsic_call]
		_(RawOrigin::Signed(creator.clone()), task_id);

		assert!(!OpenTasks::<T>::contains_key(task_id));
		assert_eq!(TaskWorkers::<T>::iter_prefix(task_id).count(), 0);
	}

	#[benchmark]
	fn abandon_task() {
		let creator = funded::<T>("creator", 0);
		let task_id = open_task::<T>(&creator, ValidationStrategy::ManualAccept);
		let worker = funded::<T>("worker", 0);
		let submission_id = take_slot::<T>(task_id, &worker);

		#[extrinsic_call]
		_(RawOrigin::Signed(worker.clone()), submission_id);

		assert!(!TaskWorkers::<T>::contains_key(task_id, &worker));
	}

	#[benchmark]
	fn create_task_with_terms(
		q: Linear<1, { T::MaxQuestionLength::get() }>,
		c: Linear<1, { T::MaxCidLength::get() }>,
	) {
		let creator = funded::<T>("creator", 0);
		let task_id = NextTaskId::<T>::get();

		#[extrinsic_call]
		_(
			RawOrigin::Signed(creator.clone()),
			TaskType::ModelContributor,
			vec![b'q'; q as usize],
			T::MinReward::get(),
			T::MaxAssignments::get(),
			ValidationStrategy::ManualAccept,
			vec![b'c'; c as usize],
			StorageType::Ipfs,
			far_future::<T>(),
			sharded_terms::<T>(PayoutMode::ByContribution),
		);

		assert!(Terms::<T>::contains_key(task_id));
	}

	/// `n` pending results, each scored differently and paid (no payout is 0); with
	/// `n == MaxAssignments` the escrow is emptied.
	#[benchmark]
	fn settle_contributions(n: Linear<1, { T::MaxAssignments::get() }>) {
		let creator = funded::<T>("creator", 0);
		let task_id = open_task_with::<T>(
			&creator,
			ValidationStrategy::ManualAccept,
			sharded_terms::<T>(PayoutMode::ByContribution),
		);
		let mut scores = Vec::new();
		for i in 0..n {
			let worker = funded::<T>("worker", i);
			let submission_id = take_slot::<T>(task_id, &worker);
			submit::<T>(&worker, submission_id);
			scores.push((submission_id, T::MaxScore::get().saturating_sub(i)));
		}

		#[extrinsic_call]
		_(RawOrigin::Signed(creator.clone()), task_id, scores);

		assert_eq!(Tasks::<T>::get(task_id).expect("stored").accepted_results, n);
	}

	#[benchmark]
	fn create_peer_job(c: Linear<1, { T::MaxCidLength::get() }>) {
		let creator = funded::<T>("creator", 0);
		let job_id = NextPeerJobId::<T>::get();

		#[extrinsic_call]
		_(
			RawOrigin::Signed(creator.clone()),
			vec![b'c'; c as usize],
			StorageType::Ipfs,
			T::MaxPeerRounds::get(),
			10,
			10,
			T::MaxPeers::get(),
		);

		assert!(PeerJobs::<T>::contains_key(job_id));
	}

	#[benchmark]
	fn join_peer_job() {
		let job_id = peer_job::<T>();
		let peer = funded::<T>("peer", 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(peer.clone()), job_id);

		assert!(Peers::<T>::contains_key(job_id, &peer));
	}

	#[benchmark]
	fn leave_peer_job() {
		let job_id = peer_job::<T>();
		let peer = joined::<T>(job_id, 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(peer.clone()), job_id);

		assert!(!Peers::<T>::contains_key(job_id, &peer));
	}

	#[benchmark]
	fn post_update(c: Linear<1, { T::MaxCidLength::get() }>) {
		let job_id = peer_job::<T>();
		let peer = joined::<T>(job_id, 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(peer.clone()), job_id, 0, vec![b'u'; c as usize]);

		assert!(RoundUpdates::<T>::contains_key((job_id, 0), &peer));
	}

	/// The vote that makes the majority, so the agreed model is recorded too.
	#[benchmark]
	fn post_aggregate(c: Linear<1, { T::MaxCidLength::get() }>) {
		let job_id = peer_job::<T>();
		let peer = joined::<T>(job_id, 0);
		Pallet::<T>::post_update(
			RawOrigin::Signed(peer.clone()).into(),
			job_id,
			0,
			vec![b'u'; T::MaxCidLength::get() as usize],
		)
		.expect("the update phase");
		let aggregate_phase =
			frame_system::Pallet::<T>::block_number().saturating_add(PEER_UPDATE_BLOCKS.into());
		frame_system::Pallet::<T>::set_block_number(aggregate_phase);

		#[extrinsic_call]
		_(RawOrigin::Signed(peer.clone()), job_id, 0, vec![b'a'; c as usize]);

		assert!(AgreedModels::<T>::contains_key((job_id, 0)));
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
