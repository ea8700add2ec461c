/* test_kernels_template.h: the checks of test_kernels.c for one real type, included once for
 * float (NAME(f) = f_f32, K(f) = in_f_f32) and once for double. Every array is malloc'ed to its
 * exact size, so AddressSanitizer sees a read or write one element past the end. */

static real *NAME(alloc)(size_t n, unsigned *seed)
{
    real *a = malloc((n ? n : 1) * sizeof(real));
    if (!a) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (size_t i = 0; i < n; ++i) a[i] = (real)uniform(seed);
    return a;
}

static real *NAME(alloc_positive)(size_t n, unsigned *seed)
{
    real *a = NAME(alloc)(n, seed);
    for (size_t i = 0; i < n; ++i) a[i] = a[i] * a[i] + (real)0.25;
    return a;
}

static void NAME(check)(const char *what, size_t i, double got, double want, size_t b, size_t f,
                        size_t s)
{
    double tol = TOL * (1.0 + fabs(want));
    if (!(fabs(got - want) <= tol)) {
        fprintf(stderr, "FAIL %s (%s) batch=%zu filters=%zu spatial=%zu [%zu]: got %.9g, want %.9g\n",
                what, TYPE_NAME, b, f, s, i, got, want);
        ++failures;
    }
}

/* Darknet's blas routines against naive double loops */
static void NAME(test_blas)(size_t b, size_t f, size_t s, unsigned seed)
{
    size_t n = b * f * s;
    real *x = NAME(alloc)(n, &seed), *delta = NAME(alloc)(n, &seed), *work = NAME(alloc)(n, &seed);
    real *mean = NAME(alloc)(f, &seed), *var = NAME(alloc_positive)(f, &seed);
    real *md = NAME(alloc)(f, &seed), *vd = NAME(alloc)(f, &seed), *per = NAME(alloc)(f, &seed);
    real *keep = NAME(alloc)(f, &seed);
#define AT(j, i, k) ((j) * f * s + (i) * s + (k))
    K(mean_cpu)(x, b, f, s, mean);
    for (size_t i = 0; i < f; ++i) {
        double sum = 0;
        for (size_t j = 0; j < b; ++j) for (size_t k = 0; k < s; ++k) sum += x[AT(j, i, k)];
        NAME(check)("mean_cpu", i, mean[i], sum / (double)(b * s), b, f, s);
    }
    if (b * s > 1) {
        K(variance_cpu)(x, mean, b, f, s, var);
        for (size_t i = 0; i < f; ++i) {
            double sum = 0;
            for (size_t j = 0; j < b; ++j)
                for (size_t k = 0; k < s; ++k) sum += pow(x[AT(j, i, k)] - (double)mean[i], 2);
            NAME(check)("variance_cpu", i, var[i], sum / (double)(b * s - 1), b, f, s);
            var[i] += (real)0.25; /* keep the divisions below well conditioned */
        }
    }
    memcpy(work, x, n * sizeof(real));
    K(normalize_cpu)(work, mean, var, b, f, s);
    for (size_t q = 0; q < n; ++q) {
        size_t i = q / s % f;
        NAME(check)("normalize_cpu", q, work[q],
                    (x[q] - (double)mean[i]) / (sqrt((double)var[i]) + (real).000001f), b, f, s);
    }
    memcpy(work, x, n * sizeof(real));
    K(scale_bias)(work, var, b, f, s);
    for (size_t q = 0; q < n; ++q)
        NAME(check)("scale_bias", q, work[q], (double)x[q] * var[q / s % f], b, f, s);
    memcpy(work, x, n * sizeof(real));
    K(add_bias)(work, var, b, f, s);
    for (size_t q = 0; q < n; ++q)
        NAME(check)("add_bias", q, work[q], (double)x[q] + var[q / s % f], b, f, s);
    memcpy(per, keep, f * sizeof(real));
    K(backward_bias)(per, delta, b, f, s);
    for (size_t i = 0; i < f; ++i) {
        double sum = keep[i];
        for (size_t j = 0; j < b; ++j) for (size_t k = 0; k < s; ++k) sum += delta[AT(j, i, k)];
        NAME(check)("backward_bias", i, per[i], sum, b, f, s);
    }
    memcpy(per, keep, f * sizeof(real));
    K(backward_scale_cpu)(x, delta, b, f, s, per);
    for (size_t i = 0; i < f; ++i) {
        double sum = keep[i];
        for (size_t j = 0; j < b; ++j)
            for (size_t k = 0; k < s; ++k) sum += (double)x[AT(j, i, k)] * delta[AT(j, i, k)];
        NAME(check)("backward_scale_cpu", i, per[i], sum, b, f, s);
    }
    K(mean_delta_cpu)(delta, var, b, f, s, md);
    K(variance_delta_cpu)(x, delta, mean, var, b, f, s, vd);
    for (size_t i = 0; i < f; ++i) {
        double sum = 0, dev = 0, v = (double)var[i] + (real).00001f;
        for (size_t j = 0; j < b; ++j)
            for (size_t k = 0; k < s; ++k) {
                sum += delta[AT(j, i, k)];
                dev += (double)delta[AT(j, i, k)] * (x[AT(j, i, k)] - (double)mean[i]);
            }
        NAME(check)("mean_delta_cpu", i, md[i], sum * (-1 / sqrt(v)), b, f, s);
        NAME(check)("variance_delta_cpu", i, vd[i], dev * -.5 * pow(v, -1.5), b, f, s);
    }
    memcpy(work, delta, n * sizeof(real));
    K(normalize_delta_cpu)(x, mean, var, md, vd, b, f, s, work);
    for (size_t q = 0; q < n; ++q) {
        size_t i = q / s % f;
        double v = (double)var[i] + (real).00001f, m = (double)(b * s);
        double want = delta[q] / sqrt(v) + vd[i] * 2. * (x[q] - (double)mean[i]) / m + md[i] / m;
        NAME(check)("normalize_delta_cpu", q, work[q], want, b, f, s);
    }
#undef AT
    free(x); free(delta); free(work); free(mean); free(var); free(md); free(vd); free(per);
    free(keep);
}

