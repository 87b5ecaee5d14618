"""Issue 16: the guided edit under the conditions of the newest ComfyUI, SIMULATED inside real ComfyUI 0.3.75.

Upstream (Comfy-Org/ComfyUI 0.38.1, ``comfyui_version.py`` @20ca544e) cannot be installed here. Each condition below
is rebuilt with 0.3.75's own classes and hooks, and labelled with the upstream file and commit it reproduces. The
pack's real code runs in each (the DragonGuidedSampler node, its sampler, its guidance); nothing of the pack is
mocked. ``record_gradients`` only records what the pack's ``energy_gradient`` returns.

Each test compares the energy gradient g of every guided step with the plain 0.3.75 path (normal weights, no
wrappers, ComfyUI's default attention) and checks that the user's MODEL is bit-identical afterwards. Each
condition also has a control that shows it is real: plain autograd through the same MODEL fails in it.
"""
import types

import comfy.ldm.modules.attention as comfy_attention
import comfy.model_management as mm
import comfy.model_patcher
import pytest
import torch

from dragon_drag_edit.dragon_ops import guidance

from dd_edit import box_mask, invert, move_energy, sample
from dd_models import assert_unchanged, snapshot, tiny_unet_model

MASK = box_mask(64, 64, 16, 36, 12, 32)
RUN = {"guidance_until": 3, "bank_start_step": 1}
SMALL_MODULE = 16 * 1024  # bytes; upstream force-loads modules this small without weight wrappers


@pytest.fixture(scope="module")
def plain():
    """The plain 0.3.75 path: its bank and its per-step energy gradients and result."""
    model = tiny_unet_model("sd15", seed=0)
    lat = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    bank = invert(model, lat, steps=6)[1]
    grads, out = guided_move(model, bank)
    return bank, grads, out


def record_gradients(monkeypatch) -> list[torch.Tensor]:
    """Record g of every guided step as the pack's own energy_gradient computes it."""
    seen, real = [], guidance.energy_gradient

    def recorder(*args, **kwargs):
        g, backwards = real(*args, **kwargs)
        seen.append(g.detach().clone())
        return g, backwards

    monkeypatch.setattr(guidance, "energy_gradient", recorder)
    return seen


def guided_move(model, bank, inference=False):
    with pytest.MonkeyPatch.context() as mp:
        grads = record_gradients(mp)
        with torch.inference_mode(inference):
            out, counts = sample(model, bank, move_energy(bank, MASK, dx=16, dy=8), **RUN)
    assert counts["backwards"] == 2 * RUN["guidance_until"]  # E_edit and E_content per guided step
    return grads, out


def assert_same_gradients(grads, plain):
    _, ref, ref_out = plain
    assert len(grads) == len(ref) == RUN["guidance_until"]
    for g, r in zip(grads, ref):
        assert torch.isfinite(g).all() and r.abs().max() > 0
        assert (g - r).abs().max() <= 1e-5 * r.abs().max()


def control_backward_fails(model, match):
    """Plain autograd through the loaded MODEL's UNet, as code without the pack's protections would do it."""
    mm.load_models_gpu([model])
    unet = model.model.diffusion_model
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.randn(1, 4, 8, 8, requires_grad=True)
        with pytest.raises(RuntimeError, match=match):
            out = unet(x, torch.tensor([500.0]), context=torch.zeros(1, 7, 32), transformer_options={})
            out.square().sum().backward()


# -- upstream dynamic VRAM --------------------------------------------------------------------------------------

