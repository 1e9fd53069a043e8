
//! Weights of the DecentralML calls, **generated** by `decentralml-node benchmark pallet` from the
//! FRAME benchmarks in `benchmarking.rs` (the command that regenerates this file is in
//! docs/runtime.md; do not edit it by hand). The devnode charges the same weights
//! (decentralml/devnode/pallets/decentralml_weights.py is generated from this file).
//!
//! DATE: 2026-12-06, STEPS: `20`, REPEAT: `20`
//! HOSTNAME: `vm`, CPU: `AMD EPYC`, WASM-EXECUTION: `Compiled`
//! BENCHMARK CLI VERSION: 64.0.0
//!
//! `close_task` is declared for `MaxAssignments` visited `TaskWorkers` entries and refunds down to
//! the entries it visited (its post-dispatch weight); `accept_task` likewise for `MaxAssignments`
//! shards looked at, refunded down to the shards it looked at (none on a task without shards).
//!
//! Measured by the dev-profile (unoptimised) build of the node: the wasm is compiled, but the
//! host functions it calls (storage, hashing) run unoptimised, so these weights are conservative
//! (several times what a release build measures). A production chain regenerates them with a
//! `--release` build on its validators' hardware.

// Executed Command:
// decentralml-node-benchmarks
// benchmark
// pallet
// --runtime
// .tools/runtime/decentralml_runtime-benchmarks.wasm
// --genesis-builder
// runtime
// --genesis-builder-preset
// development
// --pallet
// pallet_decentralml
// --extrinsic
// *
// --steps
// 20
// --repeat
// 20
// --wasm-execution
// compiled
// --heap-pages
// 4096
// --template
// pallets/decentralml/weight-template.hbs
// --output
// pallets/decentralml/src/weights.rs

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use core::marker::PhantomData;
use frame_support::{traits::Get, weights::{constants::RocksDbWeight, Weight}};

/// Weight functions needed by `pallet-decentralml`.
pub trait WeightInfo {
	fn create_task(q: u32, c: u32, ) -> Weight;
	fn accept_task(s: u32, ) -> Weight;
	fn send_task_result(r: u32, c: u32, ) -> Weight;
	fn validate_task_result() -> Weight;
	fn close_task(n: u32, ) -> Weight;
	fn abandon_task() -> Weight;
	fn create_task_with_terms(q: u32, c: u32, ) -> Weight;
	fn settle_contributions(n: u32, ) -> Weight;
	fn create_peer_job(c: u32, ) -> Weight;
	fn join_peer_job() -> Weight;
	fn leave_peer_job() -> Weight;
	fn post_update(c: u32, ) -> Weight;
	fn post_aggregate(c: u32, ) -> Weight;
}

