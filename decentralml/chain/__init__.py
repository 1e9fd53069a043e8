"""The on-chain layer: protocol types (docs/protocol.md) and the client that speaks them."""
