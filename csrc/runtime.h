/* runtime.h: what the build is and how many threads the kernels use. */
#ifndef IN_RUNTIME_H
#define IN_RUNTIME_H

int in_openmp_enabled(void);
void in_set_num_threads(int n);
int in_get_num_threads(void);
const char *in_compiler(void);
const char *in_build_flags(void);
const char *in_kernel_isa(void);

#endif
