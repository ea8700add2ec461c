"""Markdown tables from the JSON that `python -m inception_native bench --json FILE` writes.

    python benchmarks/tables.py benchmarks/kernels.json benchmarks/googlenet.json
"""
import json
import sys


def batchnorm(rows):
    by = {}
    for r in rows:
        by.setdefault(tuple(r["shape"]), {})[(r["flavour"], r["pass"], r["contender"])] = r
    out = ["| shape | exact fwd ms | vs NumPy | vs PyTorch | x copy bound | exact bwd ms | vs NumPy "
           "| vs PyTorch | x copy bound | darknet fwd+bwd ms | vs article C | copy GB/s |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for shape, r in by.items():
        cells = []
        for direction in ("forward", "backward"):
            n = r[("exact", direction, "native")]
            torch = f"{n['vs_pytorch']:.2f}x" if n["vs_pytorch"] else "-"
            cells += [f"{n['ms']:.2f}", f"{n['vs_numpy']:.1f}x", torch, f"{n['x_copy_bound']:.2f}"]
        ours = sum(r[("darknet", d, "native")]["ms"] for d in ("forward", "backward"))
        article = sum(r[("darknet", d, "article C")]["ms"] for d in ("forward", "backward"))
        cells += [f"{ours:.2f}", f"{article / ours:.1f}x", f"{n['copy_GBps']:.0f}"]
        out.append(f"| {'x'.join(map(str, shape))} | " + " | ".join(cells) + " |")
    return out


def conv(rows):
    out = ["| layer | GEMM (M, N, K) | native fwd | sgemm | fwd / sgemm | NumPy fwd | PyTorch fwd "
           "| native fwd+bwd | PyTorch fwd+bwd | fwd+bwd vs PyTorch |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    for r in rows:
        ratio = f"{r['native fwd+bwd'] / r['torch fwd+bwd']:.2f}x" if r.get("torch fwd+bwd") else "-"
        out.append(f"| {r['layer']} | {tuple(r['gemm (M, N, K)'])} | {f(r['native fwd'])} | {f(r['sgemm'])} "
                   f"| {r['native fwd'] / r['sgemm']:.0%} | {f(r['numpy fwd'])} | {f(r.get('torch fwd'))} "
                   f"| {f(r['native fwd+bwd'])} | {f(r.get('torch fwd+bwd'))} | {ratio} |")
    return out


def pool(rows):
    out = ["| layer | native fwd ms | NumPy fwd | PyTorch fwd | native fwd+bwd | PyTorch fwd+bwd |",
           "|---|---:|---:|---:|---:|---:|"]
    f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for r in rows:
        out.append(f"| {r['layer']} | {f(r['native fwd'])} | {f(r['numpy fwd'])} | {f(r.get('torch fwd'))} "
                   f"| {f(r['native fwd+bwd'])} | {f(r.get('torch fwd+bwd'))} |")
    return out


def model(rows):
    out = ["| pass | batch | native img/s | NumPy img/s | PyTorch img/s | native vs PyTorch "
           "| peak MB native / NumPy / PyTorch |", "|---|---:|---:|---:|---:|---:|---|"]
    by = {}
    for r in rows:
        by.setdefault((r["pass"], r["batch"]), {})[r["contender"]] = r
    for (direction, batch), r in by.items():
        ips = lambda c: f"{r[c]['images_per_s']:.1f}" if c in r else "-"  # noqa: E731
        mem = " / ".join(f"{r[c]['peak_MB']:.0f}" if c in r and r[c].get("peak_MB") else "-"
                         for c in ("native", "numpy", "pytorch"))
        ratio = f"{r['native']['images_per_s'] / r['pytorch']['images_per_s']:.2f}x" if "pytorch" in r else "-"
        out.append(f"| {direction} | {batch} | {ips('native')} | {ips('numpy')} | {ips('pytorch')} "
                   f"| {ratio} | {mem} |")
    return out


if __name__ == "__main__":
    for path in sys.argv[1:]:
        results = json.load(open(path))
        env = results["environment"]
        print(f"<!-- {path}: {env['threads']} threads, {env['compiler']}, {env['kernel_isa']}, "
              f"NumPy {env['numpy']}, PyTorch {env['torch']} -->")
        for section, table in (("batchnorm", batchnorm), ("conv", conv), ("pool", pool), ("model", model)):
            if section in results:
                print("\n".join(table(results[section])) + "\n")
