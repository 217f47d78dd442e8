"""Fine-tune the encoder on this knowledge base's domain (issue 21 §4): both sides, queries and passages, on the CPU.

    report = EncoderTrainer(kb, settings, EncoderSources()).run(progress=bar)
    report.encoder_id, report.sizes, report.selection    # the tensors are stored in the knowledge base

Training pairs (question, the passage that answers it, a hard negative from the same law), per source:
- real layperson questions with the statute articles that answer them (`train/layperson_statutes.jsonl`, STARD, MIT;
  their statutes are not in this corpus): the colloquial-to-statutory wording; negative: the most similar other
  article of the same law by the base encoder;
- labelled questions on this corpus that the judge does not fit on (`eval/questions/train_more.jsonl`);
- the curated FAQ: each question and 相似问法 against the article it names;
- pairs mined from the corpus itself: inverse cloze (a sentence of an article in force against the rest of it), the
  negative the base encoder's closest other article of the same document, which is the neighbouring-article
  confusion most of the ranking errors are.
Layperson questions and FAQ entries are split by a stable hash (`training.split`): the encoder's share here, the rest
for the judge, which is fitted after re-embedding on questions the encoder never saw, so its features look on its fit
questions as they will on a citizen's.

The loss is sentence-transformers' MultipleNegativesRankingLoss (in-batch negatives plus the hard one), at e5's
temperature scale. The word embeddings (96 of 118 M parameters) stay frozen: the stored model is the 21 M changed
parameters, and a step costs a third. Steps run under bfloat16 autocast where the CPU has it, until the time budget.
The model is chosen on the selection questions (dense retrieval over the documents they cite plus sampled
distractors, before and after), which training never sees; the test questions are never read.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from ingest.faq_sheet import read_faq_sheet
from knowledge_base.curation_signals import curated_faqs
from knowledge_base.e5_rebuild import E5_PROMPTS
from knowledge_base.encoder import Embedder, cpu_has_bf16, get_embedder
from knowledge_base.encoder_store import base_folder, write_folder
from knowledge_base.models import DocType, Validity
from knowledge_base.settings import Settings
from knowledge_base.store import ChunkRecord, KnowledgeBase

from .judge import DEFAULT_FAQ_SHEETS, DEFAULT_LAYPERSON, DEFAULT_SELECT, PROJECT, LabelledQuestion, _law_title, load_labelled
from .split import for_encoder

log = logging.getLogger(__name__)

DEFAULT_LABELLED = (PROJECT / "eval/questions/train_more.jsonl",)
_SENTENCE = re.compile(r"[^。；！？\n]+[。；！？]?")
TRAINING_FORMAT = 1  # bump when the pairs or the loop change, so a cached training is redone

Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


@dataclass(frozen=True)
class EncoderConfig:
    minutes: float = 30.0  # time budget of the optimisation steps (the pairs and the selection check come on top)
    epochs: int = 2
    batch_size: int = 16  # 32 (x3 texts of up to 256 tokens) held 16 GB of activations and was OOM-killed on 24 GB
    learning_rate: float = 2e-5
    warmup_share: float = 0.1
    scale: float = 50.0  # MultipleNegativesRankingLoss scale: 1 / temperature 0.02, near e5's own 0.01
    max_seq_length: int = 256
    cloze_pairs: int = 2500
    encoder_share: float = 0.75  # of the layperson questions and FAQ entries (the judge gets the rest)
    selection_distractors: int = 3000
    seed: int = 13
    max_steps: int = 0  # 0: as many as the pairs and epochs give (tests set a few)


@dataclass
class EncoderSources:
    layperson: Path | None = DEFAULT_LAYPERSON
    labelled: list[Path] = field(default_factory=lambda: [p for p in DEFAULT_LABELLED if p.exists()])
    faq_sheets: list[Path] = field(default_factory=lambda: [p for p in DEFAULT_FAQ_SHEETS if p.exists()])
    select: list[Path] = field(default_factory=lambda: [p for p in DEFAULT_SELECT if p.exists()])
    use_curation: bool = True


@dataclass(frozen=True)
class Pair:
    query: str
    positive: str
    negative: str
    source: str


@dataclass
class EncoderReport:
    encoder_id: str
    base_spec: str
    sizes: dict[str, int]
    steps: int
    seconds: dict[str, float]
    selection: dict[str, dict[str, float]]
    config: dict
    tensors: dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    def info(self) -> dict:
        return {"sizes": self.sizes, "steps": self.steps, "seconds": self.seconds, "selection": self.selection,
                "config": self.config, "base_spec": self.base_spec}


class EncoderTrainer:
    def __init__(self, kb: KnowledgeBase, settings: Settings, sources: EncoderSources | None = None,
                 config: EncoderConfig | None = None):
        self.kb, self.settings = kb, settings
        self.sources = sources or EncoderSources()
        self.config = config or EncoderConfig()
        self.models_dir = Path(settings.cache_dir) / "models"
        encoder = kb.encoder()
        if encoder is None:
            raise ValueError(f"the knowledge base in {kb.directory} is empty: run `policyqa ingest` first")
        self.base = encoder
        self.base_embedder = get_embedder(kb.encoder_source(encoder.spec), encoder.backend)

    # ---------------------------------------------------------------- the pairs
    def pairs(self, chunks: list[ChunkRecord], progress: Progress = _no_progress) -> dict[str, list[Pair]]:
        rng = random.Random(self.config.seed)
        by_doc: dict[str, list[ChunkRecord]] = defaultdict(list)
        for c in chunks:
            by_doc[c.doc_id].append(c)
        out = {"layperson": self.layperson_pairs(progress), "labelled": [], "faq": []}
        questions = [q for p in self.sources.labelled for q in load_labelled(p) if q.answerable]
        out["labelled"] = self.corpus_question_pairs(questions, by_doc, "labelled")
        out["faq"] = self.corpus_question_pairs(self.faq_questions(), by_doc, "faq")
        out["cloze"] = self.cloze_pairs(chunks, by_doc, rng)
        return out

    def layperson_pairs(self, progress: Progress) -> list[Pair]:
        path = self.sources.layperson
        if path is None or not Path(path).exists():
            return []
        rows = [json.loads(line) for line in Path(path).read_text("utf-8").splitlines() if line.strip()]
        rows = [r for r in rows if for_encoder(str(r["id"]), self.config.encoder_share)]
        articles: dict[tuple[str, str], str] = {}
        for r in rows:
            for a in r["articles"]:
                law = _law_title(a["law"])
                articles.setdefault((law, a["article"]), f"{law}\n{a['article']}\n{a['article']} {a.get('text', '').strip()}")
        keys = sorted(articles)
        progress("layperson articles", 0, len(keys))
        passages = self.base_embedder.embed_passages([articles[k] for k in keys])
        progress("layperson articles", len(keys), len(keys))
        queries = self.base_embedder.embed_queries([r["question"] for r in rows])
        law_of = np.array([k[0] for k in keys], dtype=object)
        out = []
        for r, qv in zip(rows, queries):
            own = {(_law_title(a["law"]), a["article"]) for a in r["articles"]}
            scores = passages @ qv
            for key in own:
                same_law = law_of == key[0]
                negative = _best_other(scores, keys, own, same_law) or _best_other(scores, keys, own, None)
                if negative is not None:
                    out.append(Pair(r["question"], articles[key], articles[negative], "layperson"))
        return out

    def faq_questions(self) -> list[LabelledQuestion]:
        entries = curated_faqs(self.kb) if self.sources.use_curation else []
        for sheet in self.sources.faq_sheets:
            entries += list(read_faq_sheet(Path(sheet).read_bytes(), Path(sheet).name).entries)
        return [LabelledQuestion(f"{e.faq_id}-{j}", text, True, tuple(e.source_titles), articles=tuple(e.source_articles),
                                 origin="faq")
                for e in entries if for_encoder(e.faq_id, self.config.encoder_share)
                for j, text in enumerate([e.question, *e.variants])]

    def corpus_question_pairs(self, questions: list[LabelledQuestion], by_doc: dict[str, list[ChunkRecord]],
                              source: str) -> list[Pair]:
        """Questions on this corpus: the chunk that answers each, against the base encoder's closest other chunk of
        the documents it cites."""
        if not questions:
            return []
        vectors = self.base_embedder.embed_queries([q.question for q in questions])
        docs_by_title: dict[str, list[str]] = defaultdict(list)
        for doc_id, cs in by_doc.items():
            docs_by_title[cs[0].title].append(doc_id)
        out = []
        for q, qv in zip(questions, vectors):
            cited = [c for title, ids in docs_by_title.items() if q.cites(title) for d in ids for c in by_doc[d]
                     if c.validity in (Validity.IN_FORCE, Validity.UNKNOWN)]
            positives = [c for c in cited if q.answered_by(c.title, c.text, c.section_path)]
            others = [c for c in cited if c not in positives and c.text not in {p.text for p in positives}]
            if not positives or not others:
                continue
            best = max(positives, key=lambda c: float(c.vector @ qv))
            negative = max(others, key=lambda c: float(c.vector @ qv))
            out.append(Pair(q.question, best.embed_text, negative.embed_text, source))
        return out

    def cloze_pairs(self, chunks: list[ChunkRecord], by_doc: dict[str, list[ChunkRecord]], rng: random.Random) -> list[Pair]:
        """Inverse cloze over articles in force: one sentence against the rest of its article; the negative is the
        base encoder's closest other article of the same document."""
        pool = [c for c in chunks if c.doc_type == DocType.REGULATION and c.validity == Validity.IN_FORCE
                and "条" in c.section_path and len(c.text) >= 80 and len(by_doc[c.doc_id]) > 1]
        rng.shuffle(pool)
        out = []
        for c in pool:
            if len(out) >= self.config.cloze_pairs:
                break
            sentences = [m.group(0) for m in _SENTENCE.finditer(c.text) if 12 <= len(m.group(0).strip()) <= 80]
            if len(sentences) < 2:
                continue
            sentence = rng.choice(sentences[1:] if len(sentences) > 2 else sentences)  # not only the 第X条 opening
            rest = c.embed_text if rng.random() < 0.1 else c.embed_text.replace(sentence, "", 1)
            siblings = [o for o in by_doc[c.doc_id] if o.row_id != c.row_id and o.text != c.text]
            negative = max(siblings, key=lambda o: float(o.vector @ c.vector))
            out.append(Pair(_strip_label(sentence.strip()), rest, negative.embed_text, "cloze"))
        return out

    # ---------------------------------------------------------------- training
    def fit(self, pairs: list[Pair], progress: Progress = _no_progress) -> tuple[SentenceTransformer, int, float]:
        """Train a copy of the base model on the pairs: (model, steps, seconds)."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        model = SentenceTransformer(str(base_folder_of(self)), device="cpu")
        model.max_seq_length = cfg.max_seq_length
        for name, p in model.named_parameters():
            p.requires_grad = "embeddings" not in name
        batches = _batches(pairs, cfg.batch_size, random.Random(cfg.seed), cfg.epochs)
        if cfg.max_steps:
            batches = batches[: cfg.max_steps]
        loss = MultipleNegativesRankingLoss(model, scale=cfg.scale)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.01)
        plan = {"total": len(batches)}  # re-planned from the measured step time, so the schedule ends in the budget
        warmup = max(1, int(cfg.warmup_share * len(batches)))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min((step + 1) / warmup, max(0.0, (plan["total"] - step) / max(1, plan["total"] - warmup))))
        bf16 = cpu_has_bf16()
        start = time.perf_counter()
        model.train()
        steps = 0
        for steps, batch in enumerate(batches, start=1):
            features = [model.preprocess([E5_PROMPTS[kind] + t for t in texts])
                        for kind, texts in (("query", [p.query for p in batch]), ("passage", [p.positive for p in batch]),
                                            ("passage", [p.negative for p in batch]))]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                value = loss(features, None)
            value.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            elapsed = time.perf_counter() - start
            if steps == 5 and not cfg.max_steps:
                plan["total"] = min(len(batches), max(warmup + 1, int(cfg.minutes * 60 / (elapsed / steps))))
            progress("training steps", steps, plan["total"])
            if steps >= plan["total"]:
                break
        model.eval()
        return model, steps, time.perf_counter() - start

    # ---------------------------------------------------------------- choosing
    def selection(self, model: SentenceTransformer, chunks: list[ChunkRecord]) -> dict[str, dict[str, float]]:
        """Dense retrieval of the selection questions over the chunks of the documents they cite plus seeded
        distractors, by the base vectors (as stored) and by the trained model: hit@1, hit@5, MRR@10."""
        questions = [q for p in self.sources.select for q in load_labelled(p) if q.answerable]
        if not questions:
            return {}
        rng = random.Random(self.config.seed)
        cited = [c for c in chunks if any(q.cites(c.title) for q in questions)]
        cited_ids = {c.row_id for c in cited}
        rest = [c for c in chunks if c.row_id not in cited_ids]
        pool = cited + rng.sample(rest, min(self.config.selection_distractors, len(rest)))
        base_p = np.vstack([c.vector for c in pool])
        base_q = self.base_embedder.embed_queries([q.question for q in questions])
        trained = _st_embedder(model)
        tuned_p = trained.embed_passages([c.embed_text for c in pool])
        tuned_q = trained.embed_queries([q.question for q in questions])
        return {"base": _retrieval(base_q, base_p, pool, questions), "fine_tuned": _retrieval(tuned_q, tuned_p, pool, questions),
                "questions": {"answerable": len(questions), "passages": len(pool)}}

    def run(self, progress: Progress = _no_progress) -> EncoderReport:
        """Pairs, training (cached by data and config), the selection check; nothing is stored here."""
        times: dict[str, float] = {}
        t = time.perf_counter()
        chunks = self.kb.chunk_records()
        pairs = self.pairs(chunks, progress)
        times["pairs"] = time.perf_counter() - t
        flat = [p for ps in pairs.values() for p in ps]
        sizes = {k: len(v) for k, v in pairs.items()}
        key = hashlib.sha256(json.dumps([TRAINING_FORMAT, self.base.model_id, asdict(self.config),
                                         [asdict(p) for p in flat]], ensure_ascii=False).encode()).hexdigest()[:16]
        encoder_id = f"enc-{key}"
        cache = Path(self.settings.cache_dir) / "encoder-training" / encoder_id
        if (cache / "report.json").is_file():
            cached = json.loads((cache / "report.json").read_text("utf-8"))
            tensors = load_file(cache / "tensors.safetensors")
            model = SentenceTransformer(str(_folder(self, encoder_id, tensors)), device="cpu")
            times.update({f"cached_{k}": v for k, v in cached["seconds"].items()})
            steps = cached["steps"]
        else:
            model, steps, times["training"] = self.fit(flat, progress)
            tensors = {name: p.detach().float().numpy().copy() for name, p in model[0].auto_model.named_parameters()
                       if p.requires_grad}
            cache.mkdir(parents=True, exist_ok=True)
            save_file(tensors, cache / "tensors.safetensors")
            (cache / "report.json").write_text(json.dumps({"seconds": {"training": times["training"]}, "steps": steps}), "utf-8")
        t = time.perf_counter()
        selection = self.selection(model, chunks)
        times["selection"] = time.perf_counter() - t
        return EncoderReport(encoder_id, self.base.spec, sizes, steps, times, selection, asdict(self.config), tensors)


def base_folder_of(trainer: EncoderTrainer) -> Path:
    """The base model's folder: the knowledge base's current encoder (a stored one is trained further from itself)."""
    source = trainer.kb.encoder_source(trainer.base.spec)
    return Path(source) if Path(source).is_dir() else base_folder(source, trainer.models_dir)


def _folder(trainer: EncoderTrainer, encoder_id: str, tensors: dict[str, np.ndarray]) -> Path:
    folder = trainer.models_dir / f"kb-encoder-{encoder_id}"
    write_folder(base_folder_of(trainer), tensors, folder, encoder_id)
    return folder


def _best_other(scores: np.ndarray, keys: list, own: set, mask: np.ndarray | None):
    order = np.argsort(-scores)
    for i in order:
        if keys[i] not in own and (mask is None or mask[i]):
            return keys[i]
    return None


def _strip_label(sentence: str) -> str:
    return re.sub(r"^第[一二三四五六七八九十百千零〇\d]+条\s*", "", sentence)


def _batches(pairs: list[Pair], size: int, rng: random.Random, epochs: int) -> list[list[Pair]]:
    """Shuffled batches in which no two pairs share a positive or a query (an in-batch duplicate is a false
    negative)."""
    out: list[list[Pair]] = []
    for _ in range(epochs):
        todo = pairs[:]
        rng.shuffle(todo)
        while todo:
            batch, seen, left = [], set(), []
            for p in todo:
                if len(batch) < size and p.positive not in seen and p.query not in seen:
                    batch.append(p)
                    seen.update((p.positive, p.query))
                else:
                    left.append(p)
            if len(batch) < 2:
                break
            out.append(batch)
            todo = left
    return out


def _st_embedder(model: SentenceTransformer) -> Embedder:
    bf16 = cpu_has_bf16()

    def encode(texts: list[str], kind: str) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model.encode([E5_PROMPTS[kind] + t for t in texts], batch_size=len(texts), convert_to_numpy=True,
                                normalize_embeddings=True).astype(np.float32)

    return Embedder("training", model.get_embedding_dimension(), encode)


def _retrieval(q: np.ndarray, p: np.ndarray, pool: list[ChunkRecord], questions: list[LabelledQuestion]) -> dict[str, float]:
    top = np.argsort(-(q @ p.T), axis=1)[:, :10]
    ranks = []
    for question, row in zip(questions, top):
        hit = next((r for r, i in enumerate(row) if question.answered_by(pool[i].title, pool[i].text, pool[i].section_path)), None)
        ranks.append(hit)
    n = len(ranks)
    return {"hit@1": sum(r == 0 for r in ranks) / n, "hit@5": sum(r is not None and r < 5 for r in ranks) / n,
            "mrr@10": sum(1 / (r + 1) for r in ranks if r is not None) / n}
