"""The official side of the conformance harness: runs MC-E/DragonDiffusion (f9b5bdf) on random SD1.5-topology
weights, on the CPU in fp32, and writes every tensor the comparison needs. Runs in .dev/venv-official.

    python bench/conformance/official_side.py OUT_DIR [case names...]

The official source is imported from OFFICIAL_DIR (default ../shared/reference/DragonDiffusion) and never edited.
Only what needs downloads or a GPU is stood in for, outside its source: the VAE (the case's latent *is* the image),
CLIP text and image encoders (fixed random prompt embeddings; zero image tokens, i.e. ip_scale 0), CUDA (mapped to
the CPU), xformers (stubs/, PyTorch attention), basicsr (stubs/), dlib (the landmarks are given). Each mode runs
through its ``DragonModels.run_<mode>`` method of ``src/demo/model.py`` as the demo calls it, with ``alg`` set.

What is recorded, by wrapping methods of this process's objects (never their code): every UNet call of the edit
(input latent, the uncond and cond eps; each time-travel re-noise), each guidance (its output and the energies
handed to torch.autograd.grad), the regional SDE noise (drawn here, seeded, and handed to the official
``torch.randn_like``, which the pack side is given too), the masks, the start latent, the inversion and the bank.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OFFICIAL_DIR = os.path.abspath(os.environ.get("OFFICIAL_DIR") or os.path.join(ROOT, "..", "shared", "reference",
                                                                            "DragonDiffusion"))
sys.path[:0] = [os.path.join(HERE, "stubs"), OFFICIAL_DIR, HERE]

import cases as C  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

_to = torch.Tensor.to


def _cpu(d):
    return "cpu" if (isinstance(d, str) and d.startswith("cuda")) or getattr(d, "type", None) == "cuda" else d


def _to_cpu(self, *args, **kwargs):  # the official code sends tensors to its GPU by name
    if "device" in kwargs:
        kwargs["device"] = _cpu(kwargs["device"])
    return _to(self, *(_cpu(a) for a in args), **kwargs)


torch.Tensor.to = _to_cpu
torch.Tensor.cuda = lambda self, *a, **k: self
torch.cuda.empty_cache = lambda: None
_LANDMARKS: list = []  # what get_landmark returns, in call order (landmarks are given, not detected)
sys.modules["dlib"] = types.SimpleNamespace(shape_predictor=lambda path: None)
sys.modules["pytorch_lightning"] = types.SimpleNamespace(seed_everything=lambda seed: None)
sys.modules["src.utils.alignment"] = types.SimpleNamespace(align_face=lambda img, predictor, size: img,
                                                           get_landmark=lambda img, predictor: _LANDMARKS.pop(0))

from diffusers import DDIMScheduler, UNet2DConditionModel  # noqa: E402
from src.demo.model import DragonModels  # noqa: E402
from src.models.dragondiff import DragonPipeline  # noqa: E402
from src.models.Sampler import Sampler  # noqa: E402
from src.unet.attention_processor import AttnProcessor, IPAttnProcessor  # noqa: E402
from src.unet.estimator import MyUNet2DConditionModel  # noqa: E402
from src.unet.unet_2d_condition import DragonUNet2DConditionModel  # noqa: E402

CONFIGS = {  # diffusers 0.18 names the number of heads attention_head_dim
    "tiny": dict(block_out_channels=(32, 64, 128, 128)),
    "full": dict(block_out_channels=(320, 640, 1280, 1280)),
}
COMMON = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, cross_attention_dim=768,
              attention_head_dim=8, norm_num_groups=32,
              down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
              up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SD15_DDIM = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                 clip_sample=False, set_alpha_to_one=False, steps_offset=1)
GUIDANCE = {"move": "guidance_move", "drag": "guidance_drag", "landmark": "guidance_landmark",
            "appearance": "guidance_appearance", "paste": "guidance_paste"}
PROMPTS = ("prompt", "prompt_ref", "a photo of a human face")


class Stop(Exception):
    """Ends the official edit after the last step a case compares."""


class Uninitialised:
    """Builds modules without their default initialisation (every weight is loaded right after): a full-width
    UNet's random init costs more than its whole inversion here. Process-local; restores on exit."""

    KINDS = (torch.nn.Linear, torch.nn.modules.conv._ConvNd, torch.nn.GroupNorm, torch.nn.LayerNorm)

    def __enter__(self):
        self.saved = [(k, k.reset_parameters) for k in self.KINDS]
        for k, _ in self.saved:
            k.reset_parameters = lambda self: None

    def __exit__(self, *exc):
        for k, f in self.saved:
            k.reset_parameters = f