class SimulatedDynamicPatcher(comfy.model_patcher.ModelPatcher):
    """SIMULATES upstream ``ModelPatcherDynamic`` (comfy/model_patcher.py @08d0e510):

    * ``load``: every cast-capable module casts per forward, and modules of 16 KiB or less get no weight
      functions (upstream force-loads them and drops their weight wrappers);
    * ``clone(disable_dynamic=True)`` re-runs the loader (``cached_patcher_init``) on every call;
    * ``get_non_dynamic_delegate()`` builds the static model once and caches it (``non_dynamic_delegate_model``),
      raising when the loader left no ``cached_patcher_init``.
    """

    loads = 0  # how many times a loader re-ran (class-wide, for the test)

    def is_dynamic(self):
        return True

    def clone(self, disable_dynamic=False):
        if disable_dynamic:
            return self._static_patcher(self._reload().model)
        n = super().clone()
        n.cached_patcher_init = getattr(self, "cached_patcher_init", None)
        n.non_dynamic_delegate_model = getattr(self, "non_dynamic_delegate_model", None)
        return n

    def _reload(self):
        if getattr(self, "cached_patcher_init", None) is None:
            raise RuntimeError("Cannot create non-dynamic delegate: cached_patcher_init is not initialized.")
        SimulatedDynamicPatcher.loads += 1
        factory, args = self.cached_patcher_init
        return factory(*args)

    def _static_patcher(self, model):
        n = comfy.model_patcher.ModelPatcher(model, self.load_device, self.offload_device)
        n.patches = {k: v[:] for k, v in self.patches.items()}
        n.model_options = comfy.model_patcher.copy.deepcopy(self.model_options)
        return n

    def get_non_dynamic_delegate(self):
        if getattr(self, "non_dynamic_delegate_model", None) is None:
            self.non_dynamic_delegate_model = self._reload().model
        return self._static_patcher(self.non_dynamic_delegate_model)

    def load(self, *args, **kwargs):
        super().load(*args, **kwargs)
        for _, m in self.model.named_modules():
            if hasattr(m, "comfy_cast_weights"):
                if not hasattr(m, "prev_comfy_cast_weights"):
                    m.prev_comfy_cast_weights = m.comfy_cast_weights
                m.comfy_cast_weights = True
                if mm.module_size(m) <= SMALL_MODULE:
                    m.weight_function, m.bias_function = [], []


def loaded_as_in_the_server(seed=0):
    """The tiny SD1.5 MODEL as CheckpointLoaderSimple makes it inside the executor: inference-tensor Parameters
    that still say requires_grad=True."""
    with torch.inference_mode():
        model = tiny_unet_model("sd15", seed=seed)
        model.model.diffusion_model.requires_grad_(True)
    return model


def dynamic_model(with_loader: bool):
    base = loaded_as_in_the_server()
    model = SimulatedDynamicPatcher(base.model, base.load_device, base.offload_device)
    model.cached_patcher_init = (loaded_as_in_the_server, ()) if with_loader else None
    model.non_dynamic_delegate_model = None
    return model


def test_dynamic_vram_static_delegate_is_built_once_in_five_runs(plain, monkeypatch):
    bank = plain[0]
    model = dynamic_model(with_loader=True)
    snap = snapshot(model)
    SimulatedDynamicPatcher.loads = 0
    for _ in range(5):
        grads, _ = guided_move(model, bank, inference=True)
        assert_same_gradients(grads, plain)
    assert SimulatedDynamicPatcher.loads == 1  # not one checkpoint reload per guided run
    assert_unchanged(model, snap)


def test_dynamic_vram_without_a_loader_guides_the_dynamic_clone(plain):
    bank = plain[0]
    model = dynamic_model(with_loader=False)
    snap = snapshot(model)
    control_backward_fails(model.clone(), "Inference tensors cannot be saved for backward")
    grads, out = guided_move(model, bank, inference=True)
    assert_same_gradients(grads, plain)
    assert (out - plain[2]).abs().max() <= 1e-5 * plain[2].abs().max()
    assert_unchanged(model, snap)


# -- upstream low-VRAM cast buffers ---------------------------------------------------------------------------

def shared_cast_buffer(model):
    """SIMULATES upstream's reused per-stream cast buffer (comfy/model_management.py @02b2b388 ``get_cast_buffer``;
    comfy/ops.py @0271a469 ``cast_bias_weight``): through 0.3.75's own ``add_weight_wrapper``, every module's
    weight and bias reach it as views of one buffer that the next module overwrites."""
    unet = model.model.diffusion_model
    size = max(p.numel() for p in unet.parameters())
    buffer = torch.empty(2 * size)

    def into(offset):
        def view(w):
            out = buffer[offset:offset + w.numel()].view(w.shape)
            out.copy_(w)
            return out
        return view

    for name, m in model.model.named_modules():
        if name.startswith("diffusion_model") and hasattr(m, "weight_function"):
            model.add_weight_wrapper(f"{name}.weight", into(0))
            model.add_weight_wrapper(f"{name}.bias", into(size))


def test_low_vram_cast_buffer_views_give_the_plain_gradients(plain):
    bank = plain[0]
    model = tiny_unet_model("sd15", seed=0)
    model.model.diffusion_model.requires_grad_(True)  # as ComfyUI's loaders leave Parameters: casts carry history
    shared_cast_buffer(model)
    snap = snapshot(model)
    control_backward_fails(model, "modified by an inplace operation")
    grads, out = guided_move(model, bank)
    assert_same_gradients(grads, plain)
    assert (out - plain[2]).abs().max() <= 1e-5 * plain[2].abs().max()
    assert_unchanged(model, snap)


# -- upstream clone semantics -----------------------------------------------------------------------------------

