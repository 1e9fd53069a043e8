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
//! Protocol 2 adds task terms (`create_task_with_terms`: data shards shipped by the creator, one
//! per slot, and pay by contribution, `settle_contributions`) and peer jobs: training with no
//! coordinator, where the chain is only the tracker and the ballot box (`create_peer_job`,
//! `join_peer_job`, `leave_peer_job`, `post_update`, `post_aggregate`).
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

pub mod payout;
pub mod types;
pub mod weights;

pub use weights::WeightInfo;

// `create_task` takes the protocol's eight arguments (`create_task_with_terms` nine); the call
// enum's constructors that `#[pallet::call]` generates take as many, and the lint cannot be
// allowed on them alone.
#[allow(clippy::too_many_arguments)]
#[frame_support::pallet]
pub mod pallet {
	use super::{payout, types::*, WeightInfo};
	use alloc::{collections::BTreeSet, vec::Vec};
	use frame_support::{
		pallet_prelude::*,
		traits::{
			fungible::{Inspect, Mutate},
			tokens::{Fortitude, Preservation},
		},
		PalletId,
	};
	use frame_system::pallet_prelude::*;
	use sp_runtime::{
		traits::{AccountIdConversion, CheckedMul, Saturating, Zero},
		SaturatedConversion,
	};

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
	/// `TaskTerms` as stored for this runtime.
	pub type TermsOf<T> = TaskTerms<BalanceOf<T>>;
	/// `PeerJob` as stored for this runtime.
	pub type PeerJobOf<T> = PeerJob<
		<T as frame_system::Config>::AccountId,
		BlockNumberFor<T>,
		<T as Config>::MaxCidLength,
	>;
	/// A CID as stored: at most `MaxCidLength` bytes.
	pub type CidOf<T> = BoundedVec<u8, <T as Config>::MaxCidLength>;
	/// A peer job's round: `(job id, round)`, one storage prefix per round.
	pub type RoundKey = (PeerJobId, u32);

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

		/// Highest contribution score (parts per million).
		#[pallet::constant]
		type MaxScore: Get<u32>;

		/// Upper bound of a peer job's `max_peers`.
		#[pallet::constant]
		type MaxPeers: Get<u32>;

		/// Upper bound of a peer job's `rounds`.
		#[pallet::constant]
		type MaxPeerRounds: Get<u32>;

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

	/// A task's terms; no entry: the default terms (no shards, Flat, no commitments).
	#[pallet::storage]
	pub type Terms<T: Config> = StorageMap<_, Blake2_128Concat, TaskId, TermsOf<T>, OptionQuery>;

	/// Which live submission (Assigned, PendingValidation or Accepted) holds a task's shard.
	#[pallet::storage]
	pub type ShardHolders<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		TaskId,
		Blake2_128Concat,
		u32,
		SubmissionId,
		OptionQuery,
	>;

	/// The shard each submission of a sharded task was assigned (kept for good).
	#[pallet::storage]
	pub type SubmissionShards<T: Config> =
		StorageMap<_, Blake2_128Concat, SubmissionId, u32, OptionQuery>;

	/// The score (ppm) each result was settled with.
	#[pallet::storage]
	pub type Scores<T: Config> = StorageMap<_, Blake2_128Concat, SubmissionId, u32, OptionQuery>;

	/// Every peer job by id.
	#[pallet::storage]
	pub type PeerJobs<T: Config> =
		StorageMap<_, Blake2_128Concat, PeerJobId, PeerJobOf<T>, OptionQuery>;

	/// The id the next peer job gets.
	#[pallet::storage]
	pub type NextPeerJobId<T: Config> = StorageValue<_, PeerJobId, ValueQuery>;

	/// A job's current peers, with the round each joined in.
	#[pallet::storage]
	pub type Peers<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		PeerJobId,
		Blake2_128Concat,
		T::AccountId,
		u32,
		OptionQuery,
	>;

	/// The update CID each participant posted in a round.
	#[pallet::storage]
	pub type RoundUpdates<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		RoundKey,
		Blake2_128Concat,
		T::AccountId,
		CidOf<T>,
		OptionQuery,
	>;

	/// How many updates a round has: its participants.
	#[pallet::storage]
	pub type RoundUpdateCount<T: Config> =
		StorageMap<_, Blake2_128Concat, RoundKey, u32, ValueQuery>;

	/// The aggregate CID each participant posted in a round.
	#[pallet::storage]
	pub type RoundAggregates<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		RoundKey,
		Blake2_128Concat,
		T::AccountId,
		CidOf<T>,
		OptionQuery,
	>;

	/// The votes each aggregate CID has in a round.
	#[pallet::storage]
	pub type AggregateVotes<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		RoundKey,
		Blake2_128Concat,
		CidOf<T>,
		u32,
		ValueQuery,
	>;

