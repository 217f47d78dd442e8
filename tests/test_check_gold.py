"""eval.check_gold --held-out: a new gold file must not overlap the held-out test set (same article, contained
evidence, or near-identical wording), and only ids are printed."""
import json

from eval.check_gold import main

LAW = """# 失业保险条例

<!-- INFO END -->

第十七条 失业人员失业前所在单位和本人按照规定累计缴费时间满1年不足5年的，领取失业保险金的期限最长为12个月。

第十八条 失业保险金的标准，按照低于当地最低工资标准、高于城市居民最低生活保障标准的水平，由省、自治区、直辖市人民政府确定。
"""


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _q(qid, question, evidence=None):
    if evidence is None:
        return {"id": qid, "question": question, "answerable": False}
    return {"id": qid, "question": question, "sources": ["失业保险条例"], "evidence_any": [evidence], "answerable": True}


def test_held_out_overlap_fails_with_ids_only(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "失业保险条例(2024-01-01).md").write_text(LAW, "utf-8")
    held = _write(tmp_path / "test.jsonl", [
        _q("h1", "交了三年失业保险，失业金最长能领几个月？", "领取失业保险金的期限最长为12个月"),
        _q("h2", "今天济南的天气怎么样？"),
    ])
    args = ["--corpus", str(corpus), "--demo", str(tmp_path / "none")]
    clean = _write(tmp_path / "clean.jsonl", [
        _q("n1", "失业金每个月发多少是谁定的？", "由省、自治区、直辖市人民政府确定"),
        _q("n2", "帮我订一张去北京的火车票"),
    ])
    assert main([str(clean), *args, "--held-out", str(held)]) == 0
    overlapping = _write(tmp_path / "new.jsonl", [
        _q("a1", "我缴费满一年不到五年，失业金能拿多久？", "累计缴费时间满1年不足5年"),  # the same article as h1
        _q("a2", "今天济南天气怎么样啊？"),  # h2's wording
        _q("a3", "失业金每个月发多少是谁定的？", "由省、自治区、直辖市人民政府确定"),  # no overlap
    ])
    capsys.readouterr()
    assert main([str(overlapping), *args, "--held-out", str(held)]) == 1
    out = capsys.readouterr().out
    assert "[a1]: overlaps held-out question h1 (same article)" in out
    assert "[a2]: overlaps held-out question h2 (wording)" in out
    assert "[a3]" not in out
    assert "天气" not in out and "几个月" not in out  # the held-out questions' text is never printed
    # without --held-out the same file passes: the check is opt-in
    assert main([str(overlapping), *args]) == 0
