"""Evaluation: how good a model is (task success on the support world; more metrics as the eval stage lands)."""
