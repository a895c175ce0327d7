"""Lead scoring: rule points (fit + decayed engagement) and the predictive model of conversion.

`rule_scores` and `explain_lead` read; `train_lead` registers a model version; `update_lead_scores` writes
Contact.lead_score for every live contact (the champion's probability x 100, or the rule points without one).
"""
from crm.ml.lead.card import evaluate_lead, lead_card
from crm.ml.lead.rules import rule_scores
from crm.ml.lead.scoring import explain_lead, update_lead_scores
from crm.ml.lead.train import train_lead

__all__ = ["evaluate_lead", "explain_lead", "lead_card", "rule_scores", "train_lead", "update_lead_scores"]
