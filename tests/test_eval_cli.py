"""`policyqa eval` end to end on the small real knowledge base: in process (the four modes side by side, the
threshold sweep) and against a `policyqa serve` subprocess through the public API, with figures that can be
recomputed from the per-question records it writes on demand (`--records`; the `--json` summary has none)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa_service.cli import app

# Questions about small_kb's documents (see tests/conftest.py), in the gold format of ../shared/README.md.
GOLD = [
    {"id": "s1", "question": "国庆节放几天假？", "sources": ["全国年节及纪念日放假办法"],
     "evidence_any": ["国庆节，放假3天"], "answerable": True},
    {"id": "s2", "question": "失业保险金的标准由谁定？", "sources": ["失业保险条例"],
     "evidence_any": ["由省、自治区、直辖市人民政府确定"], "answerable": True},
    {"id": "s3", "question": "济南市司法局政策解读材料不达标会怎样？", "sources": ["济南市司法局2025年政务公开"],
     "evidence_any": ["解读材料不达标不运转"], "answerable": True},
    {"id": "s4", "question": "济南市财政局政策解读形式有哪些？", "sources": ["济南市财政局政务公开"],
     "evidence_any": ["互动直播、简明问答、现场演示"], "answerable": True},
    {"id": "u1", "question": "今天股市行情怎么样？", "answerable": False},
    # 居住证暂行条例 is in small_kb but 依申请公开: never served, so nothing public answers this
    {"id": "u2", "question": "未成年人办居住证可以由别人代办吗？", "answerable": False},
]
MODES = ["lexical", "dense", "hybrid", "hybrid_faq"]


@pytest.fixture(scope="module")
def gold_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gold") / "small.jsonl"
    path.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in GOLD) + "\n", "utf-8")
    return path


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})
    return result


def squash(s: str) -> str:
    return "".join(s.split())


def recompute(records: list[dict]) -> dict:
    """The issue-6 definitions, written out again from nothing but the returned citations and answers."""
    by_id = {q["id"]: q for q in GOLD}
    a = [r for r in records if by_id[r["id"]]["answerable"]]
    u = [r for r in records if not by_id[r["id"]]["answerable"]]

    def first_hit(r):
        q = by_id[r["id"]]
        for pos, c in enumerate(r["citations"], start=1):
            titles = [c["title"], *c["source_titles"]]
            if any(squash(s) in squash(t) for s in q["sources"] for t in titles) and any(
                squash(e) in squash(c["quote"]) for e in q["evidence_any"]
            ):
                return pos
        return None

    ranks = [first_hit(r) for r in a]
    return {
        "hit_at_1": sum(1 for k in ranks if k is not None and k <= 1) / len(a),
        "hit_at_5": sum(1 for k in ranks if k is not None and k <= 5) / len(a),
        "mrr_at_10": sum(1 / k for k in ranks if k is not None and k <= 10) / len(a),
        "answer_contains": sum(
            any(squash(e) in squash(r["answer"]) for e in by_id[r["id"]]["evidence_any"]) for r in a
        ) / len(a),
        "refusal_rate": sum(r["answered"] is False for r in u) / len(u),
        "false_refusal_rate": sum(r["answered"] is not True for r in a) / len(a),
    }


def with_records(summary: dict, records: dict) -> dict:
    """The summary's modes with each mode's per-question records beside its metrics."""
    return {**summary, "modes": {name: {**m, **records["modes"][name]} for name, m in summary["modes"].items()}}


@pytest.fixture(scope="module")
def in_process_run(small_kb, gold_file, tmp_path_factory) -> dict:
    where = tmp_path_factory.mktemp("eval")
    out, records = where / "in_process.json", where / "in_process-records.json"
    result = invoke("eval", "--gold", str(gold_file), "--kb", str(small_kb), "--sweep", "--json", str(out),
                    "--records", str(records))
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text("utf-8"))
    return {"output": result.output, "summary": summary,
            "data": with_records(summary, json.loads(records.read_text("utf-8")))}


def test_the_summary_holds_metrics_and_the_records_file_every_question(in_process_run):
    summary, data = in_process_run["summary"], in_process_run["data"]
    for mode in MODES:
        assert set(summary["modes"][mode]) == {"metrics", "counts", "refusal_threshold"}, mode
        assert [r["id"] for r in data["modes"][mode]["questions"]] == [q["id"] for q in GOLD], mode
        assert data["modes"][mode]["sweep_pass"] is not None  # --sweep: the refusal-disabled pass, per question
    assert all(q["question"] not in json.dumps(summary, ensure_ascii=False) for q in GOLD)


def test_four_modes_are_compared_side_by_side_in_one_run(in_process_run):
    data, output = in_process_run["data"], in_process_run["output"]
    assert list(data["modes"]) == MODES
    for mode in MODES:
        assert mode in output
    assert "hit@5" in output and "MRR@10" in output and "false-refusal" in output
    assert "Metric definitions" in output  # the definitions are printed with the figures
    assert data["backend"]["backend"] == "in-process" and data["backend"]["model"]


def test_reported_figures_equal_a_recomputation_from_the_returned_citations(in_process_run):
    for mode, run in in_process_run["data"]["modes"].items():
        mine = recompute(run["questions"])
        for name, value in mine.items():
            assert run["metrics"][name] == pytest.approx(value), (mode, name)
        assert run["metrics"]["n_answerable"] == 4 and run["metrics"]["n_unanswerable"] == 2


def test_an_easy_question_is_a_hit_and_failures_show_what_came_back(in_process_run):
    run = in_process_run["data"]["modes"]["hybrid_faq"]
    holiday = next(r for r in run["questions"] if r["id"] == "s1")
    assert holiday["hit_rank"] is not None and holiday["hit_rank"] <= 5
    for failure in run["failures"]:
        assert failure["reasons"] and "citations" in failure and "answer" in failure
        assert failure["id"] in in_process_run["output"]


def test_the_sweep_chooses_a_threshold_from_the_returned_confidences(in_process_run):
    sweeps = {s["mode"]: s for s in in_process_run["data"]["sweeps"]}
    assert set(sweeps) == set(MODES)
    rows = sweeps["hybrid_faq"]["rows"]
    assert rows[0]["threshold"] <= rows[-1]["threshold"]
    # refusing more as the threshold rises, on both sides
    assert all(r1["refusal_rate"] <= r2["refusal_rate"] for r1, r2 in zip(rows, rows[1:]))
    assert all(r1["false_refusal_rate"] <= r2["false_refusal_rate"] for r1, r2 in zip(rows, rows[1:]))
    assert sweeps["hybrid_faq"]["chosen"] is not None
    assert "chosen refusal_threshold" in in_process_run["output"]


def test_over_http_the_server_gives_the_same_answers_as_the_engine(small_kb, gold_file, in_process_run, tmp_path):
    from eval.bench_query import copy_kb
    from eval.benchutil import ServerProcess

    served_kb = copy_kb(small_kb)  # the server logs every ask: never into the shared fixture
    out, records = tmp_path / "http.json", tmp_path / "http-records.json"
    with ServerProcess(served_kb, log_path=tmp_path / "server.log") as server:
        result = invoke("eval", "--gold", str(gold_file), "--url", server.url, "--json", str(out), "--records", str(records))
    assert result.exit_code == 0, result.output
    data = with_records(json.loads(out.read_text("utf-8")), json.loads(records.read_text("utf-8")))
    assert list(data["modes"]) == ["served"] and data["backend"]["backend"] == "http"
    served = {r["id"]: r for r in data["modes"]["served"]["questions"]}
    local = {r["id"]: r for r in in_process_run["data"]["modes"]["hybrid_faq"]["questions"]}
    for qid, r in served.items():
        assert r["error"] is None
        assert (r["answered"], r["hit_rank"]) == (local[qid]["answered"], local[qid]["hit_rank"]), qid
    for name, value in recompute(list(served.values())).items():
        assert data["modes"]["served"]["metrics"][name] == pytest.approx(value)


def test_a_malformed_gold_file_is_rejected_with_its_line(tmp_path, small_kb):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(GOLD[0], ensure_ascii=False) + "\n" + '{"id": "z", "question": "？", "answerable": true}\n', "utf-8")
    result = invoke("eval", "--gold", str(bad), "--kb", str(small_kb))
    assert result.exit_code == 2
    assert "bad.jsonl:2" in result.output and "sources" in result.output