@torch.no_grad()
def random_weights(width: str, seed: int = C.WEIGHTS_SEED) -> dict[str, torch.Tensor]:
    """Seeded diffusers-layout UNet weights: fan-in normals, norms near 1, small biases; the output conv scaled so
    that eps has unit std at t=500 (random weights otherwise give a tiny or huge eps)."""
    config = {**COMMON, **CONFIGS[width]}
    with Uninitialised():
        unet = UNet2DConditionModel(**config)
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, t in sorted(unet.state_dict().items()):
        if name.endswith("weight") and t.ndim >= 2:
            sd[name] = torch.randn(t.shape, generator=g) / math.sqrt(t[0].numel())
        elif name.endswith("weight"):
            sd[name] = 1.0 + 0.05 * torch.randn(t.shape, generator=g)
        else:
            sd[name] = 0.02 * torch.randn(t.shape, generator=g)
    unet.load_state_dict(sd)
    x = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(seed + 1))
    out = unet(x, torch.tensor([500.0]), encoder_hidden_states=torch.zeros(1, 1, 768)).sample
    sd["conv_out.weight"] = sd["conv_out.weight"] / out.std()
    sd["conv_out.bias"] = sd["conv_out.bias"] / out.std()
    return sd


class Prompts:
    """Tokenizer and text encoder in one: each prompt string maps to a fixed (1, 77, 768) embedding."""

    model_max_length = 77

    def __init__(self, table: dict[str, torch.Tensor]):
        self.table, self.names = table, list(table)

    def __call__(self, arg, **kw):
        if isinstance(arg, torch.Tensor):  # text_encoder(ids)
            return (torch.cat([self.table[self.names[int(i[0])]] for i in arg]),)
        return types.SimpleNamespace(input_ids=torch.tensor([[self.names.index(p)] for p in arg]))


def build_pipe(sd: dict, width: str) -> Sampler:
    """The official Sampler built here, nothing downloaded: both UNets load the same weights, with the processors of
    DragonPipeline.load_adapter (bank-aware self-attention, IP cross-attention that stays text-only with zero image
    tokens)."""
    config = {**COMMON, **CONFIGS[width]}
    with Uninitialised():
        unet, est = DragonUNet2DConditionModel(**config), MyUNet2DConditionModel(**config)
    missing, unexpected = unet.load_state_dict(sd, strict=False)
    assert not missing and not unexpected, (missing[:3], unexpected[:3])
    est.load_state_dict(sd, strict=True)
    for m in (unet, est):
        m.eval().requires_grad_(False)
    procs = {}
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            procs[name] = AttnProcessor()
            continue
        part = name.split(".")
        ch = config["block_out_channels"]
        hidden = ch[-1] if part[0] == "mid_block" else (ch[::-1] if part[0] == "up_blocks" else ch)[int(part[1])]
        procs[name] = IPAttnProcessor(hidden_size=hidden, cross_attention_dim=768, scale=0.0, num_tokens=64)
    unet.set_attn_processor(procs)
    pipe = Sampler.__new__(Sampler)
    pipe.__dict__["_internal_dict"] = {}  # an empty pipeline config: its __setattr__ reads it on re-assignment
    pipe.unet, pipe.estimator = unet, est
    pipe.scheduler = DDIMScheduler(**SD15_DDIM)
    return pipe


def inputs(case: C.Case) -> dict[str, torch.Tensor]:
    """The case's latents (official z0 = 0.18215 x VAE mean), prompt embeddings and regional SDE noise, seeded."""
    g = torch.Generator().manual_seed(case.seed)
    n = case.latent
    t = {"x0": torch.randn(1, 4, n, n, generator=g), "x0_ref": torch.randn(1, 4, n, n, generator=g)}
    for p in ("cond", "cond_ref", "uncond"):
        t[p] = torch.randn(1, 77, 768, generator=g)
    for i in range(11, 20):
        t[C.key("noise", i)] = torch.randn(1, 4, n, n, generator=g)
    return t


