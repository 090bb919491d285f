"""Data: synthesize, ingest, clean, inspect and store conversation datasets."""
