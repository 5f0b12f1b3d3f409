"""The one table of benches/gpu/run.sh, from the files a run left in its folder (standard library only,
so it runs wherever run.sh does, torch or not).

  python3 benches/gpu/table.py OUTDIR     # prints the table; writes OUTDIR/summary.json

Ratios are PyTorch's time over gputrain's (for matmuls gputrain's GFLOP/s over PyTorch's): above 1
gputrain is faster, below 1 slower. A missing file or a failed step leaves its cells as '-' and a line
under the table says why.
"""

import glob
import json
import os
import sys


def load(outdir, name):
    try:
        with open(os.path.join(outdir, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def tsv(outdir, name):
    try:
        with open(os.path.join(outdir, name)) as f:
            return [line.rstrip("\n").split("\t") for line in f if line.strip()]
    except OSError:
        return []


def info_field(outdir, key):
    try:
        with open(os.path.join(outdir, "info.txt")) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def ratio(num, den):
    return None if num is None or den is None or den == 0 else num / den


def step_rows(outdir):
    """{(model, batch): {"gputrain": (ms, img/s), "eager": ..., "graph": ...}} and PyTorch's device."""
    rows, torch_dev = {}, None
    for model in ("vae", "gan"):
        doc = load(outdir, f"gputrain_{model}.json") or {}
        for r in doc.get("results", []):
            rows.setdefault((r["model"], r["batch_size"]), {})["gputrain"] = (
                r["ms_per_step"]["median"], r["images_per_s"])
    for mode in ("eager", "graph"):
        doc = load(outdir, f"torch_{mode}.json") or {}
        if doc:
            torch_dev = f"{doc['device']} ({doc['device_name']}), torch {doc['torch']}, TF32 {doc['tf32']}"
        for r in doc.get("results", []):
            if "ms_per_step" in r:
                rows.setdefault((r["model"], r["batch_size"]), {})[mode] = (
                    r["ms_per_step"]["median"], r["images_per_s"])
    return rows, torch_dev


# Kernels that reduce (a loss, a sum, batch statistics, a bias or batchnorm gradient); a family is the
# kernel with its second stage ("_finish") counted in.
REDUCTIONS = ("bce_forward", "bce_logits_forward", "mse_forward", "xent_forward", "kl_forward", "sum_forward",
              "sum_channels_forward", "batchnorm_stats", "batchnorm_backward_gamma_beta", "batchnorm_gamma_beta",
              "bias_grad_planes", "bias_grad_rows")


def reduction_rows(outdir):
    """[(model, batch, largest reduction family, its share of kernel time, dispatches below the
    parallelism floor, shape classes autotuned)] from the gputrain step JSON."""
    out = []
    for model in ("vae", "gan"):
        doc = load(outdir, f"gputrain_{model}.json") or {}
        tuned = len((doc.get("autotune") or {}).get("choices", {}))
        for r in doc.get("results", []):
            shares = {}
            for k in r.get("kernels", []):
                fam = k["kernel"].removesuffix("_finish")
                if fam in REDUCTIONS:
                    shares[fam] = shares.get(fam, 0.0) + (k.get("share") or 0.0)
            top = max(shares.items(), key=lambda kv: kv[1]) if shares else ("-", None)
            out.append((r["model"], r["batch_size"], top[0], top[1], r.get("below_parallelism_floor"), tuned))
    return out


def matmul_rows(outdir):
    """[(label, m, n, k, {set: gflops or 'WRONG'}, torch_off, torch_on)] in gputrain's order."""
    # run.sh times each --matmul item in its own process (one slow size cannot lose the others).
    parts = [load(outdir, os.path.basename(p)) for p in sorted(glob.glob(os.path.join(outdir, "gputrain_matmul_*.json")))]
    parts = [p for p in parts if p]
    g = dict(parts[0], matmul=[r for p in parts for r in p["matmul"]],
             skipped=[s for p in parts for s in p["skipped"]]) if parts else {}
    t = load(outdir, "torch_matmul.json") or {}
    torch_gf = {(r["label"], r["tf32"]): r["gflops"] for r in t.get("matmul", [])}
    order, sets = [], {}
    for r in g.get("matmul", []):
        key = (r["label"], r["m"], r["n"], r["k"])
        if key not in sets:
            order.append(key)
            sets[key] = {}
        sets[key][r["set"]] = r["gflops"] if r["correct"] else "WRONG"
    return [(*key, sets[key], torch_gf.get((key[0], False)), torch_gf.get((key[0], True))) for key in order], g, t


def main(outdir):
    out = []
    p = out.append
    p(f"gputrain benchmark, {info_field(outdir, 'adapter')} ({info_field(outdir, 'backend')}, "
      f"{info_field(outdir, 'device type')}), driver {info_field(outdir, 'driver')}, "
      f"kernel set {info_field(outdir, 'kernel set')}")
    rows, torch_dev = step_rows(outdir)
    p(f"PyTorch: {torch_dev or 'not run (see the notes below)'}")
    p("")
    p("training step: median ms/step (images/s); speed ratio = PyTorch ms / gputrain ms (>1: gputrain faster)")
    p(f"{'model':<5} {'batch':>5}  {'gputrain':>17}  {'torch eager':>17}  {'torch graph':>17}  "
      f"{'vs eager':>8}  {'vs graph':>8}")
    for (model, batch), r in sorted(rows.items()):
        cell = {k: f"{v[0]:.2f} ({v[1]:.0f})" for k, v in r.items()}
        ms = {k: v[0] for k, v in r.items()}
        p(f"{model:<5} {batch:>5}  {cell.get('gputrain', '-'):>17}  {cell.get('eager', '-'):>17}  "
          f"{cell.get('graph', '-'):>17}  {fmt(ratio(ms.get('eager'), ms.get('gputrain')), 2):>8}  "
          f"{fmt(ratio(ms.get('graph'), ms.get('gputrain')), 2):>8}")
    red = reduction_rows(outdir)
    if red:
        p("")
        p("per step: the largest reduction family's share of kernel time (target < 5 %), dispatches below the")
        p("parallelism floor (>= 64 Ki floats on < 128 workgroups), shape classes the autotuner chose a plan for")
        p(f"{'model':<5} {'batch':>5}  {'largest reduction':<30} {'share':>6}  {'below floor':>11}  {'autotuned':>9}")
        for model, batch, fam, share, low, tuned in red:
            pct = "-" if share is None else f"{100 * share:.1f} %"
            p(f"{model:<5} {batch:>5}  {fam:<30} {pct:>6}  {'-' if low is None else low:>11}  {tuned:>9}")
    mm, gdoc, tdoc = matmul_rows(outdir)
    p("")
    p("matmul C = A·B f32: GFLOP/s; ratio = gputrain / torch.matmul f32 with TF32 off (TF32-on column for reference)")
    p(f"{'shape':<40} {'M':>6} {'N':>6} {'K':>6}  {'tiled':>9} {'lavapipe':>9}  {'torch f32':>9} "
      f"{'torch tf32':>10}  {'tiled/f32':>9} {'lvp/f32':>8}")
    for label, m, n, k, sets, off, on in mm:
        def gf(s):
            v = sets.get(s)
            return v if isinstance(v, str) else fmt(v)

        def rt(s):
            v = sets.get(s)
            return "-" if isinstance(v, str) else fmt(ratio(v, off), 3)
        p(f"{label:<40} {m:>6} {n:>6} {k:>6}  {gf('tiled'):>9} {gf('lavapipe'):>9}  {fmt(off):>9} "
          f"{fmt(on):>10}  {rt('tiled'):>9} {rt('lavapipe'):>8}")
    if gdoc:
        p(f"(gputrain timing: {', '.join(sorted({r['timing'] for r in gdoc.get('matmul', [])}))}; PyTorch: "
          f"wall time of synchronised loops on {tdoc.get('device', '-') if tdoc else '-'})")
    notes = []
    for name, status, secs, *why in tsv(outdir, "steps.tsv"):
        reason = f" ({why[0]})" if why and why[0] else ""
        if status == "skipped":
            notes.append(f"step {name}: skipped{reason}")
        elif status != "ok":
            notes.append(f"step {name}: {status} after {secs} s{reason}")
    for mode in ("eager", "graph"):
        doc = load(outdir, f"torch_{mode}.json") or {}
        notes += [f"torch {mode} skipped: {s['reason']}" for s in doc.get("skipped", [])]
        notes += [f"torch {mode} {r['model']} batch {r['batch_size']}: {r['error']}"
                  for r in doc.get("results", []) if "error" in r]
        notes += [f"torch graph {r['model']} batch {r['batch_size']} ran as {r['method']}"
                  for r in doc.get("results", []) if mode == "graph" and r.get("method", "").startswith("torch.compile")]
    for s in gdoc.get("skipped", []) if gdoc else []:
        notes.append(f"matmul {s['label']} on the {s['set']} set skipped: {s['reason']}")
    tests = tsv(outdir, "tests.tsv")
    if tests:
        ok = sum(1 for t in tests if t[1] == "ok")
        p("")
        p(f"tests on this adapter: {ok} of {len(tests)} binaries passed")
        for name, status, passed, failed, secs in tests:
            p(f"  {name:<28} {status:<8} {passed:>4} passed {failed:>4} failed  {secs:>4} s")
    if notes:
        p("")
        p("notes:")
        out.extend(f"  {n}" for n in notes)
    print("\n".join(out))
    summary = {
        "steps": [{"model": m, "batch_size": b, **{k: {"ms": v[0], "images_per_s": v[1]} for k, v in r.items()}}
                  for (m, b), r in sorted(rows.items())],
        "reductions": [{"model": m, "batch_size": b, "largest_family": f, "share": sh, "below_parallelism_floor": lo,
                        "autotuned_classes": t} for m, b, f, sh, lo, t in red],
        "matmul": [{"label": l, "m": m, "n": n, "k": k, "gflops": s, "torch_f32": off, "torch_tf32": on}
                   for l, m, n, k, s, off, on in mm],
        "tests": [dict(zip(["binary", "status", "passed", "failed", "seconds"], t)) for t in tests],
        "notes": notes,
    }
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: table.py OUTDIR")
    main(sys.argv[1])
