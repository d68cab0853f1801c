"""Evaluation: metrics, protocol, tables and figures."""