/// Weights with the runtime's `DbWeight`.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	/// The range of component `q` is `[1, 2048]`.
	/// The range of component `c` is `[1, 128]`.
	fn create_task(_q: u32, c: u32, ) -> Weight {
		// Minimum execution time: 928_015_000 picoseconds.
		Weight::from_parts(980_151_714, 6196)
			.saturating_add(Weight::from_parts(127_445, 0).saturating_mul(c.into()))
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(5_u64))
	}
	/// The range of component `s` is `[1, 64]`.
	fn accept_task(s: u32, ) -> Weight {
		// Minimum execution time: 561_928_000 picoseconds.
		Weight::from_parts(858_267_950, 5737)
			.saturating_add(Weight::from_parts(46_239_863, 0).saturating_mul(s.into()))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().reads((1_u64).saturating_mul(s.into())))
			.saturating_add(T::DbWeight::get().writes(8_u64))
			.saturating_add(Weight::from_parts(0, 2519).saturating_mul(s.into()))
	}
	/// The range of component `r` is `[1, 2048]`.
	/// The range of component `c` is `[1, 128]`.
	fn send_task_result(_r: u32, _c: u32, ) -> Weight {
		// Minimum execution time: 1_026_292_000 picoseconds.
		Weight::from_parts(1_097_243_671, 6196)
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	fn validate_task_result() -> Weight {
		// Minimum execution time: 1_011_960_000 picoseconds.
		Weight::from_parts(1_055_645_000, 6196)
			.saturating_add(T::DbWeight::get().reads(5_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	/// The range of component `n` is `[0, 64]`.
	fn close_task(n: u32, ) -> Weight {
		// Minimum execution time: 1_109_085_000 picoseconds.
		Weight::from_parts(1_196_385_904, 6196)
			.saturating_add(Weight::from_parts(265_079_986, 0).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().reads((4_u64).saturating_mul(n.into())))
			.saturating_add(T::DbWeight::get().writes(4_u64))
			.saturating_add(T::DbWeight::get().writes((3_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 4729).saturating_mul(n.into()))
	}
	fn abandon_task() -> Weight {
		// Minimum execution time: 443_011_000 picoseconds.
		Weight::from_parts(466_967_000, 5737)
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	/// The range of component `q` is `[1, 2048]`.
	/// The range of component `c` is `[1, 128]`.
	fn create_task_with_terms(_q: u32, c: u32, ) -> Weight {
		// Minimum execution time: 946_873_000 picoseconds.
		Weight::from_parts(985_813_449, 6196)
			.saturating_add(Weight::from_parts(119_250, 0).saturating_mul(c.into()))
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(6_u64))
	}
	/// The range of component `n` is `[1, 64]`.
	fn settle_contributions(n: u32, ) -> Weight {
		// Minimum execution time: 1_127_403_000 picoseconds.
		Weight::from_parts(1_577_604_641, 5737)
			.saturating_add(Weight::from_parts(1_681_293_336, 0).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().reads((2_u64).saturating_mul(n.into())))
			.saturating_add(T::DbWeight::get().writes(2_u64))
			.saturating_add(T::DbWeight::get().writes((3_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 4729).saturating_mul(n.into()))
	}
	/// The range of component `c` is `[1, 128]`.
	fn create_peer_job(c: u32, ) -> Weight {
		// Minimum execution time: 161_601_000 picoseconds.
		Weight::from_parts(167_485_496, 1489)
			.saturating_add(Weight::from_parts(8, 0).saturating_mul(c.into()))
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn join_peer_job() -> Weight {
		// Minimum execution time: 285_245_000 picoseconds.
		Weight::from_parts(293_669_000, 3672)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn leave_peer_job() -> Weight {
		// Minimum execution time: 301_610_000 picoseconds.
		Weight::from_parts(313_217_000, 3672)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	/// The range of component `c` is `[1, 128]`.
	fn post_update(_c: u32, ) -> Weight {
		// Minimum execution time: 360_878_000 picoseconds.
		Weight::from_parts(371_252_201, 3672)
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	/// The range of component `c` is `[1, 128]`.
	fn post_aggregate(c: u32, ) -> Weight {
		// Minimum execution time: 560_837_000 picoseconds.
		Weight::from_parts(600_041_697, 3672)
			.saturating_add(Weight::from_parts(19_906, 0).saturating_mul(c.into()))
			.saturating_add(T::DbWeight::get().reads(7_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
}

/// For tests and runtimes without a `DbWeight` of their own: RocksDB figures.
impl WeightInfo for () {
	fn create_task(_q: u32, c: u32, ) -> Weight {
		Weight::from_parts(980_151_714, 6196)
			.saturating_add(Weight::from_parts(127_445, 0).saturating_mul(c.into()))
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(5_u64))
	}
	fn accept_task(s: u32, ) -> Weight {
		Weight::from_parts(858_267_950, 5737)
			.saturating_add(Weight::from_parts(46_239_863, 0).saturating_mul(s.into()))
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().reads((1_u64).saturating_mul(s.into())))
			.saturating_add(RocksDbWeight::get().writes(8_u64))
			.saturating_add(Weight::from_parts(0, 2519).saturating_mul(s.into()))
	}
	fn send_task_result(_r: u32, _c: u32, ) -> Weight {
		Weight::from_parts(1_097_243_671, 6196)
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn validate_task_result() -> Weight {
		Weight::from_parts(1_055_645_000, 6196)
			.saturating_add(RocksDbWeight::get().reads(5_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn close_task(n: u32, ) -> Weight {
		Weight::from_parts(1_196_385_904, 6196)
			.saturating_add(Weight::from_parts(265_079_986, 0).saturating_mul(n.into()))
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().reads((4_u64).saturating_mul(n.into())))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
			.saturating_add(RocksDbWeight::get().writes((3_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 4729).saturating_mul(n.into()))
	}
	fn abandon_task() -> Weight {
		Weight::from_parts(466_967_000, 5737)
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn create_task_with_terms(_q: u32, c: u32, ) -> Weight {
		Weight::from_parts(985_813_449, 6196)
			.saturating_add(Weight::from_parts(119_250, 0).saturating_mul(c.into()))
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(6_u64))
	}
	fn settle_contributions(n: u32, ) -> Weight {
		Weight::from_parts(1_577_604_641, 5737)
			.saturating_add(Weight::from_parts(1_681_293_336, 0).saturating_mul(n.into()))
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().reads((2_u64).saturating_mul(n.into())))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
			.saturating_add(RocksDbWeight::get().writes((3_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 4729).saturating_mul(n.into()))
	}
	fn create_peer_job(c: u32, ) -> Weight {
		Weight::from_parts(167_485_496, 1489)
			.saturating_add(Weight::from_parts(8, 0).saturating_mul(c.into()))
			.saturating_add(RocksDbWeight::get().reads(1_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn join_peer_job() -> Weight {
		Weight::from_parts(293_669_000, 3672)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn leave_peer_job() -> Weight {
		Weight::from_parts(313_217_000, 3672)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn post_update(_c: u32, ) -> Weight {
		Weight::from_parts(371_252_201, 3672)
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn post_aggregate(c: u32, ) -> Weight {
		Weight::from_parts(600_041_697, 3672)
			.saturating_add(Weight::from_parts(19_906, 0).saturating_mul(c.into()))
			.saturating_add(RocksDbWeight::get().reads(7_u64))
			.saturating_add(RocksDbWeight::get().writes(3_u64))
	}
}