class Recorder:
    """Wraps this process's UNet, guidance and autograd.grad calls to keep what each edit step computed."""

    def __init__(self, pipe: Sampler, case: C.Case, data: dict):
        self.case, self.data, self.pipe = case, data, pipe
        self.i, self.r, self.calls = -1, 0, {}
        self.energies: list[float] = []
        unet_forward, guide = pipe.unet.forward, getattr(pipe, GUIDANCE[case.mode])
        grad = self.grad = torch.autograd.grad

        def forward(sample, t, encoder_hidden_states, **kw):
            it = int(kw.get("iter_cur", 0))
            if kw.get("save_kv", True):
                return unet_forward(sample, t, encoder_hidden_states, **kw)
            if it == -2:  # time travel's re-noise, after repeat r of step i
                out = unet_forward(sample, t, encoder_hidden_states, **kw)
                self.put("renoise_in", sample[:, :, 0])
                self.put("renoise_eps", out["sample"][:, :, 0])
                return out
            if it > max(case.steps):  # the last compared step's output is this call's input: keep it, then stop
                self.i, self.r = it, 0
                self.put("z_in", sample[:1, :, 0])
                raise Stop
            self.r = self.calls.get(it, 0)
            self.calls[it] = self.r + 1
            self.i = it
            out = unet_forward(sample, t, encoder_hidden_states, **kw)
            eps_u, eps_c = out["sample"][:, :, 0].chunk(2)
            self.put("z_in", sample[:1, :, 0])
            self.put("eps_u", eps_u)
            self.put("eps_c", eps_c)
            self.data[C.key("t", it)] = torch.tensor(int(t))
            return out

        def guidance(**kw):
            self.energies = []
            g = guide(**kw)
            self.put("g", g)
            self.put("E", torch.tensor(self.energies, dtype=torch.float64) / (case_lambda(case)))
            return g

        def grad_rec(outputs, inputs, *a, **k):
            self.energies.append(float(outputs.detach()))
            return grad(outputs, inputs, *a, **k)

        pipe.unet.forward = forward
        pipe.__dict__[GUIDANCE[case.mode]] = guidance
        torch.autograd.grad = grad_rec

    def restore(self) -> None:
        """Take this case's wrappers off again (they live on instances, so deleting them unwraps)."""
        del self.pipe.unet.forward
        del self.pipe.__dict__[GUIDANCE[self.case.mode]]
        torch.autograd.grad = self.grad

    def put(self, name: str, t: torch.Tensor) -> None:
        self.data[C.key(name, self.i, self.r)] = t.detach().clone().contiguous()


def case_lambda(case: C.Case) -> float:
    return C.MODE_ARGS[case.mode]["energy"] * 1e3


def run_case(pipe: Sampler, case: C.Case) -> tuple[dict, dict]:
    """Runs one case through the official demo's method; returns (tensors, scalars)."""
    t_in = inputs(case)
    data = dict(t_in)
    table = {"prompt": t_in["cond"], "prompt_ref": t_in["cond_ref"], "a photo of a human face": t_in["cond"],
             "": t_in["uncond"]}
    pipe.tokenizer = pipe.text_encoder = Prompts(table)
    rec = Recorder(pipe, case, data)
    noise = [t_in[C.key("noise", i)] for i in range(11, 20)]
    randn_like = torch.randn_like
    torch.randn_like = lambda x, **k: noise.pop(0).to(x.dtype)  # the regional SDE's only draw
    latents = [t_in["x0"], t_in["x0_ref"]]
    meta: dict = {"case": case.name}
    zero = torch.zeros(1, 0, 768)

    def edit(**kw):
        data["start"] = kw["latent"].detach().clone()
        for k, v in kw["edit_kwargs"].items():
            if isinstance(v, torch.Tensor):
                data[C.key("mask", k)] = v.detach().float().clone()
            elif isinstance(v, list) and v and isinstance(v[0], torch.Tensor):
                data[C.key("mask", k)] = torch.stack([m.float() for m in v])
            elif isinstance(v, dict):
                for kk, vv in v.items():
                    data[C.key("mask", k, kk)] = vv.detach().float().clone()
        t0 = time.time()
        try:
            out = Sampler.edit(pipe, alg=case.alg, **kw)
            data["final"] = out.detach().clone()
        except Stop:
            out = kw["latent"]
        meta["t_edit"] = time.time() - t0
        return out

    editor = types.SimpleNamespace(
        pipe=types.SimpleNamespace(edit=edit), NUM_DDIM_STEPS=C.STEPS, ip_id=None, load_adapter=lambda *a: None,
        get_image_embeds=lambda img: (zero, zero), image2latent=lambda img: latents.pop(0),
        decode_latents=lambda z: np.zeros((case.image, case.image, 3), np.uint8))
    view = types.SimpleNamespace(pipe=pipe, NUM_DDIM_STEPS=C.STEPS)  # what DragonPipeline.ddim_inv reads
    editor.ddim_inv = lambda latent, prompt, emb_im=None: _inv(view, latent, prompt, data, meta)
    me = types.SimpleNamespace(editor=editor, up_ft_index=[1, 2], up_scale=2, device="cpu", precision=torch.float32,
                               ip_scale=0.05 if case.mode == "landmark" else None, face_predictor=None)
    try:
        _call_demo(me, case)
    finally:
        rec.restore()
        torch.randn_like = randn_like
    data["timesteps"] = pipe.scheduler.timesteps.clone()
    data["alphas_cumprod"] = pipe.scheduler.alphas_cumprod.clone()
    for name, m in pipe.unet.named_modules():
        if hasattr(m, "buffer_key"):
            keep = range(C.STEPS) if case.width == "tiny" else case.steps
            data[C.key("bank", name, "k")] = torch.stack([m.buffer_key[i] for i in keep])
            data[C.key("bank", name, "v")] = torch.stack([m.buffer_value[i] for i in keep])
    meta["bank_steps"] = list(range(C.STEPS) if case.width == "tiny" else case.steps)
    return data, meta


