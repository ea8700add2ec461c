/* darknet_article.c: the article's Darknet BatchNorm code as it stands (int indices, float sums,
 * pow() and sqrt() per element), kept as the plain reference kernels that `bench` measures the
 * ported routines against. Only the names are prefixed and the layer struct is unpacked into
 * arguments. Not used by anything else. scale_bias, add_bias, backward_bias and copy_cpu are not
 * quoted in the article; they are Darknet's own (src/convolutional_layer.c, src/blas.c). */
#include "darknet_article.h"

#include <math.h>

static void mean_cpu(float *x, int batch, int filters, int spatial, float *mean)
{
    float scale = 1./(batch * spatial);
    int i,j,k;
    for(i = 0; i < filters; ++i){
        mean[i] = 0;
        for(j = 0; j < batch; ++j){
            for(k = 0; k < spatial; ++k){
                int index = j*filters*spatial + i*spatial + k;
                mean[i] += x[index];
            }
        }
        mean[i] *= scale;
    }
}

static void variance_cpu(float *x, float *mean, int batch, int filters, int spatial, float *variance)
{
    float scale = 1./(batch * spatial - 1);
    int i,j,k;
    for(i = 0; i < filters; ++i){
        variance[i] = 0;
        for(j = 0; j < batch; ++j){
            for(k = 0; k < spatial; ++k){
                int index = j*filters*spatial + i*spatial + k;
                variance[i] += pow((x[index] - mean[i]), 2);
            }
        }
        variance[i] *= scale;
    }
}

static void normalize_cpu(float *x, float *mean, float *variance, int batch, int filters, int spatial)
{
    int b, f, i;
    for(b = 0; b < batch; ++b){
        for(f = 0; f < filters; ++f){
            for(i = 0; i < spatial; ++i){
                int index = b*filters*spatial + f*spatial + i;
                x[index] = (x[index] - mean[f])/(sqrt(variance[f]) + .000001f);
            }
        }
    }
}

static void axpy_cpu(int N, float ALPHA, float *X, int INCX, float *Y, int INCY)
{
    int i;
    for(i = 0; i < N; ++i) Y[i*INCY] += ALPHA*X[i*INCX];
}

static void scal_cpu(int N, float ALPHA, float *X, int INCX)
{
    int i;
    for(i = 0; i < N; ++i) X[i*INCX] *= ALPHA;
}

static void copy_cpu(int N, float *X, int INCX, float *Y, int INCY)
{
    int i;
    for(i = 0; i < N; ++i) Y[i*INCY] = X[i*INCX];
}

static void scale_bias(float *output, float *scales, int batch, int n, int size)
{
    int i,j,b;
    for(b = 0; b < batch; ++b){
        for(i = 0; i < n; ++i){
            for(j = 0; j < size; ++j){
                output[(b*n + i)*size + j] *= scales[i];
            }
        }
    }
}

static void add_bias(float *output, float *biases, int batch, int n, int size)
{
    int i,j,b;
    for(b = 0; b < batch; ++b){
        for(i = 0; i < n; ++i){
            for(j = 0; j < size; ++j){
                output[(b*n + i)*size + j] += biases[i];
            }
        }
    }
}

static float sum_array(float *a, int n)
{
    int i;
    float sum = 0;
    for(i = 0; i < n; ++i) sum += a[i];
    return sum;
}

static void backward_bias(float *bias_updates, float *delta, int batch, int n, int size)
{
    int i,b;
    for(b = 0; b < batch; ++b){
        for(i = 0; i < n; ++i){
            bias_updates[i] += sum_array(delta+size*(i+b*n), size);
        }
    }
}

static void backward_scale_cpu(float *x_norm, float *delta, int batch, int n, int size, float *scale_updates)
{
    int i,b,f;
    for(f = 0; f < n; ++f){
        float sum = 0;
        for(b = 0; b < batch; ++b){
            for(i = 0; i < size; ++i){
                int index = i + size*(f + n*b);
                sum += delta[index] * x_norm[index];
            }
        }
        scale_updates[f] += sum;
    }
}

