/* convk.h: our convolution kernels (no BLAS): forward, dL/dx and dL/dw of a 2-D convolution as
 * packed GEMMs with implicit im2col, register-blocked microkernels written once with GCC vector
 * extensions and compiled per ISA (AVX-512, AVX2+FMA, portable), picked at run time.
 *
 * Legend: x (B, C, H, W); w (OC, C, kh, kw) read as the matrix (OC, K), K = C*kh*kw;
 * y (B, OC, oh, ow), ohw = oh*ow, oh = in_out_size(H, kh, sh, ph) (common.h); strides sh, sw;
 * paddings ph, pw. N = B*ohw pixels; r = (c*kh + i)*kw + j a kernel tap; n = b*ohw + p a pixel.
 *     col[r, n] = x[b, c, oy*sh - ph + i, ox*sw - pw + j]   (0 outside the image), p = oy*ow + ox
 *     forward  y[b, o, p] = act(scale[o] * sum_r w[o, r] col[r, n] + shift[o] (+ y[b, o, p]))
 *     dL/dx    dx = col2im(w^T dY), computed without scatter (no races) as sh*sw stride-1
 *              convolutions of dY by w transposed and flipped: one per phase (y % sh, x % sw)
 *              of dx, with the taps that reach it (see in_convk_dx_phase)
 *     dL/dw    dw[o, r] = sum_n dY[o, n] col[r, n]  (the forward's GEMM tile, the sum over
 *              pixels);   dbias[o] = sum_n dY[o, n] (in double)
 * with dY = dy masked by the forward's ReLU (dy counts as 0 where y_relu <= 0) when y_relu is
 * given. A pass prepares a padded copy P of its source (x, or dY) for a few images at a time
 * where the whole batch's would take more than IN_CONVK_PASS_BYTES: the same sums for dx and y,
 * a pass's pixels then the next's for dw. Sizes are elements; `work` and packed weights are
 * caller-allocated (see below).
 *
 * Winograd F(2x2, 3x3) (the forward of a 3x3 stride-1 convolution when the plan says wino):
 * y in tiles of 2x2 pixels, tile (b, ty, tx) reads the 4x4 patch d[c] of x at rows 2ty - ph ..
 * 2ty - ph + 3, columns 2tx - pw .. + 3 (0 outside the image); with U[o, c] = G w[o, c] G^T
 * (4x4, packed once), V[c] = B^T d[c] B and the 16 GEMMs M_t = sum_c U_t[o, c] V_t[c, tile]
 * (t = 4x4 position, the microkernel's), the tile's pixels are A^T M A (2x2), then the fused
 * epilogue:  16 multiplies per 2x2 pixels and channel pair instead of 36.
 *     G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],   A^T = [1 1 1 0; 0 1 -1 -1]
 * dL/dx of such a plan runs by the same machinery (in_convk_wino: the roles of C and OC swap):
 * dL/dx's one phase is the 3x3 stride-1 convolution of dY (OC channels, oh x ow) padded by
 * (2 - ph, 2 - pw), which gives H = oh + 2(2 - ph) - 2 rows (a negative padding crops), by
 * w'[c, o, a, e] = w[o, c, 2-a, 2-e]:
 *     dx[b, c, Y, X] = sum_{o, a, e} w'[c, o, a, e] dY[b, o, Y - (2 - ph) + a, X - (2 - pw) + e]
 * read from a padded copy P of dY (masked as it is made, a few images at a time like the
 * phases', every tile's patch inside it), its U'[c, o] = G w'[c, o] G^T packed into work at
 * every backward (the weights change).
 *
 * Use from a wrapper: make the plan once per shape, dtype and thread count
 * (in_convk_plan_init); allocate p.work values once (forward and backward share them), and
 * either pack the weights after each update (in_convk_plan_packed_size,
 * in_convk_plan_pack_weights_*: the plan's layout, Winograd's or the direct one) or pass
 * wp = NULL to pack them into work at every forward; then call forward/backward. The
 * packed layout is the same for every ISA (see IN_CONVK_PANEL), so switching ISA keeps it
 * valid. The backward packs the transposed weights itself (a Winograd plan's U'), into work.
 * Each tensor may be a channel slice of a larger one (its images further apart): y's images are
 * y_image values apart, dy's and y_relu's dy_image, x's and dx's x_image.
 * The caller checks sizes: strides >= 1, kernel within the padded input, threads >= 1, y_image
 * >= OC*ohw, x_image >= C*H*W, pointers to arrays of the sizes above; x, y, dy and the outputs
 * must not overlap.
 */
#ifndef IN_CONVK_H
#define IN_CONVK_H

#include <stddef.h>

/* ISA levels. PORTABLE512 is a test path: portable code with AVX-512's vector size and blocking,
 * so a machine without AVX-512 still runs the logic of the AVX-512 path (slowly). */
