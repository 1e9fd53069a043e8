//! The built-in chain specs: both come from the runtime's genesis presets, so genesis is defined
//! once, in the runtime (runtime/src/genesis_config_presets.rs).

use decentralml_runtime::WASM_BINARY;
use sc_service::ChainType;
use sp_genesis_builder::{DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET};

/// A chain spec of this runtime (no extensions).
pub type ChainSpec = sc_service::GenericChainSpec;

/// What wallets and the SDK show: 12 decimals of UNIT, generic Substrate addresses (prefix 42).
fn properties() -> sc_service::Properties {
	let mut props = sc_service::Properties::new();
	props.insert("tokenSymbol".into(), "UNIT".into());
	props.insert("tokenDecimals".into(), 12.into());
	props.insert("ss58Format".into(), 42.into());
	props
}

fn from_preset(name: &str, id: &str, kind: ChainType, preset: &str) -> Result<ChainSpec, String> {
	let wasm = WASM_BINARY.ok_or("the runtime's wasm was not built (SKIP_WASM_BUILD was set)")?;
	Ok(ChainSpec::builder(wasm, None)
		.with_name(name)
		.with_id(id)
		.with_chain_type(kind)
		.with_protocol_id("decentralml")
		.with_genesis_config_preset_name(preset)
		.with_properties(properties())
		.build())
}

/// `--dev` / `--chain dev`: one validator, //Alice.
pub fn development() -> Result<ChainSpec, String> {
	from_preset(
		"DecentralML Development",
		"decentralml_dev",
		ChainType::Development,
		DEV_RUNTIME_PRESET,
	)
}

/// `--chain local`: four validators, //Alice, //Bob, //Charlie, //Dave.
pub fn local_testnet() -> Result<ChainSpec, String> {
	from_preset(
		"DecentralML Local Testnet",
		"decentralml_local_testnet",
		ChainType::Local,
		LOCAL_TESTNET_RUNTIME_PRESET,
	)
}