/* axpy, scal, copy, fill with strides: the arrays hold exactly (N-1)*INC+1 values */
static void NAME(test_strided)(size_t N, size_t incx, size_t incy, unsigned seed)
{
    size_t nx = N ? (N - 1) * incx + 1 : 0, ny = N ? (N - 1) * incy + 1 : 0;
    real *X = NAME(alloc)(nx, &seed), *Y = NAME(alloc)(ny, &seed), *Y0 = NAME(alloc)(ny, &seed);
    memcpy(Y0, Y, ny * sizeof(real));
    K(axpy_cpu)(N, (real)1.5, X, incx, Y, incy);
    for (size_t i = 0; i < ny; ++i)
        NAME(check)("axpy_cpu", i, Y[i], i % incy ? Y0[i] : Y0[i] + (real)1.5 * X[i / incy * incx],
                    N, incx, incy);
    memcpy(Y, Y0, ny * sizeof(real));
    K(scal_cpu)(N, (real)-2, Y, incy);
    for (size_t i = 0; i < ny; ++i)
        NAME(check)("scal_cpu", i, Y[i], i % incy ? Y0[i] : -2. * Y0[i], N, incx, incy);
    memcpy(Y, Y0, ny * sizeof(real));
    K(copy_cpu)(N, X, incx, Y, incy);
    for (size_t i = 0; i < ny; ++i)
        NAME(check)("copy_cpu", i, Y[i], i % incy ? Y0[i] : X[i / incy * incx], N, incx, incy);
    memcpy(Y, Y0, ny * sizeof(real));
    K(fill_cpu)(N, (real)7, Y, incy);
    for (size_t i = 0; i < ny; ++i)
        NAME(check)("fill_cpu", i, Y[i], i % incy ? Y0[i] : 7., N, incx, incy);
    free(X); free(Y); free(Y0);
}

/* sgd_momentum_cpu with and without weight decay against the rule in double: v = momentum*v + g
 * (+ decay*p), p -= lr*v */
static void NAME(test_sgd)(size_t N, unsigned seed)
{
    real *p = NAME(alloc)(N, &seed), *g = NAME(alloc)(N, &seed), *v = NAME(alloc)(N, &seed);
    real *p0 = NAME(alloc)(N, &seed), *v0 = NAME(alloc)(N, &seed);
    memcpy(p0, p, N * sizeof(real)), memcpy(v0, v, N * sizeof(real));
    for (int d = 0; d < 2; ++d) {
        double decay = d ? 0.01 : 0;
        memcpy(p, p0, N * sizeof(real)), memcpy(v, v0, N * sizeof(real));
        K(sgd_momentum_cpu)(N, (real)0.1, (real)0.9, (real)decay, p, g, v);
        for (size_t i = 0; i < N; ++i) {
            double vi = 0.9 * v0[i] + g[i] + decay * p0[i];
            NAME(check)("sgd_momentum_cpu v", i, v[i], vi, N, d, 0);
            NAME(check)("sgd_momentum_cpu p", i, p[i], p0[i] - 0.1 * vi, N, d, 0);
        }
    }
    free(p); free(g); free(v); free(p0); free(v0);
}