enum { IN_CONVK_PORTABLE = 0, IN_CONVK_AVX2 = 1, IN_CONVK_AVX512 = 2, IN_CONVK_PORTABLE512 = 3,
       IN_CONVK_LEVELS = 4 };

/* Packed weights: panels of IN_CONVK_PANEL rows (k-major within a panel), rows padded with
 * zeros to a multiple of IN_CONVK_PAD; every ISA's MR is a multiple of the first and divides
 * the second, so a microkernel reads MR / PANEL whole panels, each row of them contiguous. */
#define IN_CONVK_PANEL 6
#define IN_CONVK_PASS_BYTES 8388608
#define IN_CONVK_PAD 12

/* One implicit-im2col GEMM: out (M, N) = A (M, K) * col (K, N), col read from a source tensor
 * src (B, C, Hs, phases, Wq): the input itself (direct) or its prepared copy P, padded so that
 * no tap falls outside it, with columns split by phase X % sw so that a run of output pixels
 * reads a contiguous run of P for any stride:
 *     col[r, n] = src[b, c, oy*sh + i, j % sw, ox + j / sw],
 *     P[Y, X] = in[Y - top, X - left] where that lies inside in (C, Hi, Wi), else 0.
 * For a phase (ry, rx) of dL/dx, A is the sub-kernel of taps (i0 + sh*a, j0 + sw*b) of w,
 * transposed and flipped, and output pixel (Y, X) is dx pixel (ry + sh*Y, rx + sw*X). */
typedef struct {
    size_t M, K, N, C, kh, kw, sh, sw, oh, ow;   /* out map oh x ow; N = B*oh*ow */
    size_t Hi, Wi;                               /* input map */
    size_t ry, rx, i0, j0;                       /* dL/dx phase; its first taps */
    ptrdiff_t top, left;                         /* where input (0, 0) lands in P */
    size_t Hs, Ws, Wq, rowstride, plane, image;  /* source geometry: Wq = ceil(Ws / sw) */
    size_t src_size;                             /* B*image */
    int direct;                                  /* src is the input itself (no pad, sw = 1) */
    int row_panels;                              /* panels are output rows' pixels, nr at a
                                                    time, read in place at their taps */
    size_t mr, nr, kc, mc, nc;                   /* blocking: micro tile mr x nr */
    size_t k_blocks, m_chunks, n_blocks;         /* tasks = n_blocks * m_chunks */
    size_t bpack, cpart, thread_stride;          /* per-thread work: B panels, partial sums */
} in_convk_gemm;

/* One Winograd convolution (see the top) and its blocking: out (B, M, oh, ow) = the 3x3
 * stride-1 convolution of a source (B, K, Hi, Wi) whose tile (ty, tx) reads the 4x4 patch at
 * rows 2ty - top .. + 3, columns 2tx - left .. + 3 (0 outside the source): the forward's
 * (M = OC, K = C, x, padding ph, pw) or dL/dx's (M = C, K = OC, P(dY), padding 0: P is).
 * Tiles n = (b*th + ty)*tw + tx, th x tw an image; a task is nt tiles (whole panels of nr, at
 * most IN_CONVK_WINO_NT_MAX) x mc output rows, summing over K in blocks of kc (fixed by K,
 * the ISA and the L1 size only, so results do not depend on the thread count). Per thread in
 * work: V (16 x kc x nt, the input transform of one K block) and M (16 x mc x nt), matrix t at
 * t*vt and t*mt (a line more than a matrix: the 16 are not all 4 KB apart, which would put
 * them in one L1 set); then the packed U (16 * up(M, PAD) * K) at upack_at. */
#define IN_CONVK_WINO_NT_MAX 512
typedef struct {
    size_t M, K, Hi, Wi, oh, ow;             /* rows out, channels summed, source and out maps */
    ptrdiff_t top, left;                     /* padding (negative: the source cropped) */
    size_t th, tw, tiles;                    /* tiles = B*th*tw */
    size_t nr, mr, nt, kc, mc;
    size_t c_blocks, m_chunks, n_blocks;     /* tasks = n_blocks * m_chunks */
    int stream_u;                            /* U read by few tile blocks: the task prefetches it */
    size_t vt, mt, vsize, thread_stride, threads_at, upack_at; /* offsets in work */
} in_convk_wino;

/* Everything a call needs, from one function (in_convk_plan_init): the shape, the ISA, the
 * blocking of each pass and where each buffer sits in work (offsets in elements). The shape is
 * the one the kernels run: a kernel covering its whole unpadded input is planned as the 1x1
 * convolution of C*kh*kw channels of 1x1 images (same memory, same results). */
