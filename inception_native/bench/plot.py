"""`bench --plot FILE.png`: the speed-ups of one bench run as bar charts (needs matplotlib).

Each panel shows the native kernels' (or network's) speed-up over the other contenders of the
same run: their time over ours, so a bar above the line at 1 means native is faster.
"""


def _ratio(theirs, ours):
    return theirs / ours if theirs and ours else 0.0


def panels(results):
    """[(title, x labels, {series name: values})] for the sections present in results."""
    out = []
    rows = [r for r in results.get("batchnorm", []) if r["contender"] == "native"]
    if rows:
        labels = [f"{'x'.join(map(str, r['shape'][1:]))} {r['flavour'][:2]} {r['pass'][:3]}" for r in rows]
        series = {"vs NumPy": [r["vs_numpy"] for r in rows]}
        if any(r["vs_pytorch"] for r in rows):
            series["vs PyTorch"] = [r["vs_pytorch"] or 0.0 for r in rows]
        out.append(("BatchNorm: native speed-up (C, H, W; flavour; pass)", labels, series))
    rows = results.get("conv", [])
    if rows:
        labels = [r["layer"] for r in rows]
        series = {"fwd / sgemm rate": [_ratio(r["native fwd"], r["sgemm"]) for r in rows],
                  "fwd vs NumPy": [_ratio(r["native fwd"], r["numpy fwd"]) for r in rows]}
        if any(r["torch fwd"] for r in rows):
            series["fwd vs PyTorch"] = [_ratio(r["native fwd"], r["torch fwd"]) for r in rows]
            series["fwd+bwd vs PyTorch"] = [_ratio(r["native fwd+bwd"], r["torch fwd+bwd"]) for r in rows]
        out.append(("Convolution: native GFLOP/s over the others'", labels, series))
    rows = results.get("pool", [])
    if rows:
        labels = [r["layer"] for r in rows]
        series = {"fwd vs NumPy": [_ratio(r["numpy fwd"], r["native fwd"]) for r in rows]}
        if any(r["torch fwd"] for r in rows):
            series["fwd vs PyTorch"] = [_ratio(r["torch fwd"], r["native fwd"]) for r in rows]
        out.append(("Pooling: native speed-up", labels, series))
    rows = results.get("model", [])
    if rows:
        native = {(r["pass"], r["batch"]): r["images_per_s"] for r in rows if r["contender"] == "native"}
        labels = [f"{p} b{b}" for p, b in native]
        series = {}
        for other in ("numpy", "pytorch"):
            theirs = {(r["pass"], r["batch"]): r["images_per_s"] for r in rows if r["contender"] == other}
            if theirs:
                series[f"vs {other}"] = [_ratio(native[k], theirs.get(k)) for k in native]
        out.append((f"{rows[0]['model']}: native images/s over the others'", labels, series))
    return out


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts = panels(results)
    fig, axes = plt.subplots(len(charts), 1, figsize=(11, 3.4 * len(charts)), squeeze=False)
    for ax, (title, labels, series) in zip(axes[:, 0], charts):
        width = 0.8 / len(series)
        for i, (name, values) in enumerate(series.items()):
            ax.bar([j + i * width for j in range(len(labels))], values, width, label=name)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))], labels, rotation=30,
                      ha="right", fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("x (higher: native faster)", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
