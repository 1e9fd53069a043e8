//! Builds the runtime to wasm (substrate-wasm-builder) and exposes it as `WASM_BINARY`.
fn main() {
	#[cfg(feature = "std")]
	substrate_wasm_builder::WasmBuilder::build_using_defaults();
}
