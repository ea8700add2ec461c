/* nchwc.h: direct convolution in the blocked layout (NCHWc), float32 frozen inference, no
 * packing of the input and no im2col (onnxruntime's MLAS design).
 *
 * Legend: blk the block (in_nchwc_block: 16 on the AVX-512 levels, 8 otherwise); a blocked
 * tensor of C channels is (B, C/blk, H, W, blk), channel c = block c / blk, lane c % blk, its
 * images `image` elements apart (C*H*W, or more for a channel-block slice of a larger tensor).
 * x blocked (B, C/blk, H, W, blk), or plain (B, C, H, W) (`plain`: a first layer of 3 channels);
 * y blocked (B, OC/blk, oh, ow, blk), oh = in_out_size(H, kh, sh, ph) (common.h).
 * Packed weights, OCb = ceil(OC0/blk) blocks of output channels (those past OC0 zero):
 *     blocked input  wp[ob, cb, i, j, ci, co] = w[ob*blk + co, cb*blk + ci, i, j]
 *     plain input    wp[ob, c, i, j, co]      = w[ob*blk + co, c, i, j]
 * i.e. a plain input is a blocked one whose blocks have 1 lane (cl = 1 instead of blk).
 *     y[b, o, oy, ox] = act(bias[o] + sum_{c, i, j} w[o, c, i, j] x[b, c, oy*sh - ph + i,
 *                                                                    ox*sw - pw + j])
 * over the taps inside the input (zero padding), act = ReLU or the identity.
 * The caller checks sizes: kernel within the padded input, OC = OCb*blk, C a multiple of blk
 * for a blocked x, images as above; x, wp, bias and y must not overlap.
 */
#ifndef IN_NCHWC_H
#define IN_NCHWC_H

#include <stddef.h>

/* One convolution: sizes in channels (C, OC) and pixels; the ISA level (convk.h) whose block
 * the tensors use; the threads to share it among. */
typedef struct {
    size_t B, C, H, W, OC, kh, kw, sh, sw, ph, pw, oh, ow;
    size_t x_image, y_image;
    int plain, isa, threads;
} in_nchwc_conv;

/* the block of ISA level `isa` (convk.h's levels) */
size_t in_nchwc_block(int isa);

/* wp (layout above) from w (OC0, C, kh, kw), block blk */
void in_nchwc_pack_weights_f32(float *wp, const float *w, size_t OC0, size_t C, size_t kh,
                               size_t kw, size_t blk, int plain);

/* y = act(conv(x, w) + bias) (bias NULL: 0); c->isa must be a level this CPU runs. y is
 * written once per group of input channel blocks (partial sums), the last group applying act. */
void in_nchwc_forward_f32(const in_nchwc_conv *c, float *y, const float *x, const float *wp,
                          const float *bias, int relu);

#endif
