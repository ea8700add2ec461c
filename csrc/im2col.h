/* im2col.h: convolution lowering, float and double (see im2col_template.h for the layout).
 * in_im2col_f32(col, im, n, C, H, W, kh, kw, sh, sw, ph, pw, y0, y1, parallel) lowers output rows
 * [y0, y1) of n images at once; with n = 1, all rows and kh = kw, sh = sw, ph = pw it is Darknet's
 * im2col_cpu. col2im adds into im. The caller checks that the kernel fits the padded image
 * (H + 2 ph >= kh), that strides are >= 1 and that y0 < y1 <= oh. */
#ifndef IN_IM2COL_H
#define IN_IM2COL_H

#include <stddef.h>

#include "common.h"

#define IN_IM2COL_DECLARE(real, sfx)                                                            \
    void in_im2col_##sfx(real *col, const real *im, size_t n, size_t C, size_t H, size_t W,     \
                         size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw,      \
                         size_t y0, size_t y1, int parallel);                                   \
    void in_col2im_##sfx(const real *col, real *im, size_t n, size_t C, size_t H, size_t W,     \
                         size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw,      \
                         size_t y0, size_t y1, int parallel);

IN_IM2COL_DECLARE(float, f32)
IN_IM2COL_DECLARE(double, f64)

#endif
