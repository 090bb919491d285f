"""LoRA through peft: only the adapters train, merging reproduces the adapted model, and the
adapter dir loads onto Hugging Face's Llama with peft."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from chatforge.checkpoint import load_model_dir, save_model_dir
from chatforge.data import synth
from chatforge.data.dataset import write_dataset
from chatforge.data.steps import row_texts
from chatforge.errors import UserError
from chatforge.model import GPT, ModelConfig
from chatforge.tokenizer import train_tokenizer
from chatforge.train.config import LoRAConfig, MergeLoRAConfig, SFTConfig, TrainConfig
from chatforge.train.lora import add_lora, load_adapter, merged
from chatforge.train.lora import main as merge_main
from chatforge.train.sft import main as sft_main

BY = {"command": "test"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A base model and a LoRA SFT run on it."""
    root = tmp_path_factory.mktemp("lora")
    w = synth.generate(3, conversations=60, test_conversations=1, heldout_conversations=1, kb_articles=5, preferences=1)
    tok = train_tokenizer([t for r in w.conversations for t in row_texts(r, "conversations")], 500)
    tok.save(root / "tok")
    torch.manual_seed(0)
    save_model_dir(root / "base", GPT(ModelConfig(vocab_size=512, n_layer=2, n_embd=32, n_head=4, n_kv_head=2, block_size=256)), tokenizer_dir=root / "tok")
    write_dataset(root / "data", "conversations", w.conversations[:40], created_by=BY)
    train = TrainConfig(steps=8, batch_size=4, eval_every=0, save_every=8, log_every=4)
    train.optim.lr = 1e-2
    cfg = SFTConfig(model=str(root / "base"), data=[str(root / "data")], out=str(root / "run"), val_fraction=0, train=train,
                    lora=LoRAConfig(r=4, alpha=8, targets=["q_proj", "v_proj", "down_proj"]))  # fmt: skip
    sft_main(cfg)
    return root


def test_only_the_adapters_train(run):
    base = load_file(str(run / "base" / "model.safetensors"))
    ck = load_file(str(run / "run" / "checkpoints" / "step_000008" / "model.safetensors"))
    lora = [k for k in ck if "lora_" in k]
    assert lora and all(k.endswith("lora_A.default.weight") or k.endswith("lora_B.default.weight") for k in lora)
    for name, w in base.items():  # every base weight, wrapped or not, is bit-identical
        key = name if name in ck else name.replace(".weight", ".base_layer.weight")
        assert torch.equal(ck[key], w), name
    assert any(ck[k].abs().sum() > 0 for k in lora if "lora_B" in k)  # the adapters did learn
    adapter = load_file(str(run / "run" / "adapter" / "adapter_model.safetensors"))
    assert sorted(adapter) == sorted("base_model.model." + k.replace(".default", "") for k in lora)


def test_merging_reproduces_the_adapted_model(run, tmp_path):
    x = torch.randint(0, 500, (2, 40))
    adapted = load_adapter(load_model_dir(run / "base"), run / "run" / "adapter").eval()
    with torch.no_grad():
        want = adapted(x)
        assert not torch.allclose(want, load_model_dir(run / "base").eval()(x), atol=1e-3)  # the adapter matters
        torch.testing.assert_close(load_model_dir(run / "run" / "model").eval()(x), want, atol=2e-5, rtol=1e-5)
        merge_main(MergeLoRAConfig(model=str(run / "base"), adapter=str(run / "run" / "adapter"), out=str(tmp_path / "m")))
        torch.testing.assert_close(load_model_dir(tmp_path / "m").eval()(x), want, atol=2e-5, rtol=1e-5)
    assert not any("lora" in k or "base_layer" in k for k in load_file(str(tmp_path / "m" / "model.safetensors")))


def test_the_adapter_loads_onto_hugging_face_llama_with_peft(run):
    from peft import PeftModel
    from transformers import LlamaForCausalLM

    x = torch.randint(0, 500, (1, 30))
    hf = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(run / "base"), run / "run" / "adapter").eval()
    ours = load_adapter(load_model_dir(run / "base"), run / "run" / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(hf(x).logits, ours(x), atol=1e-4, rtol=1e-4)


def test_bad_targets_and_adapters_are_clear_errors(run, tmp_path):
    with pytest.raises(Exception, match="not layers of the model"):
        LoRAConfig(r=4, targets=["qkv"]).validate()
    (tmp_path / "a").mkdir()
    with pytest.raises(UserError, match="not a LoRA adapter dir"):
        load_adapter(load_model_dir(run / "base"), tmp_path / "a")
    m = merged(add_lora(load_model_dir(run / "base"), LoRAConfig(r=2, targets=["o_proj"])))
    assert all(p.requires_grad for p in m.parameters()) and not any("lora" in n for n, _ in m.named_parameters())


def test_freeze_layers_puts_adapters_only_in_the_upper_blocks(run, tmp_path):
    import json

    from peft import PeftModel
    from transformers import LlamaForCausalLM

    train = TrainConfig(steps=4, batch_size=4, eval_every=0, save_every=0, log_every=2)
    train.optim.lr = 1e-2
    cfg = SFTConfig(model=str(run / "base"), data=[str(run / "data")], out=str(tmp_path / "run"), val_fraction=0, train=train,
                    lora=LoRAConfig(r=4, alpha=8, targets=["q_proj", "down_proj"]), freeze_layers=1)  # fmt: skip
    sft_main(cfg)
    adapter = tmp_path / "run" / "adapter"
    keys = list(load_file(str(adapter / "adapter_model.safetensors")))
    assert keys and all(".layers.1." in k for k in keys)
    assert json.loads((adapter / "adapter_config.json").read_text())["layers_to_transform"] == [1]
    x = torch.randint(0, 500, (1, 30))
    ours = load_adapter(load_model_dir(run / "base"), adapter).eval()
    hf = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(run / "base"), adapter).eval()
    with torch.no_grad():
        want = ours(x)
        torch.testing.assert_close(hf(x).logits, want, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(load_model_dir(tmp_path / "run" / "model").eval()(x), want, atol=2e-5, rtol=1e-5)
    cfg_file = adapter / "adapter_config.json"
    raw = json.loads(cfg_file.read_text())
    cfg_file.write_text(json.dumps({**raw, "layers_to_transform": [0]}))
    with pytest.raises(UserError, match="layers_to_transform"):
        load_adapter(load_model_dir(run / "base"), adapter)
