"""The judge's query tower: the encoder's query side fine-tuned on this knowledge base's labelled questions.

    store_tower(kb, tower_id, base_model_id, weights)   # after training (qa_service.tower_train)
    folder = tower_folder(kb, tower_id, base_folder, cache_dir)   # serving: a sentence-transformers folder

Passages keep the vectors the knowledge base stored for them; only the question is encoded a second time, by the
tower, and its cosine with each candidate's stored vector is a judge feature (knowledge_base.judge.
set_tower_features). Training leaves the word embeddings frozen, so what a tower changes is the transformer layers
(about a fifth of the weights, 85 MB): those tensors are stored in the database beside the judge (table
`judge_towers`, safetensors), so every replica serves the same tower. Each process materializes a tower once into the
cache as a full sentence-transformers folder (the base encoder's files with the changed tensors) and runs it on
onnxruntime with int8 weights (qa_service.engine.load_tower_embedder: 5 ms a question and 120 MB, against 12 ms and
470 MB in fp32; training computes the selection questions' cosines with the same runtime, so the refusal threshold
is chosen on what serving computes).
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Callable

WEIGHTS_FILE = "model.safetensors"
FROZEN_PREFIXES = ("embeddings.word_embeddings.",)  # not trained, not stored: the base encoder supplies them


def tower_id_of(weights: bytes) -> str:
    return f"tower-{hashlib.sha256(weights).hexdigest()[:16]}"


def trained_tensors(state: dict) -> bytes:
    """The safetensors bytes of a tower's state dict without the frozen tensors."""
    from safetensors.torch import save

    return save({k: v.detach().contiguous().cpu() for k, v in state.items() if not k.startswith(FROZEN_PREFIXES)})


def store_tower(kb, tower_id: str, base_model_id: str, weights: bytes) -> None:
    """Record a tower's weights in the knowledge base (kept until no judge names it: remove_unused_towers)."""
    from .db import JudgeTowerRow

    with kb.session() as s:
        row = s.get(JudgeTowerRow, tower_id) or JudgeTowerRow(tower_id=tower_id)
        row.base_model, row.weights = base_model_id, weights
        s.merge(row)
        s.commit()


def remove_unused_towers(kb, keep: str) -> int:
    """Delete every stored tower but `keep` (the current judge's); returns how many."""
    from .db import JudgeTowerRow

    with kb.session() as s:
        rows = s.query(JudgeTowerRow.tower_id).filter(JudgeTowerRow.tower_id != keep).all()
        for (tower_id,) in rows:
            s.delete(s.get(JudgeTowerRow, tower_id))
        s.commit()
        return len(rows)


def base_folder(kb, settings) -> Path:
    """The sentence-transformers folder of the knowledge base's encoder: what its towers are fine-tuned from."""
    from .encoder import encoder_folder

    encoder = kb.encoder()
    return encoder_folder((encoder.spec if encoder else "") or settings.embedding_model, Path(settings.cache_dir))


def tower_folder(kb, tower_id: str, base_folder: Path, cache_dir: Path) -> Path:
    """The tower as a sentence-transformers folder under `cache_dir/towers/`, materialized from the database on first
    use (the base folder's files and weights, with the stored tensors in place of the base's)."""
    return materialize(lambda: _stored_weights(kb, tower_id), tower_id, base_folder, cache_dir)


def materialize(weights: Callable[[], bytes], tower_id: str, base_folder: Path, cache_dir: Path) -> Path:
    """`cache_dir/towers/<tower_id>`, built from the base folder and `weights()` unless it is there already."""
    from .encoder import build_lock

    folder = Path(cache_dir) / "towers" / tower_id
    if (folder / WEIGHTS_FILE).is_file():
        return folder
    with build_lock(folder):
        if not (folder / WEIGHTS_FILE).is_file():
            _materialize(Path(base_folder), weights(), folder)
    return folder


def _stored_weights(kb, tower_id: str) -> bytes:
    from .db import JudgeTowerRow

    with kb.session() as s:
        row = s.get(JudgeTowerRow, tower_id)
        if row is None:
            raise LookupError(f"the judge's query tower {tower_id} is not in the knowledge base: retrain the judge")
        return bytes(row.weights)


def _materialize(base: Path, weights: bytes, folder: Path) -> None:
    from safetensors.torch import load, load_file, save_file

    from .e5_rebuild import copy_model_files

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.building-", dir=folder.parent))
    try:
        copy_model_files(base, tmp)
        state = load_file(str(base / WEIGHTS_FILE))
        changed = load(weights)
        unknown = set(changed) - set(state)
        if unknown:
            raise ValueError(f"the tower's tensors do not fit the base encoder ({sorted(unknown)[:3]} …)")
        state.update(changed)
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
