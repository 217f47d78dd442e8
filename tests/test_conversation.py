"""Conversations (issue 10): follow-ups completed from the session or from a stateless client's history, topic
switches that carry nothing, bounded and expiring sessions, shared through the store. Real engine over small_kb
(失业保险条例, both 放假办法 versions, two 济南 plans) and a real `policyqa serve` for the HTTP contract."""
from __future__ import annotations

import time
import uuid

import pytest

from knowledge_base.settings import Settings


def _engine(kb_dir, **settings):
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    return QAEngine(KnowledgeBase(kb_dir), Settings(rate_limit_per_minute=0, **settings))


@pytest.fixture(scope="module")
def kb_copy(small_kb, tmp_path_factory):
    from browser_support import copy_kb

    return copy_kb(small_kb, tmp_path_factory.mktemp("conversation") / "kb")  # sessions and the log are written


@pytest.fixture(scope="module")
def engine(kb_copy):
    return _engine(kb_copy)


@pytest.fixture(scope="module")
def server(kb_copy):
    from browser_support import ApiServer

    with ApiServer(kb_copy, name="conversation", env={"POLICYQA_SESSION_MAX_AGE": "600"}) as api:
        yield api


def _sid() -> str:
    return uuid.uuid4().hex


def test_another_holiday_follow_up_is_answered_from_the_same_rule(engine):
    sid = _sid()
    first = engine.ask("国庆节放几天假？", session_id=sid, record=False)
    assert first.answered and "国庆节" in first.citations[0].quote and first.understood_question is None
    second = engine.ask("那春节呢？", session_id=sid, record=False)
    assert second.answered
    assert second.understood_question == "春节放几天假？"  # the previous question asked of the new holiday
    top = second.citations[0]  # asked whole, it is FAQ-007 of small_kb (春节), citing the 放假办法
    assert "全国年节及纪念日放假办法" in [top.title, *top.source_titles] and "春节放假4天" in second.answer


def test_a_question_that_stands_alone_starts_a_new_topic(engine):
    sid = _sid()
    engine.ask("失业保险金最长能领多久？", session_id=sid, record=False)
    switched = engine.ask("春节放几天假？", session_id=sid, record=False)
    assert switched.understood_question is None  # never carry 失业保险 into 春节
    top = switched.citations[0]  # FAQ-007 (春节) is published in small_kb: it cites the 放假办法 as its source
    assert "全国年节及纪念日放假办法" in [top.title, *top.source_titles]


def test_a_follow_up_with_too_few_words_of_its_own_gets_the_topic(engine):
    sid = _sid()
    engine.ask("失业保险金最长能领多久？", session_id=sid, record=False)
    follow = engine.ask("那失业保险金的标准由谁确定？", session_id=sid, record=False)
    assert follow.answered and follow.citations[0].title == "失业保险条例"
    alone = engine.ask("延长吗", session_id=_sid(), record=False)  # no conversation: nothing to complete from
    assert alone.understood_question is None


def test_a_follow_up_the_knowledge_base_cannot_answer_is_refused(engine):
    sid = _sid()
    engine.ask("国庆节放几天假？", session_id=sid, record=False)
    follow = engine.ask("那国庆的高铁票提前几天开售？", session_id=sid, record=False)
    assert follow.understood_question and not follow.answered and follow.citations == []


def test_the_completed_question_is_logged_with_the_session(engine):
    from sqlalchemy import select

    from knowledge_base.db import QueryLogRow

    sid = _sid()
    engine.ask("国庆节放几天假？", session_id=sid)
    follow = engine.ask("那春节呢？", session_id=sid)
    with engine.kb.session() as s:
        row = s.scalars(select(QueryLogRow).where(QueryLogRow.query_id == follow.query_id)).one()
        turns = s.scalars(select(QueryLogRow.session_id).where(QueryLogRow.session_id == sid)).all()
    assert row.question == follow.understood_question and row.session_id == sid and len(turns) == 2


def test_session_and_history_give_the_same_answers(engine):
    sid = _sid()
    turns = ["国庆节放几天假？", "那春节呢？", "清明节呢？"]
    history: list[dict] = []
    for q in turns:
        by_session = engine.ask(q, session_id=sid, record=False)
        by_history = engine.ask(q, history=list(history) or None, record=False)
        assert by_session.understood_question == by_history.understood_question
        assert by_session.answer == by_history.answer
        assert [c.quote for c in by_session.citations] == [c.quote for c in by_history.citations]
        history.append({"question": q, "answer": by_history.answer})
    assert "清明节" in by_session.answer