typedef struct {
    size_t B, C, H, W, OC, kh, kw, sh, sw, ph, pw, oh, ow, K;
    int isa, threads;                /* threads: those asked, fewer for a small convolution */
    size_t real_size;                /* the plan is for float (4) or double (8) */
    in_convk_gemm fwd;              /* forward; dL/dx phases: in_convk_dx_phase */
    size_t images, dx_images;        /* images a pass: forward and dL/dw, dL/dx (P within
                                        IN_CONVK_PASS_BYTES, or one image) */
    int wino;                        /* forward and dL/dx by Winograd F(2x2, 3x3)
                                        (in_convk_wino_pays) */
    in_convk_wino wg, wdx;           /* the forward's and dL/dx's, when wino */
    size_t dkc, dmc, dnc, dnr, dw_chunks, dw_groups, dw_pixel_groups; /* dL/dw: dkc pixels a
                block; tasks of dmc channels x dnc taps x a pixel group; panels of dnr taps */
    size_t fwd_threads_at, fwd_stride, fwd_wpack_at; /* forward: P at 0, threads, packed w */
    size_t dw_threads_at, dw_stride, dw_sums_at, dw_tile; /* dL/dw: P(x) at 0, threads, each
                                                             task's sums */
    size_t dx_src_at, dx_threads_at, dx_stride;              /* dL/dx: P(dY); by phases,
                                                                packed w' at 0 */
    size_t dbias_at;                 /* dL/dbias: B*OC planes' totals, or (no dL/dx) the
                                        pixel groups' row sums (doubles), past the rest */
    size_t work;                                             /* elements for every pass */
} in_convk_plan;

void in_convk_plan_init(in_convk_plan *p, size_t real_size, size_t B, size_t C, size_t H,
                        size_t W, size_t OC, size_t kh, size_t kw, size_t sh, size_t sw,
                        size_t ph, size_t pw, int threads);
int in_convk_dx_phase(in_convk_gemm *g, const in_convk_plan *p, size_t ry, size_t rx,
                      size_t images);

/* ISA: the best this CPU runs, unless INCEPTION_NATIVE_ISA (portable, avx2, avx512,
 * portable512) or in_convk_set_isa asks for a lower one. set returns 0, or -1 (and changes
 * nothing) when the CPU cannot run that level. Not to be called while a convolution runs. */
int in_convk_set_isa(int level);
int in_convk_get_isa(void);
int in_convk_isa_supported(int level);
const char *in_convk_isa_name(void);
const char *in_convk_level_name(int level);

/* Winograd (the forward and dL/dx): OFF never, AUTO where in_convk_wino_pays, ALWAYS for every
 * 3x3 stride-1 convolution (tests). Initially AUTO, or OFF when INCEPTION_NATIVE_WINOGRAD is
 * "0" or "off" ("always": ALWAYS). set returns 0, or -1 for an unknown mode. Read by
 * in_convk_plan_init: plans made before keep their algorithm. Not to be called while a
 * convolution runs. */
enum { IN_CONVK_WINO_OFF = 0, IN_CONVK_WINO_AUTO = 1, IN_CONVK_WINO_ALWAYS = 2 };
int in_convk_set_winograd(int mode);
int in_convk_get_winograd(void);
const char *in_convk_winograd_name(int mode);
int in_convk_wino_pays(size_t C, size_t OC, size_t tiles); /* tiles: B*ceil(oh/2)*ceil(ow/2) */

/* elements of packed weights: rows OC rounded up to IN_CONVK_PAD, times K (direct) */
size_t in_convk_packed_size(size_t OC, size_t C, size_t kh, size_t kw);
/* elements of the packed weights of plan p: as above, or 16 * up(OC, PAD) * C for Winograd
 * (16 matrices U_t (OC, C), each packed like the direct weights with K = C). They depend on the
 * plan's shape and algorithm only (not its ISA or threads). */
size_t in_convk_plan_packed_size(const in_convk_plan *p);

/* The kernels take the plan of their shape (in_convk_plan_init with sizeof(real), the thread
 * count and the ISA of that moment). forward: wp = packed weights (in_convk_plan_pack_weights_*),
 * or NULL: w is packed into work first (OC*K values moved; the plan reserves the room). */
#define IN_CONVK_DECLARE(real, sfx)                                                             \
    size_t in_convk_work_size_##sfx(size_t B, size_t C, size_t H, size_t W, size_t OC,          \
                                    size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,      \
                                    size_t pw, int threads);                                    \
    void in_convk_plan_pack_weights_##sfx(const in_convk_plan *p, real *wp, const real *w);     \
    void in_convk_forward_##sfx(const in_convk_plan *p, real *y, size_t y_image, real *work,    \
                                const real *x, size_t x_image, const real *w, const real *wp,   \
                                const real *scale, const real *shift, int relu, int accumulate); \
    void in_convk_backward_##sfx(const in_convk_plan *p, real *dx, real *dw, real *dbias,       \
                                 real *work, const real *dy, const real *y_relu,                \
                                 size_t dy_image, const real *x, size_t x_image, const real *w, \
                                 int dx_accumulate);

IN_CONVK_DECLARE(float, f32)
IN_CONVK_DECLARE(double, f64)

#endif