def deepcopy_list_dict(obj):
    """SIMULATES upstream comfy/utils.py @09708eae ``deepcopy_list_dict``: new lists and dicts, shared objects."""
    if isinstance(obj, dict):
        return {k: deepcopy_list_dict(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [deepcopy_list_dict(v) for v in obj]
    return obj


def test_clone_that_shares_patch_objects(plain, monkeypatch):
    """Upstream ``ModelPatcher.clone`` (comfy/model_patcher.py @08d0e510) copies model_options with
    deepcopy_list_dict instead of copy.deepcopy; 0.3.75's clone is made to do the same."""
    monkeypatch.setattr(comfy.model_patcher, "copy", types.SimpleNamespace(deepcopy=deepcopy_list_dict))
    bank = plain[0]
    model = tiny_unet_model("sd15", seed=0)
    marker = {"state": []}  # a patch object another pack left in the MODEL's options, shared by every clone
    model.model_options.setdefault("transformer_options", {})["other_pack"] = marker
    snap = snapshot(model)
    grads, _ = guided_move(model, bank)
    assert_same_gradients(grads, plain)
    assert_unchanged(model, snap)
    assert marker == {"state": []}


# -- attention kernels without a backward -----------------------------------------------------------------------

class NoBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, out):
        return out.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("this attention kernel has no backward pass")


def test_global_attention_without_backward(plain, monkeypatch):
    """SIMULATES ``--use-sage-attention`` / flash / ``--use-ck-attention`` (comfy/ldm/modules/attention.py @05080f60:
    the kernel is chosen globally as ``optimized_attention``): a kernel whose output cannot be differentiated."""
    calls = {"global": 0, "global_with_grad": 0, "pytorch": 0, "pytorch_with_grad": 0}
    real_pytorch = comfy_attention.attention_pytorch

    @comfy_attention.wrap_attn
    def no_backward_kernel(q, k, v, heads, *args, **kwargs):
        calls["global"] += 1
        calls["global_with_grad"] += int(q.requires_grad)
        return NoBackward.apply(real_pytorch(q, k, v, heads, *args, **kwargs))

    def counted_pytorch(*args, **kwargs):
        calls["pytorch"] += 1
        calls["pytorch_with_grad"] += int(args[0].requires_grad)
        return real_pytorch(*args, **kwargs)

    monkeypatch.setattr(comfy_attention, "optimized_attention", no_backward_kernel)
    monkeypatch.setattr(comfy_attention, "optimized_attention_masked", no_backward_kernel)
    model = tiny_unet_model("sd15", seed=0)
    control_backward_fails(model, "no backward pass")
    calls["global"] = calls["global_with_grad"] = 0
    monkeypatch.setattr(comfy_attention, "attention_pytorch", counted_pytorch)
    snap = snapshot(model)
    grads, _ = guided_move(model, plain[0])
    assert_same_gradients(grads, plain)
    assert_unchanged(model, snap)
    layers = sum(isinstance(m, comfy_attention.CrossAttention) for m in model.model.diffusion_model.modules())
    assert calls["global"] >= 6 * layers and calls["global_with_grad"] == 0  # CFG forwards: the global kernel
    assert calls["pytorch_with_grad"] > 0 and calls["pytorch"] > calls["pytorch_with_grad"]  # current + reference


# -- saved banks across ComfyUI versions ------------------------------------------------------------------------

def test_saved_bank_loads_after_unet_config_gains_a_key(plain, tmp_path, monkeypatch):
    """SIMULATES a newer ComfyUI that adds keys to ``unet_config`` for the same weights (upstream's model configs
    gain entries over versions): the bank fingerprint depends on the weights and the architecture only."""
    import folder_paths

    from dragon_drag_edit.dragon_ops import memory_bank
    from dragon_drag_edit.nodes.bank_io import DragonMemoryBankLoad, bank_dir

    monkeypatch.setattr(folder_paths, "get_output_directory", lambda: str(tmp_path))
    bank = plain[0]
    memory_bank.save(bank, f"{bank_dir()}/b.safetensors")
    newer = tiny_unet_model("sd15", seed=0)
    newer.model.model_config.unet_config = {**newer.model.model_config.unet_config, "new_upstream_key": [1, 2]}
    loaded = DragonMemoryBankLoad.execute(file="b.safetensors", model=newer).args[0]
    assert loaded.fingerprint == bank.fingerprint and torch.equal(loaded.latents, bank.latents)
    with pytest.raises(ValueError, match=r"^file: .*made by another model"):
        DragonMemoryBankLoad.execute(file="b.safetensors", model=tiny_unet_model("sd15", seed=7))
