/*
 * ops_vec.h: what the kernels' hot float loops share: the CPU-dispatch
 * attribute NF_VEC_CLONES and branch-free float32 exp and erf that the
 * auto-vectoriser turns into SIMD code (libm's expf and erff are scalar
 * calls: 13 and 11 ns an element on the test machine).
 *
 * The build targets baseline x86-64 (SSE2), so one binary runs anywhere.
 * A loop marked NF_VEC_CLONES is also compiled for x86-64-v3 (AVX2, FMA)
 * and x86-64-v4 (AVX-512); the loader picks one by the CPU (GCC and clang
 * target_clones, through a glibc ifunc). Helpers the loop calls must be
 * NF_VEC_INLINE: a plain inline function compiled for the baseline is not
 * inlined into a clone of another target, and the loop then stays scalar.
 * Valgrind reports a CPU without AVX-512, so under it the v3 or baseline
 * clone runs. With FMA a clone's results can differ from the baseline's
 * in the last bit, as OpenBLAS's kernels differ from one CPU to the next.
 */
#ifndef NF_OPS_VEC_H
#define NF_OPS_VEC_H

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute) && !defined(NF_NO_CLONES)
#if __has_attribute(target_clones)
#define NF_VEC_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#endif
#endif
#ifndef NF_VEC_CLONES
#define NF_VEC_CLONES
#endif

#define NF_VEC_INLINE static inline __attribute__((always_inline))

NF_VEC_INLINE float nf__f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

NF_VEC_INLINE uint32_t nf__f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* e^x: x = n ln2 + r with |r| <= ln2/2 (n rounded by the 1.5 * 2^23 trick,
 * ln2 split in two for an exact product), e^r by Cephes' degree-6 expf
 * polynomial, times 2^n applied in two halves so subnormal and overflowing
 * results come out right. The clamps bound n to [-150, 128]; NaN passes
 * through (integer math on its bits is unsigned, so no undefined
 * behaviour). Checked against exp in double over all 2^32 floats: within
 * 1 ulp. */
NF_VEC_INLINE float nf__exp_f32(float x)
{
    x = x < -104.0f ? -104.0f : x;
    x = x > 89.0f ? 89.0f : x;
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
                1.6666665459e-1f) * r + 5.0000001201e-1f) * (r * r) + r + 1.0f;
    uint32_t ni = nf__f32_bits(t) - 0x4B400000u; /* n, from t's mantissa */
    uint32_t n1 = (uint32_t)((int32_t)ni >> 1), n2 = ni - n1;
    return p * nf__f32_from_bits((n1 + 127u) << 23) * nf__f32_from_bits((n2 + 127u) << 23);
}

/* erf(x), odd, computed on a = |x|:
 *   a < 0.875:   x P(x^2), P of degree 5;
 *   a < 3.925:   1 - erfc(a), erfc(a) = e^(R(u) - a^2) with R of degree 8
 *                in u = (a - 2.4) / 1.525 on [-1, 1] (R = log erfc + a^2
 *                stays in [-2.7, -0.8], so the float Horner sum is exact
 *                to an ulp of a small number);
 *   otherwise 1 (erfc(3.925) is below half an ulp of 1).
 * Least-squares fits on Chebyshev nodes (numpy), coefficients rounded to
 * float. Checked against erf in double over every float with |x| > 1e-30:
 * within 2.3 ulp (glibc's erff: 1.0); NaN stays NaN, erf(+-inf) = +-1. */
NF_VEC_INLINE float nf__erf_f32(float x)
{
    float a = x < 0 ? -x : x, z = x * x;
    float small = x * (((((-6.216394709e-04f * z + 5.032981711e-03f) * z - 2.679051634e-02f) * z + 1.128236977e-01f) *
                            z - 3.761253136e-01f) * z + 1.128379148e+00f);
    float u = (a - 2.4f) * 0.655737705f;
    float r = (((((((4.808470555e-05f * u - 2.796630743e-04f) * u + 1.094741077e-03f) * u - 3.872785241e-03f) * u +
                  1.291280680e-02f) * u - 4.173654358e-02f) * u + 1.383702106e-01f) * u - 5.554608178e-01f) * u -
              1.520975062e+00f;
    float big = 1.0f - nf__exp_f32(r - z);
    big = a >= 3.925f ? 1.0f : big;
    big = x < 0 ? -big : big;
    return a < 0.875f ? small : big;
}

#endif
