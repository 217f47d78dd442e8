"""A LangChain retriever over the knowledge base: the same hybrid retrieval as `/v1/search`, as Documents.

    retriever = PolicyRetriever(engine=QAEngine(kb, settings), k=4)
    docs = retriever.invoke("失业保险金能领多长时间？")
    docs[0].page_content, docs[0].metadata["title"], docs[0].metadata["url"]

Public documents only; superseded versions only with `filters={"include_superseded": True}`. Each
Document's metadata carries the citation fields of the HTTP contract (title, doc_number, section, validity…).
"""
from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field


class PolicyRetriever(BaseRetriever):
    """`engine`: a `qa_service.engine.QAEngine`; `k`: passages per query (overridable per call: `invoke(q, k=3)`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: Any
    k: int = Field(4, ge=1, le=50)
    filters: dict | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None,
        filters: dict | None = None,
    ) -> list[Document]:
        citations = self.engine.search(query, k=k or self.k, filters=filters if filters is not None else self.filters)
        return [
            Document(
                page_content=c.quote,
                metadata={
                    "rank": c.rank,
                    "doc_id": c.doc_id,
                    "title": c.title,
                    "doc_number": c.doc_number,
                    "publisher": c.publisher,
                    "published_date": c.published_date,
                    "validity": c.validity.value,
                    "section": c.section,
                    "url": c.url,
                    "score": c.score,
                },
            )
            for c in citations
        ]
