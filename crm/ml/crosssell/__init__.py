"""Cross-sell likelihood: for each customer and each product they do not have yet, the probability they buy it.

With dated orders the label is "buys within the next H days" with features as of several past cutoffs; with
undated migrated history it is a cross-sectional ownership propensity. Customers are always scored by a fold
model that never saw them. See docs/models.md, "Cross-sell likelihood".
"""
from crm.ml.crosssell.card import cross_sell_card
from crm.ml.crosssell.scoring import explain, score_product, top_buyers
from crm.ml.crosssell.training import evaluate_cross_sell, train_cross_sell

__all__ = ["cross_sell_card", "evaluate_cross_sell", "explain", "score_product", "top_buyers", "train_cross_sell"]
