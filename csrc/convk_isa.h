/* convk_isa.h: the ISA levels of convk.c, each in one line: vector bytes; the tile of dL/dw
 * and Winograd, MR x NV vectors; the direct GEMM's (forward and dL/dx), GMR x GNV. Each fits
 * the register file: MR*NV accumulators + NV loads + 1 broadcast (12 x 2 or 6 x 4 of 32 zmm,
 * 6 x 2 of 16 ymm or xmm). On AVX-512 the direct GEMM takes 6 x 4: its rows (output channels)
 * come in 6s, so 16, 32 or 64 channels waste fewer rows than in 12s, and a k step loads 4 + 6
 * values for 24 FMAs instead of 2 + 12 (measured, one thread: GoogLeNet 3a 1x1 forward 1.13x,
 * 3a 5x5 dL/dx 1.28x; 12 x 2 stays where it measured faster: dL/dw 1.03-1.15x, Winograd, and
 * forwards of 96 output channels or more, where convk.c's gemm_blocking picks MR x NV).
 * PORTABLE512 repeats AVX-512's numbers for portable code (the test of that path's logic).
 * IN_CONVK_X86: the AVX levels exist only where GCC's target attribute can make them. */
#ifndef IN_CONVK_ISA_H
#define IN_CONVK_ISA_H

#if defined(__GNUC__) && defined(__x86_64__)
#define IN_CONVK_X86 1
#else
#define IN_CONVK_X86 0
#endif

/*                       name          vbytes MR NV GMR GNV */
#define IN_CONVK_ISA0_DESC "portable",     16, 6, 2, 6, 2
#define IN_CONVK_ISA1_DESC "avx2",         32, 6, 2, 6, 2
#define IN_CONVK_ISA2_DESC "avx512",       64, 12, 2, 6, 4
#define IN_CONVK_ISA3_DESC "portable512",  64, 12, 2, 6, 4
#define IN_CONVK_TILE_MR_MAX 12 /* the largest MR or GMR, NV or GNV above */
#define IN_CONVK_TILE_NV_MAX 4

#define IN_CONVK_ISA0_TARGET
#define IN_CONVK_ISA1_TARGET __attribute__((target("avx2,fma")))
#define IN_CONVK_ISA2_TARGET __attribute__((target("avx512f,avx512dq,fma")))
#define IN_CONVK_ISA3_TARGET

/* The NCHWc direct convolution's tile (nchwc.c): FB blocks of output channels x PX pixels,
 * FB*PX*(block/lanes) accumulators + PX broadcasts + 1 weight vector in the register file (3 x 3
 * on AVX2: 4 x 3, MLAS's, spills with GCC); the block is 16 lanes on the 64-byte levels, 8
 * otherwise (2 xmm on portable). PORTABLE512 has portable's small tile (AVX-512's would take
 * minutes to compile as portable code), AVX-512's block. */
/*                        FB PX */
#define IN_NCHWC_ISA0_TILE 2, 3
#define IN_NCHWC_ISA1_TILE 3, 3
#define IN_NCHWC_ISA2_TILE 4, 6
#define IN_NCHWC_ISA3_TILE 2, 3
#define IN_NCHWC_FB_(fb, px) fb
#define IN_NCHWC_PX_(fb, px) px

/* Field access: IN_CONVK_FIELD(VBYTES, IN_CONVK_ISA1_DESC) is 32. */
#define IN_CONVK_NAME_(n, v, mr, nv, gmr, gnv) n
#define IN_CONVK_VBYTES_(n, v, mr, nv, gmr, gnv) v
#define IN_CONVK_MR_(n, v, mr, nv, gmr, gnv) mr
#define IN_CONVK_NV_(n, v, mr, nv, gmr, gnv) nv
#define IN_CONVK_GMR_(n, v, mr, nv, gmr, gnv) gmr
#define IN_CONVK_GNV_(n, v, mr, nv, gmr, gnv) gnv
#define IN_CONVK_APPLY_(f, args) f args
#define IN_CONVK_FIELD(field, desc) IN_CONVK_APPLY_(IN_CONVK_##field##_, (desc))

/* GCC's -std=c99 forbids contracting a*b + c into one FMA; the kernels ask for it, so each
 * multiply-add rounds once (on ISAs without FMA nothing changes). */
#if defined(__GNUC__) && !defined(__clang__)
#define IN_CONVK_CONTRACT __attribute__((optimize("fp-contract=fast")))
#else
#define IN_CONVK_CONTRACT
#endif

#endif
