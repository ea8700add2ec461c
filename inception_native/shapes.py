"""Output sizes of convolution and pooling: one formula, used by every kernel wrapper, layer,
drop-in and benchmark (the C kernels take the sizes it gives: csrc/common.h has its C twin)."""


def output_size(n, k, s, p, ceil_mode=False):
    """How many windows of k values, stride s, fit n values padded by p on both sides:
    floor((n + 2p - k) / s) + 1. In ceil_mode (Caffe's and PyTorch's pools) the division rounds
    up, less one window when the last would start past the input and its left padding.
    The window must fit the padded input (n + 2p >= k): see output_hw."""
    out = (n + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def output_hw(H, W, kh, kw, sh, sw, ph, pw, ceil_mode=False, window="kernel"):
    """(oh, ow) of a 2-D window sweep; ValueError naming the `window` when it does not fit the
    padded input."""
    if H + 2 * ph < kh or W + 2 * pw < kw:
        raise ValueError(f"{window} {kh}x{kw} is larger than the padded input "
                         f"{H + 2 * ph}x{W + 2 * pw}")
    return output_size(H, kh, sh, ph, ceil_mode), output_size(W, kw, sw, pw, ceil_mode)
