"""Counterfactual generators."""
