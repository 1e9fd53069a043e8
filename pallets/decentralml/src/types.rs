//! The protocol's enums and structs (docs/protocol.md, "Enums" and "Structs").
//!
//! Field order is the SCALE order, and every enum encodes as one `u8` variant index in the order
//! declared here, so these definitions *are* the wire format: reorder nothing.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{traits::Get, BoundedVec, CloneNoBound, EqNoBound, PartialEqNoBound};
use scale_info::TypeInfo;

/// A task id, allocated from `NextTaskId` (the first task is 0).
pub type TaskId = u32;
/// A submission id, allocated from `NextSubmissionId` (the first submission is 0).
pub type SubmissionId = u32;

/// What kind of work a task asks for.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	TypeInfo,
	MaxEncodedLen,
)]
pub enum TaskType {
	DataAnnotator,
	ModelContributor,
	ModelEngineer,
}

/// How results are judged. `ManualAccept` and `CustomAccept` behave identically on chain (the
/// creator decides); the difference is the reviewer's off-chain policy.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	TypeInfo,
	MaxEncodedLen,
)]
pub enum ValidationStrategy {
	AutoAccept,
	ManualAccept,
	CustomAccept,
}

/// Where the content behind a CID lives.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	TypeInfo,
	MaxEncodedLen,
)]
pub enum StorageType {
	Ipfs,
	Local,
	Http,
}

/// A task is `Open` from `create_task` until `close_task`.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	TypeInfo,
	MaxEncodedLen,
)]
pub enum TaskStatus {
	Open,
	Closed,
}

/// The submission state machine; `Accepted`, `Rejected` and `Abandoned` are final.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	TypeInfo,
	MaxEncodedLen,
)]
pub enum SubmissionStatus {
	Assigned,
	PendingValidation,
	Accepted,
	Rejected,
	Abandoned,
}

/// A task and its escrow bookkeeping.
///
/// Invariant: `active_assignments + accepted_results <= max_assignments`.
#[derive(
	Encode,
	Decode,
	CloneNoBound,
	PartialEqNoBound,
	EqNoBound,
	frame_support::DebugNoBound,
	TypeInfo,
	MaxEncodedLen,
)]
#[scale_info(skip_type_params(MaxQuestionLength, MaxCidLength))]
pub struct TaskInfo<
	AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
	Balance: Clone + PartialEq + Eq + core::fmt::Debug,
	BlockNumber: Clone + PartialEq + Eq + core::fmt::Debug,
	MaxQuestionLength: Get<u32>,
	MaxCidLength: Get<u32>,
> {
	pub creator: AccountId,
	pub task_type: TaskType,
	pub question: BoundedVec<u8, MaxQuestionLength>,
	pub reward: Balance,
	pub max_assignments: u32,
	pub active_assignments: u32,
	pub accepted_results: u32,
	pub validation_strategy: ValidationStrategy,
	pub assets_cid: BoundedVec<u8, MaxCidLength>,
	pub assets_storage: StorageType,
	pub created_block: BlockNumber,
	pub expiration_block: BlockNumber,
	pub status: TaskStatus,
}

/// A worker's claim on one slot of a task, and the result it sent.
#[derive(
	Encode,
	Decode,
	CloneNoBound,
	PartialEqNoBound,
	EqNoBound,
	frame_support::DebugNoBound,
	TypeInfo,
	MaxEncodedLen,
)]
#[scale_info(skip_type_params(MaxResultLength, MaxCidLength))]
pub struct Submission<
	AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
	BlockNumber: Clone + PartialEq + Eq + core::fmt::Debug,
	MaxResultLength: Get<u32>,
	MaxCidLength: Get<u32>,
> {
	pub task_id: TaskId,
	pub worker: AccountId,
	pub status: SubmissionStatus,
	pub result: BoundedVec<u8, MaxResultLength>,
	pub result_cid: Option<BoundedVec<u8, MaxCidLength>>,
	pub result_storage: Option<StorageType>,
	pub assigned_block: BlockNumber,
	pub submitted_block: Option<BlockNumber>,
	pub validated_block: Option<BlockNumber>,
}

/// A peer job id, allocated from `NextPeerJobId` (the first peer job is 0).
pub type PeerJobId = u32;

/// How a task's accepted results are paid.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	TypeInfo,
	MaxEncodedLen,
)]
pub enum PayoutMode {
	/// Every accepted result is paid `reward`.
	Flat,
	/// Results are paid from a pool by their scores (`settle_contributions`).
	ByContribution,
}

/// A task's terms, fixed at creation: shipped data shards and how results are paid.
///
/// A task created with `create_task` has the default terms (no shards, `Flat`, no commitments).
#[derive(
	Encode, Decode, DecodeWithMemTracking, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
)]
pub struct TaskTerms<Balance> {
	pub shards: u32,
	pub payout: PayoutMode,
	pub floor: Balance,
	pub holdout_commitment: Option<[u8; 32]>,
	pub scoring_commitment: Option<[u8; 32]>,
}

impl<Balance: Default> Default for TaskTerms<Balance> {
	fn default() -> Self {
		Self {
			shards: 0,
			payout: PayoutMode::Flat,
			floor: Balance::default(),
			holdout_commitment: None,
			scoring_commitment: None,
		}
	}
}

impl<Balance> TaskTerms<Balance> {
	/// Whether results are paid only by `settle_contributions`.
	pub fn by_contribution(&self) -> bool {
		self.payout == PayoutMode::ByContribution
	}
}

/// A training job with no coordinator: peers train from the last agreed model, publish updates,
/// aggregate them themselves and vote on the aggregate by CID.
#[derive(
	Encode,
	Decode,
	CloneNoBound,
	PartialEqNoBound,
	EqNoBound,
	frame_support::DebugNoBound,
	TypeInfo,
	MaxEncodedLen,
)]
#[scale_info(skip_type_params(MaxCidLength))]
pub struct PeerJob<
	AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
	BlockNumber: Clone + PartialEq + Eq + core::fmt::Debug,
	MaxCidLength: Get<u32>,
> {
	pub creator: AccountId,
	pub assets_cid: BoundedVec<u8, MaxCidLength>,
	pub assets_storage: StorageType,
	pub start_block: BlockNumber,
	pub rounds: u32,
	pub update_blocks: u32,
	pub aggregate_blocks: u32,
	pub max_peers: u32,
	pub peers: u32,
}

/// Where a peer job stands at a block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PeerJobClock {
	/// The update phase of this round.
	Update(u32),
	/// The aggregate phase of this round.
	Aggregate(u32),
	/// The last round is over.
	Ended,
}

impl<
		AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
		BlockNumber: Clone + PartialEq + Eq + core::fmt::Debug,
		MaxCidLength: Get<u32>,
	> PeerJob<AccountId, BlockNumber, MaxCidLength>
{
	/// Blocks per round: `update_blocks + aggregate_blocks` (checked to fit at creation).
	pub fn round_length(&self) -> u32 {
		self.update_blocks.saturating_add(self.aggregate_blocks)
	}

	/// The round and phase `elapsed` blocks after `start_block`.
	pub fn clock(&self, elapsed: u64) -> PeerJobClock {
		let length = u64::from(self.round_length().max(1));
		let round = match u32::try_from(elapsed / length) {
			Ok(round) if round < self.rounds => round,
			_ => return PeerJobClock::Ended,
		};
		if elapsed % length < u64::from(self.update_blocks) {
			PeerJobClock::Update(round)
		} else {
			PeerJobClock::Aggregate(round)
		}
	}
}
