"""Place handling works for a deployment in any province, not only the corpus' Shandong and Zhejiang."""
from __future__ import annotations

import pytest

from knowledge_base.places import gazetteer, place_of, province_of
from qa_service.normalize import QueryNormalizer


@pytest.mark.parametrize(
    ("question", "place", "province"),
    [
        ("广州市最低工资标准是多少？", "广州", "广东"),
        ("成都社保断缴了怎么办", "成都", "四川"),
        ("請問濟南市司法局在哪裡", "济南", "山东"),
        ("延边朝鲜族自治州的养老补贴", "延边", "吉林"),
        ("内蒙古自治区的低保标准", "内蒙古", "内蒙古"),
        ("台州的电梯加装补贴", "台州", "浙江"),
    ],
)
def test_a_question_naming_a_city_anywhere_in_china_is_placed(question, place, province):
    nq = QueryNormalizer().run(question)
    assert nq.region == place
    assert province_of(nq.region) == province


def test_words_that_only_look_like_places_are_not_places():
    assert place_of("祝您安康，长治久安") is None  # 安康市 and 长治市 need their 市
    assert place_of("陕西省安康市的规定") == "陕西"
    assert place_of("安康市的规定") == "安康"


def test_every_province_level_division_is_known_with_its_cities():
    g = gazetteer()
    provinces = [p for p in g.places if g.is_province(p)]
    assert len(provinces) == 34
    assert g.province("深圳") == "广东" and g.province("拉萨") == "西藏" and g.province("石河子") == "新疆"
    assert g.normalize("广东省") == "广东" and g.normalize("乌鲁木齐市") == "乌鲁木齐" and g.normalize("火星") is None
    assert g.same_area("济南", "山东") and not g.same_area("济南", "浙江")
