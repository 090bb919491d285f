"""chatforge: train a ChatGPT-style assistant of your own, end to end."""

__version__ = "0.1.0"
