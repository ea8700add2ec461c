/* test_convk_template.h: the checks of test_convk.c for one real type (NAME(f) = f_f32 and
 * K(f) = in_f_f32, or _f64). Arrays are malloc'ed to their exact sizes, so AddressSanitizer
 * sees any access past an end; work is handed over misaligned on purpose. */

static real *NAME(alloc)(size_t n, unsigned *seed)
{
    real *a = malloc((n ? n : 1) * sizeof(real));
    if (!a) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (size_t i = 0; i < n; ++i) a[i] = seed ? (real)uniform(seed) : (real)7;
    return a;
}

static double *NAME(to_double)(const real *a, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; ++i) d[i] = a[i];
    return d;
}

/* got[i * stride_got] against want[i]: |got - want| <= TOL * max|want| */
static void NAME(compare)(const char *what, shape q, int threads, const real *got,
                          const double *want, size_t n)
{
    double scale = max_abs(want, n), worst = 0;
    size_t at = 0;
    scale = scale > 0 ? scale : 1;
    ++checks;
    for (size_t i = 0; i < n; ++i) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= worst)) worst = e, at = i; /* NaN counts as worst */
    }
    if (!(worst <= TOL * scale)) {
        fprintf(stderr,
                "FAIL %s %s isa=%s winograd=%s threads=%d shape B%zu C%zu %zux%zu OC%zu k%zux%zu s%zu,%zu "
                "p%zu,%zu: [%zu] got %.10g want %.10g (scale %.3g)\n",
                what, TYPE_NAME, in_convk_isa_name(), in_convk_winograd_name(in_convk_get_winograd()),
                threads, q.B, q.C, q.H, q.W, q.OC, q.kh,
                q.kw, q.sh, q.sw, q.ph, q.pw, at, (double)got[at], want[at], scale);
        ++failures;
    }
}

static void NAME(same_bits)(const char *what, const real *a, const real *b, size_t n)
{
    ++checks;
    if (memcmp(a, b, n * sizeof(real)) != 0) {
        fprintf(stderr, "FAIL %s %s isa=%s: results differ between runs or thread counts\n", what,
                TYPE_NAME, in_convk_isa_name());
        ++failures;
    }
}

/* a (B images of `image` values) copied as the values [hw, hw + image) of each image of a
 * tensor of `channels` planes of hw values, its other values random */
static real *NAME(slice_of)(const real *a, size_t B, size_t image, size_t hw, size_t channels,
                            unsigned seed)
{
    real *big = NAME(alloc)(B * channels * hw, &seed);
    for (size_t b = 0; b < B; ++b)
        memcpy(big + b * channels * hw + hw, a + b * image, image * sizeof(real));
    return big;
}

/* forward: plain, then bias + ReLU, then BN scale+shift + accumulate + ReLU into channels
 * [2, 2 + OC) of a tensor of OC + 3 channels; 1 and 2 threads, twice */
