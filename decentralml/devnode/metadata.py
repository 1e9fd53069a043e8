"""MetadataV14 generated from the runtime's pallet declarations.

The portable type registry comes from the same codec objects the node encodes with; the
``RuntimeMetadataPrefixed`` bytes (``b"meta" ++ 14 ++ MetadataV14``) are encoded by scalecodec,
the client-side library, so the encoding is by construction the one substrate-interface decodes.
"""

from __future__ import annotations

from typing import Any

from scalecodec.base import RuntimeConfigurationObject
from scalecodec.type_registry import load_type_registry_preset

from decentralml.devnode.extrinsics import MULTI_SIGNATURE
from decentralml.devnode.pallet import Pallet, resolve_outer
from decentralml.devnode.primitives import ERA, HASH, MULTI_ADDRESS
from decentralml.devnode.runtime import Runtime
from decentralml.devnode.scale import (
    BYTES,
    COMPACT_U32,
    COMPACT_U128,
    U32,
    UNIT,
    Codec,
    Field,
    Struct,
    Tuple,
    TypeRegistry,
)

_EXT = "frame_system::extensions"


def _ext(path: str, fields: list[Field]) -> Struct:
    return Struct(path, fields, params=[("T", None)])


#: (identifier, extension type, additional_signed type) in FRAME order.
SIGNED_EXTENSIONS: tuple[tuple[str, Codec, Codec], ...] = (
    ("CheckNonZeroSender", _ext(f"{_EXT}::check_non_zero_sender::CheckNonZeroSender", []), UNIT),
    ("CheckSpecVersion", _ext(f"{_EXT}::check_spec_version::CheckSpecVersion", []), U32),
    ("CheckTxVersion", _ext(f"{_EXT}::check_tx_version::CheckTxVersion", []), U32),
    ("CheckGenesis", _ext(f"{_EXT}::check_genesis::CheckGenesis", []), HASH),
    ("CheckMortality", _ext(f"{_EXT}::check_mortality::CheckMortality",
                            [Field(None, ERA, "Era")]), HASH),
    ("CheckNonce", _ext(f"{_EXT}::check_nonce::CheckNonce",
                        [Field(None, COMPACT_U32, "T::Nonce")]), UNIT),
    ("CheckWeight", _ext(f"{_EXT}::check_weight::CheckWeight", []), UNIT),
    ("ChargeTransactionPayment", _ext(
        "pallet_transaction_payment::ChargeTransactionPayment",
        [Field(None, COMPACT_U128, "BalanceOf<T>")]), UNIT),
    # no bytes on the wire: the runtime books a call's actual (post-dispatch) weight with it
    ("WeightReclaim", _ext(f"{_EXT}::weight_reclaim::WeightReclaim", []), UNIT),
)


def _storage(reg: TypeRegistry, runtime: Runtime, pallet: Pallet) -> dict[str, Any] | None:
    if not pallet.STORAGE:
        return None
    entries = []
    for item in pallet.STORAGE:
        value_id = reg.id_of(resolve_outer(item.value, runtime.outer_codecs))
        if not item.keys:
            kind: dict[str, Any] = {"Plain": value_id}
        else:
            key_codecs = [c for _, c in item.keys]
            key = key_codecs[0] if len(key_codecs) == 1 else Tuple(*key_codecs)
            kind = {"Map": {"hashers": [h for h, _ in item.keys], "key": reg.id_of(key),
                            "value": value_id}}
        entries.append({
            "name": item.name,
            "modifier": "Default" if item.has_default else "Optional",
            "type": kind,
            "default": "0x" + (resolve_outer(item.value, runtime.outer_codecs).encode(item.default)
                               if item.has_default else b"\x00").hex(),
            "documentation": [item.docs] if item.docs else [],
        })
    return {"prefix": pallet.NAME, "entries": entries}


def build_metadata_value(runtime: Runtime) -> list[Any]:
    """The metadata as the Python value scalecodec's ``MetadataVersioned`` encoder takes."""
    reg = TypeRegistry()
    pallets = []
    for p in runtime.pallets:
        pallets.append({
            "name": p.NAME,
            "storage": _storage(reg, runtime, p),
            "calls": None if p.call_codec is None else {"ty": reg.id_of(p.call_codec)},
            "event": None if p.event_codec is None else {"ty": reg.id_of(p.event_codec)},
            "constants": [{"name": c.name, "type": reg.id_of(c.codec),
                           "value": "0x" + c.codec.encode(c.value).hex(),
                           "documentation": [c.docs] if c.docs else []}
                          for c in p.constants()],
            "error": None if p.error_codec is None else {"ty": reg.id_of(p.error_codec)},
            "index": p.INDEX,
        })
    extra = Tuple(*(ext for _, ext, _ in SIGNED_EXTENSIONS))
    unchecked = Struct("sp_runtime::generic::unchecked_extrinsic::UncheckedExtrinsic",
                       [Field(None, BYTES, "Vec<u8>")],
                       params=[("Address", MULTI_ADDRESS), ("Call", runtime.call_codec),
                               ("Signature", MULTI_SIGNATURE), ("Extra", extra)])
    reg.id_of(runtime.event_record_codec)
    extrinsic = {
        "ty": reg.id_of(unchecked),
        "version": 4,
        "signed_extensions": [{"identifier": name, "ty": reg.id_of(ext),
                               "additional_signed": reg.id_of(add)}
                              for name, ext, add in SIGNED_EXTENSIONS],
    }
    runtime_type = reg.id_of(Struct("decentralml_devnode_runtime::Runtime", []))
    return ["0x6d657461", {"V14": {"types": {"types": reg.portable()}, "pallets": pallets,
                                   "extrinsic": extrinsic, "runtime_type": runtime_type}}]


def encode_metadata(runtime: Runtime) -> bytes:
    """``RuntimeMetadataPrefixed`` bytes, as ``state_getMetadata`` returns them."""
    config = RuntimeConfigurationObject()
    config.update_type_registry(load_type_registry_preset("core"))
    obj = config.create_scale_object("MetadataVersioned")
    data = obj.encode(build_metadata_value(runtime))
    return bytes(data.data)
