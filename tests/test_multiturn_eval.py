"""The multi-turn gold set and its scorer (issue 10): the gold file is well formed and every turn's evidence is in
the corpus; `policyqa eval --multiturn --url` scores conversations over HTTP with one session per conversation."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
GOLD = REPO / "eval" / "questions" / "multiturn.jsonl"


def test_the_gold_conversations_cover_the_kinds_of_follow_up():
    from eval.multiturn import load_conversations

    conversations = load_conversations(GOLD)
    assert len(conversations) >= 40 and all(2 <= len(c.turns) <= 3 for c in conversations)
    kinds = Counter(c.category for c in conversations)
    for kind in ("quantity", "condition", "exception", "holiday", "city", "switch", "unanswerable"):
        assert kinds[kind] >= 1, kind
    assert kinds["unanswerable"] >= 8 and kinds["switch"] >= 5
    assert all(c.turns[-1].answerable is False for c in conversations if c.category == "unanswerable")


def test_every_turns_evidence_is_in_the_corpus(capsys):
    from eval.multiturn import check

    assert check(GOLD) == 0, capsys.readouterr().out


def test_eval_multiturn_over_http_scores_the_last_turns(small_kb, tmp_path):
    from browser_support import ApiServer, copy_kb

    gold = tmp_path / "mt.jsonl"
    rows = [
        {"id": "c1", "category": "holiday", "turns": [
            {"question": "国庆节放几天假？", "sources": ["全国年节及纪念日放假办法"], "evidence_any": ["国庆节，放假3天"], "answerable": True},
            {"question": "那春节呢？", "sources": ["全国年节及纪念日放假办法"], "evidence_any": ["春节，放假4天"], "answerable": True}]},
        {"id": "c2", "category": "switch", "turns": [
            {"question": "失业保险金的标准由谁确定？", "sources": ["失业保险条例"], "evidence_any": ["由省、自治区、直辖市人民政府确定"], "answerable": True},
            {"question": "国庆节放几天假？", "sources": ["全国年节及纪念日放假办法"], "evidence_any": ["国庆节，放假3天"], "answerable": True}]},
    ]
    gold.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), "utf-8")
    out, records = tmp_path / "result.json", tmp_path / "records.json"
    with ApiServer(copy_kb(small_kb, tmp_path / "kb"), name="multiturn") as api:
        # `python -m` from the repository: this checkout's code (a venv's `policyqa` script may import another one)
        done = subprocess.run([sys.executable, "-m", "qa_service.cli", "eval", "--gold", str(gold), "--multiturn",
                               "--url", api.url, "--json", str(out), "--records", str(records)],
                              capture_output=True, text=True, timeout=600, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    written = json.loads(out.read_text("utf-8"))
    summary = written["summary"]
    assert summary["conversations"] == 2 and summary["last_hit_at_5"] == 1.0
    assert summary["switch_carried_over"] == 0.0 and summary["follow_ups_understood"] == 1.0
    assert "records" not in written  # per-turn records only in the --records file
    turns = json.loads(records.read_text("utf-8"))["records"]
    assert [(t["conversation"], t["turn"]) for t in turns] == [("c1", 1), ("c1", 2), ("c2", 1), ("c2", 2)]


def test_a_malformed_conversation_file_is_an_error_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "turns": [{"question": "只有一轮", "answerable": false}]}\n', "utf-8")
    done = subprocess.run([sys.executable, "-m", "qa_service.cli", "eval", "--gold", str(bad), "--multiturn"],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2 and "2 to 3 turns" in done.stderr
