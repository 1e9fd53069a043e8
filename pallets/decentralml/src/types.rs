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