/* Both BatchNorm flavours: identities that hold whatever the data (forward in training: each
 * channel of (y - beta)/gamma has mean 0; dbeta = sum dy; the exact dx sums to 0 per channel;
 * with the ReLU fused, y >= 0 and dbeta = the sum of dy where y > 0) */
static void NAME(test_batchnorm)(size_t b, size_t f, size_t s, unsigned seed)
{
    size_t n = b * f * s;
    real *x = NAME(alloc)(n, &seed), *y = NAME(alloc)(n, &seed), *dy = NAME(alloc)(n, &seed);
    real *dx = NAME(alloc)(n, &seed), *xn = NAME(alloc)(n, &seed);
    real *gamma = NAME(alloc_positive)(f, &seed), *beta = NAME(alloc)(f, &seed);
    real *rm = NAME(alloc)(f, &seed), *rv = NAME(alloc_positive)(f, &seed);
    real *mean = NAME(alloc)(f, &seed), *invstd = NAME(alloc)(f, &seed);
    real *dgamma = NAME(alloc)(f, &seed), *dbeta = NAME(alloc)(f, &seed);
    real *var = NAME(alloc)(f, &seed), *md = NAME(alloc)(f, &seed), *vd = NAME(alloc)(f, &seed);
    if (b * s > 1) {
        K(batchnorm_forward_train)(y, mean, invstd, x, gamma, beta, rm, rv, b, f, s, f * s, f * s, 1e-5, 0.01, 1,
                                   0);
        for (size_t i = 0; i < f; ++i) {
            double sum = 0;
            for (size_t j = 0; j < b; ++j)
                for (size_t k = 0; k < s; ++k)
                    sum += ((double)y[j * f * s + i * s + k] - beta[i]) / gamma[i];
            NAME(check)("batchnorm_forward_train mean 0", i, sum / (double)(b * s), 0, b, f, s);
        }
        K(batchnorm_backward)(dx, dgamma, dbeta, dy, NULL, x, mean, invstd, gamma, b, f, s, f * s, f * s, 1);
        for (size_t i = 0; i < f; ++i) {
            double sdy = 0, sdx = 0;
            for (size_t j = 0; j < b; ++j)
                for (size_t k = 0; k < s; ++k) {
                    sdy += dy[j * f * s + i * s + k];
                    sdx += dx[j * f * s + i * s + k];
                }
            NAME(check)("batchnorm_backward dbeta", i, dbeta[i], sdy, b, f, s);
            NAME(check)("batchnorm_backward sum dx", i, sdx / (double)(b * s), 0, b, f, s);
        }
        K(batchnorm_forward_train)(y, mean, invstd, x, gamma, beta, rm, rv, b, f, s, f * s, f * s, 1e-5, 0.01, 1,
                                   1);
        K(batchnorm_backward)(dx, dgamma, dbeta, dy, y, x, mean, invstd, gamma, b, f, s, f * s, f * s, 1);
        for (size_t i = 0; i < f; ++i) {
            double sdy = 0;
            for (size_t j = 0; j < b; ++j)
                for (size_t k = 0; k < s; ++k) {
                    size_t q = j * f * s + i * s + k;
                    NAME(check)("batchnorm_forward_train relu y >= 0", q, y[q] < 0, 0, b, f, s);
                    sdy += y[q] > 0 ? dy[q] : 0;
                }
            NAME(check)("batchnorm_backward y_relu dbeta", i, dbeta[i], sdy, b, f, s);
        }
        K(batchnorm_forward_darknet)(y, xn, mean, var, x, gamma, beta, rm, rv, b, f, s, 1, 0);
        for (size_t i = 0; i < f; ++i) dgamma[i] = dbeta[i] = 0;
        memcpy(dx, dy, n * sizeof(real));
        K(batchnorm_backward_darknet)(dx, dgamma, dbeta, md, vd, NULL, x, xn, mean, var, gamma, b,
                                      f, s);
        for (size_t i = 0; i < f; ++i) {
            double sdy = 0;
            for (size_t j = 0; j < b; ++j)
                for (size_t k = 0; k < s; ++k) sdy += dy[j * f * s + i * s + k];
            NAME(check)("batchnorm_backward_darknet bias_updates", i, dbeta[i], sdy, b, f, s);
        }
    }
    K(batchnorm_forward_eval)(y, mean, invstd, x, gamma, beta, rm, rv, b, f, s, f * s, f * s, 1e-3, 0);
    for (size_t q = 0; q < n; ++q) {
        size_t i = q / s % f;
        double want = gamma[i] * (x[q] - (double)rm[i]) / sqrt((double)rv[i] + 1e-3) + beta[i];
        NAME(check)("batchnorm_forward_eval", q, y[q], want, b, f, s);
    }
    K(batchnorm_backward)(dx, dgamma, dbeta, dy, NULL, x, mean, invstd, gamma, b, f, s, f * s, f * s, 0);
    K(batchnorm_forward_darknet)(y, xn, mean, var, x, gamma, beta, rm, rv, b, f, s, 0, 1);
    for (size_t q = 0; q < n; ++q)
        NAME(check)("batchnorm_forward_darknet relu y >= 0", q, y[q] < 0, 0, b, f, s);
    for (size_t i = 0; i < f; ++i) dgamma[i] = dbeta[i] = 0;
    memcpy(dx, dy, n * sizeof(real));
    K(batchnorm_backward_darknet)(dx, dgamma, dbeta, md, vd, y, x, xn, mean, var, gamma, b, f, s);
    for (size_t i = 0; i < f; ++i) {
        double sdy = 0;
        for (size_t j = 0; j < b; ++j)
            for (size_t k = 0; k < s; ++k)
                sdy += y[j * f * s + i * s + k] > 0 ? dy[j * f * s + i * s + k] : 0;
        NAME(check)("batchnorm_backward_darknet y_relu bias_updates", i, dbeta[i], sdy, b, f, s);
    }
    free(x); free(y); free(dy); free(dx); free(xn); free(gamma); free(beta); free(rm); free(rv);
    free(mean); free(invstd); free(dgamma); free(dbeta); free(var); free(md); free(vd);
}

