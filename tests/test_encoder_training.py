"""The encoder fine-tuned on the knowledge base (issue 21 §4): trained on real pairs with the real model (a few steps),
stored in the database, rebuilt identically from it, the corpus re-embedded as a new generation, and the engine
answering with it; a judge trained on the old vectors is not served."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from typer.testing import CliRunner

from knowledge_base.encoder import get_embedder
from knowledge_base.encoder_store import (
    EncoderStoreError,
    current_encoder_info,
    materialize,
    record_encoder,
    spec_for,
    stored_encoders,
)
from knowledge_base.judge import judge_record
from knowledge_base.settings import get_settings
from knowledge_base.store import EncoderIdentity, KnowledgeBase, KnowledgeBaseError
from qa_service.cli import app as cli_app
from qa_service.engine import QAEngine
from qa_service.training.encoder import EncoderConfig, EncoderSources, EncoderTrainer, Pair, _batches
from qa_service.training.split import for_encoder

from conftest import SHARED

TINY = EncoderConfig(minutes=5, epochs=1, batch_size=4, cloze_pairs=8, selection_distractors=10, max_steps=2,
                     max_seq_length=128)


@pytest.fixture(scope="module")
def trained(small_kb, tmp_path_factory):
    """A private copy of the small knowledge base and a two-step training run on it."""
    kb_dir = tmp_path_factory.mktemp("encoder-kb") / "kb"
    shutil.copytree(small_kb, kb_dir)
    work = tmp_path_factory.mktemp("encoder-data")
    layperson = work / "layperson.jsonl"
    rows = [json.loads(line) for line in (SHARED / "train/layperson_statutes.jsonl").read_text("utf-8").splitlines()[:12]]
    layperson.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), "utf-8")
    gold = _gold_file(work)
    kb = KnowledgeBase(kb_dir)
    sources = EncoderSources(layperson=layperson, labelled=[gold], faq_sheets=[SHARED / "faq/sample_faq.csv"], select=[gold])
    report = EncoderTrainer(kb, get_settings(), sources, TINY).run()
    return kb, report


def _gold_file(folder: Path) -> Path:
    """One labelled question on the small knowledge base: the labelled pairs and the selection check."""
    gold = folder / "gold.jsonl"
    gold.write_text(json.dumps({"id": "g1", "question": "失业了能领多久失业保险金？", "sources": ["失业保险条例"],
                                "evidence_any": ["累计缴费时间满1年不足5年的"], "answerable": True}, ensure_ascii=False), "utf-8")
    return gold


def test_the_split_is_stable_and_near_its_share():
    ids = [f"stard-{i}" for i in range(2000)]
    share = sum(for_encoder(i, 0.75) for i in ids) / len(ids)
    assert 0.72 < share < 0.78
    assert [for_encoder(i, 0.75) for i in ids[:50]] == [for_encoder(i, 0.75) for i in ids[:50]]
    assert not any(for_encoder(i, 0.0) for i in ids[:50])


def test_pairs_come_from_every_source_with_a_same_law_negative(trained):
    kb, report = trained
    assert report.sizes["layperson"] > 0 and report.sizes["labelled"] == 1 and report.sizes["cloze"] == TINY.cloze_pairs
    trainer = EncoderTrainer(kb, get_settings(), EncoderSources(layperson=None, labelled=[], faq_sheets=[], select=[]), TINY)
    chunks = kb.chunk_records()
    by_doc: dict = {}
    for c in chunks:
        by_doc.setdefault(c.doc_id, []).append(c)
    import random

    for pair in trainer.cloze_pairs(chunks, by_doc, random.Random(1)):
        positive_title, negative_title = pair.positive.split("\n")[0], pair.negative.split("\n")[0]
        assert positive_title == negative_title  # the neighbouring-article confusion: the same document
        assert pair.positive != pair.negative and pair.query not in pair.positive


def test_batches_hold_no_duplicate_positive():
    pairs = [Pair(f"q{i}", f"p{i % 3}", "n", "t") for i in range(12)]
    import random

    for batch in _batches(pairs, 4, random.Random(0), epochs=1):
        assert len({p.positive for p in batch}) == len(batch)


def test_training_changes_the_transformer_and_keeps_the_word_embeddings(trained):
    _, report = trained
    assert report.steps == TINY.max_steps
    assert report.tensors and not any("embeddings" in name for name in report.tensors)
    assert any(name.startswith("encoder.layer.") for name in report.tensors)
    assert set(report.selection) == {"base", "fine_tuned", "questions"}


def test_a_stored_encoder_is_rebuilt_identically_and_the_corpus_reembedded(trained, tmp_path):
    kb, report = trained
    before = kb.state().generation
    record_encoder(kb, report.encoder_id, report.base_spec, report.tensors, report.info())
    spec = spec_for(report.encoder_id)
    folder = materialize(kb, spec, tmp_path / "another-machine")  # a replica with its own disk
    rebuilt = load_file(folder / "model.safetensors")
    for name, value in report.tensors.items():
        np.testing.assert_array_equal(rebuilt[name], value)
    assert stored_encoders(kb)[0]["encoder_id"] == report.encoder_id

    old_judge = judge_record(kb)
    embedder = get_embedder(str(folder), kb.encoder().backend)
    identity = EncoderIdentity(embedder.model_id, spec, kb.encoder().backend, embedder.dim)
    generation = kb.reembed(identity, embedder.embed_passages, embedder.embed_queries)
    assert generation == before + 1 and kb.encoder().spec == spec
    assert current_encoder_info(kb)["encoder_id"] == report.encoder_id
    texts = [c.embed_text for c in kb.chunk_records()[:3]]
    stored = np.vstack([c.vector for c in kb.chunk_records()[:3]])
    np.testing.assert_allclose(stored, embedder.embed_passages(texts), atol=1e-3)

    engine = QAEngine(kb, get_settings())
    assert "kb-encoder-" in engine.embedder.model_id
    answer = engine.ask("失业保险金最长能领多久？")
    assert any("失业保险条例" in c.title for c in [*answer.citations, *answer.suggestions, *answer.related])
    if old_judge is not None:  # a judge trained on the base vectors is not served on the new ones
        assert engine._state.judge is None


def test_reembedding_refuses_when_an_ingest_committed_meanwhile(small_kb, tmp_path):
    kb_dir = tmp_path / "kb"
    shutil.copytree(small_kb, kb_dir)
    kb = KnowledgeBase(kb_dir)
    encoder = kb.encoder()
    embedder = get_embedder(kb.encoder_source(encoder.spec), encoder.backend)
    before = kb.state().generation
    stored = kb.chunk_records()[0].vector.copy()
    doc = kb.chunk_records()[-1].doc_id

    def embed_while_removing(texts, progress=None):
        kb.commit_ingest([], encoder=None, remove_doc_ids=[doc])  # another process's ingest lands meanwhile
        return np.zeros((len(texts), embedder.dim), np.float32)

    with pytest.raises(KnowledgeBaseError, match="changed while it was re-embedded"):
        kb.reembed(encoder, embed_while_removing, embedder.embed_queries)
    assert kb.state().generation == before + 1  # the ingest's generation, not a re-embedded one
    np.testing.assert_array_equal(kb.chunk_records()[0].vector, stored)


def test_an_unknown_stored_encoder_is_a_clear_error(small_kb, tmp_path):
    with pytest.raises(EncoderStoreError, match="holds no encoder"):
        materialize(KnowledgeBase(small_kb), spec_for("enc-nope"), tmp_path)


def test_train_encoder_on_an_empty_knowledge_base_fails_with_one_line(tmp_path):
    result = CliRunner().invoke(cli_app, ["model", "train-encoder", "--kb", str(tmp_path / "empty")])
    assert result.exit_code != 0
    assert "is empty" in result.output and "Traceback" not in result.output


def test_the_train_encoder_command_switches_the_knowledge_base_to_a_new_generation(small_kb, tmp_path, monkeypatch):
    """The whole command, as a user runs it: train (two steps), store, re-embed with a progress bar, switch."""
    import qa_service.training.encoder as training

    kb_dir = tmp_path / "kb"
    shutil.copytree(small_kb, kb_dir)
    gold = _gold_file(tmp_path)
    monkeypatch.setattr(training, "EncoderConfig", lambda: TINY)
    monkeypatch.setattr(training, "EncoderSources", lambda: EncoderSources(
        layperson=None, labelled=[gold], faq_sheets=[], select=[gold]))
    before = KnowledgeBase(kb_dir).state().generation
    report = tmp_path / "report.json"

    result = CliRunner().invoke(cli_app, ["model", "train-encoder", "--kb", str(kb_dir), "--minutes", "1", "--force",
                                          "--no-judge", "--json", str(report)])

    assert result.exit_code == 0, result.output
    kb = KnowledgeBase(kb_dir)
    encoder_id = json.loads(report.read_text("utf-8"))["encoder_id"]
    assert kb.state().generation == before + 1
    assert kb.encoder().spec == spec_for(encoder_id)
    assert f"generation {before + 1} serves" in result.output