static void mean_delta_cpu(float *delta, float *variance, int batch, int filters, int spatial, float *mean_delta)
{

    int i,j,k;
    for(i = 0; i < filters; ++i){
        mean_delta[i] = 0;
        for (j = 0; j < batch; ++j) {
            for (k = 0; k < spatial; ++k) {
                int index = j*filters*spatial + i*spatial + k;
                mean_delta[i] += delta[index];
            }
        }
        mean_delta[i] *= (-1./sqrt(variance[i] + .00001f));
    }
}

static void  variance_delta_cpu(float *x, float *delta, float *mean, float *variance, int batch, int filters, int spatial, float *variance_delta)
{
    int i,j,k;
    for(i = 0; i < filters; ++i){
        variance_delta[i] = 0;
        for(j = 0; j < batch; ++j){
            for(k = 0; k < spatial; ++k){
                int index = j*filters*spatial + i*spatial + k;
                variance_delta[i] += delta[index]*(x[index] - mean[i]);
            }
        }
        variance_delta[i] *= -.5 * pow(variance[i] + .00001f, (float)(-3./2.));
    }
}

static void normalize_delta_cpu(float *x, float *mean, float *variance, float *mean_delta, float *variance_delta, int batch, int filters, int spatial, float *delta)
{
    int f, j, k;
    for(j = 0; j < batch; ++j){
        for(f = 0; f < filters; ++f){
            for(k = 0; k < spatial; ++k){
                int index = j*filters*spatial + f*spatial + k;
                delta[index] = delta[index] * 1./(sqrt(variance[f] + .00001f)) + variance_delta[f] * 2. * (x[index] - mean[f]) / (spatial * batch) + mean_delta[f]/(spatial*batch);
            }
        }
    }
}

/* forward_batchnorm_layer, training branch (l.type == BATCHNORM: output = input first) */
void article_forward_batchnorm(float *input, float *output, float *x, float *x_norm, float *mean,
                               float *variance, float *rolling_mean, float *rolling_variance,
                               float *scales, float *biases, int batch, int out_c, int spatial)
{
    int outputs = out_c * spatial;
    copy_cpu(outputs*batch, input, 1, output, 1);
    copy_cpu(outputs*batch, output, 1, x, 1);
    mean_cpu(output, batch, out_c, spatial, mean);
    variance_cpu(output, mean, batch, out_c, spatial, variance);
    scal_cpu(out_c, .99, rolling_mean, 1);
    axpy_cpu(out_c, .01, mean, 1, rolling_mean, 1);
    scal_cpu(out_c, .99, rolling_variance, 1);
    axpy_cpu(out_c, .01, variance, 1, rolling_variance, 1);
    normalize_cpu(output, mean, variance, batch, out_c, spatial);
    copy_cpu(outputs*batch, output, 1, x_norm, 1);
    scale_bias(output, scales, batch, out_c, spatial);
    add_bias(output, biases, batch, out_c, spatial);
}

/* backward_batchnorm_layer, training branch (l.type == BATCHNORM: net.delta = delta last) */
void article_backward_batchnorm(float *delta, float *net_delta, float *x, float *x_norm,
                                float *mean, float *variance, float *mean_delta,
                                float *variance_delta, float *scales, float *scale_updates,
                                float *bias_updates, int batch, int out_c, int spatial)
{
    backward_bias(bias_updates, delta, batch, out_c, spatial);
    backward_scale_cpu(x_norm, delta, batch, out_c, spatial, scale_updates);
    scale_bias(delta, scales, batch, out_c, spatial);
    mean_delta_cpu(delta, variance, batch, out_c, spatial, mean_delta);
    variance_delta_cpu(x, delta, mean, variance, batch, out_c, spatial, variance_delta);
    normalize_delta_cpu(x, mean, variance, mean_delta, variance_delta, batch, out_c, spatial, delta);
    copy_cpu(out_c*spatial*batch, delta, 1, net_delta, 1);
}