def test_a_session_expires(kb_copy):
    engine = _engine(kb_copy, session_max_age=1.0)
    sid = _sid()
    engine.ask("国庆节放几天假？", session_id=sid, record=False)
    assert engine.ask("那春节呢？", session_id=sid, record=False).understood_question
    time.sleep(1.5)
    assert engine.ask("那春节呢？", session_id=sid, record=False).understood_question is None


def test_two_instances_share_a_session_through_the_store(kb_copy):
    a, b = _engine(kb_copy), _engine(kb_copy)
    sid = _sid()
    a.ask("国庆节放几天假？", session_id=sid, record=False)
    follow = b.ask("那春节呢？", session_id=sid, record=False)
    assert follow.understood_question == "春节放几天假？" and "春节放假4天" in follow.answer


def test_memory_sessions_are_bounded_by_count_and_age():
    from qa_service.conversation import ConversationConfig, ConversationMemory, Turn

    now = [1000.0]
    memory = ConversationMemory(ConversationConfig(context_turns=2, max_age_seconds=60, max_sessions=2), clock=lambda: now[0])
    for i in range(4):
        memory.remember("s1", Turn(f"问题{i}", "答"))
    assert [t.question for t in memory.load("s1").turns] == ["问题2", "问题3"]
    memory.remember("s2", Turn("甲", ""))
    memory.remember("s3", Turn("乙", ""))
    assert memory.load("s1").turns == ()  # least recently used session dropped
    now[0] += 61
    assert memory.load("s3").turns == ()


def test_a_bad_llm_rewrite_falls_back_to_the_rule(engine):
    from qa_service.conversation import Conversation, Turn, acceptable_rewrite

    completer = engine.conversations.completer(engine.state.vocabulary())
    conversation = Conversation((Turn("国庆节放几天假？", "根据《全国年节及纪念日放假办法》第二条：国庆节，放假3天"),))

    class Broken:
        def run(self, question, conversation, rule):
            return None  # what LlmRewriter returns on a timeout or an unacceptable reply

    completer_with = type(completer)(completer.config, normalize=completer.normalize, topic_terms=completer.topic_terms,
                                     idf=completer.idf, rewriter=Broken())
    c = completer_with.run("那春节呢？", conversation)
    assert c.rewritten_by == "rule" and c.understood == completer.run("那春节呢？", conversation).understood
    assert not acceptable_rewrite("国庆节放几天假？", "那春节呢？")  # the model dropped the question's own word
    assert acceptable_rewrite("春节放几天假？", "那春节呢？")


# ---------------------------------------------------------------------- over HTTP, a real server process
def test_http_follow_up_by_session_shows_the_understood_question(server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=120) as c:
        first = c.post("/v1/ask", json={"question": "国庆节放几天假？"}).json()
        assert "understood_question" not in first
        second = c.post("/v1/ask", json={"question": "那春节呢？", "session_id": first["session_id"]}).json()
        assert second["session_id"] == first["session_id"]
        assert second["understood_question"] == "春节放几天假？" and "春节放假4天" in second["answer"]
        by_history = c.post("/v1/ask", json={"question": "那春节呢？",
                                             "history": [{"question": "国庆节放几天假？", "answer": first["answer"]}]}).json()
        assert by_history["answer"] == second["answer"]
        assert by_history["understood_question"] == second["understood_question"]


@pytest.mark.parametrize(
    "history, where",
    [
        ([{"question": "国庆节放几天假？", "answer": "…"}] * 11, "history"),
        ([{"question": "问" * 501, "answer": ""}], "question"),
        ([{"question": "国庆节放几天假？", "answer": "答" * 4001}], "answer"),
        ([{"question": "国庆节放几天假？", "extra": 1}], "extra"),
        ("国庆节放几天假？", "history"),
    ],
)
def test_http_oversize_or_malformed_history_is_refused_with_422(server, history, where):
    import httpx

    r = httpx.post(server.url + "/v1/ask", json={"question": "那春节呢？", "history": history}, timeout=60)
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid_request" and where in body["message"]


# ---------------------------------------------------------------------- refusal on what the follow-up adds
def test_a_follow_up_is_judged_on_what_it_adds_to_the_topic():
    from qa_service.conversation import Conversation, FollowUpCompleter, Turn

    completer = FollowUpCompleter()
    previous = Conversation((Turn("失业保险金最长能领多久？", "根据《失业保险条例》第十七条：……"),))
    completion = completer.run("那领失业保险金期间能去哪个网站找兼职？", previous)
    assert completion.follow_up and completion.topic == "失业保险金最长能领多久？"
    added = completer.added_words(completion)
    assert "网站" in added and "兼职" in added and not any("失业" in w for w in added)  # the topic is not news
    assert "去" not in added and "找" not in added  # one character occurs inside any number of words: no evidence


