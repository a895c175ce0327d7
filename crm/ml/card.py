"""What the models page shows for each model: one shape for the win, cross-sell and lead models."""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Minimum:
    """A data minimum of a tier: what is counted, how many it needs, how many there are."""
    what: str
    needed: int
    have: int

    @property
    def met(self) -> bool:
        return self.have >= self.needed


@dataclass(frozen=True)
class ModelCard:
    name: str  # win | cross-sell | lead
    version: str | None  # None: never trained
    trained_at: str | None
    tier: str | None  # e.g. "stage base rates", "naive Bayes", "gradient boosting"
    tier_reason: str  # why this tier: the ladder's decision in words
    split: str | None  # "time: trained before 2026-03-01, tested after" or "stratified random 25 %"
    rows: dict = field(default_factory=dict)  # e.g. {"train": 1200, "holdout": 400, "deals": 800}
    minimums: list[Minimum] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)  # {"model": {...}, "<baseline name>": {...}} (crm.ml.metrics)
    reliability: list[dict] = field(default_factory=list)  # crm.ml.metrics.reliability of the holdout
    importance: list[tuple[str, float]] = field(default_factory=list)  # readable feature name, weight; largest first
    drift: list[dict] = field(default_factory=list)  # {"feature", "train", "now", "shift", "flag"}: inputs since training
    breakdown: list[dict] = field(default_factory=list)  # cross-sell: holdout metrics per product, {"product", …}
    status: str | None = None  # champion | challenger
    promotion: str | None = None  # why it was (not) promoted