/* Pooling (kernel k, stride st, padding p, floor mode) and global average pooling; the
 * max-pooling gradient goes back to one input per output, so it sums to sum(dy) */
static void NAME(test_pool)(size_t P, size_t H, size_t W, size_t k, size_t st, size_t p,
                            unsigned seed)
{
    size_t oh = (H + 2 * p - k) / st + 1, ow = (W + 2 * p - k) / st + 1;
    real *x = NAME(alloc)(P * H * W, &seed), *dx = NAME(alloc)(P * H * W, &seed);
    real *y = NAME(alloc)(P * oh * ow, &seed), *dy = NAME(alloc)(P * oh * ow, &seed);
    real *g = NAME(alloc)(P, &seed);
    int64_t *argmax = malloc(P * oh * ow * sizeof(int64_t));
    K(max_pool2d_forward)(y, argmax, NULL, x, P, H, W, oh, ow, k, k, st, st, p, p);
    for (size_t q = 0; q < P * oh * ow; ++q)
        if (argmax[q] < 0 || (size_t)argmax[q] >= H * W || y[q] != x[q / (oh * ow) * H * W + argmax[q]]) {
            fprintf(stderr, "FAIL max_pool2d_forward (%s) [%zu]\n", TYPE_NAME, q);
            ++failures;
        }
    K(max_pool2d_backward)(dx, dy, argmax, P, H * W, oh * ow);
    double sdy = 0, sdx = 0;
    for (size_t q = 0; q < P * oh * ow; ++q) sdy += dy[q];
    for (size_t q = 0; q < P * H * W; ++q) sdx += dx[q];
    NAME(check)("max_pool2d_backward sum", 0, sdx, sdy, P, H, W);
    /* without argmax: the maxima found again in x give the same dx, bit for bit */
    real *dx2 = NAME(alloc)(P * H * W, &seed);
    if (K(max_pool2d_backward_search)(dx2, dy, x, y, P, H, W, oh, ow, k, k, st, st, p, p)
        || memcmp(dx, dx2, P * H * W * sizeof(real))) {
        fprintf(stderr, "FAIL max_pool2d_backward_search (%s)\n", TYPE_NAME);
        ++failures;
    }
    /* with taps: the same maxima, each tap naming argmax's pixel, and the same dx bit for bit */
    real *y2 = NAME(alloc)(P * oh * ow, &seed);
    uint8_t *taps = malloc(P * oh * ow);
    K(max_pool2d_forward)(y2, NULL, taps, x, P, H, W, oh, ow, k, k, st, st, p, p);
    for (size_t q = 0; q < P * oh * ow; ++q) {
        size_t oy = q / ow % oh, ox = q % ow, i = taps[q] / k, j = taps[q] % k;
        int64_t at = (int64_t)((oy * st + i - p) * W + ox * st + j - p);
        if (y2[q] != y[q] || at != argmax[q]) {
            fprintf(stderr, "FAIL max_pool2d_forward taps (%s) [%zu]\n", TYPE_NAME, q);
            ++failures;
        }
    }
    if (K(max_pool2d_backward_taps)(dx2, dy, taps, P, H, W, oh, ow, k, k, st, st, p, p)
        || memcmp(dx, dx2, P * H * W * sizeof(real))) {
        fprintf(stderr, "FAIL max_pool2d_backward_taps (%s)\n", TYPE_NAME);
        ++failures;
    }
    free(dx2); free(y2); free(taps);
    for (int include = 0; include < 2; ++include) {
        K(avg_pool2d_forward)(y, x, P, H, W, oh, ow, k, k, st, st, p, p, include);
        K(avg_pool2d_backward)(dx, dy, P, H, W, oh, ow, k, k, st, st, p, p, include);
    }
    K(global_avg_pool_forward)(g, x, P, H * W);
    for (size_t i = 0; i < P; ++i) {
        double sum = 0;
        for (size_t q = 0; q < H * W; ++q) sum += x[i * H * W + q];
        NAME(check)("global_avg_pool_forward", i, g[i], sum / (double)(H * W), P, H, W);
    }
    K(global_avg_pool_backward)(dx, g, P, H * W);
    free(x); free(dx); free(y); free(dy); free(g); free(argmax);
}

