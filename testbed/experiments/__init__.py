"""Scenarios, runs, results and plots."""