def _inv(view, latent, prompt, data, meta):
    t0 = time.time()
    out = DragonPipeline.ddim_inv(view, latent, prompt)
    meta["t_inversion"] = time.time() - t0
    data["inversion"] = torch.stack([z[:, :, 0] for z in out])
    return out


def _call_demo(me, case: C.Case) -> None:
    """``DragonModels.run_<mode>`` with the case's inputs, as the gradio demo passes them."""
    a = C.MODE_ARGS[case.mode]
    img = np.zeros((case.image, case.image, 3), np.uint8)
    common = dict(seed=42, guidance_scale=a["cfg"], energy_scale=a["energy"], max_resolution=case.image,
                  SDE_strength=a["sde"])
    mask = C.rect_mask(case)
    if case.mode == "move":
        x0, y0, x1, y1 = case.rect
        pts = [[(x0 + x1) // 2, (y0 + y1) // 2], [(x0 + x1) // 2 + case.dx, (y0 + y1) // 2 + case.dy]]
        DragonModels.run_move(me, img, np.repeat(mask[:, :, None], 3, 2), None, "prompt", resize_scale=case.scale,
                              selected_points=pts, **a["w"], **common)
    elif case.mode == "drag":
        pts = [p for hx, hy, tx, ty in case.points for p in ([hx, hy], [tx, ty])]
        DragonModels.run_drag(me, img, mask, "prompt", selected_points=pts, **a["w"], **common)
    elif case.mode == "landmark":
        _LANDMARKS[:] = [[[hx, hy] for hx, hy, _, _ in case.points], [[tx, ty] for _, _, tx, ty in case.points]]
        DragonModels.run_drag_face(me, img, img.copy(), **a["w"], **common)
    elif case.mode == "appearance":
        DragonModels.run_appearance(me, img, mask, img.copy(), C.rect_mask(case, C.REFERENCE_RECT), "prompt",
                                    "prompt_ref", **a["w"], **common)
    elif case.mode == "paste":
        DragonModels.run_paste(me, img, mask, img.copy(), "prompt", "prompt_ref", dx=case.dx, dy=case.dy,
                               resize_scale=case.scale, **a["w"], **common)
    else:
        raise ValueError(case.mode)


def main(out_dir: str, names: list[str]) -> None:
    torch.set_num_threads(int(os.environ.get("CONFORMANCE_THREADS", "2")))
    todo = [C.by_name(n) for n in names] if names else C.CASES + C.FULL
    os.makedirs(out_dir, exist_ok=True)
    pipes: dict[str, Sampler] = {}
    for case in todo:
        if case.width not in pipes:
            pipes.clear()
            t0 = time.time()
            sd = random_weights(case.width)
            path = os.path.join(out_dir, f"unet_{case.width}.safetensors")
            save_file({k: v.contiguous() for k, v in sd.items()}, path)
            pipes[case.width] = build_pipe(sd, case.width)
            del sd
            print(f"official: {case.width} UNet built in {time.time() - t0:.1f}s", flush=True)
        data, meta = run_case(pipes[case.width], case)
        slug = case.name.replace(" ", "_")
        save_file({k: v.contiguous() for k, v in data.items()}, os.path.join(out_dir, f"{slug}.safetensors"))
        with open(os.path.join(out_dir, f"{slug}.json"), "w") as f:
            json.dump(meta, f)
        print(f"official: {case.name}: inversion {meta['t_inversion']:.1f}s, edit {meta['t_edit']:.1f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
