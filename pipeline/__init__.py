"""Orchestration layer: CLI, configs, dataset adapters."""
