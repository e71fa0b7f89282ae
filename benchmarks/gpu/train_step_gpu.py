"""GPU training-step throughput: the native CUDA kernels against plain PyTorch on the same GPU.

    python benchmarks/gpu/train_step_gpu.py OUT_DIR
    python benchmarks/gpu/train_step_gpu.py OUT_DIR --configs 32,16,200 64,1024,200 --repeats 30

One training step = sample a batch of B windows of length T from a device-resident series, the
teacher-forced rollout, BPTT (loss and every gradient), clipping by the global norm and the Adam
update. Native: ``Trainer(..., TrainConfig(device="cuda"))``'s device step (cuda/training/train_step.cu: one
forward launch and one backward launch for all T steps, fixed-order gradient reductions; the step
ends with the copy of the loss to the host, so it is synchronous). PyTorch: ``benchmarks/_torch_plrnn.py``
(autograd through a Python loop over the steps) on the same GPU, batch gathered on the GPU with
``torch.randint``, ``clip_grad_norm_`` and ``torch.optim.Adam``; the loss is copied to the host
each step as well (``loss.item()``), as a training loop logging the loss does.

Model: standard PLRNN, identity observation, N = 3, K = 0, sparse teacher forcing tau = 25, float32,
the native model's initial parameters in both. Timing: ``--warmup`` untimed steps, then
``--repeats`` steps each timed with CUDA events around the call (wall clock where torch is missing),
median reported;
sequence-steps per second = B (T - 1) / median.

Correctness (per configuration, before timing): native GPU ``loss_and_grad`` and torch autograd on
one batch against the CPU core in float64; the relative Frobenius error of every gradient must be
below GRAD_RTOL (float32 over T = 200 steps); exit status 1 otherwise.

Roofline: FLOPs of one step = 6 M^2 B (T-1) (forward W phi: 2 M^2, backward W^T g: 2 M^2,
dL/dW = sum G Phi^T: 2 M^2, per sequence-step; the O(M) elementwise work is left out), and the
bytes of the tape traffic, 4 (9 M + 3 N) B (T-1) (U, Phi written and read, G written and read twice,
z and E). Fractions of the FP32 (non-tensor-core) peak 2 x 128 x SMs x max SM clock and of the
nominal HBM bandwidth of the device are reported. Writes OUT_DIR/train_step_gpu.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # benchmarks/_timing.py, benchmarks/_torch_plrnn.py

import plrnn_native as pn  # noqa: E402
from _timing import machine_info, summarize  # noqa: E402
from plrnn_native import cuda  # noqa: E402
from plrnn_native.training import TrainConfig, Trainer  # noqa: E402

try:
    import torch
    from _torch_plrnn import TorchPLRNN
except ImportError:
    torch = None
if torch is not None and not torch.cuda.is_available():
    torch = None

N = 3
TAU = 25
GRAD_RTOL = 2e-3
SERIES_LEN = 20000
#: nominal HBM bandwidth, bytes/s (vendor data sheets), by a substring of the device name
NOMINAL_BANDWIDTH = [("H200", 4.8e12), ("H100 PCIe", 2.0e12), ("H100", 3.35e12), ("A100", 2.0e12)]


def sm_clock_hz() -> float | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20, check=True).stdout.split()
        return float(out[0]) * 1e6
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def forcing_weights(T: int) -> list:
    return [1.0 if (t >= 1 and t % TAU == 0) else 0.0 for t in range(T - 1)]


def make_series(rng) -> np.ndarray:
    t = np.arange(SERIES_LEN)[:, None]
    return (np.sin(0.05 * t + np.arange(N)) + 0.1 * rng.standard_normal((SERIES_LEN, N))).astype(np.float32)


def rel_err(a, b) -> float:
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / max(np.linalg.norm(b), 1e-30))


def check(model, x_batch, torch_model) -> dict:
    m64 = pn.PLRNN(**dict(model.config, dtype="float64"), seed=0)
    for k, v in model.items():
        m64[k] = v.astype(np.float64)
    kw = dict(forcing="sparse", tau=TAU)
    l64, g64 = m64.loss_and_grad(x_batch.astype(np.float64), **kw)
    lg, gg = model.loss_and_grad(x_batch, device="cuda", **kw)
    out = {"cpu64_loss": l64, "native_gpu_loss": lg,
           "native_grad_rel_err": {k: rel_err(gg[k], g64[k]) for k in g64 if g64[k].size}}
    if torch_model is not None:
        xt = torch.tensor(x_batch, device="cuda")
        loss = torch_model.train_step(xt, forcing_weights(x_batch.shape[1]))
        gt = torch_model.gradients()
        out["torch_loss"] = float(loss.item())
        out["torch_grad_rel_err"] = {k: rel_err(gt[k], g64[k]) for k in gt if g64[k].size}
    errs = list(out["native_grad_rel_err"].values()) + list(out.get("torch_grad_rel_err", {}).values())
    out["ok"] = bool(all(e < GRAD_RTOL for e in errs))
    return out


def time_native(trainer: Trainer, warmup: int, repeats: int) -> list:
    dev = trainer._native  # the device-resident trainer (cuda/training/train_step.h)
    lr = 1e-4
    for _ in range(warmup):
        trainer.train_batch(lr)
    samples = []
    for _ in range(repeats):
        # the kernels run on the legacy default stream, which torch's events bracket too
        if torch is not None:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t0 = time.perf_counter()
        dev.step(lr, 0.0, trainer.optimizer.t + 1, trainer.batches_done)  # synchronous: copies the loss back
        if torch is not None:
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) * 1e-3)
        else:
            samples.append(time.perf_counter() - t0)
        trainer.optimizer.t += 1
        trainer.batches_done += 1
    return samples


def time_torch(tm, series_t, B: int, T: int, warmup: int, repeats: int) -> list:
    opt = torch.optim.Adam(tm.parameters(), lr=1e-4)
    weights = forcing_weights(T)
    offsets = torch.arange(T, device="cuda")

    def step():
        starts = torch.randint(0, series_t.shape[0] - T + 1, (B,), device="cuda")
        xb = series_t[starts[:, None] + offsets]  # [B, T, N]
        opt.zero_grad(set_to_none=True)
        loss = tm.loss(xb, weights)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tm.parameters(), 10.0)
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    samples = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) * 1e-3)
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--configs", nargs="+", default=["32,16,200", "64,1024,200", "256,256,200"],
                    help="M,B,T triples")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--torch-repeats", type=int, default=10)
    args = ap.parse_args()
    if not cuda.is_available():
        print(f"CUDA unavailable: {cuda.unavailable_reason()}", file=sys.stderr)
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    dev = cuda.devices()[0]
    clock = sm_clock_hz()
    peak_flops = 2 * 128 * dev["multiprocessors"] * clock if clock else None
    bandwidth = next((bw for key, bw in NOMINAL_BANDWIDTH if key in dev["name"]), None)
    results = {"device": dev, "sm_clock_hz": clock, "fp32_peak_flops": peak_flops,
               "nominal_hbm_bytes_per_s": bandwidth, "machine": machine_info(), "torch": None if torch is None
               else torch.__version__, "configs": []}
    ok = True
    rng = np.random.default_rng(0)
    series = make_series(rng)
    for spec in args.configs:
        M, B, T = (int(v) for v in spec.split(","))
        print(f"M={M} B={B} T={T}", flush=True)
        model = pn.PLRNN("standard", M, N, dtype="float32", seed=0)
        cfg = TrainConfig(seq_len=T, batch_size=B, forcing="sparse", tau=TAU, grad_clip=10.0, lr=1e-4,
                          device="cuda", seed=0)
        trainer = Trainer(model, series, config=cfg)
        tm = TorchPLRNN("standard", model.params, N, dtype=torch.float32).cuda() if torch else None
        starts = rng.integers(0, SERIES_LEN - T + 1, B)
        xb = np.ascontiguousarray(np.stack([series[s:s + T] for s in starts]))
        entry = {"M": M, "B": B, "T": T, "check": check(model, xb, tm)}
        ok &= entry["check"]["ok"]
        native = summarize(time_native(trainer, args.warmup, args.repeats))
        seq_steps = B * (T - 1)
        flops = 6.0 * M * M * seq_steps
        bytes_ = 4.0 * (9 * M + 3 * N) * seq_steps
        entry["native"] = dict(native.to_dict(), seq_steps_per_s=seq_steps / native.median,
                               achieved_flops=flops / native.median, flops_per_step=flops,
                               tape_bytes_per_step=bytes_, achieved_bytes_per_s=bytes_ / native.median)
        if peak_flops:
            entry["native"]["fraction_fp32_peak"] = flops / native.median / peak_flops
        if bandwidth:
            entry["native"]["fraction_hbm_bandwidth"] = bytes_ / native.median / bandwidth
        if tm is not None:
            series_t = torch.tensor(series, device="cuda")
            tt = summarize(time_torch(tm, series_t, B, T, min(args.warmup, 3), args.torch_repeats))
            entry["torch"] = dict(tt.to_dict(), seq_steps_per_s=seq_steps / tt.median)
            entry["speedup_native_vs_torch"] = tt.median / native.median
        results["configs"].append(entry)
        print(json.dumps({k: v for k, v in entry.items() if k != "check"}, default=float)[:400], flush=True)
    results["ok"] = bool(ok)
    path = args.out_dir / "train_step_gpu.json"
    path.write_text(json.dumps(results, indent=1, default=float))
    print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
