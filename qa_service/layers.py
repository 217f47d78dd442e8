"""Layered answers: when a national rule and the asker's local rule speak to the same point, say both.

    evidence, layer = choose_layer(evidence, asked="济南", home=None, relevant=lambda i: …)
    # the named place's rule leads (evidence reordered); `layer` is the index of the other level's passage

Example (POLICYQA_HOME_REGION=济南, "产假有多少天？"): 《女职工劳动保护特别规定》第七条 (98 days) answers, and
《山东省人口与计划生育条例》第二十五条 adds 60 days for 山东: the answer states both and cites both. A place the question
names leads; the deployment's home region (no place named) follows the national rule. Whether the other passage
speaks to the same point is the caller's `relevant(i)`: the learned judge's confidence with that passage first,
or (without a judge) its coverage of the question and cosine next to the top passage's.
"""
from __future__ import annotations

from typing import Callable

from knowledge_base.places import gazetteer
from knowledge_base.retrieval import document_place

from .compose import Evidence

LAYER_DEPTH = 5  # how far down the ranked passages the other level's rule may be


def applies_to(place: str | None, area: str) -> bool:
    """A local rule of `place` applies to someone in `area` (a city, or its province)."""
    if place is None:
        return False
    g = gazetteer()
    return place == area or place == g.province(area) or (g.is_province(area) and g.province(place) == area)


def choose_layer(evidence: list[Evidence], asked: str | None, home: str | None,
                 relevant: Callable[[int], bool]) -> tuple[list[Evidence], int | None]:
    area = asked or home
    if not area or len(evidence) < 2:
        return evidence, None
    places = [document_place(ev.document) for ev in evidence]
    top_local = applies_to(places[0], area)
    for i in range(1, min(LAYER_DEPTH, len(evidence))):
        if places[0] is None and applies_to(places[i], area) and relevant(i):
            if asked:  # the named place's rule leads, the national one follows
                reordered = [evidence[i], evidence[0]] + [ev for j, ev in enumerate(evidence) if j not in (0, i)]
                return reordered, 1
            return evidence, i
        if top_local and places[i] is None and relevant(i):
            return evidence, i
    return evidence, None
