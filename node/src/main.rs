//! `decentralml-node`: a Substrate node for the DecentralML runtime.
//!
//! Aura authors a block per slot (one second), GRANDPA finalizes, blocks and transactions travel
//! over the p2p network, and the standard JSON-RPC server serves clients. The chain lives in
//! ParityDB. `--dev` runs one validator (//Alice) on a temporary base path.

// The node's functions return `sc_cli::Error` / `sc_service::Error`, polkadot-sdk's own (large)
// error types, as every node built on these crates does.
#![allow(clippy::result_large_err)]

mod chain_spec;
mod cli;
mod command;
mod rpc;
mod service;

fn main() -> sc_cli::Result<()> {
	command::run()
}
