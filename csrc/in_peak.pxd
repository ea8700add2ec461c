# The C boundary of csrc/peak.h (the FMA peak of the convolution's ISA path). Keep in step with
# the header by hand.

cdef extern from "peak.h" nogil:
    double in_peak_fma(size_t rounds, int threads)