/* Adaptive average pooling H x W -> oh x ow against a window loop in double (rule written with
 * floor and ceil); every window hands all of its dy back, so sum(dx) = sum(dy) */
static void NAME(test_adaptive_pool)(size_t P, size_t H, size_t W, size_t oh, size_t ow,
                                     unsigned seed)
{
    real *x = NAME(alloc)(P * H * W, &seed), *dx = NAME(alloc)(P * H * W, &seed);
    real *y = NAME(alloc)(P * oh * ow, &seed), *dy = NAME(alloc)(P * oh * ow, &seed);
    K(adaptive_avg_pool2d_forward)(y, x, P, H, W, oh, ow);
    for (size_t p = 0; p < P; ++p)
        for (size_t i = 0; i < oh; ++i)
            for (size_t j = 0; j < ow; ++j) {
                size_t y0 = (size_t)floor((double)(i * H) / (double)oh);
                size_t y1 = (size_t)ceil((double)((i + 1) * H) / (double)oh);
                size_t x0 = (size_t)floor((double)(j * W) / (double)ow);
                size_t x1 = (size_t)ceil((double)((j + 1) * W) / (double)ow);
                double sum = 0;
                for (size_t r = y0; r < y1; ++r)
                    for (size_t c = x0; c < x1; ++c) sum += x[(p * H + r) * W + c];
                size_t q = (p * oh + i) * ow + j;
                NAME(check)("adaptive_avg_pool2d_forward", q, y[q],
                            sum / (double)((y1 - y0) * (x1 - x0)), P, H, W);
            }
    K(adaptive_avg_pool2d_backward)(dx, dy, P, H, W, oh, ow);
    double sdy = 0, sdx = 0;
    for (size_t q = 0; q < P * oh * ow; ++q) sdy += dy[q];
    for (size_t q = 0; q < P * H * W; ++q) sdx += dx[q];
    NAME(check)("adaptive_avg_pool2d_backward sum", 0, sdx, sdy, P, H, W);
    free(x); free(dx); free(y); free(dy);
}

