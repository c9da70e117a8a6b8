"""Ingestion: what to ask Amazon for (planner), the slice state machine (states), the runner."""
