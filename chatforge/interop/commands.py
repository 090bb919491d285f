"""`chatforge import` and `chatforge export`: pick the format's module and run it."""

from __future__ import annotations

from pathlib import Path

from chatforge.errors import UserError
from chatforge.interop.config import ExportConfig, ImportConfig
from chatforge.ui import QUIET, UI


def import_main(cfg: ImportConfig, ui: UI = QUIET) -> Path:
    """Run `import`: a .gguf file or a Hugging Face dir into a model dir at `cfg.out`."""
    src, out = Path(cfg.src), Path(cfg.out)
    if src.suffix.lower() == ".gguf" or (src.is_file() and src.read_bytes()[:4] == b"GGUF"):
        from chatforge.interop.gguf import import_gguf

        return import_gguf(src, out, block_size=cfg.block_size, overwrite=cfg.overwrite, ui=ui)
    if src.is_file():
        raise UserError(f"{src}: a file that is not GGUF; give a .gguf file or a Hugging Face model dir")
    from chatforge.interop.hf import import_hf

    return import_hf(src, out, block_size=cfg.block_size, overwrite=cfg.overwrite, ui=ui)


def export_main(cfg: ExportConfig, ui: UI = QUIET) -> Path:
    """Run `export` in the chosen format."""
    model, out = Path(cfg.model), Path(cfg.out)
    if cfg.format == "hf":
        from chatforge.interop.hf import export_hf

        return export_hf(model, out, dtype=cfg.dtype or "f32", overwrite=cfg.overwrite, ui=ui)
    from chatforge.interop import gguf

    if cfg.format == "ollama":
        return gguf.write_ollama(model, out, dtype=cfg.dtype or "f16", overwrite=cfg.overwrite, ui=ui)
    if out.exists() and not cfg.overwrite:
        raise UserError(f"{out}: already exists; pass --overwrite to replace it, or choose another --out")
    if out.is_dir():
        raise UserError(f"{out}: is a directory; give the .gguf file to write")
    return gguf.write_gguf(model, out, dtype=cfg.dtype or "f16", ui=ui)