/* gemm (the triple loop: no BLAS is handed over here) on exact-size row-major matrices */
static void NAME(test_gemm)(size_t M, size_t N, size_t Kd, int ta, int tb, unsigned seed)
{
    size_t lda = ta ? M : Kd, ldb = tb ? Kd : N;
    real *A = NAME(alloc)(M * Kd, &seed), *B = NAME(alloc)(Kd * N, &seed);
    real *C = NAME(alloc)(M * N, &seed), *C0 = NAME(alloc)(M * N, &seed);
    memcpy(C0, C, M * N * sizeof(real));
    K(gemm)(ta, tb, M, N, Kd, (real)2, A, lda ? lda : 1, B, ldb ? ldb : 1, (real)0.5, C, N ? N : 1);
    for (size_t i = 0; i < M; ++i)
        for (size_t j = 0; j < N; ++j) {
            double sum = 0;
            for (size_t l = 0; l < Kd; ++l)
                sum += (double)(ta ? A[l * lda + i] : A[i * lda + l]) *
                       (tb ? B[j * ldb + l] : B[l * ldb + j]);
            NAME(check)("gemm", i * N + j, C[i * N + j], 2 * sum + 0.5 * C0[i * N + j], M, N, Kd);
        }
    free(A); free(B); free(C); free(C0);
}

/* Convolution, forward and backward, against one direct loop nest in double: blocks of G images
 * (G = 1 with R output rows at a time, or G > 1 whole images), 1 or 2 threads, work allocated to
 * the exact size the kernels use (see conv_template.h) */
static void NAME(test_conv)(size_t B, size_t C, size_t H, size_t W, size_t OC, size_t kh,
                            size_t kw, size_t s, size_t p, size_t G, size_t R, int threads,
                            unsigned seed)
{
    size_t oh = (H + 2 * p - kh) / s + 1, ow = (W + 2 * p - kw) / s + 1, K = C * kh * kw;
    if (threads > (int)B) threads = (int)B;  /* as the planner: no more threads than images */
    int direct = kh == 1 && kw == 1 && s == 1 && p == 0 && G == 1;
    size_t per = (direct ? 0 : K * G * R * ow) + (G > 1 ? OC * G * oh * ow : 0)
                 + (threads > 1 ? OC * K : 0);
    size_t nx = B * C * H * W, ny = B * OC * oh * ow, nw = OC * K;
    real *x = NAME(alloc)(nx, &seed), *w = NAME(alloc)(nw, &seed), *bias = NAME(alloc)(OC, &seed);
    real *y = NAME(alloc)(ny, &seed), *dy = NAME(alloc)(ny, &seed), *dx = NAME(alloc)(nx, &seed);
    real *dw = NAME(alloc)(nw, &seed), *db = NAME(alloc)(OC, &seed);
    real *work = NAME(alloc)(per * (size_t)threads, &seed);
    double *ey = calloc(ny, sizeof(double)), *edx = calloc(nx, sizeof(double));
    double *edw = calloc(nw, sizeof(double));
    for (size_t b = 0; b < B; ++b)
        for (size_t o = 0; o < OC; ++o)
            for (size_t q = 0; q < oh * ow; ++q) {
                size_t iy = b * OC * oh * ow + o * oh * ow + q;
                ey[iy] += bias[o];
                for (size_t c = 0; c < C; ++c)
                    for (size_t i = 0; i < kh; ++i)
                        for (size_t j = 0; j < kw; ++j) {
                            size_t r = q / ow * s + i, t = q % ow * s + j; /* padded coords */
                            if (r < p || t < p || r - p >= H || t - p >= W) continue;
                            size_t ix = ((b * C + c) * H + r - p) * W + t - p;
                            size_t iw = ((o * C + c) * kh + i) * kw + j;
                            ey[iy] += (double)w[iw] * x[ix];
                            edx[ix] += (double)w[iw] * dy[iy];
                            edw[iw] += (double)x[ix] * dy[iy];
                        }
            }
    /* the plan of these sizes, its blocking forced to (G, R) and its workspace to the size
     * computed above: every blocking gets tested, not only the one the planner picks */
    in_conv_plan plan = in_conv2d_plan(B, C, H, W, OC, kh, kw, s, s, p, p, threads, 1, 1);
    plan.G = G, plan.R = R, plan.threads = threads, plan.work = per * (size_t)threads;
    K(conv2d_forward)(&plan, y, work, x, w, bias);
    for (size_t q = 0; q < ny; ++q) NAME(check)("conv2d_forward", q, y[q], ey[q], B, C, H);
    K(conv2d_backward)(&plan, dx, dw, db, work, dy, x, w);
    for (size_t q = 0; q < nx; ++q) NAME(check)("conv2d_backward dx", q, dx[q], edx[q], B, C, H);
    for (size_t q = 0; q < nw; ++q) NAME(check)("conv2d_backward dw", q, dw[q], edw[q], B, C, H);
    for (size_t o = 0; o < OC; ++o) {
        double sum = 0;
        for (size_t b = 0; b < B; ++b)
            for (size_t q = 0; q < oh * ow; ++q) sum += dy[(b * OC + o) * oh * ow + q];
        NAME(check)("conv2d_backward dbias", o, db[o], sum, B, C, H);
    }
    K(conv2d_backward)(&plan, NULL, dw, NULL, work, dy, x, w);
    free(x); free(w); free(bias); free(y); free(dy); free(dx); free(dw); free(db); free(work);
    free(ey); free(edx); free(edw);
}

