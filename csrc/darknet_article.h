/* darknet_article.h: the article's Darknet BatchNorm layer, compiled as it stands (float, int
 * sizes), for `bench` only. */
#ifndef IN_DARKNET_ARTICLE_H
#define IN_DARKNET_ARTICLE_H

void article_forward_batchnorm(float *input, float *output, float *x, float *x_norm, float *mean,
                               float *variance, float *rolling_mean, float *rolling_variance,
                               float *scales, float *biases, int batch, int out_c, int spatial);
void article_backward_batchnorm(float *delta, float *net_delta, float *x, float *x_norm,
                                float *mean, float *variance, float *mean_delta,
                                float *variance_delta, float *scales, float *scale_updates,
                                float *bias_updates, int batch, int out_c, int spatial);

#endif
