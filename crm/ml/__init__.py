"""Predictive models: features, training, the registry of versions, scoring and explanations."""
