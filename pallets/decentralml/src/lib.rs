//! # DecentralML pallet
//!
//! The on-chain half of the DecentralML task marketplace, implementing docs/protocol.md byte for
//! byte (storage names and hashers, call and event indices and field order, error order, the
//! order in which errors are checked, the escrow account derivation).
//!
//! A creator publishes a task and escrows `reward * max_assignments` in the task's own account
//! (`PalletId::into_sub_account_truncating(task_id)`); workers take slots (`accept_task`), send
//! results (`send_task_result`), and the creator (or `AutoAccept`) pays each accepted result out
//! of escrow (`validate_task_result`). `abandon_task` gives a slot back, `close_task` abandons the
//! assigned slots and refunds the escrow account's whole free balance. The chain holds CIDs and
//! money, never secrets.
//!
//! Calls take `Vec<u8>` and check the bounds themselves (rather than failing call decoding on a
//! `BoundedVec`), so a client always gets the precise named error.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub mod types;
pub mod weights;

pub use weights::WeightInfo;

// `create_task` takes the protocol's eight arguments; the call enum's constructor that
// `#[pallet::call]` generates for it takes as many, and the lint cannot be allowed on it alone.
#[allow(clippy::too_many_arguments)]
#[frame_support::pallet]
pub mod pallet {
	use super::{types::*, WeightInfo};
	use alloc::vec::Vec;
	use frame_support::{
		pallet_prelude::*,
		traits::{
			fungible::{Inspect, Mutate},
			tokens::{Fortitude, Preservation},
		},
		PalletId,
	};
	use frame_system::pallet_prelude::*;
	use sp_runtime::traits::{AccountIdConversion, CheckedMul, Saturating, Zero};

	/// The balance type of the pallet's currency.
	pub type BalanceOf<T> =
		<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;
	/// `TaskInfo` as stored for this runtime.
	pub type TaskInfoOf<T> = TaskInfo<
		<T as frame_system::Config>::AccountId,
		BalanceOf<T>,
		BlockNumberFor<T>,
		<T as Config>::MaxQuestionLength,
		<T as Config>::MaxCidLength,
	>;
	/// `Submission` as stored for this runtime.
	pub type SubmissionOf<T> = Submission<
		<T as frame_system::Config>::AccountId,
		BlockNumberFor<T>,
		<T as Config>::MaxResultLength,
		<T as Config>::MaxCidLength,
	>;

	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// The currency rewards are escrowed and paid in (the runtime's Balances).
		type Currency: Mutate<Self::AccountId>;

		/// Seed of every task's escrow account.
		#[pallet::constant]
		type PalletId: Get<PalletId>;

		/// Upper bound of `max_assignments`.
		#[pallet::constant]
		type MaxAssignments: Get<u32>;

		/// Bytes of `question`.
		#[pallet::constant]
		type MaxQuestionLength: Get<u32>;

		/// Bytes of `assets_cid` and `result_cid`.
		#[pallet::constant]
		type MaxCidLength: Get<u32>;

		/// Bytes of the inline `result`.
		#[pallet::constant]
		type MaxResultLength: Get<u32>;

		/// Lowest `reward`: the Balances existential deposit.
		#[pallet::constant]
		type MinReward: Get<BalanceOf<Self>>;