/* Darknet's leaky and logistic activations and the softmax of N rows of K, forward and
 * backward (the backwards in place too), against the formulas in double */
static void NAME(test_darknet_activations)(size_t N, size_t K, unsigned seed)
{
    size_t n = N * K;
    real *x = NAME(alloc)(n, &seed), *dy = NAME(alloc)(n, &seed), *y = NAME(alloc)(n, &seed);
    real *dx = NAME(alloc)(n, &seed);
    K(leaky_relu_forward)(y, x, n, 0.1);
    K(leaky_relu_backward)(dx, dy, y, n, 0.1);
    for (size_t i = 0; i < n; ++i) {
        NAME(check)("leaky_relu_forward", i, y[i], x[i] > 0 ? x[i] : 0.1 * x[i], N, K, 1);
        NAME(check)("leaky_relu_backward", i, dx[i], x[i] > 0 ? dy[i] : 0.1 * dy[i], N, K, 1);
    }
    K(logistic_forward)(y, x, n);
    memcpy(dx, dy, n * sizeof(real));
    K(logistic_backward)(dx, dx, y, n);
    for (size_t i = 0; i < n; ++i) {
        double s = 1 / (1 + exp(-(double)x[i]));
        NAME(check)("logistic_forward", i, y[i], s, N, K, 1);
        NAME(check)("logistic_backward", i, dx[i], dy[i] * s * (1 - s), N, K, 1);
    }
    K(softmax_forward)(y, x, N, K);
    memcpy(dx, dy, n * sizeof(real));
    K(softmax_backward)(dx, dx, y, N, K);
    for (size_t r = 0; r < N; ++r) {
        double m = x[r * K], sum = 0, dot = 0;
        for (size_t k = 0; k < K; ++k) m = x[r * K + k] > m ? x[r * K + k] : m;
        for (size_t k = 0; k < K; ++k) sum += exp(x[r * K + k] - m);
        for (size_t k = 0; k < K; ++k) dot += dy[r * K + k] * exp(x[r * K + k] - m) / sum;
        for (size_t k = 0; k < K; ++k) {
            double p = exp(x[r * K + k] - m) / sum;
            NAME(check)("softmax_forward", r * K + k, y[r * K + k], p, N, K, 1);
            NAME(check)("softmax_backward", r * K + k, dx[r * K + k], p * (dy[r * K + k] - dot), N, K, 1);
        }
    }
    free(x); free(dy); free(y); free(dx);
}

