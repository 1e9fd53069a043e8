
//! Weights of the DecentralML calls, **generated** by `decentralml-node benchmark pallet` from the
//! FRAME benchmarks in `benchmarking.rs` (the command that regenerates this file is in
//! docs/runtime.md; do not edit it by hand). The devnode charges the same weights
//! (decentralml/devnode/pallets/decentralml_weights.py is generated from this file).
//!
//! DATE: 2026-12-06, STEPS: `20`, REPEAT: `10`
//! HOSTNAME: `vm`, CPU: `AMD EPYC`, WASM-EXECUTION: `Compiled`
//! BENCHMARK CLI VERSION: 64.0.0
//!
//! `close_task` is declared for `MaxAssignments` visited `TaskWorkers` entries and refunds down to
//! the entries it visited (its post-dispatch weight).
//!
//! Measured by the dev-profile (unoptimised) build of the node: the wasm is compiled, but the
//! host functions it calls (storage, hashing) run unoptimised, so these weights are conservative
//! (several times what a release build measures). A production chain regenerates them with a
//! `--release` build on its validators' hardware.

// Executed Command:
// /root/.cache/decentralml/cargo-target/debug/decentralml-node-benchmarks
// benchmark
// pallet
// --runtime
// /work/wt-pallet/.tools/runtime/decentralml_runtime-benchmarks.wasm
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
// 10
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
	fn create_task(q: u32, c: u32, ) -> Weight {
		// Minimum execution time: 919_913_000 picoseconds.
		Weight::from_parts(947_214_155, 6196)
			.saturating_add(Weight::from_parts(10_266, 0).saturating_mul(q.into()))
			.saturating_add(Weight::from_parts(4_455, 0).saturating_mul(c.into()))
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(5_u64))
	}
	/// The range of component `s` is `[1, 64]`.
	fn accept_task(s: u32, ) -> Weight {
		// Minimum execution time: 595_529_000 picoseconds.
		Weight::from_parts(740_682_047, 5737)
			.saturating_add(Weight::from_parts(39_861_670, 0).saturating_mul(s.into()))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().reads((1_u64).saturating_mul(s.into())))
			.saturating_add(T::DbWeight::get().writes(8_u64))
			.saturating_add(Weight::from_parts(0, 2519).saturating_mul(s.into()))
	}
	/// The range of component `r` is `[1, 2048]`.
	/// The range of component `c` is `[1, 128]`.
	fn send_task_result(r: u32, c: u32, ) -> Weight {
		// Minimum execution time: 1_017_849_000 picoseconds.
		Weight::from_parts(1_028_066_809, 6196)
			.saturating_add(Weight::from_parts(12_546, 0).saturating_mul(r.into()))
			.saturating_add(Weight::from_parts(187_413, 0).saturating_mul(c.into()))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	fn validate_task_result() -> Weight {
		// Minimum execution time: 1_010_808_000 picoseconds.
		Weight::from_parts(1_109_165_000, 6196)
			.saturating_add(T::DbWeight::get().reads(5_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	/// The range of component `n` is `[0, 64]`.
	fn close_task(n: u32, ) -> Weight {
		// Minimum execution time: 1_163_146_000 picoseconds.
		Weight::from_parts(10_370_777_303, 6196)
			.saturating_add(Weight::from_parts(558_318_855, 0).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().reads((4_u64).saturating_mul(n.into())))
			.saturating_add(T::DbWeight::get().writes(4_u64))
			.saturating_add(T::DbWeight::get().writes((3_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 4729).saturating_mul(n.into()))
	}
	fn abandon_task() -> Weight {
		// Minimum execution time: 444_493_000 picoseconds.
		Weight::from_parts(489_721_000, 5737)
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	/// The range of component `q` is `[1, 2048]`.
	/// The range of component `c` is `[1, 128]`.
	fn create_task_with_terms(_q: u32, c: u32, ) -> Weight {
		// Minimum execution time: 946_372_000 picoseconds.
		Weight::from_parts(2_134_285_773, 6196)
			.saturating_add(Weight::from_parts(1_916_631, 0).saturating_mul(c.into()))
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(6_u64))
	}
	/// The range of component `n` is `[1, 64]`.
	fn settle_contributions(n: u32, ) -> Weight {
		// Minimum execution time: 1_132_540_000 picoseconds.
		Weight::from_parts(1_219_680_000, 5737)
			.saturating_add(Weight::from_parts(1_526_416_118, 0).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().reads((2_u64).saturating_mul(n.into())))
			.saturating_add(T::DbWeight::get().writes(2_u64))
			.saturating_add(T::DbWeight::get().writes((3_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 4729).saturating_mul(n.into()))
	}
	/// The range of component `c` is `[1, 128]`.
	fn create_peer_job(_c: u32, ) -> Weight {
		// Minimum execution time: 161_561_000 picoseconds.
		Weight::from_parts(177_313_742, 1489)
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn join_peer_job() -> Weight {
		// Minimum execution time: 280_709_000 picoseconds.
		Weight::from_parts(309_852_000, 3672)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn leave_peer_job() -> Weight {
		// Minimum execution time: 298_555_000 picoseconds.
		Weight::from_parts(317_013_000, 3672)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	/// The range of component `c` is `[1, 128]`.
	fn post_update(c: u32, ) -> Weight {
		// Minimum execution time: 358_285_000 picoseconds.
		Weight::from_parts(385_483_307, 3672)
			.saturating_add(Weight::from_parts(13_894, 0).saturating_mul(c.into()))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	/// The range of component `c` is `[1, 128]`.
	fn post_aggregate(c: u32, ) -> Weight {
		// Minimum execution time: 553_256_000 picoseconds.
		Weight::from_parts(593_852_823, 3672)
			.saturating_add(Weight::from_parts(37_364, 0).saturating_mul(c.into()))
			.saturating_add(T::DbWeight::get().reads(7_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
}

/// For tests and runtimes without a `DbWeight` of their own: RocksDB figures.
impl WeightInfo for () {
	fn create_task(q: u32, c: u32, ) -> Weight {
		Weight::from_parts(947_214_155, 6196)
			.saturating_add(Weight::from_parts(10_266, 0).saturating_mul(q.into()))
			.saturating_add(Weight::from_parts(4_455, 0).saturating_mul(c.into()))
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(5_u64))
	}
	fn accept_task(s: u32, ) -> Weight {
		Weight::from_parts(740_682_047, 5737)
			.saturating_add(Weight::from_parts(39_861_670, 0).saturating_mul(s.into()))
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().reads((1_u64).saturating_mul(s.into())))
			.saturating_add(RocksDbWeight::get().writes(8_u64))
			.saturating_add(Weight::from_parts(0, 2519).saturating_mul(s.into()))
	}
	fn send_task_result(r: u32, c: u32, ) -> Weight {
		Weight::from_parts(1_028_066_809, 6196)
			.saturating_add(Weight::from_parts(12_546, 0).saturating_mul(r.into()))
			.saturating_add(Weight::from_parts(187_413, 0).saturating_mul(c.into()))
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn validate_task_result() -> Weight {
		Weight::from_parts(1_109_165_000, 6196)
			.saturating_add(RocksDbWeight::get().reads(5_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn close_task(n: u32, ) -> Weight {
		Weight::from_parts(10_370_777_303, 6196)
			.saturating_add(Weight::from_parts(558_318_855, 0).saturating_mul(n.into()))
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().reads((4_u64).saturating_mul(n.into())))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
			.saturating_add(RocksDbWeight::get().writes((3_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 4729).saturating_mul(n.into()))
	}
	fn abandon_task() -> Weight {
		Weight::from_parts(489_721_000, 5737)
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn create_task_with_terms(_q: u32, c: u32, ) -> Weight {
		Weight::from_parts(2_134_285_773, 6196)
			.saturating_add(Weight::from_parts(1_916_631, 0).saturating_mul(c.into()))
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(6_u64))
	}
	fn settle_contributions(n: u32, ) -> Weight {
		Weight::from_parts(1_219_680_000, 5737)
			.saturating_add(Weight::from_parts(1_526_416_118, 0).saturating_mul(n.into()))
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().reads((2_u64).saturating_mul(n.into())))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
			.saturating_add(RocksDbWeight::get().writes((3_u64).saturating_mul(n.into())))
			.saturating_add(Weight::from_parts(0, 4729).saturating_mul(n.into()))
	}
	fn create_peer_job(_c: u32, ) -> Weight {
		Weight::from_parts(177_313_742, 1489)
			.saturating_add(RocksDbWeight::get().reads(1_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn join_peer_job() -> Weight {
		Weight::from_parts(309_852_000, 3672)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn leave_peer_job() -> Weight {
		Weight::from_parts(317_013_000, 3672)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn post_update(c: u32, ) -> Weight {
		Weight::from_parts(385_483_307, 3672)
			.saturating_add(Weight::from_parts(13_894, 0).saturating_mul(c.into()))
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn post_aggregate(c: u32, ) -> Weight {
		Weight::from_parts(593_852_823, 3672)
			.saturating_add(Weight::from_parts(37_364, 0).saturating_mul(c.into()))
			.saturating_add(RocksDbWeight::get().reads(7_u64))
			.saturating_add(RocksDbWeight::get().writes(3_u64))
	}
}
