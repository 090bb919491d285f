"""Interop with other tools: import Llama-family models (Hugging Face dirs, GGUF files) and
export ours to Hugging Face and GGUF (llama.cpp, Ollama). See `hf.py` and `gguf.py`."""