static void NAME(run_all)(void)
{
    /* 1, around the vector widths (4, 8, 16 lanes) and IN_LANES, and a size past
     * IN_PARALLEL_MIN (2^15 elements) so that the OpenMP paths run too */
    static const size_t spatial[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 49, 196};
    static const size_t channels[] = {1, 2, 3, 17};
    static const size_t batches[] = {1, 2, 3};
    unsigned seed = 1;
    for (size_t a = 0; a < sizeof batches / sizeof *batches; ++a)
        for (size_t c = 0; c < sizeof channels / sizeof *channels; ++c)
            for (size_t d = 0; d < sizeof spatial / sizeof *spatial; ++d) {
                NAME(test_blas)(batches[a], channels[c], spatial[d], ++seed);
                NAME(test_batchnorm)(batches[a], channels[c], spatial[d], ++seed);
            }
    NAME(test_blas)(2, 300, 70, ++seed);      /* 42,000 elements: parallel, two channel chunks */
    NAME(test_batchnorm)(2, 300, 70, ++seed);
    NAME(test_blas)(3, 5, 3001, ++seed);
    NAME(test_batchnorm)(3, 5, 3001, ++seed);
    for (size_t N = 0; N < 40; ++N)
        for (size_t incx = 1; incx <= 3; ++incx)
            for (size_t incy = 1; incy <= 3; ++incy) NAME(test_strided)(N, incx, incy, ++seed);
    NAME(test_strided)(40000, 1, 1, ++seed);
    for (size_t N = 1; N < 40; N += 3) NAME(test_sgd)(N, ++seed);
    NAME(test_sgd)(40000, ++seed);  /* past IN_PARALLEL_MIN */
    for (size_t H = 1; H <= 9; ++H)
        for (size_t k = 1; k <= 3 && k <= H; ++k)
            for (size_t st = 1; st <= 3; ++st)
                for (size_t p = 0; p <= k / 2; ++p) NAME(test_pool)(3, H, H + 2, k, st, p, ++seed);
    NAME(test_pool)(2, 37, 30, 3, 1, 1, ++seed);  /* same-size: 3 chunks of up to 17 rows */
    NAME(test_pool)(2, 37, 30, 5, 1, 2, ++seed);
    NAME(test_pool)(3, 35, 30, 5, 1, 2, ++seed);  /* a last chunk of 1 row (17 + 17 + 1) */
    NAME(test_pool)(23, 7, 7, 3, 1, 1, ++seed);   /* chunks of 10 planes, the last of 3 */
    NAME(test_pool)(40, 37, 30, 3, 1, 1, ++seed);  /* 44,400 values: the parallel loops */
    NAME(test_pool)(40, 37, 30, 3, 2, 0, ++seed);
    NAME(test_pool)(200, 14, 14, 3, 2, 1, ++seed);  /* W = 2*ow: rows run on across planes */
    NAME(test_pool)(5, 9, 15, 3, 3, 0, ++seed);  /* W = 3*ow: the last row's runs would pass x */
    NAME(test_pool)(120, 17, 17, 3, 2, 0, ++seed);  /* W = 2*ow + 1: rows of one output more */
    for (size_t H = 1; H <= 9; ++H)
        for (size_t oh = 1; oh <= H + 3; ++oh)  /* past H and W: windows repeat pixels */
            for (size_t ow = 1; ow <= H + 5; ow += 2)
                NAME(test_adaptive_pool)(3, H, H + 2, oh, ow, ++seed);
    NAME(test_adaptive_pool)(200, 14, 14, 4, 4, ++seed); /* 39,200 values: the parallel loop */
    for (size_t M = 1; M <= 9; M += 4)
        for (size_t N = 1; N <= 17; N += 8)
            for (size_t Kd = 1; Kd <= 17; Kd += 8)
                for (int t = 0; t < 4; ++t) NAME(test_gemm)(M, N, Kd, t & 1, t >> 1, ++seed);
    /* B, C, H, W, OC, kernel, stride, padding; then blockings (G, R) and 1 or 2 threads */
    static const size_t convs[][8] = {{1, 1, 1, 1, 1, 1, 1, 0}, {3, 2, 5, 7, 3, 3, 1, 1},
                                      {2, 3, 8, 8, 4, 1, 1, 0}, {3, 2, 9, 6, 2, 3, 2, 1},
                                      {2, 1, 4, 4, 2, 4, 1, 2}, {4, 3, 7, 7, 5, 1, 2, 0}};
    for (size_t i = 0; i < sizeof convs / sizeof *convs; ++i) {
        const size_t *v = convs[i];
        size_t B = v[0], oh = (v[2] + 2 * v[7] - v[5]) / v[6] + 1;
        for (int threads = 1; threads <= 2; ++threads) {
            NAME(test_conv)(B, v[1], v[2], v[3], v[4], v[5], v[5], v[6], v[7], 1, 1, threads, ++seed);
            NAME(test_conv)(B, v[1], v[2], v[3], v[4], v[5], v[5], v[6], v[7], 1, oh, threads, ++seed);
            NAME(test_conv)(B, v[1], v[2], v[3], v[4], v[5], v[5], v[6], v[7], B, oh, threads, ++seed);
            if (B > 2)
                NAME(test_conv)(B, v[1], v[2], v[3], v[4], v[5], v[5], v[6], v[7], 2, oh, threads,
                                ++seed);
        }
    }
    for (size_t N = 1; N <= 3; ++N)
        for (size_t K = 1; K <= 17; K += 4) NAME(test_darknet_activations)(N, K, ++seed);
    NAME(test_darknet_activations)(40, 1000, ++seed); /* 40,000 values: the parallel loops */
}
