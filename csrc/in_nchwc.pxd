# The C boundary of csrc/nchwc.h (the NCHWc direct convolution, float32). Keep in step with the
# header by hand.

cdef extern from "nchwc.h" nogil:
    ctypedef struct in_nchwc_conv:
        size_t B, C, H, W, OC, kh, kw, sh, sw, ph, pw, oh, ow
        size_t x_image, y_image
        int plain, isa, threads
    size_t in_nchwc_block(int isa)
    void in_nchwc_pack_weights_f32(float *wp, const float *w, size_t OC0, size_t C, size_t kh,
                                   size_t kw, size_t blk, int plain)
    void in_nchwc_forward_f32(const in_nchwc_conv *c, float *y, const float *x, const float *wp,
                              const float *bias, int relu)