static void NAME(test_forward)(shape q, const real *x, const real *w, real *work, unsigned seed)
{
    size_t ohw = out_size(q.H, q.ph, q.kh, q.sh) * out_size(q.W, q.pw, q.kw, q.sw);
    size_t nx = q.B * q.C * q.H * q.W, nw = q.OC * q.C * q.kh * q.kw, ny = q.B * q.OC * ohw;
    size_t Ct = q.OC + 3, nbig = q.B * Ct * ohw;
    double *xd = NAME(to_double)(x, nx), *wd = NAME(to_double)(w, nw);
    double *s = malloc(ny * sizeof(double)), *want = malloc(nbig * sizeof(double));
    in_convk_plan p1; /* packed weights depend on the shape only: valid for 2 threads too */
    in_convk_plan_init(&p1, sizeof(real), q.B, q.C, q.H, q.W, q.OC, q.kh, q.kw, q.sh, q.sw, q.ph,
                       q.pw, 1);
    real *wp = NAME(alloc)(in_convk_plan_packed_size(&p1), 0);
    real *scale = NAME(alloc)(q.OC, &seed), *shift = NAME(alloc)(q.OC, &seed);
    real *big0 = NAME(alloc)(nbig, &seed), *first = NAME(alloc)(nbig, 0);
    naive_forward(s, xd, wd, q);
    K(convk_plan_pack_weights)(&p1, wp, w);
    for (int threads = 1; threads <= 2; ++threads)
        for (int rep = 0; rep < 2; ++rep) {
            real *y = NAME(alloc)(ny, 0), *big = NAME(alloc)(nbig, 0);
            in_convk_plan p;
            in_convk_plan_init(&p, sizeof(real), q.B, q.C, q.H, q.W, q.OC, q.kh, q.kw, q.sh, q.sw,
                               q.ph, q.pw, threads);
            /* packed beforehand on the first round, packed by the call on the second */
            K(convk_forward)(&p, y, q.OC * ohw, work, x, nx / q.B, w, rep ? 0 : wp, 0, 0, 0, 0);
            NAME(compare)("forward", q, threads, y, s, ny);
            if (threads == 1 && rep == 0) memcpy(first, y, ny * sizeof(real));
            else NAME(same_bits)("forward", first, y, ny);
            /* bias and ReLU */
            K(convk_forward)(&p, y, q.OC * ohw, work, x, nx / q.B, w, wp, 0, shift, 1, 0);
            for (size_t i = 0; i < ny; ++i) {
                double t = s[i] + shift[i / ohw % q.OC];
                want[i] = t < 0 ? 0 : t;
            }
            NAME(compare)("forward bias relu", q, threads, y, want, ny);
            /* scale, shift, accumulate, ReLU into a channel slice */
            memcpy(big, big0, nbig * sizeof(real));
            K(convk_forward)(&p, big + 2 * ohw, Ct * ohw, work, x, nx / q.B, w, 0, scale, shift, 1, 1);
            for (size_t i = 0; i < nbig; ++i) {
                size_t b = i / (Ct * ohw), c = i / ohw % Ct, p = i % ohw;
                double t = big0[i];
                if (c >= 2 && c < 2 + q.OC) {
                    size_t o = c - 2;
                    t = (double)scale[o] * s[(b * q.OC + o) * ohw + p] + shift[o] + big0[i];
                    t = t < 0 ? 0 : t;
                }
                want[i] = t;
            }
            NAME(compare)("forward fused slice", q, threads, big, want, nbig);
            ++checks;
            for (size_t i = 0; i < nbig; ++i) {
                size_t c = i / ohw % Ct;
                if ((c < 2 || c >= 2 + q.OC) && big[i] != big0[i]) {
                    fprintf(stderr, "FAIL forward slice %s: channel %zu outside the slice written\n",
                            TYPE_NAME, c);
                    ++failures;
                    break;
                }
            }
            /* x as channels [1, 1 + C) of a tensor of C + 2 channels */
            real *x_big = NAME(slice_of)(x, q.B, q.C * q.H * q.W, q.H * q.W, q.C + 2, seed);
            K(convk_forward)(&p, y, q.OC * ohw, work, x_big + q.H * q.W, (q.C + 2) * q.H * q.W, w,
                             wp, 0, 0, 0, 0);
            NAME(same_bits)("forward from a slice", first, y, ny);
            free(y), free(big), free(x_big);
        }
    free(xd), free(wd), free(s), free(want), free(wp), free(scale), free(shift), free(big0);
    free(first);
}

/* backward with and without the ReLU mask, 1, 2 and 3 threads; then dx alone and dw alone;
 * dy and the mask as channels [1, 1 + OC) of tensors of OC + 2 channels; dx accumulated */