def test_a_follow_up_the_topic_article_does_not_speak_to_is_refused(engine):
    sid = _sid()
    first = engine.ask("失业保险金最长能领多久？", session_id=sid, record=False)
    top = first.citations[0]  # an FAQ entry of small_kb, citing the 条例
    assert first.answered and "失业保险条例" in [top.title, *top.source_titles]
    odd = engine.ask("那领失业金期间能去哪个网站找兼职？", session_id=sid, record=False)
    assert odd.understood_question and not odd.answered and odd.confidence < 0.4
    sid = _sid()
    engine.ask("失业保险金最长能领多久？", session_id=sid, record=False)
    more = engine.ask("那累计缴费10年以上的呢？", session_id=sid, record=False)  # adds words the article states
    assert more.answered and "24个月" in more.answer


# ---------------------------------------------------------------------- what the follow-up names
@pytest.mark.parametrize("asked, previous, understood", [
    ("元旦呢？", "劳动节放几天假？", "元旦放几天假？"),
    ("那五四青年节呢？", "三八妇女节放假吗？", "五四青年节放假吗？"),  # the numerals belong to the holiday
    ("那淄博呢？", "济南市既有多层住宅增设电梯的原则是什么？", "淄博既有多层住宅增设电梯的原则是什么？"),
])
def test_a_follow_up_naming_only_another_of_a_kind_is_the_previous_question_asked_of_it(asked, previous, understood):
    from qa_service.conversation import Conversation, FollowUpCompleter, Turn

    # The previous answer cited 劳动法 (a list of holidays, not their days): the substituted question carries no title.
    c = FollowUpCompleter().run(asked, Conversation((Turn(previous, "根据《中华人民共和国劳动法》第四十条：……"),)))
    assert c.follow_up and c.understood == understood and c.carried_title is None


@pytest.mark.parametrize("asked, previous", [
    ("那春节期间景区门票打折吗？", "国庆节放几天假？"),  # says more than the holiday: completed as before
    ("那淄博呢？", "济南和淄博的补贴一样吗？"),  # named before: not another one
    ("那淄博呢？", "济南和青岛的补贴一样吗？"),  # two of the kind before: which one is replaced is not known
])
def test_a_follow_up_saying_more_than_a_sibling_is_not_substituted(asked, previous):
    from qa_service.conversation import substitute_sibling

    assert substitute_sibling(asked.lstrip("那"), previous) is None


def test_after_a_connective_only_a_title_word_not_among_the_commonest_starts_a_new_topic():
    from qa_service.conversation import Conversation, ConversationConfig, FollowUpCompleter, Turn

    # Title words with their idf: 城市 and 经济 are in many titles and thousands of passages (full corpus figures).
    titles = {"城市": 2.4, "经济": 2.6, "劳动合同": 5.2, "居住证": 6.8, "年休假": 8.1, "女职工": 6.7, "公积金": 6.5,
              "婚姻登记": 7.5}
    idf = {**titles, "条件": 2.4, "解除": 4.8, "经济补偿": 5.5}.get
    completer = FollowUpCompleter(topic_terms=titles, idf=lambda w: idf(w, 6.0))
    previous = Conversation((Turn("住房公积金的缴存比例是多少？", "根据《住房公积金管理条例》第十八条：……"),))
    # 城市 is in the commonest quarter of title words: it names no subject, the question continues the topic
    assert completer.run("那有条件的城市呢？", previous).follow_up
    # 劳动合同 names one: a new topic, nothing carried
    assert not completer.run("那解除劳动合同的经济补偿怎么算？", previous).follow_up
    # every title word counted as a subject (the share 0): 城市 switches the topic, as before
    strict = FollowUpCompleter(ConversationConfig(generic_title_share=0.0), topic_terms=titles, idf=lambda w: idf(w, 6.0))
    assert not strict.run("那有条件的城市呢？", previous).follow_up


def test_the_place_of_the_conversation_scopes_a_follow_up_until_another_is_named():
    from qa_service.conversation import Conversation, FollowUpCompleter, Turn

    completer = FollowUpCompleter(idf=lambda w: 0.0 if w == "济南市" else 6.0)  # the index splits 济南/市
    previous = Conversation((Turn("济南市既有多层住宅增设电梯的原则是什么？", "根据《济南市既有多层住宅增设电梯规定》第三条：……"),))
    follow = completer.run("那谁是增设电梯的建设单位？", previous)
    assert follow.follow_up and follow.understood.startswith("关于济南") and "既有多层住宅" in follow.understood
    other = completer.run("那淄博谁是增设电梯的建设单位？", previous)
    assert other.follow_up and "济南" not in other.understood  # another city replaces it
