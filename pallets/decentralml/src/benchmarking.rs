//! FRAME benchmarks of every call, each on its most expensive path, with `Linear` components
//! for what grows: the bytes copied into storage (question, CIDs, result) and, for
//! `close_task`, the `TaskWorkers` entries it visits. `weights.rs` is generated from them (the
//! command is in docs/runtime.md).

use super::{types::*, *};
use alloc::{vec, vec::Vec};
use frame_benchmarking::v2::*;
use frame_support::traits::{fungible::Mutate, Get};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use sp_runtime::traits::{Bounded, Saturating};

/// A funded account: enough for any escrow a benchmark creates, plus the existential deposit.
fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
	let who: T::AccountId = account(name, index, 0);
	let amount = BalanceOf::<T>::max_value() / 4u32.into();
	T::Currency::set_balance(&who, amount);
	who
}

fn far_future<T: Config>() -> BlockNumberFor<T> {
	frame_system::Pallet::<T>::block_number().saturating_add(1_000u32.into())
}

/// An open task of `creator` with every slot free and maximal question and CID.
fn open_task<T: Config>(creator: &T::AccountId, strategy: ValidationStrategy) -> TaskId {
	let task_id = NextTaskId::<T>::get();
	Pallet::<T>::create_task(
		RawOrigin::Signed(creator.clone()).into(),
		TaskType::ModelContributor,
		vec![b'q'; T::MaxQuestionLength::get() as usize],
		T::MinReward::get(),
		T::MaxAssignments::get(),
		strategy,
		vec![b'c'; T::MaxCidLength::get() as usize],
		StorageType::Ipfs,
		far_future::<T>(),
	)
	.expect("the benchmark's task is valid");
	task_id
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

	#[benchmark]
	fn accept_task() {
		let creator = funded::<T>("creator", 0);
		let task_id = open_task::<T>(&creator, ValidationStrategy::ManualAccept);
		let worker = funded::<T>("worker", 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(worker.clone()), task_id);

		assert!(TaskWorkers::<T>::contains_key(task_id, &worker));
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

	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
