"""What makes two archive documents copies: the parameters of every stage, recorded in summary.json."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from wiretrace.config import MatchSettings, Settings
from wiretrace.scoring import ScoringParams


@dataclass(frozen=True)
class DedupParams:
    """What makes two documents copies; recorded in summary.json."""

    threshold: float = 0.8  # containment of the shorter document in the longer
    min_coverage: float = 0.5  # ...and share of the longer document covered
    lead_coverage: float = 0.2  # ...or this share, when the shorter one is the longer one's lead (cut from the bottom)
    max_bucket: int = 50  # buckets larger than this give star pairs only
    id_field: str = "id"
    text_field: str = "text"
    lookalikes: bool = True  # compare words by OCR look-alike class (c/e, rn/m, 1/l/i, 0/o/a, ...)
    shorthand: bool = True  # ...and spelt-out wire shorthand as the short form (percent/pct, million/mln, ...)


def scoring_params(settings: Settings) -> ScoringParams:
    """ScoringParams from the match settings, whatever fields the two share."""
    names = {f.name for f in dataclasses.fields(ScoringParams)}
    values = {f.name: getattr(settings.match, f.name) for f in dataclasses.fields(MatchSettings) if f.name in names}
    values["passage_bridge"] = 0  # de-duplication reads containment and coverage, never passages
    return ScoringParams(shingle_size=settings.index.shingle_size, **values)
