/* activation.c: ReLU, dropout, channel concatenation and softmax cross-entropy, float (_f32)
 * and double (_f64), from activation_template.h. */
#include "activation.h"

#include <math.h>
#include <string.h>

/* SplitMix64 (Steele, Lea, Flood 2014) of seed + (i + 1) * golden gamma, top 24 bits: a
 * counter-based generator, so element i's draw does not depend on the thread that makes it
 * (and NumPy reproduces it exactly, see reference.dropout_forward). */
uint32_t in_uniform24(uint64_t seed, size_t i)
{
    uint64_t z = seed + ((uint64_t)i + 1) * UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    z ^= z >> 31;
    return (uint32_t)(z >> 40);
}

#define IN_TEMPLATE "activation_template.h"
#include "instantiate.h"
