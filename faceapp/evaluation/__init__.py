"""Evaluation: verification and identification metrics, and the LFW pairs protocol."""