static void NAME(test_backward)(shape q, const real *x, const real *w, real *work, unsigned seed)
{
    size_t ohw = out_size(q.H, q.ph, q.kh, q.sh) * out_size(q.W, q.pw, q.kw, q.sw);
    size_t nx = q.B * q.C * q.H * q.W, nw = q.OC * q.C * q.kh * q.kw, ny = q.B * q.OC * ohw;
    double *xd = NAME(to_double)(x, nx), *wd = NAME(to_double)(w, nw);
    double *dYd = malloc(ny * sizeof(double)), *dxd = malloc(nx * sizeof(double));
    double *dwd = malloc(nw * sizeof(double)), *dbd = malloc(q.OC * sizeof(double));
    real *dy = NAME(alloc)(ny, &seed), *yr = NAME(alloc)(ny, &seed);
    real *dx1 = NAME(alloc)(nx, 0), *dw1 = NAME(alloc)(nw, 0), *db1 = NAME(alloc)(q.OC, 0);
    real *db_first = NAME(alloc)(q.OC, 0);
    for (int masked = 0; masked <= 1; ++masked) {
        const real *mask = masked ? yr : 0;
        for (size_t i = 0; i < ny; ++i) dYd[i] = mask && !(mask[i] > 0) ? 0 : dy[i];
        naive_backward(dxd, dwd, dbd, dYd, xd, wd, q);
        for (int threads = 1; threads <= 3; ++threads) {
            real *dx = NAME(alloc)(nx, 0), *dw = NAME(alloc)(nw, 0), *db = NAME(alloc)(q.OC, 0);
            in_convk_plan p;
            in_convk_plan_init(&p, sizeof(real), q.B, q.C, q.H, q.W, q.OC, q.kh, q.kw, q.sh, q.sw,
                               q.ph, q.pw, threads);
            K(convk_backward)(&p, dx, dw, db, work, dy, mask, ny / q.B, x, nx / q.B, w, 0);
            NAME(compare)(masked ? "dx (masked)" : "dx", q, threads, dx, dxd, nx);
            NAME(compare)(masked ? "dw (masked)" : "dw", q, threads, dw, dwd, nw);
            NAME(compare)(masked ? "dbias (masked)" : "dbias", q, threads, db, dbd, q.OC);
            if (threads == 1) {
                memcpy(dx1, dx, nx * sizeof(real)), memcpy(dw1, dw, nw * sizeof(real));
                memcpy(db1, db, q.OC * sizeof(real));
            } else {
                NAME(same_bits)("dx", dx1, dx, nx), NAME(same_bits)("dw", dw1, dw, nw);
                NAME(same_bits)("dbias", db1, db, q.OC);
            }
            /* without dx (a first layer's): dbias from dw's packed dY, the same on any thread
             * count */
            real *db_dw = NAME(alloc)(q.OC, 0);
            K(convk_backward)(&p, 0, dw, db_dw, work, dy, mask, ny / q.B, x, nx / q.B, w, 0);
            NAME(compare)(masked ? "dbias with dw alone (masked)" : "dbias with dw alone", q,
                          threads, db_dw, dbd, q.OC);
            NAME(same_bits)("dw with dbias alone", dw1, dw, nw);
            if (threads == 1) memcpy(db_first, db_dw, q.OC * sizeof(real));
            else NAME(same_bits)("dbias with dw alone", db_first, db_dw, q.OC);
            free(dx), free(dw), free(db), free(db_dw);
        }
    }
    real *dx = NAME(alloc)(nx, 0), *dw = NAME(alloc)(nw, 0);
    in_convk_plan p;
    in_convk_plan_init(&p, sizeof(real), q.B, q.C, q.H, q.W, q.OC, q.kh, q.kw, q.sh, q.sw, q.ph,
                       q.pw, 2);
    K(convk_backward)(&p, dx, 0, 0, work, dy, yr, ny / q.B, x, nx / q.B, w, 0);
    K(convk_backward)(&p, 0, dw, 0, work, dy, yr, ny / q.B, x, nx / q.B, w, 0);
    NAME(same_bits)("dx alone", dx1, dx, nx), NAME(same_bits)("dw alone", dw1, dw, nw);
    size_t wide = (q.OC + 2) * ohw; /* channel slices: images wide values apart */
    real *dy_big = NAME(alloc)(q.B * wide, &seed), *yr_big = NAME(alloc)(q.B * wide, &seed);
    for (size_t b = 0; b < q.B; ++b) {
        memcpy(dy_big + b * wide + ohw, dy + b * q.OC * ohw, q.OC * ohw * sizeof(real));
        memcpy(yr_big + b * wide + ohw, yr + b * q.OC * ohw, q.OC * ohw * sizeof(real));
    }
    K(convk_backward)(&p, dx, dw, 0, work, dy_big + ohw, yr_big + ohw, wide, x, nx / q.B, w, 0);
    NAME(same_bits)("dx from slices", dx1, dx, nx), NAME(same_bits)("dw from slices", dw1, dw, nw);
    free(dy_big), free(yr_big);
    /* x and dx as channels [1, 1 + C) of tensors of C + 2 channels: dx's others untouched */
    size_t image = q.C * q.H * q.W, hw = q.H * q.W, big_image = (q.C + 2) * hw;
    real *x_big = NAME(slice_of)(x, q.B, image, hw, q.C + 2, seed);
    real *dx_big = NAME(alloc)(q.B * big_image, 0), *dx_got = NAME(alloc)(nx, 0);
    K(convk_backward)(&p, dx_big + hw, dw, 0, work, dy, yr, ny / q.B, x_big + hw, big_image, w, 0);
    for (size_t b = 0; b < q.B; ++b) {
        memcpy(dx_got + b * image, dx_big + b * big_image + hw, image * sizeof(real));
        for (size_t i = 0; i < big_image; ++i)
            if ((i < hw || i >= hw + image) && dx_big[b * big_image + i] != 7) {
                fprintf(stderr, "FAIL dx into a slice %s: value %zu outside it written\n", TYPE_NAME, i);
                ++failures;
                break;
            }
    }
    NAME(same_bits)("dx into a slice", dx1, dx_got, nx), NAME(same_bits)("dw from a slice", dw1, dw, nw);
    free(x_big), free(dx_big), free(dx_got);
    K(convk_backward)(&p, dx, 0, 0, work, dy, yr, ny / q.B, x, nx / q.B, w, 1); /* dx += dx: twice */
    for (size_t i = 0; i < nx; ++i) dxd[i] *= 2;
    NAME(compare)("dx accumulated", q, 2, dx, dxd, nx);
    free(dx), free(dw), free(xd), free(wd), free(dYd), free(dxd), free(dwd), free(dbd);
    free(dy), free(yr), free(dx1), free(dw1), free(db1), free(db_first);
}

static void NAME(test_shape)(shape q, unsigned seed)
{
    size_t nx = q.B * q.C * q.H * q.W, nw = q.OC * q.C * q.kh * q.kw;
    size_t nwork = 0; /* for 1, 2 and 3 threads */
    for (int t = 1; t <= 3; ++t) {
        size_t n = K(convk_work_size)(q.B, q.C, q.H, q.W, q.OC, q.kh, q.kw, q.sh, q.sw, q.ph, q.pw, t);
        nwork = n > nwork ? n : nwork;
    }
    real *x = NAME(alloc)(nx, &seed), *w = NAME(alloc)(nw, &seed);
    real *work = NAME(alloc)(nwork + 1, 0);
    NAME(test_forward)(q, x, w, work + 1, seed);
    NAME(test_backward)(q, x, w, work + 1, seed + 7);
    free(x), free(w), free(work);
}
