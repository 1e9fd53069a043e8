//! Genesis presets (the `GenesisBuilder` runtime API): the `development` chain of the devnode.
//!
//! //Alice, //Bob, //Charlie, //Dave, //Eve and //Ferdie (sr25519 from the standard dev phrase)
//! get `DEV_ENDOWMENT` each; //Alice is the Sudo key.

use crate::{AccountId, BalancesConfig, RuntimeGenesisConfig, SudoConfig, DEV_ENDOWMENT};
use alloc::{vec, vec::Vec};
use frame_support::build_struct_json_patch;
use serde_json::Value;
use sp_genesis_builder::{PresetId, DEV_RUNTIME_PRESET};
use sp_keyring::Sr25519Keyring;

/// The dev accounts, in the devnode's order.
pub fn dev_accounts() -> Vec<AccountId> {
	vec![
		Sr25519Keyring::Alice.to_account_id(),
		Sr25519Keyring::Bob.to_account_id(),
		Sr25519Keyring::Charlie.to_account_id(),
		Sr25519Keyring::Dave.to_account_id(),
		Sr25519Keyring::Eve.to_account_id(),
		Sr25519Keyring::Ferdie.to_account_id(),
	]
}

fn genesis(endowed: Vec<AccountId>, root: AccountId) -> Value {
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig {
			balances: endowed.into_iter().map(|who| (who, DEV_ENDOWMENT)).collect::<Vec<_>>(),
		},
		sudo: SudoConfig { key: Some(root) },
	})
}

/// The `development` preset as a JSON patch over the default genesis config.
pub fn development_config_genesis() -> Value {
	genesis(dev_accounts(), Sr25519Keyring::Alice.to_account_id())
}

/// The serialized preset `id`, if the runtime has it.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
	let patch = match id.as_ref() {
		DEV_RUNTIME_PRESET => development_config_genesis(),
		_ => return None,
	};
	Some(
		serde_json::to_string(&patch)
			.expect("serialization to json is expected to work. qed.")
			.into_bytes(),
	)
}

/// The presets this runtime has.
pub fn preset_names() -> Vec<PresetId> {
	vec![PresetId::from(DEV_RUNTIME_PRESET)]
}
