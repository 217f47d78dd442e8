"""The LangChain retriever passes langchain-tests' standard retriever tests, over small_kb."""
from __future__ import annotations

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from knowledge_base.settings import Settings
from qa_service.langchain_retriever import PolicyRetriever


@pytest.fixture(scope="module")
def policy_engine(small_kb):
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    return QAEngine(KnowledgeBase(small_kb), Settings())


class TestPolicyRetrieverStandard(RetrieversIntegrationTests):
    # The standard suite has one async test; pytest-asyncio runs in strict mode here, so mark the class
    # (its sync tests ignore the mark).
    pytestmark = [pytest.mark.asyncio, pytest.mark.filterwarnings("ignore:.*marked with '@pytest.mark.asyncio'")]

    @pytest.fixture(autouse=True)
    def _engine(self, policy_engine):
        type(self)._shared_engine = policy_engine

    @property
    def retriever_constructor(self) -> type[PolicyRetriever]:
        return PolicyRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"engine": type(self)._shared_engine, "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return "失业保险金能领多长时间？"


def test_documents_carry_citation_metadata_and_respect_filters(policy_engine):
    docs = PolicyRetriever(engine=policy_engine, k=10).invoke("全体公民放假的节日")
    assert docs[0].metadata["title"] == "全国年节及纪念日放假办法"
    assert {d.metadata["validity"] for d in docs} <= {"in_force", "unknown", "expired"}
    old = PolicyRetriever(engine=policy_engine, k=10, filters={"include_superseded": True}).invoke("全体公民放假的节日")
    assert "superseded" in {d.metadata["validity"] for d in old}
    assert all(d.metadata["title"] != "居住证暂行条例" for d in PolicyRetriever(engine=policy_engine, k=20).invoke("居住证申领"))
