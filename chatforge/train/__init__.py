"""Training: the shared loop (loop.py) and the stages that use it (pretrain, sft, dpo)."""
