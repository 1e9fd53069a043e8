//! The contribution payout of `settle_contributions` (docs/protocol.md), exact in `u128`.
//!
//! Kept apart from the pallet as a pure function so the arithmetic (the part where a planck can
//! go missing) is tested on its own, exhaustively and as a property.

use alloc::vec::Vec;
use sp_runtime::{helpers_128bit::multiply_by_rational_with_rounding, Rounding};

/// What one settlement of `k` results pays.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Settlement {
	/// `reward * k`: always spent on the listed results.
	pub pool: u128,
	/// One payout per score, in the order given.
	pub payouts: Vec<u128>,
	/// `sum(payouts)`.
	pub paid: u128,
	/// `pool - paid`: the rounding dust, less than `k`.
	pub dust: u128,
}

/// Splits `reward * k` over `k = scores.len()` results: each gets `floor`, then
/// `floor_div(split * score, sum(scores))` of `split = pool - floor * k` (equal shares
/// `floor_div(split, k)` when every score is 0).
///
/// `None` on overflow, on an empty list, or when `floor > reward` (the caller's checks rule the
/// last two out).
pub fn settle(reward: u128, floor: u128, scores: &[u32]) -> Option<Settlement> {
	let k = u128::try_from(scores.len()).ok().filter(|k| *k > 0)?;
	let pool = reward.checked_mul(k)?;
	let split = pool.checked_sub(floor.checked_mul(k)?)?;
	let total = scores.iter().try_fold(0u128, |sum, s| sum.checked_add(u128::from(*s)))?;
	let payouts = scores
		.iter()
		.map(|score| share(split, u128::from(*score), total, k)?.checked_add(floor))
		.collect::<Option<Vec<u128>>>()?;
	let paid = payouts.iter().try_fold(0u128, |sum, p| sum.checked_add(*p))?;
	let dust = pool.checked_sub(paid)?;
	Some(Settlement { pool, payouts, paid, dust })
}

/// One result's share of `split`, rounded down.
fn share(split: u128, score: u128, total: u128, k: u128) -> Option<u128> {
	if total == 0 {
		split.checked_div(k)
	} else {
		multiply_by_rational_with_rounding(split, score, total, Rounding::Down)
	}
}
