"""Places a question, a title or a publisher may name: every provincial- and prefecture-level division of China,
from the 行政区划 list in `data/divisions.tsv`, so a deployment in 广州 or 成都 gets the same place handling as one in 济南.

    place_of("广州市最低工资标准是多少")   # -> "广州"
    province_of("广州")                      # -> "广东"
    province_of("广东")                      # -> "广东" (a province is its own province; so is a municipality: 北京)

Places are short names, without 省 / 市 / 自治区 / 地区 / 自治州 (济南, 山东, 内蒙古, 延边), as citizens write them.
A short name that is also an ordinary word (安康, 长治, 来宾, 大同, 朝阳, 中山 …) counts only with its suffix (安康市).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

# Suffixes of division names, longest first; what remains is the short name people write.
_PROVINCE_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市")
_CITY_SUFFIXES = ("林区", "地区", "盟", "市")
_ETHNIC = re.compile(r"(?:朝鲜|土家|苗|藏|羌|彝|布依|侗|哈尼|壮|傣|白|景颇|傈僳|回|蒙古|柯尔克孜|哈萨克)族?$")
# Short names that are also common words in Chinese text: matched only when written with their suffix.
AMBIGUOUS = frozenset(
    "安康 长治 来宾 大同 中山 朝阳 白银 阿里 兴安 普洱 红河 文山 玉树 海西 海东 海北 黄南 山南 黄山 白山 黑河 北海 江门 "
    "天门 和田 三明 中卫 通化 永州 新余 吉安 宜春 安顺 资阳 眉山 广安 大理 怒江 果洛 甘南 德宏 迪庆 林芝 昌吉 伊犁 临夏".split()
)


def short_name(name: str) -> str:
    """济南市 → 济南, 内蒙古自治区 → 内蒙古, 延边朝鲜族自治州 → 延边, 大兴安岭地区 → 大兴安岭."""
    if name.endswith("自治州"):
        name = name.removesuffix("自治州")
        while _ETHNIC.search(name) and len(name) > 2:
            name = _ETHNIC.sub("", name)
        return name
    for suffix in (*_PROVINCE_SUFFIXES, *_CITY_SUFFIXES):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name.removesuffix(suffix)
    return name


@dataclass(frozen=True)
class Gazetteer:
    """Short name → the short name of its province, and a matcher over full and short names."""

    province_of: dict[str, str]
    pattern: re.Pattern
    full_names: dict[str, str]  # full name (济南市, 延边朝鲜族自治州) → short name

    @classmethod
    def from_lines(cls, lines: list[str]) -> "Gazetteer":
        province_of: dict[str, str] = {}
        full: dict[str, str] = {}
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            province, _, cities = line.rstrip("\n").partition("\t")
            p = short_name(province)
            province_of[p] = p
            full[province] = p
            for city in cities.split():
                c = short_name(city)
                full[city] = c
                province_of.setdefault(c, p)  # 吉林市 and 海南藏族自治州 share their province's short name
        plain = [s for s in province_of if s not in AMBIGUOUS]
        alternatives = sorted({*full, *plain}, key=len, reverse=True)
        return cls(province_of, re.compile("|".join(map(re.escape, alternatives))), full)

    @property
    def places(self) -> tuple[str, ...]:
        """Every short name, longest first."""
        return tuple(sorted(self.province_of, key=len, reverse=True))

    def find(self, text: str | None) -> str | None:
        """The first place a text names, as a short name."""
        m = self.pattern.search(text or "")
        return self.full_names.get(m.group(0), m.group(0)) if m else None

    def find_all(self, text: str | None) -> list[str]:
        return list(dict.fromkeys(self.full_names.get(m.group(0), m.group(0)) for m in self.pattern.finditer(text or "")))

    def full_name(self, place: str) -> str:
        """济南 → 济南市, 山东 → 山东省, 延边 → 延边朝鲜族自治州; a name it does not know comes back as given."""
        return next((full for full, short in self.full_names.items() if short == place and full != place), place)

    def province(self, place: str) -> str:
        return self.province_of.get(place, place)

    def is_province(self, place: str) -> bool:
        return self.province_of.get(place) == place

    def normalize(self, name: str | None) -> str | None:
        """A place as a user or a metadata field writes it (济南市, 山东省, 济南) → its short name, or None."""
        if not name:
            return None
        name = name.strip().replace(" ", "")
        short = self.full_names.get(name) or short_name(name)
        return short if short in self.province_of else None

    def same_area(self, asked: str, place: str) -> bool:
        """The two places are the same, or one lies in the other (济南 and 山东)."""
        return asked == place or self.province(asked) == place or self.province(place) == asked


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    text = resources.files("knowledge_base").joinpath("data/divisions.tsv").read_text("utf-8")
    return Gazetteer.from_lines(text.splitlines())


def place_of(text: str | None) -> str | None:
    """The first place a text names, without 市/省."""
    return gazetteer().find(text)


def province_of(place: str) -> str:
    return gazetteer().province(place)
