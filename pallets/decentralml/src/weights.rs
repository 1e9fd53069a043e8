//! Weights of the DecentralML calls.
//!
//! These are **documented estimates, not benchmark output** (no `frame-benchmarking` run has
//! been made for this pallet yet; see docs/runtime.md). Each weight is
//!
//! ```text
//! compute(inputs) + DbWeight.reads(r) + DbWeight.writes(w)      (ref_time, picoseconds)
//! sum of the MaxEncodedLen-based proof sizes of the items read   (proof_size, bytes)
//! ```
//!
//! where `r`/`w` count every storage access the call makes on its worst path (an `AutoAccept`
//! result also pays out, a rejection also removes `TaskWorkers`), `compute` is a per-call base
//! (the dispatch, SCALE decoding of the stored values, hashing the keys) plus a per-byte term for
//! the inputs that are copied into storage (question, CIDs, result). The per-byte term is taken
//! over the *accepted* size: the pallet fails before copying anything longer than its bound, so
//! the bytes beyond a bound cost only decoding, which the length fee already prices.
//!
//! The base figures are in line with measured FRAME calls of the same shape on reference hardware
//! (e.g. `pallet_balances::transfer_allow_death` ~ 50 us with 2 account reads/writes): a
//! `create_task` touches two accounts plus three pallet items, so it is priced above a transfer.
//!
//! `close_task` is the only call whose work depends on state: it visits the task's `TaskWorkers`
//! entries (the submissions that are `Assigned`, `PendingValidation` or `Accepted`). There are at
//! most `max_assignments <= MaxAssignments` of those at any time (the task invariant), whereas
//! the task's *submissions* are unbounded (each rejection or abandonment reopens a slot that a new
//! submission can take). The pallet therefore never iterates `TaskSubmissions` in a call: it
//! charges `close_task(MaxAssignments)` up front and refunds down to the entries it visited.

use core::marker::PhantomData;
use frame_support::{
	traits::Get,
	weights::{constants::RocksDbWeight, Weight},
};

/// Weight functions needed by `pallet-decentralml`.
pub trait WeightInfo {
	/// `q` = question bytes, `c` = assets CID bytes (the pallet clamps both to their bounds).
	fn create_task(q: u32, c: u32) -> Weight;
	fn accept_task() -> Weight;
	/// `r` = inline result bytes, `c` = result CID bytes; includes the AutoAccept payout.
	fn send_task_result(r: u32, c: u32) -> Weight;
	fn validate_task_result() -> Weight;
	/// `n` = the task's `TaskWorkers` entries (`<= MaxAssignments`).
	fn close_task(n: u32) -> Weight;
	fn abandon_task() -> Weight;
}

/// Per-byte cost of an input copied into storage (copy, SCALE encode, trie hashing): 2 ns.
pub const PER_BYTE: u64 = 2_000;

/// Proof size of one `System::Account` entry (key + `AccountInfo`, 128 bytes max) in FRAME's
/// measured-MEL accounting, as `pallet_balances` benchmarks report it.
pub const PROOF_ACCOUNT: u64 = 3_593;
/// Proof size of a plain `u32` value item (`NextTaskId`, `NextSubmissionId`).
pub const PROOF_COUNTER: u64 = 1_489;
/// Proof size of one `Tasks` entry: 16 + 4 key bytes + `TaskInfo` MaxEncodedLen (2_255) + trie
/// overhead.
pub const PROOF_TASK: u64 = 3_800;
/// Proof size of one `Submissions` entry: key + `Submission` MaxEncodedLen (2_229) + overhead.
pub const PROOF_SUBMISSION: u64 = 3_750;
/// Proof size of one `TaskWorkers` entry (two Blake2_128Concat keys, a `u32` value).
pub const PROOF_TASK_WORKER: u64 = 2_600;

/// Weights computed with the runtime's `DbWeight`.
pub struct SubstrateWeight<T>(PhantomData<T>);

macro_rules! weights_with_db {
	($db:expr) => {
		fn create_task(q: u32, c: u32) -> Weight {
			// reads: NextTaskId, Account(creator), Account(escrow)
			// writes: Account(creator), Account(escrow), Tasks, OpenTasks, NextTaskId
			Weight::from_parts(55_000_000, PROOF_COUNTER + 2 * PROOF_ACCOUNT)
				.saturating_add(Weight::from_parts(
					PER_BYTE.saturating_mul(u64::from(q).saturating_add(u64::from(c))),
					0,
				))
				.saturating_add($db.reads_writes(3, 5))
		}
		fn accept_task() -> Weight {
			// reads: Tasks, TaskWorkers, NextSubmissionId
			// writes: Submissions, TaskSubmissions, WorkerSubmissions, TaskWorkers, Tasks,
			// NextSubmissionId
			Weight::from_parts(35_000_000, PROOF_TASK + PROOF_TASK_WORKER + PROOF_COUNTER)
				.saturating_add($db.reads_writes(3, 6))
		}
		fn send_task_result(r: u32, c: u32) -> Weight {
			// reads: Submissions, Tasks, and on AutoAccept Account(escrow), Account(worker)
			// writes: Submissions, and on AutoAccept Account x2, Tasks
			Weight::from_parts(60_000_000, PROOF_SUBMISSION + PROOF_TASK + 2 * PROOF_ACCOUNT)
				.saturating_add(Weight::from_parts(
					PER_BYTE.saturating_mul(u64::from(r).saturating_add(u64::from(c))),
					0,
				))
				.saturating_add($db.reads_writes(4, 4))
		}
		fn validate_task_result() -> Weight {
			// reads: Submissions, Tasks, Account(escrow), Account(worker)
			// writes: Submissions, Tasks, Account x2 (accept) or TaskWorkers (reject)
			Weight::from_parts(50_000_000, PROOF_SUBMISSION + PROOF_TASK + 2 * PROOF_ACCOUNT)
				.saturating_add($db.reads_writes(4, 4))
		}
		fn close_task(n: u32) -> Weight {
			let n = u64::from(n);
			// reads: Tasks, the TaskWorkers prefix (n entries + the end of the prefix),
			// n Submissions, Account(escrow), Account(creator)
			// writes: per entry Submissions + TaskWorkers (abandoned), Tasks, OpenTasks,
			// Account x2
			Weight::from_parts(45_000_000, PROOF_TASK + 2 * PROOF_ACCOUNT)
				.saturating_add(Weight::from_parts(
					n.saturating_mul(12_000_000),
					n.saturating_mul(PROOF_TASK_WORKER + PROOF_SUBMISSION),
				))
				.saturating_add($db.reads(4u64.saturating_add(n.saturating_mul(2))))
				.saturating_add($db.writes(4u64.saturating_add(n.saturating_mul(2))))
		}
		fn abandon_task() -> Weight {
			// reads: Submissions, Tasks; writes: Submissions, TaskWorkers, Tasks
			Weight::from_parts(30_000_000, PROOF_SUBMISSION + PROOF_TASK)
				.saturating_add($db.reads_writes(2, 3))
		}
	};
}

impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	weights_with_db!(T::DbWeight::get());
}

/// For tests and runtimes without a `DbWeight` of their own: RocksDB figures.
impl WeightInfo for () {
	weights_with_db!(RocksDbWeight::get());
}