		/// Weights of the calls (see `weights.rs`).
		type WeightInfo: WeightInfo;
	}

	/// Every task by id.
	#[pallet::storage]
	pub type Tasks<T: Config> = StorageMap<_, Blake2_128Concat, TaskId, TaskInfoOf<T>, OptionQuery>;

	/// The id the next task gets.
	#[pallet::storage]
	pub type NextTaskId<T: Config> = StorageValue<_, TaskId, ValueQuery>;

	/// Every submission by id.
	#[pallet::storage]
	pub type Submissions<T: Config> =
		StorageMap<_, Blake2_128Concat, SubmissionId, SubmissionOf<T>, OptionQuery>;

	/// The id the next submission gets.
	#[pallet::storage]
	pub type NextSubmissionId<T: Config> = StorageValue<_, SubmissionId, ValueQuery>;

	/// Index: the submissions of a task.
	#[pallet::storage]
	pub type TaskSubmissions<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		TaskId,
		Blake2_128Concat,
		SubmissionId,
		(),
		OptionQuery,
	>;

	/// Index: the submissions of a worker.
	#[pallet::storage]
	pub type WorkerSubmissions<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		Blake2_128Concat,
		SubmissionId,
		(),
		OptionQuery,
	>;

	/// A worker's current submission for a task (Assigned, PendingValidation or Accepted).
	#[pallet::storage]
	pub type TaskWorkers<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		TaskId,
		Blake2_128Concat,
		T::AccountId,
		SubmissionId,
		OptionQuery,
	>;

	/// Exactly the tasks whose status is Open.
	#[pallet::storage]
	pub type OpenTasks<T: Config> = StorageMap<_, Blake2_128Concat, TaskId, (), OptionQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A task was created and its escrow funded.
		TaskCreated {
			task_id: TaskId,
			creator: T::AccountId,
			task_type: TaskType,
			reward: BalanceOf<T>,
			max_assignments: u32,
			escrow: BalanceOf<T>,
			expiration_block: BlockNumberFor<T>,
		},
		/// A worker took a slot of a task.
		TaskAccepted { task_id: TaskId, submission_id: SubmissionId, worker: T::AccountId },
		/// A worker submitted a result.
		ResultSubmitted { task_id: TaskId, submission_id: SubmissionId, worker: T::AccountId },
		/// A result was accepted and its reward paid.
		ResultAccepted {
			task_id: TaskId,
			submission_id: SubmissionId,
			worker: T::AccountId,
			reward: BalanceOf<T>,
		},
		/// A result was rejected; the slot is open again.
		ResultRejected { task_id: TaskId, submission_id: SubmissionId, worker: T::AccountId },
		/// A task was closed and its escrow's whole balance refunded.
		TaskClosed { task_id: TaskId, refund: BalanceOf<T>, abandoned: u32 },
		/// A worker gave its slot back; the slot is open again.
		SubmissionAbandoned { task_id: TaskId, submission_id: SubmissionId, worker: T::AccountId },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No task with that id.
		TaskNotFound,
		/// No submission with that id.
		SubmissionNotFound,
		/// The task is closed.
		TaskClosed,
		/// The task's expiration block has been reached.
		TaskExpired,
		/// Every slot of the task is taken or accepted.
		NoSlotsLeft,
		/// The worker already holds a submission for this task.
		AlreadyAccepted,
		/// A creator cannot work on its own task.
		CreatorCannotAccept,
		/// Only the task's creator may do this.
		NotTaskCreator,
		/// Only the submission's worker may do this.
		NotSubmissionWorker,
		/// The submission is not in the status this call needs.
		InvalidStatus,
		/// Results are still waiting for validation.
		PendingValidations,
		/// The reward is zero.
		ZeroReward,
		/// The reward is below `MinReward`.
		RewardTooLow,
		/// The question is empty or longer than `MaxQuestionLength`.
		InvalidQuestion,
		/// `max_assignments` is 0 or above `MaxAssignments`.
		InvalidMaxAssignments,
		/// The expiration block is not after the current block.
		ExpirationInPast,
		/// The assets CID is empty.
		EmptyAssets,
		/// The assets CID is longer than `MaxCidLength`.
		AssetsCidTooLong,
		/// The inline result is empty.
		EmptyResult,
		/// The inline result is longer than `MaxResultLength`.
		ResultTooLong,
		/// The result CID is empty or longer than `MaxCidLength`.
		InvalidResultCid,
		/// `result_cid` and `result_storage` must be given together.
		MissingStorageType,
		/// An arithmetic or id counter overflow.
		Overflow,
		/// The creator cannot fund the escrow and stay above the existential deposit.
		InsufficientBalance,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			// MinReward >= ED keeps every escrow either empty or above the existential deposit
			// (a payout never leaves dust behind).
			assert!(
				T::MinReward::get() >= T::Currency::minimum_balance(),
				"MinReward must be at least the existential deposit"
			);
			assert!(!T::MinReward::get().is_zero(), "MinReward must not be zero");
			assert!(T::MaxAssignments::get() > 0, "MaxAssignments must not be zero");
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Create a task and move `reward * max_assignments` into its escrow account.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::create_task(
			clamp_len(question.len(), T::MaxQuestionLength::get()),
			clamp_len(assets_cid.len(), T::MaxCidLength::get()),
		))]
		pub fn create_task(
			origin: OriginFor<T>,
			task_type: TaskType,
			question: Vec<u8>,
			reward: BalanceOf<T>,
			max_assignments: u32,
			validation_strategy: ValidationStrategy,
			assets_cid: Vec<u8>,
			assets_storage: StorageType,
			expiration_block: BlockNumberFor<T>,
		) -> DispatchResult {
			let creator = ensure_signed(origin)?;
			ensure!(!question.is_empty(), Error::<T>::InvalidQuestion);
			let question: BoundedVec<u8, T::MaxQuestionLength> =
				question.try_into().map_err(|_| Error::<T>::InvalidQuestion)?;
			ensure!(!reward.is_zero(), Error::<T>::ZeroReward);
			ensure!(reward >= T::MinReward::get(), Error::<T>::RewardTooLow);
			ensure!(
				(1..=T::MaxAssignments::get()).contains(&max_assignments),
				Error::<T>::InvalidMaxAssignments
			);
			ensure!(!assets_cid.is_empty(), Error::<T>::EmptyAssets);
			let assets_cid: BoundedVec<u8, T::MaxCidLength> =
				assets_cid.try_into().map_err(|_| Error::<T>::AssetsCidTooLong)?;
			let now = frame_system::Pallet::<T>::block_number();
			ensure!(expiration_block > now, Error::<T>::ExpirationInPast);
			let escrow = reward
				.checked_mul(&BalanceOf::<T>::from(max_assignments))
				.ok_or(Error::<T>::Overflow)?;
			let task_id = NextTaskId::<T>::get();
			let next_task_id = task_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
			ensure!(
				T::Currency::reducible_balance(&creator, Preservation::Preserve, Fortitude::Polite)
					>= escrow,
				Error::<T>::InsufficientBalance
			);
			// `Currency::transfer(.., KeepAlive)`: the creator's account stays alive.
			T::Currency::transfer(
				&creator,
				&Self::escrow_account_id(task_id),
				escrow,
				Preservation::Preserve,
			)?;
			Tasks::<T>::insert(
				task_id,
				TaskInfo {
					creator: creator.clone(),
					task_type,
					question,
					reward,
					max_assignments,
					active_assignments: 0,
					accepted_results: 0,
					validation_strategy,
					assets_cid,
					assets_storage,
					created_block: now,
					expiration_block,
					status: TaskStatus::Open,
				},
			);
			OpenTasks::<T>::insert(task_id, ());
			NextTaskId::<T>::put(next_task_id);
			Self::deposit_event(Event::TaskCreated {
				task_id,
				creator,
				task_type,
				reward,
				max_assignments,
				escrow,
				expiration_block,
			});
			Ok(())
		}

		/// Take a slot of an open task: creates a submission in `Assigned`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::accept_task())]
		pub fn accept_task(origin: OriginFor<T>, task_id: TaskId) -> DispatchResult {
			let worker = ensure_signed(origin)?;
			let mut task = Tasks::<T>::get(task_id).ok_or(Error::<T>::TaskNotFound)?;
			ensure!(task.status == TaskStatus::Open, Error::<T>::TaskClosed);
			let now = frame_system::Pallet::<T>::block_number();
			ensure!(now < task.expiration_block, Error::<T>::TaskExpired);
			ensure!(task.creator != worker, Error::<T>::CreatorCannotAccept);
			ensure!(!TaskWorkers::<T>::contains_key(task_id, &worker), Error::<T>::AlreadyAccepted);
			ensure!(
				task.active_assignments.saturating_add(task.accepted_results)
					< task.max_assignments,
				Error::<T>::NoSlotsLeft
			);
			let submission_id = NextSubmissionId::<T>::get();
			let next_submission_id = submission_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
			task.active_assignments =
				task.active_assignments.checked_add(1).ok_or(Error::<T>::Overflow)?;
			Submissions::<T>::insert(
				submission_id,
				Submission {
					task_id,
					worker: worker.clone(),
					status: SubmissionStatus::Assigned,
					result: BoundedVec::default(),
					result_cid: None,
					result_storage: None,
					assigned_block: now,
					submitted_block: None,
					validated_block: None,
				},
			);
			TaskSubmissions::<T>::insert(task_id, submission_id, ());
			WorkerSubmissions::<T>::insert(&worker, submission_id, ());
			TaskWorkers::<T>::insert(task_id, &worker, submission_id);
			Tasks::<T>::insert(task_id, task);
			NextSubmissionId::<T>::put(next_submission_id);
			Self::deposit_event(Event::TaskAccepted { task_id, submission_id, worker });
			Ok(())
		}

		/// Submit the result of an assigned submission (paid at once on AutoAccept tasks).
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::send_task_result(
			clamp_len(result.len(), T::MaxResultLength::get()),
			result_cid.as_ref().map_or(0, |c| clamp_len(c.len(), T::MaxCidLength::get())),
		))]
		pub fn send_task_result(
			origin: OriginFor<T>,
			submission_id: SubmissionId,
			result: Vec<u8>,
			result_cid: Option<Vec<u8>>,
			result_storage: Option<StorageType>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut sub =
				Submissions::<T>::get(submission_id).ok_or(Error::<T>::SubmissionNotFound)?;
			ensure!(sub.worker == who, Error::<T>::NotSubmissionWorker);
			ensure!(sub.status == SubmissionStatus::Assigned, Error::<T>::InvalidStatus);
			let task_id = sub.task_id;
			let task = Tasks::<T>::get(task_id).ok_or(Error::<T>::TaskNotFound)?;
			ensure!(task.status == TaskStatus::Open, Error::<T>::TaskClosed);
			let now = frame_system::Pallet::<T>::block_number();
			ensure!(now < task.expiration_block, Error::<T>::TaskExpired);
			ensure!(!result.is_empty(), Error::<T>::EmptyResult);
			let result: BoundedVec<u8, T::MaxResultLength> =
				result.try_into().map_err(|_| Error::<T>::ResultTooLong)?;
			let result_cid: Option<BoundedVec<u8, T::MaxCidLength>> = match result_cid {
				None => None,
				Some(cid) => {
					ensure!(!cid.is_empty(), Error::<T>::InvalidResultCid);
					Some(cid.try_into().map_err(|_| Error::<T>::InvalidResultCid)?)
				},
			};
			ensure!(
				result_cid.is_some() == result_storage.is_some(),
				Error::<T>::MissingStorageType
			);
			sub.status = SubmissionStatus::PendingValidation;
			sub.result = result;
			sub.result_cid = result_cid;
			sub.result_storage = result_storage;
			sub.submitted_block = Some(now);
			Submissions::<T>::insert(submission_id, &sub);
			Self::deposit_event(Event::ResultSubmitted { task_id, submission_id, worker: who });
			if task.validation_strategy == ValidationStrategy::AutoAccept {
				Self::accept(task_id, task, submission_id, sub, now)?;
			}
			Ok(())
		}

		/// Accept (pay) or reject (reopen the slot) a pending result; creator only.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::validate_task_result())]
		pub fn validate_task_result(
			origin: OriginFor<T>,
			submission_id: SubmissionId,
			accept: bool,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut sub =
				Submissions::<T>::get(submission_id).ok_or(Error::<T>::SubmissionNotFound)?;
			let task_id = sub.task_id;
			let mut task = Tasks::<T>::get(task_id).ok_or(Error::<T>::TaskNotFound)?;
			ensure!(task.creator == who, Error::<T>::NotTaskCreator);
			ensure!(sub.status == SubmissionStatus::PendingValidation, Error::<T>::InvalidStatus);
			let now = frame_system::Pallet::<T>::block_number();
			if accept {
				return Self::accept(task_id, task, submission_id, sub, now);
			}
			sub.status = SubmissionStatus::Rejected;
			sub.validated_block = Some(now);
			task.active_assignments = task.active_assignments.saturating_sub(1);
			TaskWorkers::<T>::remove(task_id, &sub.worker);
			Tasks::<T>::insert(task_id, task);
			let worker = sub.worker.clone();
			Submissions::<T>::insert(submission_id, sub);
			Self::deposit_event(Event::ResultRejected { task_id, submission_id, worker });
			Ok(())
		}

		/// Close a task: abandon assigned submissions, refund the escrow's balance.
		// Charged for `MaxAssignments` `TaskWorkers` entries and refunded down to the entries the
		// task actually has (see `weights.rs`).
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::close_task(T::MaxAssignments::get()))]
		pub fn close_task(origin: OriginFor<T>, task_id: TaskId) -> DispatchResultWithPostInfo {
			let who = ensure_signed(origin)?;
			let mut task = Tasks::<T>::get(task_id).ok_or(Error::<T>::TaskNotFound)?;
			ensure!(task.creator == who, Error::<T>::NotTaskCreator);
			ensure!(task.status == TaskStatus::Open, Error::<T>::TaskClosed);
			// The submissions that are not final are exactly those with a `TaskWorkers` entry
			// in Assigned or PendingValidation: visit `TaskWorkers` (at most `max_assignments`
			// entries), never the unbounded `TaskSubmissions`.
			let entries: Vec<(T::AccountId, SubmissionId)> =
				TaskWorkers::<T>::iter_prefix(task_id).collect();
			let mut open: Vec<(T::AccountId, SubmissionId, SubmissionOf<T>)> = Vec::new();
			for (worker, submission_id) in entries.iter() {
				if let Some(sub) = Submissions::<T>::get(submission_id) {
					match sub.status {
						SubmissionStatus::PendingValidation => {
							return Err(Error::<T>::PendingValidations.into())
						},
						SubmissionStatus::Assigned => {
							open.push((worker.clone(), *submission_id, sub))
						},
						_ => {},
					}
				}
			}
			let mut abandoned: u32 = 0;
			for (worker, submission_id, mut sub) in open {
				sub.status = SubmissionStatus::Abandoned;
				Submissions::<T>::insert(submission_id, sub);
				TaskWorkers::<T>::remove(task_id, &worker);
				abandoned.saturating_inc();
			}
			let escrow = Self::escrow_account_id(task_id);
			let refund = T::Currency::balance(&escrow);
			if !refund.is_zero() {
				// `Currency::transfer(.., AllowDeath)`: the escrow account is reaped.
				T::Currency::transfer(&escrow, &who, refund, Preservation::Expendable)?;
			}
			task.active_assignments = 0;
			task.status = TaskStatus::Closed;
			Tasks::<T>::insert(task_id, task);
			OpenTasks::<T>::remove(task_id);
			Self::deposit_event(Event::TaskClosed { task_id, refund, abandoned });
			let visited = u32::try_from(entries.len()).unwrap_or(u32::MAX);
			Ok(Some(T::WeightInfo::close_task(visited)).into())
		}

		/// Give an assigned slot back (the worker only); the slot reopens at once.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::abandon_task())]
		pub fn abandon_task(origin: OriginFor<T>, submission_id: SubmissionId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut sub =
				Submissions::<T>::get(submission_id).ok_or(Error::<T>::SubmissionNotFound)?;
			ensure!(sub.worker == who, Error::<T>::NotSubmissionWorker);
			ensure!(sub.status == SubmissionStatus::Assigned, Error::<T>::InvalidStatus);
			let task_id = sub.task_id;
			let mut task = Tasks::<T>::get(task_id).ok_or(Error::<T>::TaskNotFound)?;
			sub.status = SubmissionStatus::Abandoned;
			task.active_assignments = task.active_assignments.saturating_sub(1);
			TaskWorkers::<T>::remove(task_id, &who);
			Tasks::<T>::insert(task_id, task);
			Submissions::<T>::insert(submission_id, sub);
			Self::deposit_event(Event::SubmissionAbandoned { task_id, submission_id, worker: who });
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		/// Task `task_id`'s escrow account: `(b"modl" ++ PalletId ++ u32_le(task_id))`
		/// zero-padded to 32 bytes.
		pub fn escrow_account_id(task_id: TaskId) -> T::AccountId {
			T::PalletId::get().into_sub_account_truncating(task_id)
		}

		/// Pay `reward` from escrow to the worker and mark the submission Accepted.
		fn accept(
			task_id: TaskId,
			mut task: TaskInfoOf<T>,
			submission_id: SubmissionId,
			mut sub: SubmissionOf<T>,
			now: BlockNumberFor<T>,
		) -> DispatchResult {
			// `Currency::transfer(.., AllowDeath)`: the last payout may empty the escrow.
			T::Currency::transfer(
				&Self::escrow_account_id(task_id),
				&sub.worker,
				task.reward,
				Preservation::Expendable,
			)?;
			sub.status = SubmissionStatus::Accepted;
			sub.validated_block = Some(now);
			task.active_assignments = task.active_assignments.saturating_sub(1);
			task.accepted_results = task.accepted_results.saturating_add(1);
			let reward = task.reward;
			let worker = sub.worker.clone();
			Submissions::<T>::insert(submission_id, sub);
			Tasks::<T>::insert(task_id, task);
			Self::deposit_event(Event::ResultAccepted { task_id, submission_id, worker, reward });
			Ok(())
		}
	}

	/// An input's length for the weight functions: no more than its bound, since the pallet
	/// fails before copying anything longer.
	pub(crate) fn clamp_len(len: usize, bound: u32) -> u32 {
		u32::try_from(len).unwrap_or(u32::MAX).min(bound)
	}

	impl<T: Config> Pallet<T> {
		/// What a task's escrow must hold at least while it is open:
		/// `reward * (max_assignments - accepted_results)`.
		pub fn unspent_escrow(task: &TaskInfoOf<T>) -> BalanceOf<T> {
			task.reward.saturating_mul(BalanceOf::<T>::from(
				task.max_assignments.saturating_sub(task.accepted_results),
			))
		}
	}
}