	/// A round's agreed model: the aggregate CID a majority of its participants posted.
	#[pallet::storage]
	pub type AgreedModels<T: Config> =
		StorageMap<_, Blake2_128Concat, RoundKey, CidOf<T>, OptionQuery>;

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
		/// A submission was assigned a data shard of its task.
		ShardAssigned { task_id: TaskId, submission_id: SubmissionId, shard: u32 },
		/// Results were accepted and paid from the pool by their scores.
		ContributionsSettled {
			task_id: TaskId,
			results: u32,
			pool: BalanceOf<T>,
			paid: BalanceOf<T>,
			dust: BalanceOf<T>,
		},
		/// A peer job was created.
		PeerJobCreated {
			job_id: PeerJobId,
			creator: T::AccountId,
			rounds: u32,
			update_blocks: u32,
			aggregate_blocks: u32,
			max_peers: u32,
		},
		/// An account joined a peer job.
		PeerJoined { job_id: PeerJobId, peer: T::AccountId, round: u32 },
		/// A peer left a peer job.
		PeerLeft { job_id: PeerJobId, peer: T::AccountId, round: u32 },
		/// A peer posted its update for a round.
		UpdatePosted { job_id: PeerJobId, round: u32, peer: T::AccountId },
		/// A participant posted its aggregate for a round.
		AggregatePosted { job_id: PeerJobId, round: u32, peer: T::AccountId },
		/// A majority of a round's participants posted the same aggregate.
		RoundAgreed { job_id: PeerJobId, round: u32, model_cid: CidOf<T> },
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
		/// `shards` must be 0 or equal to `max_assignments`.
		InvalidShards,
		/// `ByContribution` with `AutoAccept`, a floor above the reward, or a floor under `Flat`.
		InvalidTerms,
		/// The task pays by contribution: accept its results with `settle_contributions`.
		PaidByContribution,
		/// The task pays a flat reward: accept its results with `validate_task_result`.
		NotPaidByContribution,
		/// `settle_contributions` needs at least one score.
		NoScores,
		/// More scores than `MaxAssignments`.
		TooManyScores,
		/// A score is above `MaxScore`.
		ScoreTooHigh,
		/// A submission is scored twice.
		DuplicateScore,
		/// A scored submission is not pending validation on this task.
		NotPendingOnTask,
		/// A peer job's rounds, phase lengths or `max_peers` are out of bounds.
		InvalidPeerJob,
		/// No peer job with that id.
		PeerJobNotFound,
		/// The peer job's last round is over.
		PeerJobEnded,
		/// The account is already a peer of this job.
		AlreadyJoined,
		/// The peer job has `max_peers` peers.
		PeerJobFull,
		/// The account is not a peer of this job.
		NotAPeer,
		/// The round is not the job's current round.
		WrongRound,
		/// The current round is not in the phase this call needs.
		WrongPhase,
		/// The peer already posted this for this round.
		AlreadyPosted,
		/// Only a peer that posted an update in the round may post an aggregate.
		NoUpdateThisRound,
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
			assert!(T::MaxPeers::get() > 0, "MaxPeers must not be zero");
			assert!(T::MaxPeerRounds::get() > 0, "MaxPeerRounds must not be zero");
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
			let task = Self::new_task(
				creator,
				task_type,
				question,
				reward,
				max_assignments,
				validation_strategy,
				assets_cid,
				assets_storage,
				expiration_block,
			)?;
			Self::fund_and_store(task, None)
		}

		/// Take a slot of an open task: creates a submission in `Assigned` (and, on a task with
		/// shards, assigns it the lowest free shard).
		// Charged for visiting `MaxAssignments` shards and refunded down to the shards visited.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::accept_task(T::MaxAssignments::get()))]
		pub fn accept_task(origin: OriginFor<T>, task_id: TaskId) -> DispatchResultWithPostInfo {
			let worker = ensure_signed(origin)?;
			let mut task = Tasks::<T>::get(task_id).ok_or(Error::<T>::TaskNotFound)?;
			let now = frame_system::Pallet::<T>::block_number();
			Self::ensure_slot_for(task_id, &task, &worker, now)?;
			let submission_id = NextSubmissionId::<T>::get();
			let next_submission_id = submission_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
			task.active_assignments =
				task.active_assignments.checked_add(1).ok_or(Error::<T>::Overflow)?;
			let shard = Self::free_shard(task_id, Self::terms(task_id).shards)?;
			Self::store_assignment(task_id, submission_id, &worker, now);
			Tasks::<T>::insert(task_id, task);
			NextSubmissionId::<T>::put(next_submission_id);
			Self::deposit_event(Event::TaskAccepted { task_id, submission_id, worker });
			let visited = match shard {
				Some((shard, visited)) => {
					Self::hold_shard(task_id, submission_id, shard);
					visited
				},
				None => 0,
			};
			Ok(Some(T::WeightInfo::accept_task(visited)).into())
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
			let result_cid = match result_cid {
				None => None,
				Some(cid) => Some(Self::bounded_cid(
					cid,
					Error::<T>::InvalidResultCid,
					Error::<T>::InvalidResultCid,
				)?),
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

		/// Accept (pay) or reject (reopen the slot) a pending result; creator only. Results of
		/// a task paid by contribution are accepted only by `settle_contributions`.
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
				ensure!(!Self::terms(task_id).by_contribution(), Error::<T>::PaidByContribution);
				return Self::accept(task_id, task, submission_id, sub, now);
			}
			sub.status = SubmissionStatus::Rejected;
			sub.validated_block = Some(now);
			task.active_assignments = task.active_assignments.saturating_sub(1);
			TaskWorkers::<T>::remove(task_id, &sub.worker);
			Self::release_shard(task_id, submission_id);
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
			let assigned = Self::assigned_or_pending(&entries)?;
			let abandoned = Self::abandon_all(task_id, assigned);
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
			Self::release_shard(task_id, submission_id);
			Tasks::<T>::insert(task_id, task);
			Submissions::<T>::insert(submission_id, sub);
			Self::deposit_event(Event::SubmissionAbandoned { task_id, submission_id, worker: who });
			Ok(())
		}

		/// `create_task` with terms: data shards shipped by the creator (one per slot) and pay by
		/// contribution, with commitments to the holdout set and the scoring method.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::create_task_with_terms(
			clamp_len(question.len(), T::MaxQuestionLength::get()),
			clamp_len(assets_cid.len(), T::MaxCidLength::get()),
		))]
		pub fn create_task_with_terms(
			origin: OriginFor<T>,
			task_type: TaskType,
			question: Vec<u8>,
			reward: BalanceOf<T>,
			max_assignments: u32,
			validation_strategy: ValidationStrategy,
			assets_cid: Vec<u8>,
			assets_storage: StorageType,
			expiration_block: BlockNumberFor<T>,
			terms: TermsOf<T>,
		) -> DispatchResult {
			let creator = ensure_signed(origin)?;
			let task = Self::new_task(
				creator,
				task_type,
				question,
				reward,
				max_assignments,
				validation_strategy,
				assets_cid,
				assets_storage,
				expiration_block,
			)?;
			Self::ensure_valid_terms(&task, &terms)?;
			Self::fund_and_store(task, Some(terms))
		}

		/// Accept pending results of a task paid by contribution and pay each from the pool by
		/// its score; the creator only. The whole pool `reward * k` is spent on the `k` listed
		/// results; the rounding dust stays in the escrow.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::settle_contributions(
			clamp_len(scores.len(), T::MaxAssignments::get()),
		))]
		pub fn settle_contributions(
			origin: OriginFor<T>,
			task_id: TaskId,
			scores: Vec<(SubmissionId, u32)>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let task = Tasks::<T>::get(task_id).ok_or(Error::<T>::TaskNotFound)?;
			ensure!(task.creator == who, Error::<T>::NotTaskCreator);
			ensure!(task.status == TaskStatus::Open, Error::<T>::TaskClosed);
			let terms = Self::terms(task_id);
			ensure!(terms.by_contribution(), Error::<T>::NotPaidByContribution);
			Self::ensure_valid_scores(&scores)?;
			let subs = Self::pending_on_task(task_id, &scores)?;
			let values: Vec<u32> = scores.iter().map(|(_, score)| *score).collect();
			let settlement =
				payout::settle(to_u128::<T>(task.reward)?, to_u128::<T>(terms.floor)?, &values)
					.ok_or(Error::<T>::Overflow)?;
			Self::pay_settlement(task_id, task, subs, &values, settlement)
		}

		/// Create a peer job starting at the current block; no balance moves.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::create_peer_job(clamp_len(
			assets_cid.len(),
			T::MaxCidLength::get()
		)))]
		pub fn create_peer_job(
			origin: OriginFor<T>,
			assets_cid: Vec<u8>,
			assets_storage: StorageType,
			rounds: u32,
			update_blocks: u32,
			aggregate_blocks: u32,
			max_peers: u32,
		) -> DispatchResult {
			let creator = ensure_signed(origin)?;
			let assets_cid = Self::bounded_cid(
				assets_cid,
				Error::<T>::EmptyAssets,
				Error::<T>::AssetsCidTooLong,
			)?;
			Self::ensure_valid_peer_job(rounds, update_blocks, aggregate_blocks, max_peers)?;
			let job_id = NextPeerJobId::<T>::get();
			let next_job_id = job_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
			PeerJobs::<T>::insert(
				job_id,
				PeerJob {
					creator: creator.clone(),
					assets_cid,
					assets_storage,
					start_block: frame_system::Pallet::<T>::block_number(),
					rounds,
					update_blocks,
					aggregate_blocks,
					max_peers,
					peers: 0,
				},
			);
			NextPeerJobId::<T>::put(next_job_id);
			Self::deposit_event(Event::PeerJobCreated {
				job_id,
				creator,
				rounds,
				update_blocks,
				aggregate_blocks,
				max_peers,
			});
			Ok(())
		}

		/// Become a peer of a job from its current round on.
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::join_peer_job())]
		pub fn join_peer_job(origin: OriginFor<T>, job_id: PeerJobId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut job = PeerJobs::<T>::get(job_id).ok_or(Error::<T>::PeerJobNotFound)?;
			let (round, _) = Self::live_clock(&job)?;
			ensure!(!Peers::<T>::contains_key(job_id, &who), Error::<T>::AlreadyJoined);
			ensure!(job.peers < job.max_peers, Error::<T>::PeerJobFull);
			job.peers = job.peers.saturating_add(1);
			Peers::<T>::insert(job_id, &who, round);
			PeerJobs::<T>::insert(job_id, job);
			Self::deposit_event(Event::PeerJoined { job_id, peer: who, round });
			Ok(())
		}

		/// Stop being a peer of a job; what was posted stays.
		#[pallet::call_index(10)]
		#[pallet::weight(T::WeightInfo::leave_peer_job())]
		pub fn leave_peer_job(origin: OriginFor<T>, job_id: PeerJobId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut job = PeerJobs::<T>::get(job_id).ok_or(Error::<T>::PeerJobNotFound)?;
			ensure!(Peers::<T>::contains_key(job_id, &who), Error::<T>::NotAPeer);
			let round = Self::live_clock(&job).map_or(job.rounds, |(round, _)| round);
			job.peers = job.peers.saturating_sub(1);
			Peers::<T>::remove(job_id, &who);
			PeerJobs::<T>::insert(job_id, job);
			Self::deposit_event(Event::PeerLeft { job_id, peer: who, round });
			Ok(())
		}

		/// Publish the CID of this peer's update for the current round, in its update phase.
		#[pallet::call_index(11)]
		#[pallet::weight(T::WeightInfo::post_update(clamp_len(
			update_cid.len(),
			T::MaxCidLength::get()
		)))]
		pub fn post_update(
			origin: OriginFor<T>,
			job_id: PeerJobId,
			round: u32,
			update_cid: Vec<u8>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::ensure_in_phase(job_id, &who, round, Phase::Update)?;
			let cid = Self::bounded_cid(
				update_cid,
				Error::<T>::InvalidResultCid,
				Error::<T>::InvalidResultCid,
			)?;
			let key = (job_id, round);
			ensure!(!RoundUpdates::<T>::contains_key(key, &who), Error::<T>::AlreadyPosted);
			RoundUpdates::<T>::insert(key, &who, cid);
			RoundUpdateCount::<T>::mutate(key, |count| count.saturating_inc());
			Self::deposit_event(Event::UpdatePosted { job_id, round, peer: who });
			Ok(())
		}

		/// Publish the CID of the aggregate this participant computed for the current round, in
		/// its aggregate phase; the CID a majority of the round's participants posts becomes the
		/// round's agreed model.
		#[pallet::call_index(12)]
		#[pallet::weight(T::WeightInfo::post_aggregate(clamp_len(
			aggregate_cid.len(),
			T::MaxCidLength::get()
		)))]
		pub fn post_aggregate(
			origin: OriginFor<T>,
			job_id: PeerJobId,
			round: u32,
			aggregate_cid: Vec<u8>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::ensure_in_phase(job_id, &who, round, Phase::Aggregate)?;
			let key = (job_id, round);
			ensure!(RoundUpdates::<T>::contains_key(key, &who), Error::<T>::NoUpdateThisRound);
			let cid = Self::bounded_cid(
				aggregate_cid,
				Error::<T>::InvalidResultCid,
				Error::<T>::InvalidResultCid,
			)?;
			ensure!(!RoundAggregates::<T>::contains_key(key, &who), Error::<T>::AlreadyPosted);
			RoundAggregates::<T>::insert(key, &who, &cid);
			let votes = AggregateVotes::<T>::mutate(key, &cid, |votes| {
				votes.saturating_inc();
				*votes
			});
			Self::deposit_event(Event::AggregatePosted { job_id, round, peer: who });
			Self::record_majority(job_id, round, cid, votes);
			Ok(())
		}
	}

	/// The phase a peer-job call needs.
	#[derive(Clone, Copy, PartialEq, Eq)]
	enum Phase {
		Update,
		Aggregate,
	}

	impl<T: Config> Pallet<T> {
		/// Task `task_id`'s escrow account: `(b"modl" ++ PalletId ++ u32_le(task_id))`
		/// zero-padded to 32 bytes.
		pub fn escrow_account_id(task_id: TaskId) -> T::AccountId {
			T::PalletId::get().into_sub_account_truncating(task_id)
		}

		/// A task's terms: its `Terms` entry, or the default terms.
		pub fn terms(task_id: TaskId) -> TermsOf<T> {
			Terms::<T>::get(task_id).unwrap_or_default()
		}

		/// What a task's escrow must hold at least while it is open:
		/// `reward * (max_assignments - accepted_results)`.
		pub fn unspent_escrow(task: &TaskInfoOf<T>) -> BalanceOf<T> {
			task.reward.saturating_mul(BalanceOf::<T>::from(
				task.max_assignments.saturating_sub(task.accepted_results),
			))
		}

		/// A CID within `MaxCidLength` bytes, or the given errors when empty or too long.
		fn bounded_cid(
			cid: Vec<u8>,
			empty: Error<T>,
			too_long: Error<T>,
		) -> Result<CidOf<T>, Error<T>> {
			ensure!(!cid.is_empty(), empty);
			cid.try_into().map_err(|_| too_long)
		}

		// -- tasks ---------------------------------------------------------------------------

		/// The checks of `create_task` that come before any money (docs/protocol.md order), and
		/// the task they describe.
		fn new_task(
			creator: T::AccountId,
			task_type: TaskType,
			question: Vec<u8>,
			reward: BalanceOf<T>,
			max_assignments: u32,
			validation_strategy: ValidationStrategy,
			assets_cid: Vec<u8>,
			assets_storage: StorageType,
			expiration_block: BlockNumberFor<T>,
		) -> Result<TaskInfoOf<T>, DispatchError> {
			ensure!(!question.is_empty(), Error::<T>::InvalidQuestion);
			let question: BoundedVec<u8, T::MaxQuestionLength> =
				question.try_into().map_err(|_| Error::<T>::InvalidQuestion)?;
			ensure!(!reward.is_zero(), Error::<T>::ZeroReward);
			ensure!(reward >= T::MinReward::get(), Error::<T>::RewardTooLow);
			ensure!(
				(1..=T::MaxAssignments::get()).contains(&max_assignments),
				Error::<T>::InvalidMaxAssignments
			);
			let assets_cid = Self::bounded_cid(
				assets_cid,
				Error::<T>::EmptyAssets,
				Error::<T>::AssetsCidTooLong,
			)?;
			let now = frame_system::Pallet::<T>::block_number();
			ensure!(expiration_block > now, Error::<T>::ExpirationInPast);
			Ok(TaskInfo {
				creator,
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
			})
		}

		/// `InvalidShards`, then `InvalidTerms`.
		fn ensure_valid_terms(task: &TaskInfoOf<T>, terms: &TermsOf<T>) -> DispatchResult {
			ensure!(
				terms.shards == 0 || terms.shards == task.max_assignments,
				Error::<T>::InvalidShards
			);
			let valid = if terms.by_contribution() {
				task.validation_strategy != ValidationStrategy::AutoAccept
					&& terms.floor <= task.reward
			} else {
				terms.floor.is_zero()
			};
			ensure!(valid, Error::<T>::InvalidTerms);
			Ok(())
		}

		/// Allocate the task's id, move its escrow in from the creator, store it (with its
		/// terms, if any) and announce it.
		fn fund_and_store(task: TaskInfoOf<T>, terms: Option<TermsOf<T>>) -> DispatchResult {
			let escrow = task
				.reward
				.checked_mul(&BalanceOf::<T>::from(task.max_assignments))
				.ok_or(Error::<T>::Overflow)?;
			let task_id = NextTaskId::<T>::get();
			let next_task_id = task_id.checked_add(1).ok_or(Error::<T>::Overflow)?;
			let creator = task.creator.clone();
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
			let event = Event::TaskCreated {
				task_id,
				creator,
				task_type: task.task_type,
				reward: task.reward,
				max_assignments: task.max_assignments,
				escrow,
				expiration_block: task.expiration_block,
			};
			Tasks::<T>::insert(task_id, task);
			if let Some(terms) = terms {
				Terms::<T>::insert(task_id, terms);
			}
			OpenTasks::<T>::insert(task_id, ());
			NextTaskId::<T>::put(next_task_id);
			Self::deposit_event(event);
			Ok(())
		}

		/// `accept_task`'s checks on the task and the worker, in the documented order.
		fn ensure_slot_for(
			task_id: TaskId,
			task: &TaskInfoOf<T>,
			worker: &T::AccountId,
			now: BlockNumberFor<T>,
		) -> DispatchResult {
			ensure!(task.status == TaskStatus::Open, Error::<T>::TaskClosed);
			ensure!(now < task.expiration_block, Error::<T>::TaskExpired);
			ensure!(task.creator != *worker, Error::<T>::CreatorCannotAccept);
			ensure!(!TaskWorkers::<T>::contains_key(task_id, worker), Error::<T>::AlreadyAccepted);
			ensure!(
				task.active_assignments.saturating_add(task.accepted_results)
					< task.max_assignments,
				Error::<T>::NoSlotsLeft
			);
			Ok(())
		}

		/// A new `Assigned` submission of `worker`, with its indexes.
		fn store_assignment(
			task_id: TaskId,
			submission_id: SubmissionId,
			worker: &T::AccountId,
			now: BlockNumberFor<T>,
		) {
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
			WorkerSubmissions::<T>::insert(worker, submission_id, ());
			TaskWorkers::<T>::insert(task_id, worker, submission_id);
		}

		/// The lowest shard of a task with `shards` shards that no live submission holds, and
		/// how many shards were looked at to find it; `None` for a task without shards.
		fn free_shard(task_id: TaskId, shards: u32) -> Result<Option<(u32, u32)>, Error<T>> {
			if shards == 0 {
				return Ok(None);
			}
			// `shards == max_assignments` and a slot is free, so a shard is free too.
			let shard = (0..shards)
				.find(|shard| !ShardHolders::<T>::contains_key(task_id, shard))
				.ok_or(Error::<T>::NoSlotsLeft)?;
			Ok(Some((shard, shard.saturating_add(1))))
		}

		/// Record that `submission_id` holds `shard` and announce it.
		fn hold_shard(task_id: TaskId, submission_id: SubmissionId, shard: u32) {
			ShardHolders::<T>::insert(task_id, shard, submission_id);
			SubmissionShards::<T>::insert(submission_id, shard);
			Self::deposit_event(Event::ShardAssigned { task_id, submission_id, shard });
		}

		/// A submission that became `Rejected` or `Abandoned` gives its shard (if any) back.
		fn release_shard(task_id: TaskId, submission_id: SubmissionId) {
			if let Some(shard) = SubmissionShards::<T>::get(submission_id) {
				if ShardHolders::<T>::get(task_id, shard) == Some(submission_id) {
					ShardHolders::<T>::remove(task_id, shard);
				}
			}
		}

		/// The `Assigned` submissions among a task's `TaskWorkers` entries; `PendingValidations`
		/// if any is waiting for validation.
		fn assigned_or_pending(
			entries: &[(T::AccountId, SubmissionId)],
		) -> Result<Vec<(SubmissionId, SubmissionOf<T>)>, Error<T>> {
			let mut assigned = Vec::new();
			for (_, submission_id) in entries {
				let Some(sub) = Submissions::<T>::get(submission_id) else { continue };
				match sub.status {
					SubmissionStatus::PendingValidation => {
						return Err(Error::<T>::PendingValidations)
					},
					SubmissionStatus::Assigned => assigned.push((*submission_id, sub)),
					_ => {},
				}
			}
			Ok(assigned)
		}

		/// `close_task` abandons these submissions (and frees their shards); returns how many.
		fn abandon_all(task_id: TaskId, assigned: Vec<(SubmissionId, SubmissionOf<T>)>) -> u32 {
			let mut abandoned: u32 = 0;
			for (submission_id, mut sub) in assigned {
				sub.status = SubmissionStatus::Abandoned;
				TaskWorkers::<T>::remove(task_id, &sub.worker);
				Self::release_shard(task_id, submission_id);
				Submissions::<T>::insert(submission_id, sub);
				abandoned.saturating_inc();
			}
			abandoned
		}

		/// Pay `reward` from escrow to the worker and mark the submission Accepted.
		fn accept(
			task_id: TaskId,
			mut task: TaskInfoOf<T>,
			submission_id: SubmissionId,
			sub: SubmissionOf<T>,
			now: BlockNumberFor<T>,
		) -> DispatchResult {
			let reward = task.reward;
			Self::pay_out(task_id, &sub.worker, reward)?;
			Self::mark_accepted(task_id, submission_id, sub, reward, now);
			task.active_assignments = task.active_assignments.saturating_sub(1);
			task.accepted_results = task.accepted_results.saturating_add(1);
			Tasks::<T>::insert(task_id, task);
			Ok(())
		}

		/// Pay `amount` (if any) from the task's escrow to `worker`.
		fn pay_out(task_id: TaskId, worker: &T::AccountId, amount: BalanceOf<T>) -> DispatchResult {
			if !amount.is_zero() {
				// `Currency::transfer(.., AllowDeath)`: the last payout may empty the escrow.
				T::Currency::transfer(
					&Self::escrow_account_id(task_id),
					worker,
					amount,
					Preservation::Expendable,
				)?;
			}
			Ok(())
		}

		/// Mark a paid submission Accepted and announce it with what it was paid; the caller
		/// updates the task's counts.
		fn mark_accepted(
			task_id: TaskId,
			submission_id: SubmissionId,
			mut sub: SubmissionOf<T>,
			amount: BalanceOf<T>,
			now: BlockNumberFor<T>,
		) {
			sub.status = SubmissionStatus::Accepted;
			sub.validated_block = Some(now);
			let worker = sub.worker.clone();
			Submissions::<T>::insert(submission_id, sub);
			Self::deposit_event(Event::ResultAccepted {
				task_id,
				submission_id,
				worker,
				reward: amount,
			});
		}

		// -- contributions ---------------------------------------------------------------------

		/// `NoScores`, `TooManyScores`, `ScoreTooHigh`, `DuplicateScore`: each checked over the
		/// whole list before the next.
		fn ensure_valid_scores(scores: &[(SubmissionId, u32)]) -> DispatchResult {
			ensure!(!scores.is_empty(), Error::<T>::NoScores);
			ensure!(scores.len() <= T::MaxAssignments::get() as usize, Error::<T>::TooManyScores);
			let max = T::MaxScore::get();
			ensure!(scores.iter().all(|(_, score)| *score <= max), Error::<T>::ScoreTooHigh);
			let distinct: BTreeSet<SubmissionId> = scores.iter().map(|(id, _)| *id).collect();
			ensure!(distinct.len() == scores.len(), Error::<T>::DuplicateScore);
			Ok(())
		}

		/// The listed submissions, in list order: `SubmissionNotFound` if any does not exist,
		/// then `NotPendingOnTask` if any is not `PendingValidation` on `task_id`.
		fn pending_on_task(
			task_id: TaskId,
			scores: &[(SubmissionId, u32)],
		) -> Result<Vec<(SubmissionId, SubmissionOf<T>)>, Error<T>> {
			let subs = scores
				.iter()
				.map(|(id, _)| Submissions::<T>::get(id).map(|sub| (*id, sub)))
				.collect::<Option<Vec<_>>>()
				.ok_or(Error::<T>::SubmissionNotFound)?;
			let pending = subs.iter().all(|(_, sub)| {
				sub.task_id == task_id && sub.status == SubmissionStatus::PendingValidation
			});
			ensure!(pending, Error::<T>::NotPendingOnTask);
			Ok(subs)
		}

		/// Pay a settlement out of the task's escrow, accept and score every listed submission,
		/// and announce it.
		fn pay_settlement(
			task_id: TaskId,
			mut task: TaskInfoOf<T>,
			subs: Vec<(SubmissionId, SubmissionOf<T>)>,
			scores: &[u32],
			settlement: payout::Settlement,
		) -> DispatchResult {
			let paid = from_u128::<T>(settlement.paid)?;
			Self::refund_stranded_dust(task_id, &task.creator, paid)?;
			let payouts = settlement
				.payouts
				.iter()
				.map(|payout| from_u128::<T>(*payout))
				.collect::<Result<Vec<_>, _>>()?;
			Self::pay_largest_last(task_id, &subs, &payouts)?;
			let now = frame_system::Pallet::<T>::block_number();
			let rows = subs.into_iter().zip(scores.iter()).zip(payouts);
			for (((submission_id, sub), score), payout) in rows {
				Self::mark_accepted(task_id, submission_id, sub, payout, now);
				Scores::<T>::insert(submission_id, score);
			}
			let results = u32::try_from(scores.len()).map_err(|_| Error::<T>::Overflow)?;
			task.active_assignments = task.active_assignments.saturating_sub(results);
			task.accepted_results = task.accepted_results.saturating_add(results);
			Tasks::<T>::insert(task_id, task);
			Self::deposit_event(Event::ContributionsSettled {
				task_id,
				results,
				pool: from_u128::<T>(settlement.pool)?,
				paid,
				dust: from_u128::<T>(settlement.dust)?,
			});
			Ok(())
		}

		/// Transfer the payouts in list order, but the largest (the first listed among equals)
		/// last. A payout may be below the existential deposit, and an escrow that dropped
		/// below it before being empty would be reaped with the rest of the payouts in it; the
		/// largest payout is at least the deposit (it is at least `paid / k`, and `paid` is at
		/// least `k * reward - (k - 1)` with `reward >= MinReward`), so with it paid last the
		/// escrow holds at least the deposit until it is empty.
		fn pay_largest_last(
			task_id: TaskId,
			subs: &[(SubmissionId, SubmissionOf<T>)],
			payouts: &[BalanceOf<T>],
		) -> DispatchResult {
			let mut last = 0;
			for (index, payout) in payouts.iter().enumerate() {
				if *payout > payouts[last] {
					last = index;
				}
			}
			for (index, ((_, sub), payout)) in subs.iter().zip(payouts).enumerate() {
				if index != last {
					Self::pay_out(task_id, &sub.worker, *payout)?;
				}
			}
			match (subs.get(last), payouts.get(last)) {
				(Some((_, sub)), Some(payout)) => Self::pay_out(task_id, &sub.worker, *payout),
				_ => Ok(()),
			}
		}

		/// The dust stays in the escrow, unless paying `paid` would leave the escrow with a
		/// positive balance below the existential deposit: the account would then be reaped
		/// and the dust destroyed, so it goes to the creator now (`close_task` would have
		/// refunded it to them).
		fn refund_stranded_dust(
			task_id: TaskId,
			creator: &T::AccountId,
			paid: BalanceOf<T>,
		) -> DispatchResult {
			let escrow = Self::escrow_account_id(task_id);
			let left = T::Currency::balance(&escrow).saturating_sub(paid);
			if !left.is_zero() && left < T::Currency::minimum_balance() {
				T::Currency::transfer(&escrow, creator, left, Preservation::Expendable)?;
			}
			Ok(())
		}

		// -- peer jobs -------------------------------------------------------------------------

		/// `InvalidPeerJob`, then `Overflow` (`rounds * (update_blocks + aggregate_blocks)`).
		fn ensure_valid_peer_job(
			rounds: u32,
			update_blocks: u32,
			aggregate_blocks: u32,
			max_peers: u32,
		) -> DispatchResult {
			let valid = (1..=T::MaxPeerRounds::get()).contains(&rounds)
				&& update_blocks > 0
				&& aggregate_blocks > 0
				&& (1..=T::MaxPeers::get()).contains(&max_peers);
			ensure!(valid, Error::<T>::InvalidPeerJob);
			update_blocks
				.checked_add(aggregate_blocks)
				.and_then(|length| length.checked_mul(rounds))
				.ok_or(Error::<T>::Overflow)?;
			Ok(())
		}

		/// The job's current round and phase; `PeerJobEnded` once its last round is over.
		fn live_clock(job: &PeerJobOf<T>) -> Result<(u32, Phase), Error<T>> {
			let now = frame_system::Pallet::<T>::block_number();
			let elapsed: u64 = now.saturating_sub(job.start_block).saturated_into();
			match job.clock(elapsed) {
				PeerJobClock::Update(round) => Ok((round, Phase::Update)),
				PeerJobClock::Aggregate(round) => Ok((round, Phase::Aggregate)),
				PeerJobClock::Ended => Err(Error::<T>::PeerJobEnded),
			}
		}

		/// `PeerJobNotFound`, `PeerJobEnded`, `NotAPeer`, `WrongRound`, `WrongPhase`: `who` is
		/// a peer and `round` is the current round, in `phase`.
		fn ensure_in_phase(
			job_id: PeerJobId,
			who: &T::AccountId,
			round: u32,
			phase: Phase,
		) -> DispatchResult {
			let job = PeerJobs::<T>::get(job_id).ok_or(Error::<T>::PeerJobNotFound)?;
			let (current, current_phase) = Self::live_clock(&job)?;
			ensure!(Peers::<T>::contains_key(job_id, who), Error::<T>::NotAPeer);
			ensure!(round == current, Error::<T>::WrongRound);
			ensure!(phase == current_phase, Error::<T>::WrongPhase);
			Ok(())
		}

		/// With `votes` for `cid`, the round has its agreed model if that is more than half of
		/// its participants and it has none yet (an agreed model never changes).
		fn record_majority(job_id: PeerJobId, round: u32, cid: CidOf<T>, votes: u32) {
			let key = (job_id, round);
			let participants = u64::from(RoundUpdateCount::<T>::get(key));
			if 2 * u64::from(votes) <= participants || AgreedModels::<T>::contains_key(key) {
				return;
			}
			AgreedModels::<T>::insert(key, &cid);
			Self::deposit_event(Event::RoundAgreed { job_id, round, model_cid: cid });
		}
	}

	/// A balance as `u128` for the payout arithmetic (`Overflow` if it does not fit).
	fn to_u128<T: Config>(amount: BalanceOf<T>) -> Result<u128, Error<T>> {
		amount.try_into().map_err(|_| Error::<T>::Overflow)
	}

	/// A `u128` payout as a balance (`Overflow` if it does not fit).
	fn from_u128<T: Config>(amount: u128) -> Result<BalanceOf<T>, Error<T>> {
		amount.try_into().map_err(|_| Error::<T>::Overflow)
	}

	/// An input's length for the weight functions: no more than its bound, since the pallet
	/// fails before copying anything longer.
	pub(crate) fn clamp_len(len: usize, bound: u32) -> u32 {
		u32::try_from(len).unwrap_or(u32::MAX).min(bound)
	}
}
