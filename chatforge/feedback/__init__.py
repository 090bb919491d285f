"""Feedback: the store of rated conversations, curation, and learning from them."""
