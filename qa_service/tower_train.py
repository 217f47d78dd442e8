"""Train the judge's query tower (knowledge_base.tower): the encoder's query side, fine-tuned contrastively on the
judge's own labelled questions against the vectors the knowledge base stored for their passages.

    towers = CrossFittedTowers(base_folder, config).fit(examples, vectors_of)   # two towers, one per half
    towers.out_of_fold(examples)   # each question's cosines from the tower that did not see it (ranker features)
    served = towers.soup()         # the two towers' averaged weights: one model serves

Why this shape (measured on the full corpus, README "The answer judge"):
- only the question side moves: passages keep their stored vectors, so nothing is re-embedded (the full corpus
  takes 35 min) and the tower is one more query encoding at serving;
- the loss is a softmax over the question's positive passage, its hardest non-answering candidates and the other
  questions' positives in the batch (temperature 0.05), from the same lists the ranker is trained on, so positives
  and negatives are always the same kind of text;
- the word embeddings stay frozen (a fifth of the weights are stored instead of all of them);
- the ranker must learn how far to trust the tower on questions the tower did not see, so the fit questions get
  cross-fitted cosines (two towers, each trained on one half, crc32 of the question id), and the selection questions
  and serving get the average of the two towers' weights (fine-tuned from one start, they average well: a "soup").
Deterministic for a seed on a given machine (torch on CPU, fixed thread count).
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from knowledge_base.judge import JudgeConfig
from knowledge_base.tower import FROZEN_PREFIXES

FOLDS = 2


@dataclass(frozen=True)
class TowerExample:
    """A question and the stored vectors of its candidates, labelled."""

    qid: str
    text: str  # the normalized question (what the engine encodes)
    vectors: np.ndarray  # (n, dim) candidates' stored passage vectors
    labels: np.ndarray  # 1: answers
    base_cos: np.ndarray  # the base encoder's cosine per candidate (to pick the hardest negatives)
    trainable: bool  # has a positive and is not a leave-the-document-out copy


def fold_of(qid: str) -> int:
    return zlib.crc32(qid.encode()) % FOLDS


class CrossFittedTowers:
    def __init__(self, base_folder: Path, config: JudgeConfig,
                 progress: Callable[[str, int, int], None] | None = None):
        self.base_folder = Path(base_folder)
        self.config = config
        self.progress = progress or (lambda stage, done, total: None)
        self.towers: list = []
        self.seconds: dict[str, float] = {}

    def fit(self, examples: Sequence[TowerExample]) -> "CrossFittedTowers":
        t = time.perf_counter()
        self.towers = [self._train([e for e in examples if e.trainable and fold_of(e.qid) != k], k) for k in range(FOLDS)]
        self.seconds["tower_train"] = time.perf_counter() - t
        return self

    def out_of_fold(self, examples: Sequence[TowerExample]) -> list[np.ndarray]:
        """Each example's tower cosines from the tower that did not train on its question."""
        out: list[np.ndarray | None] = [None] * len(examples)
        for k, tower in enumerate(self.towers):
            held = [i for i, e in enumerate(examples) if fold_of(e.qid) == k]
            vecs = encode(tower, [examples[i].text for i in held])
            for i, v in zip(held, vecs):
                out[i] = examples[i].vectors @ v
        return out

    def soup(self):
        """One model with the towers' averaged weights (the served tower)."""
        return average_weights(self.towers)

    def _train(self, data: list[TowerExample], k: int):
        import torch
        from sentence_transformers import SentenceTransformer

        c = self.config
        torch.manual_seed(c.seed + k)
        rng = np.random.default_rng(c.seed + k)
        model = SentenceTransformer(str(self.base_folder), device="cpu")
        for name, p in model[0].auto_model.named_parameters():
            p.requires_grad_(not name.startswith(FROZEN_PREFIXES))
        batches = []
        for e in data:
            neg = np.flatnonzero(e.labels == 0)
            neg = neg[np.argsort(-e.base_cos[neg], kind="stable")][: c.tower_negatives]
            batches.append((e.text, e.vectors[e.labels == 1], e.vectors[neg]))
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=c.tower_learning_rate, weight_decay=0.01)
        per_epoch = (len(batches) + c.tower_batch - 1) // c.tower_batch
        steps = max(1, c.tower_epochs * per_epoch)
        sched = warmup_linear(opt, steps)
        model.train()
        done = 0
        for _ in range(c.tower_epochs):
            order = rng.permutation(len(batches))
            for i in range(0, len(order), c.tower_batch):
                batch = [batches[j] for j in order[i:i + c.tower_batch]]
                features = model.preprocess([query_prompt(model) + b[0] for b in batch])
                q = torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=-1)
                pos = torch.tensor(np.stack([b[1][rng.integers(len(b[1]))] for b in batch]))
                loss = q.new_zeros(())
                for j, (_, _, negatives) in enumerate(batch):
                    # the positive first, then the question's hard negatives and the batch's other positives
                    cand = torch.cat([pos[j:j + 1], torch.tensor(negatives), pos[torch.arange(len(batch)) != j]])
                    logits = (cand @ q[j]) / c.tower_temperature
                    loss = loss + torch.nn.functional.cross_entropy(logits[None], torch.zeros(1, dtype=torch.long))
                loss = loss / len(batch)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                done += 1
                self.progress(f"query tower {k + 1}/{FOLDS}", done, steps)
        model.eval()
        return model


def average_weights(models: list):
    """A copy of the first model with the models' averaged floating-point weights (models fine-tuned from one start
    average well: a "soup")."""
    import copy

    states = [m.state_dict() for m in models]
    model = copy.deepcopy(models[0])
    model.load_state_dict({k: sum(s[k] for s in states) / len(states) if states[0][k].is_floating_point() else states[0][k]
                           for k in states[0]})
    return model


def warmup_linear(opt, steps: int):
    """The learning rate rises over the first tenth of `steps`, then falls linearly to zero."""
    import torch

    warmup = max(1, steps // 10)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / steps))


def query_prompt(model) -> str:
    """The prefix the folder's encoder puts before a question ("query: " for e5), as serving does."""
    return (model.prompts or {}).get("query", "")


def encode(model, texts: list[str], batch: int = 64) -> np.ndarray:
    import torch

    if not texts:
        return np.zeros((0, model.get_sentence_embedding_dimension()), np.float32)
    with torch.no_grad():
        return np.concatenate([
            model.encode([query_prompt(model) + t for t in texts[i:i + batch]], normalize_embeddings=True,
                         convert_to_numpy=True, show_progress_bar=False)
            for i in range(0, len(texts), batch)
        ]).astype(np.float32)
