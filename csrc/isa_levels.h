/* isa_levels.h: compiles the template named by IN_ISA_TEMPLATE once per ISA level of convk_isa.h
 * (ISA = 0 .. 3; the AVX levels only where IN_CONVK_X86): per-level kernels from one source.
 * Use: #define IN_ISA_TEMPLATE "convk_isa_template.h", then include this. */
#define ISA 0
#include IN_ISA_TEMPLATE
#undef ISA
#if IN_CONVK_X86
#define ISA 1
#include IN_ISA_TEMPLATE
#undef ISA
#define ISA 2
#include IN_ISA_TEMPLATE
#undef ISA
#endif
#define ISA 3
#include IN_ISA_TEMPLATE
#undef ISA

#undef IN_ISA_TEMPLATE
