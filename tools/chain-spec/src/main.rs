//! `decentralml-chain-spec`: writes the raw genesis chain spec of `decentralml-runtime`.
//!
//! It does what `chain-spec-builder create --raw-storage -r <wasm> named-preset development`
//! does, without that tool's build cost (~15 min and protoc): take the runtime's `development`
//! preset (a JSON patch), merge it over the default genesis config exactly as `sc-chain-spec`
//! does, run the runtime's own genesis build (`BuildStorage`, the code `GenesisBuilder::build_state`
//! runs in wasm), and add `:code` (the compact compressed wasm built alongside).
//!
//! Usage: `decentralml-chain-spec [--wasm PATH] [--out PATH]`; without `--wasm` it embeds the wasm
//! this binary was built with (`WASM_BINARY`), without `--out` it writes to stdout.

use std::{fs, io::Write, path::PathBuf, process::ExitCode};

use decentralml_runtime::{genesis_config_presets, RuntimeGenesisConfig, WASM_BINARY};
use serde_json::{json, Map, Value};
use sp_core::storage::{well_known_keys, Storage};
use sp_runtime::BuildStorage;

/// `sc_chain_spec::json_merge`: objects merge key by key (recursively), anything else in the
/// patch replaces the base value.
fn json_merge(base: &mut Value, patch: Value) {
	match (base, patch) {
		(Value::Object(base), Value::Object(patch)) => {
			for (key, value) in patch {
				json_merge(base.entry(key).or_insert(Value::Null), value);
			}
		},
		(base, patch) => *base = patch,
	}
}

/// `0x`-prefixed hex of every byte. (Not `HexDisplay`: its `Display` elides the middle of long
/// values, such as `:code`, with an ellipsis.)
fn hex(bytes: &[u8]) -> String {
	sp_core::bytes::to_hex(bytes, false)
}

/// The genesis storage of the `development` preset, with `code` as `:code`.
fn genesis_storage(code: &[u8]) -> Result<Storage, String> {
	let mut config = serde_json::to_value(RuntimeGenesisConfig::default())
		.map_err(|e| format!("default genesis config: {e}"))?;
	json_merge(&mut config, genesis_config_presets::development_config_genesis());
	let config: RuntimeGenesisConfig =
		serde_json::from_value(config).map_err(|e| format!("development preset: {e}"))?;
	let mut storage = config.build_storage()?;
	storage.top.insert(well_known_keys::CODE.to_vec(), code.to_vec());
	Ok(storage)
}

/// The raw chain spec, in `sc-chain-spec`'s JSON layout.
fn raw_chain_spec(storage: &Storage) -> Value {
	let top: Map<String, Value> =
		storage.top.iter().map(|(k, v)| (hex(k), Value::String(hex(v)))).collect();
	json!({
		"name": "DecentralML Development",
		"id": "decentralml_dev",
		"chainType": "Development",
		"bootNodes": [],
		"telemetryEndpoints": null,
		"protocolId": "decentralml",
		"properties": { "ss58Format": 42, "tokenDecimals": 12, "tokenSymbol": "UNIT" },
		"codeSubstitutes": {},
		"genesis": { "raw": { "top": top, "childrenDefault": {} } },
	})
}

fn run() -> Result<(), String> {
	let mut wasm_path: Option<PathBuf> = None;
	let mut out_path: Option<PathBuf> = None;
	let mut args = std::env::args().skip(1);
	while let Some(arg) = args.next() {
		match arg.as_str() {
			"--wasm" => wasm_path = Some(args.next().ok_or("--wasm needs a path")?.into()),
			"--out" => out_path = Some(args.next().ok_or("--out needs a path")?.into()),
			"-h" | "--help" => {
				println!("usage: decentralml-chain-spec [--wasm PATH] [--out PATH]");
				return Ok(());
			},
			other => return Err(format!("unknown argument {other:?} (see --help)")),
		}
	}
	let code = match wasm_path {
		Some(path) => fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?,
		None => WASM_BINARY
			.ok_or("this binary was built without the wasm (SKIP_WASM_BUILD); pass --wasm")?
			.to_vec(),
	};
	let spec = raw_chain_spec(&genesis_storage(&code)?);
	let mut text = serde_json::to_string_pretty(&spec).map_err(|e| e.to_string())?;
	text.push('\n');
	match out_path {
		Some(path) => {
			// Write next to the target and rename, so a reader never sees half a file.
			let tmp = path.with_extension("json.tmp");
			fs::write(&tmp, text).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
			fs::rename(&tmp, &path).map_err(|e| format!("writing {}: {e}", path.display()))?;
		},
		None => std::io::stdout().write_all(text.as_bytes()).map_err(|e| e.to_string())?,
	}
	Ok(())
}

fn main() -> ExitCode {
	match run() {
		Ok(()) => ExitCode::SUCCESS,
		Err(e) => {
			eprintln!("decentralml-chain-spec: {e}");
			ExitCode::FAILURE
		},
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn merge_replaces_leaves_and_merges_objects() {
		let mut base = json!({"a": {"x": 1, "y": [1]}, "b": 2});
		json_merge(&mut base, json!({"a": {"y": [2, 3]}, "c": null}));
		assert_eq!(base, json!({"a": {"x": 1, "y": [2, 3]}, "b": 2, "c": null}));
	}

	#[test]
	fn genesis_endows_the_dev_accounts_and_sets_sudo_and_code() {
		let storage = genesis_storage(b"\0asm-test").unwrap();
		assert_eq!(storage.top[well_known_keys::CODE].as_slice(), b"\0asm-test");
		sp_io::TestExternalities::new(storage).execute_with(|| {
			for who in genesis_config_presets::dev_accounts() {
				assert_eq!(
					decentralml_runtime::Balances::free_balance(&who),
					decentralml_runtime::DEV_ENDOWMENT
				);
			}
			let alice = sp_keyring::Sr25519Keyring::Alice.to_account_id();
			assert_eq!(pallet_sudo::Key::<decentralml_runtime::Runtime>::get(), Some(alice));
			assert_eq!(
				decentralml_runtime::Balances::total_issuance(),
				6 * decentralml_runtime::DEV_ENDOWMENT
			);
		});
	}

	#[test]
	fn hex_keeps_every_byte_of_long_values() {
		let long = vec![0xabu8; 100_000];
		let text = hex(&long);
		assert_eq!(text.len(), 2 + 2 * long.len());
		assert_eq!(sp_core::bytes::from_hex(&text).unwrap(), long);
	}

	#[test]
	fn raw_spec_has_the_properties_clients_read() {
		let spec = raw_chain_spec(&genesis_storage(b"code").unwrap());
		assert_eq!(spec["chainType"], "Development");
		assert_eq!(spec["properties"]["tokenSymbol"], "UNIT");
		assert_eq!(spec["properties"]["tokenDecimals"], 12);
		assert_eq!(spec["properties"]["ss58Format"], 42);
		let code_key = hex(well_known_keys::CODE);
		assert_eq!(spec["genesis"]["raw"]["top"][&code_key], hex(b"code"));
		// Every key and value is 0x-prefixed hex that decodes back to the storage bytes.
		let storage = genesis_storage(b"code").unwrap();
		let top = spec["genesis"]["raw"]["top"].as_object().unwrap();
		assert_eq!(top.len(), storage.top.len());
		for (key, value) in top {
			let key = sp_core::bytes::from_hex(key).unwrap();
			let value = sp_core::bytes::from_hex(value.as_str().unwrap()).unwrap();
			assert_eq!(storage.top[&key], value);
		}
	}
}
